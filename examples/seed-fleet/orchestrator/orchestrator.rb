# frozen_string_literal: true

# The seed example's orchestrator web process: the API of lib/seed_orchestrator/api.rb on WEBrick, runs and tasks
# in PostgreSQL. Configured by its environment, as a Compose service:
#   PORT (default 3000)          the port to listen on, on every address
#   API_KEY                      the bearer token every API call must carry (a declared secret)
#   SECRET_KEY_BASE              the app secret that signs task leases (a declared secret)
#   PGHOST PGUSER PGPASSWORD PGDATABASE   the database, as libpq reads them (the password a declared secret)
#   CLAIM_RETRY_SECONDS (default 2)       the retry delay a `wait` answer gives
#   DB_WAIT_SECONDS (default 600)         how long to wait at start for a database that is still starting
$LOAD_PATH.unshift(File.join(__dir__, "lib"))
require "webrick"
require "seed_orchestrator/api"
require "seed_orchestrator/startup"
require "seed_orchestrator/store"

def fetch_env(name)
  value = ENV.fetch(name, "")
  abort "orchestrator: #{name} is not set (give it in the service's environment)" if value.empty?
  value
end

store = SeedOrchestrator::Store.new
begin
  SeedOrchestrator.when_database_up(Float(ENV.fetch("DB_WAIT_SECONDS", "600"))) { store.migrate! }
rescue PG::Error => e
  abort "orchestrator: cannot prepare the database at #{ENV.fetch("PGHOST", "(PGHOST unset)")}: #{e.message.strip}"
end
api = begin
  SeedOrchestrator::Api.new(
    store: store, api_key: fetch_env("API_KEY"), app_secret: fetch_env("SECRET_KEY_BASE"),
    retry_after: Integer(ENV.fetch("CLAIM_RETRY_SECONDS", "2"), 10)
  )
rescue ArgumentError => e
  abort "orchestrator: #{e.message}"
end

server = WEBrick::HTTPServer.new(
  Port: Integer(ENV.fetch("PORT", "3000"), 10), BindAddress: "0.0.0.0",
  Logger: WEBrick::Log.new($stderr, WEBrick::Log::WARN), AccessLog: []
)
server.mount_proc("/") do |req, res|
  headers = { "authorization" => req["Authorization"] }
  status, doc = api.call(req.request_method, req.path, headers, req.body)
  res.status = status
  res["Content-Type"] = "application/json"
  res.body = JSON.generate(doc)
end
%w[INT TERM].each { |sig| trap(sig) { server.shutdown } }
warn "orchestrator: listening on port #{server.config[:Port]}"
server.start
