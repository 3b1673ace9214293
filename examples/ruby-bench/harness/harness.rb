# Stand-in for ruby-bench's harness: times the benchmark's iterations and writes them as JSON.
require "json"

def run_benchmark(_num_itrs_hint, **)
  warmup = Integer(ENV.fetch("WARMUP_ITRS", "1"))
  itrs = Integer(ENV.fetch("MIN_BENCH_ITRS", "3"))
  times = Array.new(warmup + itrs) do
    t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    yield
    Process.clock_gettime(Process::CLOCK_MONOTONIC) - t0
  end
  result = { "warmup" => times.first(warmup), "bench" => times.drop(warmup), "ruby" => RUBY_DESCRIPTION }
  File.write(ENV["RESULT_JSON_PATH"], JSON.generate(result)) if ENV["RESULT_JSON_PATH"]
  puts "#{File.basename($0, ".rb")}: #{itrs} iterations, #{(times.drop(warmup).sum * 1000 / itrs).round(3)} ms each"
end
