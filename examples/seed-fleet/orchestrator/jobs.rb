# frozen_string_literal: true

# The seed example's jobs worker: the same image as the web process, another command. Every JOBS_INTERVAL_SECONDS
# (default 5) it puts claimed tasks whose runner stopped heartbeating for HEARTBEAT_TIMEOUT_SECONDS (default 120)
# back to pending, so another runner takes them. The database as for the web process (PGHOST, PGUSER, ...,
# DB_WAIT_SECONDS). Once the database is prepared, and after every sweep that reached it, it touches
# JOBS_ALIVE_FILE (default /tmp/jobs-alive): its healthcheck (compose.yaml) reads how recent that is.
$LOAD_PATH.unshift(File.join(__dir__, "lib"))
require "fileutils"
require "seed_orchestrator/startup"
require "seed_orchestrator/store"

interval = Float(ENV.fetch("JOBS_INTERVAL_SECONDS", "5"))
timeout = Float(ENV.fetch("HEARTBEAT_TIMEOUT_SECONDS", "120"))
alive = ENV.fetch("JOBS_ALIVE_FILE", "/tmp/jobs-alive")
store = SeedOrchestrator::Store.new
stop = false
%w[INT TERM].each { |sig| trap(sig) { stop = true } }

begin
  SeedOrchestrator.when_database_up(Float(ENV.fetch("DB_WAIT_SECONDS", "600"))) { store.migrate! }
rescue PG::Error => e
  abort "jobs: cannot prepare the database at #{ENV.fetch("PGHOST", "(PGHOST unset)")}: #{e.message.strip}"
end
FileUtils.touch(alive)
warn "jobs: requeueing tasks without a heartbeat for #{timeout}s, every #{interval}s"
until stop
  begin
    ids = store.requeue_stale(timeout)
    FileUtils.touch(alive)
    warn "jobs: requeued tasks #{ids.join(", ")} (no heartbeat for #{timeout}s)" unless ids.empty?
  rescue PG::Error => e
    warn "jobs: sweep failed, trying again: #{e.message.strip}"
  end
  deadline = Time.now + interval
  sleep 0.2 while !stop && Time.now < deadline
end
warn "jobs: stopped"
