# frozen_string_literal: true

require "pg"

module SeedOrchestrator
  # What a server that is not up yet answers (nothing listens, or it is starting); any other connection error
  # (a wrong password, an unknown database) is final.
  NOT_UP = /Connection refused|No such file or directory|the database system is (starting up|not yet accepting)/

  # Yields (e.g. to Store#migrate!), again every `poll` seconds while the database is not up yet, for at most
  # `seconds`; then the last error is raised. Why: the web and jobs processes start beside a database that is
  # still starting (compose.yaml: depends_on condition service_started), so Ruby's own start overlaps the
  # database's.
  def self.when_database_up(seconds, poll: 0.1)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + seconds
    begin
      yield
    rescue PG::ConnectionBad => e
      raise unless NOT_UP.match?(e.message)
      raise if Process.clock_gettime(Process::CLOCK_MONOTONIC) >= deadline

      sleep poll
      retry
    end
  end
end
