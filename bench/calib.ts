/**
 * Issue 12's benchmark: on this machine, the coefficient of variation of the example ruby-bench benchmark (fib,
 * from a ruby-bench cache baked into the container, as `imgtool calibrate` runs it) for 1 worker alone, 2 pinned workers and 2 unpinned workers, each also with a noisy
 * neighbour (one container burning a CPU, unpinned), side by side. It runs calibrate's own on-instance script
 * (src/calibrate/script.ts) against this machine's engine and its own summary (src/calibrate/calibrate.ts).
 *
 *   npx tsx bench/calib.ts [--repetitions 5] [--iterations 10]
 */
import { execFileSync } from "node:child_process";
import { parseArgs } from "node:util";
import { layoutsFor, parseSamples, summarise, type Sample } from "../src/calibrate/calibrate.js";
import { layoutScript } from "../src/calibrate/script.js";
import { orderCpus, readCpuTopology } from "../src/launch/cpus.js";
import { dockerHost, readStack } from "../src/local/stack.js";
import { projectPath } from "../src/paths.js";
import { report, row } from "./lib.js";

const { values: args } = parseArgs({
  options: { repetitions: { type: "string", default: "5" }, iterations: { type: "string", default: "10" } },
});
const REPS = Number(args.repetitions);
const ITERATIONS = Number(args.iterations);
const log = (m: string) => process.stderr.write(`bench: ${m}\n`);
const env = { ...process.env, DOCKER_HOST: dockerHost(readStack(projectPath(".imgtool"))) };
const docker = (argv: string[]) =>
  execFileSync("docker", argv, { env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();

/**
 * The example benchmark in a container of the role's Ruby base: examples/ruby-bench at /opt/ruby-bench, as the
 * example task-runner image bakes it (built here, so the bench needs no pipeline run; removed at the end).
 */
function benchImage(): string {
  const tag = `imgtool-bench-calib:${process.pid}`;
  execFileSync(
    "docker",
    ["build", "--quiet", "--tag", tag, "--file", "-", projectPath("examples", "ruby-bench")],
    {
      env,
      input: "FROM imgtool/ruby:bookworm\nCOPY . /opt/ruby-bench/\nENV RUBY_BENCH_DIR=/opt/ruby-bench\n",
      stdio: ["pipe", "ignore", "inherit"],
    },
  );
  return tag;
}

const image = benchImage();
const cpus = orderCpus(readCpuTopology("/")).ordered.map(String);
const layouts = layoutsFor([1, 2]);
const noiseName = `imgtool-bench-noise-${process.pid}`;
const measured: { layout: string; noisy: boolean; samples: Sample[] }[] = [];
try {
  for (const noisy of [false, true]) {
    if (noisy) {
      docker([
        "run",
        "-d",
        "--rm",
        "--name",
        noiseName,
        "--network",
        "none",
        "--entrypoint",
        "sh",
        image,
        "-c",
        "while :; do :; done",
      ]);
    }
    for (const layout of layouts) {
      log(`${layout.name}${noisy ? " + noisy neighbour" : ""}: ${REPS} repetition(s) of fib`);
      const script = layoutScript({
        image,
        benchmark: "fib",
        layout,
        cpus,
        repetitions: REPS,
        warmupIterations: 1,
        iterations: ITERATIONS,
      });
      const stdout = execFileSync("sh", ["-c", script.join("\n")], { env, encoding: "utf8" });
      measured.push({ layout: layout.name, noisy, samples: parseSamples(stdout, "fib", layout.name) });
    }
    if (noisy) docker(["rm", "-f", noiseName]);
  }
} finally {
  for (const argv of [
    ["rm", "-f", noiseName],
    ["rmi", image],
  ]) {
    try {
      docker(argv);
    } catch {
      // already gone
    }
  }
}

const rows = [false, true].flatMap((noisy) => {
  const set = measured.filter((m) => m.noisy === noisy);
  const summary = summarise(
    set.flatMap((m) => m.samples),
    layouts,
    ["fib"],
  );
  return summary.map((s) => {
    const times = set.find((m) => m.layout === s.layout)!.samples.flatMap((x) => x.times);
    return row(
      "calib",
      `fib, ${s.layout}${noisy ? " + noisy neighbour" : ""}: iteration time`,
      times,
      `CV ${(s.cv * 100).toFixed(2)}%, slowdown ${s.slowdown.toFixed(3)}x`,
    );
  });
});
report(rows);
