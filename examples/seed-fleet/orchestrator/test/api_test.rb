# frozen_string_literal: true

# The API's routes, auth, leases and answers, over a store that keeps runs and tasks in memory (the PostgreSQL
# store itself runs in the whole-pipeline test).
require "minitest/autorun"
require "json"
require_relative "../lib/seed_orchestrator/api"

module SeedOrchestrator
  # Stands in for Store: same methods, same errors.
  class Store
    NotFound = Class.new(StandardError)
    Conflict = Class.new(StandardError)
  end
end

class MemoryStore
  attr_reader :tasks

  def initialize
    @runs = {}
    @tasks = []
  end

  def ping = true

  def create_run(name:, count:, benchmark:, provider: nil, instance_type: nil)
    raise SeedOrchestrator::Store::Conflict, "run #{name} exists" if @runs.key?(name)

    @runs[name] = benchmark
    made = (1..count).map do |i|
      t = { "id" => @tasks.size + 1, "run" => name, "position" => i, "benchmark" => benchmark, "status" => "pending",
            "provider" => provider, "instance_type" => instance_type }
      @tasks << t
      t
    end
    { run: { "name" => name }, tasks: made }
  end

  def claim(name:, runner_id:, provider:, instance_type:)
    return [:wait] unless @runs.key?(name)

    mine = @tasks.select { |t| t["run"] == name }
    t = mine.find do |x|
      x["status"] == "pending" && [nil, provider].include?(x["provider"]) && [nil, instance_type].include?(x["instance_type"])
    end
    return [:assigned, t.merge!("status" => "claimed", "runner_id" => runner_id)] if t

    mine.any? { |x| %w[pending claimed].include?(x["status"]) } ? [:wait] : [:done]
  end

  def heartbeat(id, runner_id:, progress: nil) = owned(id, runner_id) { |t| t["progress"] = progress }
  def complete(id, runner_id:, result:) = owned(id, runner_id) { |t| t.merge!("status" => "completed", "result" => result) }
  def fail(id, runner_id:, error:) = owned(id, runner_id) { |t| t.merge!("status" => "failed", "error" => error) }

  def run_summary(name)
    raise SeedOrchestrator::Store::NotFound, "no run #{name}" unless @runs.key?(name)

    { "run_id" => name, "tasks" => @tasks.select { |t| t["run"] == name } }
  end

  private

  def owned(id, runner_id)
    t = @tasks.find { |x| x["id"] == id } or raise SeedOrchestrator::Store::NotFound, "no task #{id}"
    raise SeedOrchestrator::Store::Conflict, "not yours" unless t["status"] == "claimed" && t["runner_id"] == runner_id

    yield t
    true
  end
end

class ApiTest < Minitest::Test
  KEY = "k" * 24
  AUTH = { "authorization" => "Bearer #{KEY}" }.freeze

  def setup
    @store = MemoryStore.new
    @api = SeedOrchestrator::Api.new(store: @store, api_key: KEY, app_secret: "s" * 40, retry_after: 3)
  end

  def post(path, body, headers = AUTH) = @api.call("POST", path, headers, JSON.generate(body))

  def claim(run, runner) = post("/runs/#{run}/tasks/claim", runner_id: runner, provider: "local", instance_type: "c7i.large")

  def test_up_needs_no_token_and_everything_else_does
    assert_equal 200, @api.call("GET", "/up", {}, nil).first
    assert_equal 401, post("/runs", { tasks: 1 }, {}).first
    assert_equal 401, post("/runs", { tasks: 1 }, { "authorization" => "Bearer #{KEY}x" }).first
    assert_equal 401, post("/runs", { tasks: 1 }, { "authorization" => KEY }).first
  end

  def test_a_run_is_claimed_task_by_task_then_done
    status, doc = post("/runs", run_id: "r1", tasks: 2, benchmark: "fib")
    assert_equal 201, status
    assert_equal ["r1", 2], [doc["run_id"], doc["tasks_created"]]

    _, first = claim("r1", "a")
    _, second = claim("r1", "b")
    assert_equal %w[assigned assigned], [first["status"], second["status"]]
    refute_equal first["task"]["id"], second["task"]["id"]
    assert_equal({ "status" => "wait", "retry_after_seconds" => 3 }, claim("r1", "c").last)

    id = first["task"]["id"]
    assert_equal 200, post("/tasks/#{id}/heartbeat", runner_id: "a", lease: first["lease"]).first
    assert_equal 200, post("/tasks/#{id}/complete", runner_id: "a", lease: first["lease"], result: { "bench" => [1] }).first
    other = second["task"]["id"]
    assert_equal 200, post("/tasks/#{other}/fail", runner_id: "b", lease: second["lease"], error_message: "boom").first
    assert_equal "done", claim("r1", "c").last["status"]
    assert_equal %w[completed failed], @store.tasks.map { |t| t["status"] }
  end

  def test_an_unknown_run_says_wait_so_runners_may_start_before_it_exists
    assert_equal "wait", claim("later", "a").last["status"]
  end

  def test_only_the_claiming_runner_may_report
    post("/runs", run_id: "r1", tasks: 1)
    _, got = claim("r1", "a")
    id = got["task"]["id"]
    assert_equal 409, post("/tasks/#{id}/complete", runner_id: "b", lease: got["lease"], result: {}).first
    assert_equal 409, post("/tasks/#{id}/complete", runner_id: "a", lease: "0" * 64, result: {}).first
    assert_equal 400, post("/tasks/#{id}/complete", runner_id: "a", result: {}).first
    assert_equal 400, post("/tasks/#{id}/complete", runner_id: "a", lease: got["lease"], result: "x").first
  end

  def test_bad_input_is_a_400_naming_it
    assert_match(/tasks/, post("/runs", tasks: 0).last["error"])
    assert_match(/run id/, post("/runs", run_id: "a b", tasks: 1).last["error"])
    assert_equal 400, @api.call("POST", "/runs", AUTH, "{not json").first
    assert_equal 400, @api.call("POST", "/runs", AUTH, "[1]").first
    assert_equal 400, post("/runs/r1/tasks/claim", runner_id: "a").first
    assert_equal 409, (post("/runs", run_id: "r1", tasks: 1) && post("/runs", run_id: "r1", tasks: 1)).first
    assert_equal 404, @api.call("GET", "/runs/nope", AUTH, nil).first
    assert_equal 404, post("/tasks/99/heartbeat", runner_id: "a", lease: @api.lease(99, "a")).first
    assert_equal 404, @api.call("DELETE", "/runs", AUTH, nil).first
  end

  def test_weak_secrets_are_refused_at_start
    assert_raises(ArgumentError) { SeedOrchestrator::Api.new(store: @store, api_key: "short", app_secret: "s" * 40) }
    assert_raises(ArgumentError) { SeedOrchestrator::Api.new(store: @store, api_key: KEY, app_secret: "short") }
  end
end
