# frozen_string_literal: true

require "json"
require "net/http"
require "uri"

module SeedRunner
  # The orchestrator's API as the task runner uses it: JSON in and out, the bearer token on every call.
  class Client
    # An answer the runner cannot act on (4xx other than a claim conflict, or 5xx).
    class Error < StandardError
      attr_reader :status

      def initialize(message, status = nil)
        super(message)
        @status = status
      end
    end

    def initialize(base_url:, api_key:, open_timeout: 5, read_timeout: 30)
      @base = URI(base_url.end_with?("/") ? base_url : "#{base_url}/")
      raise ArgumentError, "--orchestrator-url #{base_url.inspect} is not an http(s) URL" unless %w[http https].include?(@base.scheme)

      @api_key = api_key
      @open_timeout = open_timeout
      @read_timeout = read_timeout
    end

    def claim(run_id, body) = post("runs/#{URI.encode_www_form_component(run_id)}/tasks/claim", body)
    def heartbeat(id, body) = post("tasks/#{Integer(id)}/heartbeat", body)
    def complete(id, body) = post("tasks/#{Integer(id)}/complete", body)
    def fail(id, body) = post("tasks/#{Integer(id)}/fail", body)

    private

    def post(path, body)
      uri = @base + path
      req = Net::HTTP::Post.new(uri, "Content-Type" => "application/json", "Authorization" => "Bearer #{@api_key}")
      req.body = JSON.generate(body)
      res = Net::HTTP.start(uri.host, uri.port, use_ssl: uri.scheme == "https",
                                                open_timeout: @open_timeout, read_timeout: @read_timeout) do |http|
        http.request(req)
      end
      doc = res.body.to_s.empty? ? {} : JSON.parse(res.body)
      return doc if res.is_a?(Net::HTTPSuccess)

      raise Error.new("POST /#{path}: HTTP #{res.code}: #{doc["error"] || res.body}", res.code.to_i)
    rescue JSON::ParserError
      raise Error.new("POST /#{path}: HTTP #{res&.code}: not JSON: #{res&.body.to_s[0, 200]}", res&.code.to_i)
    end
  end
end
