# frozen_string_literal: true

require "fileutils"
require "json"
require "open3"
require "tmpdir"

module TaskRunner
  # One task: put ruby-bench at the task's ref (fetching only when it is not the baked one), run the benchmark
  # with ruby-bench's harness, and report what it measured.
  class Runner
    BENCHMARK_NAME = /\A[A-Za-z0-9_-]{1,100}\z/
    OUTPUT_TAIL = 40

    def initialize(client:, runner_id:, bench_dir:, heartbeat: nil, checkout: nil, ruby: RbConfig.ruby)
      @client = client
      @runner_id = runner_id
      @bench_dir = bench_dir
      @heartbeat = heartbeat
      @checkout = checkout || method(:checkout_with_helper)
      @ruby = ruby
    end

    # Claim one task and run it; the task (with "result_status") or nil when none was queued.
    def step
      beat
      task = @client.claim(@runner_id)
      return nil unless task

      result = run(task)
      @client.report(task["id"], result)
      beat
      task.merge("result_status" => result["status"])
    end

    # The result document of one task.
    def run(task)
      started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      name = task["benchmark"].to_s
      return error(name, "benchmark must be a name such as fib") unless name.match?(BENCHMARK_NAME)

      commit = @checkout.call(task["ruby_bench_ref"])
      script = [File.join(@bench_dir, "benchmarks", "#{name}.rb"),
                File.join(@bench_dir, "benchmarks", name, "benchmark.rb")].find { |f| File.file?(f) }
      return error(name, "no benchmark #{name} in ruby-bench #{commit}", commit: commit) unless script

      Dir.mktmpdir("task-runner") do |dir|
        out_json = File.join(dir, "result.json")
        env = (task["env"] || {}).merge("RESULT_JSON_PATH" => out_json)
        output, status = Open3.capture2e(env, @ruby, "-I", File.join(@bench_dir, "harness"), script,
                                         chdir: File.dirname(script))
        doc = {
          "status" => status.success? && File.exist?(out_json) ? "ok" : "error",
          "benchmark" => name,
          "ruby_bench_commit" => commit,
          "ruby" => ruby_description,
          "runner" => @runner_id,
          "exit_status" => status.exitstatus,
          "output" => output.lines.last(OUTPUT_TAIL).join,
          "seconds" => (Process.clock_gettime(Process::CLOCK_MONOTONIC) - started).round(3),
        }
        doc["results"] = JSON.parse(File.read(out_json)) if File.exist?(out_json)
        doc
      end
    rescue CheckoutError => e
      error(name, e.message)
    end

    class CheckoutError < StandardError; end

    private

    def error(name, message, extra = {})
      { "status" => "error", "benchmark" => name, "error" => message, "runner" => @runner_id }.merge(extra)
    end

    def beat
      FileUtils.touch(@heartbeat) if @heartbeat
    end

    def ruby_description
      out, st = Open3.capture2(@ruby, "-e", "print RUBY_DESCRIPTION")
      st.success? ? out : RUBY_DESCRIPTION
    end

    # The image's helper (docker/task-runner/bin/ruby-bench-checkout): fetches only for another ref.
    def checkout_with_helper(ref)
      out, err, st = Open3.capture3({ "RUBY_BENCH_DIR" => @bench_dir }, "ruby-bench-checkout", ref.to_s)
      raise CheckoutError, "ruby-bench-checkout #{ref}: #{err.strip}" unless st.success?

      out.strip
    rescue Errno::ENOENT
      out, st = Open3.capture2("git", "-C", @bench_dir, "rev-parse", "HEAD")
      raise CheckoutError, "#{@bench_dir} is not a git checkout" unless st.success?
      raise CheckoutError, "ref #{ref} asked for, but ruby-bench-checkout is not installed" unless ref.to_s.empty?

      out.strip
    end
  end
end
