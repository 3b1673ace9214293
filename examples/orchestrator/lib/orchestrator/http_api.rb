# frozen_string_literal: true

require "json"
require "socket"
require "orchestrator/task_queue"

module Orchestrator
  # A small HTTP/1.1 JSON API over the task queue, on the standard library only (one thread per connection,
  # one request per connection):
  #   GET  /health              {"status":"ok","tasks":{...counts}}
  #   POST /tasks               {"benchmark":"fib","ruby_bench_ref":"main"}  -> 201 the task
  #   POST /tasks/claim         {"runner":"r1"}                              -> 200 a task, or 204 none queued
  #   POST /tasks/:id/result    {"status":"ok",...}                          -> 200 the task
  #   GET  /tasks/:id                                                        -> 200 the task
  class HttpApi
    MAX_BODY = 1 << 20
    REASONS = { 200 => "OK", 201 => "Created", 204 => "No Content", 400 => "Bad Request", 404 => "Not Found",
                405 => "Method Not Allowed", 409 => "Conflict", 413 => "Payload Too Large",
                500 => "Internal Server Error" }.freeze

    attr_reader :port

    def initialize(queue, port: 0, host: "127.0.0.1")
      @queue = queue
      @server = TCPServer.new(host, port)
      @port = @server.addr[1]
      @stopping = false
    end

    def serve
      until @stopping
        begin
          client = @server.accept
        rescue IOError, Errno::EBADF
          break
        end
        Thread.new(client) { |c| handle(c) }
      end
    end

    def stop
      @stopping = true
      @server.close
    rescue IOError
      nil
    end

    # [status, body] for one request; public so tests can call it without a socket.
    def route(method, path, body)
      case [method, path]
      in ["GET", "/health"] then [200, { "status" => "ok", "tasks" => @queue.counts }]
      in ["POST", "/tasks"] then [201, @queue.add(parse(body))]
      in ["POST", "/tasks/claim"]
        task = @queue.claim(parse(body)["runner"] || "unknown")
        task ? [200, task] : [204, nil]
      in [_, "/health" | "/tasks" | "/tasks/claim"] then [405, { "error" => "method not allowed" }]
      in ["POST", %r{\A/tasks/([^/]+)/result\z}] then [200, @queue.complete(Regexp.last_match(1), parse(body))]
      in ["GET", %r{\A/tasks/([^/]+)\z}] then [200, @queue.get(Regexp.last_match(1))]
      in [_, %r{\A/tasks/}] then [405, { "error" => "method not allowed" }]
      else [404, { "error" => "no route #{method} #{path}" }]
      end
    rescue TaskQueue::Invalid, JSON::ParserError => e
      [e.is_a?(TaskQueue::Invalid) && e.message.include?("not running") ? 409 : 400, { "error" => e.message }]
    rescue TaskQueue::NotFound => e
      [404, { "error" => e.message }]
    end

    private

    def parse(body)
      doc = body.nil? || body.empty? ? {} : JSON.parse(body)
      raise TaskQueue::Invalid, "the body must be a JSON object" unless doc.is_a?(Hash)

      doc
    end

    def handle(client)
      request_line = client.gets("\r\n")
      return unless request_line

      method, target, = request_line.split(" ", 3)
      headers = {}
      while (line = client.gets("\r\n")) && line != "\r\n"
        name, value = line.split(":", 2)
        headers[name.strip.downcase] = value.to_s.strip
      end
      length = Integer(headers.fetch("content-length", "0"), exception: false) || -1
      status, doc =
        if length.negative? || length > MAX_BODY
          [length.negative? ? 400 : 413, { "error" => "bad Content-Length" }]
        else
          route(method, target.to_s.split("?", 2).first, length.positive? ? client.read(length) : "")
        end
      respond(client, status, doc)
    rescue StandardError => e
      warn "orchestrator: #{e.class}: #{e.message}"
      respond(client, 500, { "error" => "internal error" }) rescue nil
    ensure
      client.close rescue nil
    end

    def respond(client, status, doc)
      body = doc.nil? ? "" : JSON.generate(doc)
      client.write("HTTP/1.1 #{status} #{REASONS.fetch(status, 'Status')}\r\n" \
                   "Content-Type: application/json\r\nContent-Length: #{body.bytesize}\r\n" \
                   "Connection: close\r\n\r\n#{body}")
    end
  end
end
