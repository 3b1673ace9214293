# frozen_string_literal: true

require "json"
require "optparse"
require "socket"
require "tmpdir"
require_relative "client"

module SeedRunner
  Usage = Class.new(StandardError)

  REQUIRED = %i[orchestrator_url api_key run_id provider instance_type].freeze

  # The command line, as the seed system's task runner takes it. Raises Usage naming what is missing or wrong.
  def self.parse(argv)
    opts = { mock: false }
    parser = OptionParser.new do |o|
      o.banner = "Usage: task_runner.rb --orchestrator-url URL --api-key KEY --run-id ID " \
                 "--provider P --instance-type T [--mock]"
      o.on("--orchestrator-url URL", "the orchestrator's base URL") { |v| opts[:orchestrator_url] = v }
      o.on("--api-key KEY", "the orchestrator's API key (bearer token)") { |v| opts[:api_key] = v }
      o.on("--run-id ID", "the run whose tasks to claim") { |v| opts[:run_id] = v }
      o.on("--provider P", "this runner's provider (aws, local, ...)") { |v| opts[:provider] = v }
      o.on("--instance-type T", "this runner's instance type") { |v| opts[:instance_type] = v }
      o.on("--mock", "report a fast fake result instead of running the benchmark") { opts[:mock] = true }
    end
    begin
      parser.parse!(argv.dup)
    rescue OptionParser::ParseError => e
      raise Usage, "#{e.message}\n#{parser.banner}"
    end
    missing = REQUIRED.reject { |k| opts[k] && !opts[k].empty? }
    unless missing.empty?
      raise Usage, "missing #{missing.map { |k| "--#{k.to_s.tr("_", "-")}" }.join(", ")}\n#{parser.banner}"
    end

    opts
  end

  # Runs one benchmark of the baked ruby-bench cache, or (mock) makes up a fast result. Answers the result object.
  class Bench
    def initialize(dir:, mock:)
      @dir = dir
      @mock = mock
    end

    def run(name)
      return { "mock" => true, "benchmark" => name, "bench" => [0.001], "ruby" => RUBY_DESCRIPTION } if @mock

      script = [File.join(@dir, "benchmarks", "#{name}.rb"), File.join(@dir, "benchmarks", name, "benchmark.rb")]
               .find { |f| File.file?(f) }
      raise "no benchmark #{name} in #{@dir} (benchmarks/#{name}.rb or benchmarks/#{name}/benchmark.rb)" unless script

      Dir.mktmpdir("seed-runner") do |tmp|
        out = File.join(tmp, "result.json")
        log = File.join(tmp, "output.txt")
        t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
        pid = Process.spawn({ "RESULT_JSON_PATH" => out }, RbConfig.ruby, "-I", File.join(@dir, "harness"), script,
                            chdir: @dir, out: log, err: %i[child out])
        _, status = Process.wait2(pid)
        output = File.read(log)
        raise "#{name} exited with #{status.exitstatus}: #{output.lines.last(3).join.strip}" unless status.success?

        result = File.file?(out) ? JSON.parse(File.read(out)) : {}
        result.merge("benchmark" => name, "seconds" => (Process.clock_gettime(Process::CLOCK_MONOTONIC) - t0).round(3),
                     "output" => output.lines.last(5).join)
      end
    end
  end

  # The claim loop: claim a task of the run, heartbeat while its benchmark runs, complete (or fail) it, and go on
  # until the orchestrator answers `done`. Answers the exit code.
  class Runner
    def initialize(opts, client: nil, bench: nil, out: $stdout, heartbeat_seconds: 10, sleeper: ->(s) { sleep(s) })
      @opts = opts
      @client = client || Client.new(base_url: opts[:orchestrator_url], api_key: opts[:api_key])
      @bench = bench || Bench.new(dir: ENV.fetch("RUBY_BENCH_DIR", "/opt/ruby-bench"), mock: opts[:mock])
      @out = out
      @heartbeat_seconds = heartbeat_seconds
      @sleeper = sleeper
      @runner_id = "#{Socket.gethostname}-#{Process.pid}"
    end

    attr_reader :runner_id

    def run
      say "runner #{@runner_id}: run #{@opts[:run_id]}, #{@opts[:provider]}/#{@opts[:instance_type]}" \
          "#{" (mock)" if @opts[:mock]}"
      unreachable = 0
      loop do
        answer = begin
          @client.claim(@opts[:run_id], runner_id: @runner_id, provider: @opts[:provider],
                                        instance_type: @opts[:instance_type])
        rescue SystemCallError, IOError, Net::OpenTimeout, Net::ReadTimeout => e
          unreachable += 1
          say "orchestrator unreachable (#{e.class}: #{e.message}); trying again"
          @sleeper.call([unreachable, 5].min)
          next
        end
        unreachable = 0
        case answer["status"]
        when "assigned" then work(answer["task"], answer["lease"])
        when "wait" then @sleeper.call(Float(answer.fetch("retry_after_seconds", 2)))
        when "done"
          say "run #{@opts[:run_id]} is done"
          return 0
        else
          raise Client::Error, "unknown claim answer #{answer.inspect}"
        end
      end
    rescue Client::Error => e
      say "giving up: #{e.message}"
      1
    end

    private

    def work(task, lease)
      id = task.fetch("id")
      ids = { runner_id: @runner_id, lease: lease }
      say "task #{id}: #{task["benchmark"]}"
      beating = heartbeats(id, ids)
      begin
        result = @bench.run(task.fetch("benchmark"))
      rescue StandardError => e
        stop(beating)
        say "task #{id} failed: #{e.message}"
        @client.fail(id, ids.merge(error_message: e.message))
        return
      end
      stop(beating)
      # What this runner was started with, so the orchestrator's record shows which runner ran it, and how.
      started = { runner_id: @runner_id, run_id: @opts[:run_id], provider: @opts[:provider],
                  instance_type: @opts[:instance_type], mock: @opts[:mock] }
      @client.complete(id, ids.merge(result: result.merge("runner" => started)))
      say "task #{id} complete"
    end

    # A thread that heartbeats task `id` every @heartbeat_seconds until stopped (Ruby 3.1: no Queue#pop timeout).
    def heartbeats(id, ids)
      @client.heartbeat(id, ids.merge(progress: { status: "running" }))
      state = { stop: false, lock: Mutex.new, cv: ConditionVariable.new }
      state[:thread] = Thread.new do
        state[:lock].synchronize do
          # The flag is read and set under the lock, so a stop before the first wait is not missed.
          until state[:stop]
            state[:cv].wait(state[:lock], @heartbeat_seconds)
            break if state[:stop]

            beat(id, ids)
          end
        end
      end
      state
    end

    def beat(id, ids)
      @client.heartbeat(id, ids.merge(progress: { status: "running" }))
    rescue StandardError => e
      say "heartbeat of task #{id} failed: #{e.message}"
    end

    def stop(state)
      state[:lock].synchronize do
        state[:stop] = true
        state[:cv].signal
      end
      state[:thread].join
    end

    def say(line)
      @out.puts(line)
      @out.flush
    end
  end
end
