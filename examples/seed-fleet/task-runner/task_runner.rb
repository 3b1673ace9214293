# frozen_string_literal: true

# The seed example's task runner, configured only by its command line (as the seed system's is):
#   task_runner.rb --orchestrator-url URL --api-key KEY --run-id ID --provider P --instance-type T [--mock]
# It claims tasks of the run until the orchestrator answers `done`, heartbeats while a task runs, runs the task's
# benchmark from the baked ruby-bench cache (RUBY_BENCH_DIR, default /opt/ruby-bench; --mock: a fast fake result)
# and completes (or fails) the task. Exit codes: 0 the run is done, 1 the orchestrator refused, 2 usage.
$LOAD_PATH.unshift(File.join(__dir__, "lib"))
require "seed_runner/runner"

begin
  opts = SeedRunner.parse(ARGV)
rescue SeedRunner::Usage => e
  warn "task_runner: #{e.message}"
  exit 2
end
$stdout.sync = true
exit SeedRunner::Runner.new(opts).run
