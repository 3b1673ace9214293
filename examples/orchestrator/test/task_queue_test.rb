# frozen_string_literal: true

require "minitest/autorun"
$LOAD_PATH.unshift(File.expand_path("../lib", __dir__))
require "orchestrator/task_queue"

class TaskQueueTest < Minitest::Test
  def setup
    @q = Orchestrator::TaskQueue.new
  end

  def test_tasks_are_claimed_oldest_first_and_only_once
    a = @q.add("benchmark" => "fib")
    b = @q.add("benchmark" => "nbody", "ruby_bench_ref" => "v1")
    assert_equal a["id"], @q.claim("r1")["id"]
    claimed = @q.claim("r2")
    assert_equal b["id"], claimed["id"]
    assert_equal "v1", claimed["ruby_bench_ref"]
    assert_equal "r2", claimed["runner"]
    assert_nil @q.claim("r3")
  end

  def test_a_result_finishes_the_task
    id = @q.add("benchmark" => "fib")["id"]
    @q.claim("r1")
    assert_equal "done", @q.complete(id, { "status" => "ok", "results" => {} })["status"]
    assert_equal "done", @q.get(id)["status"]
    assert_raises(Orchestrator::TaskQueue::Invalid) { @q.complete(id, { "status" => "ok" }) }
  end

  def test_a_failed_result_marks_the_task_failed
    id = @q.add("benchmark" => "fib")["id"]
    @q.claim("r1")
    assert_equal "failed", @q.complete(id, { "status" => "error" })["status"]
  end

  def test_bad_input_is_refused
    assert_raises(Orchestrator::TaskQueue::Invalid) { @q.add("benchmark" => "../etc/passwd") }
    assert_raises(Orchestrator::TaskQueue::Invalid) { @q.add("benchmark" => "fib", "env" => { "A" => 1 }) }
    assert_raises(Orchestrator::TaskQueue::NotFound) { @q.get("nope") }
  end

  def test_claims_from_many_threads_hand_out_each_task_once
    ids = Array.new(50) { @q.add("benchmark" => "fib")["id"] }
    claimed = Queue.new
    Array.new(8) { Thread.new { while (t = @q.claim("t")) do claimed << t["id"] end } }.each(&:join)
    got = Array.new(claimed.size) { claimed.pop }
    assert_equal ids.sort, got.sort
  end
end
