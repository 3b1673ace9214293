# frozen_string_literal: true

# The orchestrator: hands ruby-bench tasks to task runners over HTTP (see lib/orchestrator/http_api.rb).
#   PORT (default 8080)   the port to listen on, on every address
$LOAD_PATH.unshift(File.join(__dir__, "lib"))
require "orchestrator/http_api"
require "orchestrator/task_queue"

port = Integer(ENV.fetch("PORT", "8080"))
server = Orchestrator::HttpApi.new(Orchestrator::TaskQueue.new, port: port, host: "0.0.0.0")
%w[INT TERM].each { |sig| trap(sig) { server.stop } }
warn "orchestrator: listening on port #{server.port}"
server.serve
