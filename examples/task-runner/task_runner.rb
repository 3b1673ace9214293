# frozen_string_literal: true

# The task runner: claims ruby-bench tasks from the orchestrator, runs each benchmark from the cached
# ruby-bench checkout, and reports the result (see lib/task_runner/runner.rb).
#   ORCHESTRATOR_URL        e.g. http://10.0.0.5:8080 (required)
#   RUNNER_ID               how the orchestrator knows this runner (default: the host name)
#   RUBY_BENCH_DIR          the checkout (default /opt/ruby-bench, baked into the image)
#   POLL_INTERVAL           seconds between claims when the queue is empty (default 2)
#   MAX_TASKS               stop after this many tasks (default: never)
$LOAD_PATH.unshift(File.join(__dir__, "lib"))
require "socket"
require "task_runner/client"
require "task_runner/runner"

url = ENV.fetch("ORCHESTRATOR_URL") { abort "task-runner: set ORCHESTRATOR_URL (e.g. http://orchestrator:8080)" }
runner = TaskRunner::Runner.new(
  client: TaskRunner::Client.new(url),
  runner_id: ENV.fetch("RUNNER_ID", Socket.gethostname),
  bench_dir: ENV.fetch("RUBY_BENCH_DIR", "/opt/ruby-bench"),
  heartbeat: ENV.fetch("TASK_RUNNER_HEARTBEAT", "/tmp/task-runner.heartbeat"),
)
max = ENV["MAX_TASKS"] && Integer(ENV["MAX_TASKS"])
interval = Float(ENV.fetch("POLL_INTERVAL", "2"))
done = 0
stop = false
%w[INT TERM].each { |sig| trap(sig) { stop = true } }
until stop || (max && done >= max)
  begin
    task = runner.step
  # The orchestrator may still be booting (task runners start in parallel with it): retry, never crash.
  rescue TaskRunner::Client::Error, SystemCallError, Net::OpenTimeout, Net::ReadTimeout, Timeout::Error => e
    warn "task-runner: #{e.class}: #{e.message}; retrying in #{interval}s"
    task = nil
  end
  if task
    done += 1
    warn "task-runner: #{task['benchmark']} #{task['id']}: #{task['result_status']}"
  else
    sleep interval
  end
end
