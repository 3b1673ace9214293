# frozen_string_literal: true

# Waiting at start for a database that is still starting: retried while it is not up, never on other errors.
require "minitest/autorun"
require_relative "../lib/seed_orchestrator/startup"

class StartupTest < Minitest::Test
  REFUSED = 'connection to server at "127.0.0.1", port 5432 failed: Connection refused'

  # A block that raises each of `errors` in turn, then answers :migrated; `calls` counts the attempts.
  def flaky(*errors)
    calls = 0
    block = lambda do
      calls += 1
      raise errors[calls - 1] if calls <= errors.size

      :migrated
    end
    [block, -> { calls }]
  end

  def test_retries_while_the_database_is_not_up
    starting = PG::ConnectionBad.new("FATAL:  the database system is starting up")
    block, calls = flaky(PG::ConnectionBad.new(REFUSED), starting)
    assert_equal :migrated, SeedOrchestrator.when_database_up(10, poll: 0.01, &block)
    assert_equal 3, calls.call
  end

  def test_a_wrong_password_fails_at_once
    block, calls = flaky(PG::ConnectionBad.new('FATAL:  password authentication failed for user "orchestrator"'))
    assert_raises(PG::ConnectionBad) { SeedOrchestrator.when_database_up(10, poll: 0.01, &block) }
    assert_equal 1, calls.call
  end

  def test_gives_up_after_the_deadline
    block, calls = flaky(*Array.new(1000) { PG::ConnectionBad.new(REFUSED) })
    error = assert_raises(PG::ConnectionBad) { SeedOrchestrator.when_database_up(0.05, poll: 0.01, &block) }
    assert_match(/Connection refused/, error.message)
    assert_operator calls.call, :<, 1000
  end
end
