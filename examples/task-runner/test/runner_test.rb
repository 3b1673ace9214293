# frozen_string_literal: true

require "minitest/autorun"
require "tmpdir"
require "fileutils"
$LOAD_PATH.unshift(File.expand_path("../lib", __dir__))
require "task_runner/runner"

# A fake orchestrator client: hands out the given tasks, records reports.
class FakeClient
  attr_reader :reports

  def initialize(tasks)
    @tasks = tasks
    @reports = []
  end

  def claim(_runner)
    @tasks.shift
  end

  def report(id, result)
    @reports << [id, result]
    {}
  end
end

class RunnerTest < Minitest::Test
  def setup
    @dir = Dir.mktmpdir("ruby-bench")
    FileUtils.mkdir_p(File.join(@dir, "harness"))
    FileUtils.mkdir_p(File.join(@dir, "benchmarks"))
    File.write(File.join(@dir, "harness", "harness.rb"), <<~RUBY)
      require "json"
      def run_benchmark(_hint)
        times = Array.new(Integer(ENV.fetch("MIN_BENCH_ITRS", "2"))) do
          t = Process.clock_gettime(Process::CLOCK_MONOTONIC); yield
          Process.clock_gettime(Process::CLOCK_MONOTONIC) - t
        end
        File.write(ENV.fetch("RESULT_JSON_PATH"), JSON.generate("bench" => times))
      end
    RUBY
    File.write(File.join(@dir, "benchmarks", "tiny.rb"), "require 'harness'\nrun_benchmark(1) { 100.times { } }\n")
    File.write(File.join(@dir, "benchmarks", "broken.rb"), "require 'harness'\nraise 'boom'\n")
    @refs = []
  end

  def teardown
    FileUtils.rm_rf(@dir)
  end

  def runner(tasks)
    @client = FakeClient.new(tasks)
    TaskRunner::Runner.new(client: @client, runner_id: "r1", bench_dir: @dir,
                           checkout: ->(ref) { @refs << ref; "c0ffee" })
  end

  def test_runs_the_benchmark_and_reports_its_results
    task = runner([{ "id" => "t1", "benchmark" => "tiny", "ruby_bench_ref" => "v2", "env" => { "MIN_BENCH_ITRS" => "3" } }]).step
    assert_equal "ok", task["result_status"]
    id, result = @client.reports.first
    assert_equal "t1", id
    assert_equal 3, result["results"]["bench"].size
    assert_equal "c0ffee", result["ruby_bench_commit"]
    assert_equal ["v2"], @refs, "the checkout was asked for the task's ref"
  end

  def test_a_failing_benchmark_is_reported_as_an_error_with_its_output
    runner([{ "id" => "t2", "benchmark" => "broken" }]).step
    result = @client.reports.first[1]
    assert_equal "error", result["status"]
    assert_match(/boom/, result["output"])
  end

  def test_unknown_and_hostile_benchmark_names_are_errors
    r = runner([])
    assert_match(/no benchmark nope/, r.run({ "benchmark" => "nope" })["error"])
    assert_match(/must be a name/, r.run({ "benchmark" => "../../etc/passwd" })["error"])
  end

  def test_no_task_means_no_report
    assert_nil runner([]).step
    assert_empty @client.reports
  end
end
