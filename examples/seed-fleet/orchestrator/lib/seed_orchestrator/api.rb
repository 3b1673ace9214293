# frozen_string_literal: true

require "json"
require "openssl"

module SeedOrchestrator
  # The HTTP API, independent of the server: `call(method, path, headers, body)` answers [status, hash or nil].
  # Every route but GET /up needs `Authorization: Bearer <API_KEY>`.
  #
  #   POST /runs                      {"run_id"?, "tasks": N, "benchmark"?, "provider"?, "instance_type"?} -> 201
  #   GET  /runs/:id                  the run's tasks and counts by status
  #   POST /runs/:id/tasks/claim      {"runner_id", "provider", "instance_type"} -> assigned (with a lease), wait, done
  #   POST /tasks/:id/heartbeat       {"runner_id", "lease", "progress"?}
  #   POST /tasks/:id/complete        {"runner_id", "lease", "result"}
  #   POST /tasks/:id/fail            {"runner_id", "lease", "error_message"}
  #   GET  /up                        200 while the database answers
  #
  # A claim's lease is an HMAC of the task and runner under the app secret: only the runner that claimed a task
  # can report on it, even if it forgot its id.
  class Api
    MAX_TASKS = 1000
    NAME_RE = /\A[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}\z/

    def initialize(store:, api_key:, app_secret:, retry_after: 2, clock: -> { Time.now })
      raise ArgumentError, "API_KEY must have at least 16 characters" if api_key.to_s.length < 16
      raise ArgumentError, "SECRET_KEY_BASE must have at least 32 characters" if app_secret.to_s.length < 32

      @store = store
      @api_key = api_key
      @app_secret = app_secret
      @retry_after = retry_after
      @clock = clock
    end

    def call(method, path, headers, body)
      return up if method == "GET" && path == "/up"
      return [401, { "error" => "missing or wrong bearer token" }] unless authorized?(headers["authorization"])

      route(method, path, parse(body))
    rescue BadRequest => e
      [400, { "error" => e.message }]
    rescue Store::NotFound => e
      [404, { "error" => e.message }]
    rescue Store::Conflict => e
      [409, { "error" => e.message }]
    end

    def lease(task_id, runner_id)
      OpenSSL::HMAC.hexdigest("SHA256", @app_secret, "#{task_id}:#{runner_id}")
    end

    BadRequest = Class.new(StandardError)

    private

    def route(method, path, params)
      if method == "POST" && path == "/runs"
        create_run(params)
      elsif method == "GET" && (m = %r{\A/runs/([^/]+)\z}.match(path))
        [200, @store.run_summary(name(m[1]))]
      elsif method == "POST" && (m = %r{\A/runs/([^/]+)/tasks/claim\z}.match(path))
        claim(name(m[1]), params)
      elsif method == "POST" && (m = %r{\A/tasks/(\d{1,18})/(heartbeat|complete|fail)\z}.match(path))
        report(Integer(m[1], 10), m[2], params)
      else
        [404, { "error" => "no route #{method} #{path}" }]
      end
    end

    def up
      @store.ping ? [200, { "status" => "up" }] : [503, { "status" => "down" }]
    rescue StandardError => e # the database is down or refuses: not up
      [503, { "status" => "down", "error" => e.message.lines.first&.strip }]
    end

    def create_run(params)
      count = params["tasks"]
      raise BadRequest, "tasks must be a whole number from 1 to #{MAX_TASKS}" unless count.is_a?(Integer) && count.between?(1, MAX_TASKS)

      run = @store.create_run(
        name: params.key?("run_id") ? name(params["run_id"].to_s) : "run-#{@clock.call.strftime("%Y%m%d%H%M%S%L")}",
        count: count,
        benchmark: word(params.fetch("benchmark", "fib"), "benchmark"),
        provider: params["provider"] && word(params["provider"], "provider"),
        instance_type: params["instance_type"] && word(params["instance_type"], "instance_type")
      )
      [201, { "run_id" => run[:run]["name"], "tasks_created" => run[:tasks].size, "tasks" => run[:tasks] }]
    end

    def claim(run, params)
      runner = required(params, "runner_id")
      outcome, task = @store.claim(
        name: run, runner_id: runner,
        provider: required(params, "provider"), instance_type: required(params, "instance_type")
      )
      case outcome
      when :assigned then [200, { "status" => "assigned", "task" => task, "lease" => lease(task["id"], runner) }]
      when :wait then [200, { "status" => "wait", "retry_after_seconds" => @retry_after }]
      else [200, { "status" => "done" }]
      end
    end

    def report(id, kind, params)
      runner = required(params, "runner_id")
      given = required(params, "lease")
      raise Store::Conflict, "the lease of task #{id} is not this runner's" unless same?(given, lease(id, runner))

      case kind
      when "heartbeat" then @store.heartbeat(id, runner_id: runner, progress: params["progress"])
      when "complete"
        raise BadRequest, "result must be an object" unless params["result"].is_a?(Hash)

        @store.complete(id, runner_id: runner, result: params["result"])
      else @store.fail(id, runner_id: runner, error: required(params, "error_message"))
      end
      [200, { "status" => "ok" }]
    end

    def authorized?(header)
      token = header.to_s[/\ABearer (.+)\z/, 1]
      !token.nil? && same?(token, @api_key)
    end

    # Compares in constant time (digests of equal length), so the key does not leak through timing.
    def same?(given, expected)
      OpenSSL.fixed_length_secure_compare(
        OpenSSL::Digest::SHA256.digest(given.to_s), OpenSSL::Digest::SHA256.digest(expected.to_s)
      )
    end

    def parse(body)
      return {} if body.nil? || body.strip.empty?

      parsed = JSON.parse(body)
      raise BadRequest, "the body must be a JSON object" unless parsed.is_a?(Hash)

      parsed
    rescue JSON::ParserError => e
      raise BadRequest, "the body is not JSON: #{e.message.lines.first&.strip}"
    end

    def required(params, key)
      value = params[key]
      raise BadRequest, "#{key} is required" if value.nil? || value.to_s.strip.empty?

      value.to_s
    end

    def name(value)
      raise BadRequest, "run id #{value.inspect} must be letters, digits, _ . : - (at most 128)" unless NAME_RE.match?(value)

      value
    end

    def word(value, key)
      raise BadRequest, "#{key} #{value.inspect} must be letters, digits, _ . : -" unless NAME_RE.match?(value.to_s)

      value.to_s
    end
  end
end
