# frozen_string_literal: true

require "securerandom"
require "time"

module Orchestrator
  # Tasks in memory, first in first out; safe to use from the server's threads.
  # A task: id, benchmark, ruby_bench_ref (optional), env (optional), status (queued, running, done, failed),
  # runner, result, and times.
  class TaskQueue
    BENCHMARK_NAME = /\A[A-Za-z0-9_-]{1,100}\z/
    FINAL = %w[done failed].freeze

    class Invalid < StandardError; end
    class NotFound < StandardError; end

    def initialize(clock: -> { Time.now.utc })
      @clock = clock
      @tasks = {}
      @order = []
      @lock = Mutex.new
    end

    def add(attrs)
      benchmark = attrs["benchmark"]
      raise Invalid, "benchmark must be a name such as fib (letters, digits, _ and -)" unless benchmark.is_a?(String) && benchmark.match?(BENCHMARK_NAME)

      ref = attrs["ruby_bench_ref"]
      raise Invalid, "ruby_bench_ref must be a string" unless ref.nil? || ref.is_a?(String)

      env = attrs["env"] || {}
      raise Invalid, "env must be an object of strings" unless env.is_a?(Hash) && env.all? { |k, v| k.is_a?(String) && v.is_a?(String) }

      task = { "id" => SecureRandom.uuid, "benchmark" => benchmark, "ruby_bench_ref" => ref, "env" => env,
               "status" => "queued", "created_at" => @clock.call.iso8601 }
      @lock.synchronize do
        @tasks[task["id"]] = task
        @order << task["id"]
      end
      task.dup
    end

    # The oldest queued task, now running for `runner`; nil when none is queued.
    def claim(runner)
      @lock.synchronize do
        id = @order.find { |i| @tasks[i]["status"] == "queued" }
        return nil unless id

        @tasks[id].merge!("status" => "running", "runner" => runner.to_s, "claimed_at" => @clock.call.iso8601)
        @tasks[id].dup
      end
    end

    def complete(id, result)
      raise Invalid, "result must be an object" unless result.is_a?(Hash)

      @lock.synchronize do
        task = @tasks[id] or raise NotFound, "no task #{id}"
        raise Invalid, "task #{id} is #{task['status']}, not running" unless task["status"] == "running"

        status = result["status"] == "ok" ? "done" : "failed"
        task.merge!("status" => status, "result" => result, "finished_at" => @clock.call.iso8601)
        task.dup
      end
    end

    def get(id)
      @lock.synchronize { @tasks[id]&.dup } or raise NotFound, "no task #{id}"
    end

    def counts
      @lock.synchronize { @tasks.values.group_by { |t| t["status"] }.transform_values(&:size) }
    end
  end
end
