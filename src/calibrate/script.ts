/**
 * The scripts `imgtool calibrate` runs on the instance it launched, the same on both targets (local: exec in the
 * local instance; aws: SSM Run Command, `AWS-RunShellScript`, as the health and smoke checks): POSIX sh, every
 * value a single-quoted word. Each benchmark runs inside the role's container, from the ruby-bench cache baked
 * into it (RUBY_BENCH_DIR, default /opt/ruby-bench), with its harness; every worker of a layout starts at once,
 * and each prints its harness result (RESULT_JSON_PATH) on one line. Pure.
 */
import { shellWord } from "../render/escape.js";
import { RESULT_MARK, type Layout } from "./calibrate.js";

/** Stop the user-data's workers so that the benchmarks run on quiet CPUs (the instance is ended afterwards). */
export function quietScript(workerNames: string[]): string[] {
  return [
    `for name in ${workerNames.map(shellWord).join(" ")}; do docker update --restart no "$name" >/dev/null 2>&1 || true; done`,
    `docker stop --time 2 ${workerNames.map(shellWord).join(" ")} >/dev/null 2>&1 || true`,
    `echo "${RESULT_MARK} quiet"`,
  ];
}

/** What runs inside each container: find the benchmark in the baked cache, run it with the harness, print its result. */
const IN_CONTAINER = [
  "set -eu",
  "dir=${RUBY_BENCH_DIR:-/opt/ruby-bench}",
  'if [ -f "$dir/benchmarks/$1.rb" ]; then s="$dir/benchmarks/$1.rb"',
  'elif [ -f "$dir/benchmarks/$1/benchmark.rb" ]; then s="$dir/benchmarks/$1/benchmark.rb"',
  'else echo "no benchmark $1 in $dir (benchmarks/$1.rb or benchmarks/$1/benchmark.rb)" >&2; exit 3; fi',
  "r=$(mktemp)",
  'cd "$(dirname "$s")"',
  'RESULT_JSON_PATH=$r ruby -I "$dir/harness" "$s" >&2',
  'printf "\\n%s\\n" "$(cat "$r")"',
].join("\n");

export interface LayoutRun {
  image: string;
  benchmark: string;
  layout: Layout;
  /** The CPU of each pinned worker (the first `layout.workers` are used when pinned). */
  cpus: string[];
  repetitions: number;
  warmupIterations: number;
  iterations: number;
}

/**
 * One benchmark in one layout, `repetitions` times: per repetition every worker starts at once (pinned: each on
 * its own CPU with --cpuset-cpus; unpinned: wherever the scheduler puts it), and each prints
 * `imgtool-calibrate <repetition> <worker> <result json>`. A failing run fails the script with its last lines.
 */
export function layoutScript(r: LayoutRun): string[] {
  const cpus = r.layout.pinned ? r.cpus.slice(0, r.layout.workers) : Array(r.layout.workers).fill("any");
  if (r.layout.pinned && cpus.length < r.layout.workers) {
    throw new Error(
      `${r.layout.name} needs ${r.layout.workers} CPUs; the instance's workers had ${r.cpus.length}`,
    );
  }
  return [
    "set -u",
    `image=${shellWord(r.image)}`,
    `bench=${shellWord(r.benchmark)}`,
    `reps=${r.repetitions}`,
    `inner=${shellWord(IN_CONTAINER)}`,
    "out=$(mktemp -d)",
    "trap 'rm -rf \"$out\"' EXIT",
    "rep=1",
    'while [ "$rep" -le "$reps" ]; do',
    "  i=0",
    `  for cpu in ${cpus.map(shellWord).join(" ")}; do`,
    "    i=$((i + 1))",
    '    if [ "$cpu" = any ]; then set -- ; else set -- --cpuset-cpus "$cpu"; fi',
    `    ( docker run --rm --network none "$@" --env WARMUP_ITRS=${r.warmupIterations} --env MIN_BENCH_ITRS=${r.iterations} --env MIN_BENCH_TIME=0 \\`,
    '        --entrypoint sh "$image" -c "$inner" sh "$bench" >"$out/$i" 2>"$out/$i.err"; echo $? >"$out/$i.rc" ) &',
    "  done",
    "  wait",
    "  j=1",
    '  while [ "$j" -le "$i" ]; do',
    '    if [ "$(cat "$out/$j.rc")" != 0 ]; then',
    `      echo "${RESULT_MARK}-failed $rep $j exit $(cat "$out/$j.rc")"`,
    '      tail -n 20 "$out/$j.err"',
    "      exit 1",
    "    fi",
    `    echo "${RESULT_MARK} $rep $j $(tail -n 1 "$out/$j")"`,
    "    j=$((j + 1))",
    "  done",
    "  rep=$((rep + 1))",
    "done",
  ];
}
