# frozen_string_literal: true

require "json"
require "net/http"
require "uri"

module TaskRunner
  # The orchestrator's HTTP API, as the runner uses it.
  class Client
    class Error < StandardError; end

    def initialize(base_url, timeout: 10)
      @base = URI(base_url)
      @timeout = timeout
    end

    # The next task for this runner, or nil when none is queued.
    def claim(runner_id)
      res = post("/tasks/claim", { "runner" => runner_id })
      res.code == "204" ? nil : JSON.parse(res.body)
    end

    def report(task_id, result)
      JSON.parse(post("/tasks/#{task_id}/result", result).body)
    end

    private

    def post(path, doc)
      res = Net::HTTP.start(@base.host, @base.port, open_timeout: @timeout, read_timeout: @timeout) do |h|
        h.post(path, JSON.generate(doc), "Content-Type" => "application/json")
      end
      raise Error, "POST #{path}: #{res.code} #{res.body}" unless res.is_a?(Net::HTTPSuccess)

      res
    end
  end
end
