# frozen_string_literal: true

# The task runner's command line and claim loop, against a scripted orchestrator client and benchmark.
require "minitest/autorun"
require "stringio"
require_relative "../lib/seed_runner/runner"

class RunnerTest < Minitest::Test
  FLAGS = %w[--orchestrator-url http://127.0.0.1:1 --api-key k --run-id r1 --provider local --instance-type c7i.large].freeze

  # Answers claims from a script and records every call.
  class ScriptedClient
    attr_reader :calls

    def initialize(claims)
      @claims = claims
      @calls = []
    end

    def claim(run, body)
      @calls << [:claim, run, body]
      answer = @claims.shift
      raise answer if answer.is_a?(Exception)

      answer
    end

    %i[heartbeat complete fail].each do |m|
      define_method(m) { |id, body| @calls << [m, id, body] && {} }
    end
  end

  def runner(claims, bench)
    client = ScriptedClient.new(claims)
    r = SeedRunner::Runner.new(SeedRunner.parse(FLAGS), client: client, bench: bench, out: StringIO.new,
                                                          heartbeat_seconds: 60, sleeper: ->(_) {})
    [r, client]
  end

  def test_flags_are_all_it_needs_and_missing_ones_are_named
    opts = SeedRunner.parse(FLAGS + ["--mock"])
    assert_equal ["http://127.0.0.1:1", "k", "r1", "local", "c7i.large", true],
                 opts.values_at(:orchestrator_url, :api_key, :run_id, :provider, :instance_type, :mock)
    err = assert_raises(SeedRunner::Usage) { SeedRunner.parse(%w[--api-key k --provider local]) }
    assert_match(/missing --orchestrator-url, --run-id, --instance-type/, err.message)
    assert_raises(SeedRunner::Usage) { SeedRunner.parse(FLAGS + ["--nope"]) }
  end

  def test_claims_until_done_heartbeats_and_completes_with_who_ran_it
    bench = Object.new
    def bench.run(name) = { "bench" => [0.5], "benchmark" => name }
    r, client = runner([
                         { "status" => "wait", "retry_after_seconds" => 1 },
                         Errno::ECONNREFUSED.new,
                         { "status" => "assigned", "task" => { "id" => 7, "benchmark" => "fib" }, "lease" => "L" },
                         { "status" => "done" }
                       ], bench)
    assert_equal 0, r.run
    kinds = client.calls.map(&:first)
    assert_equal %i[claim claim claim heartbeat complete claim], kinds
    claim = client.calls.first
    assert_equal ["r1", { runner_id: r.runner_id, provider: "local", instance_type: "c7i.large" }], claim[1..]
    _, id, body = client.calls.find { |c| c.first == :complete }
    assert_equal 7, id
    assert_equal "L", body[:lease]
    assert_equal({ runner_id: r.runner_id, run_id: "r1", provider: "local", instance_type: "c7i.large", mock: false },
                 body[:result]["runner"])
  end

  def test_a_benchmark_that_raises_fails_the_task_and_goes_on
    bench = Object.new
    def bench.run(_) = raise("no benchmark fib")
    r, client = runner([
                         { "status" => "assigned", "task" => { "id" => 3, "benchmark" => "fib" }, "lease" => "L" },
                         { "status" => "done" }
                       ], bench)
    assert_equal 0, r.run
    _, id, body = client.calls.find { |c| c.first == :fail }
    assert_equal [3, "no benchmark fib"], [id, body[:error_message]]
  end

  def test_a_refusal_ends_the_runner_with_1
    r, = runner([SeedRunner::Client::Error.new("HTTP 401", 401)], nil)
    assert_equal 1, r.run
  end

  def test_mock_mode_makes_a_fast_result_without_the_cache
    result = SeedRunner::Bench.new(dir: "/nonexistent", mock: true).run("fib")
    assert_equal [true, "fib"], result.values_at("mock", "benchmark")
  end

  def test_the_real_mode_runs_a_benchmark_of_the_cache
    Dir.mktmpdir do |dir|
      Dir.mkdir(File.join(dir, "harness"))
      Dir.mkdir(File.join(dir, "benchmarks"))
      File.write(File.join(dir, "harness", "harness.rb"),
                 "require 'json'\ndef run_benchmark(*) = (yield; File.write(ENV['RESULT_JSON_PATH'], JSON.generate('bench' => [0.25])))\n")
      File.write(File.join(dir, "benchmarks", "tiny.rb"), "require 'harness'\nrun_benchmark(1) { 1 + 1 }\n")
      result = SeedRunner::Bench.new(dir: dir, mock: false).run("tiny")
      assert_equal [[0.25], "tiny"], result.values_at("bench", "benchmark")
      err = assert_raises(RuntimeError) { SeedRunner::Bench.new(dir: dir, mock: false).run("missing") }
      assert_match(/no benchmark missing/, err.message)
    end
  end
end
