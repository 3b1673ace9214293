/**
 * `imgtool bake ami` on the local target (real Packer, real engine), through the CLI, with the example config:
 * - no-op bake: inputs unchanged since the last bake; goal under 1 s and zero Packer runs;
 * - full twin bake of each role (--force: both stages, base and role): every provisioning step, OS update to validate;
 * - role-stage-only rebake of each role, in the same run, and the ratio of the medians; goal under 15 s and at
 *   least 3x faster than the full bake. Two ways: a new ruby-bench commit (what a nightly rebake usually sees: an
 *   empty commit in the example's ruby-bench repository; the role's images unchanged, so the twin's pre-load
 *   copies the latest version's store), and `--stage role --force` (every role step, the pre-load pulls).
 * Run after `scripts/setup`: npx tsx bench/bake.ts (BENCH_RUNS=N no-op runs, BENCH_FULL_RUNS=N full and
 * role-stage bakes).
 */
import { execFileSync } from "node:child_process";
import { runCli } from "../test/support/cli.js";
import { nextRubyBenchCommit } from "../test/support/fixtures/ruby-bench.js";
import { projectPath } from "../src/paths.js";
import { median, report, row, type BenchRow } from "./lib.js";

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const FULL_RUNS = Number(process.env.BENCH_FULL_RUNS ?? 2);
const config = projectPath("examples", "imgtool.config.yaml");
/** The example's ruby-bench repository (examples/imgtool.config.yaml, made by scripts/setup). */
const rubyBench = projectPath(".imgtool", "examples", "ruby-bench");
const rubyBenchHead = execFileSync("git", ["rev-parse", "HEAD"], { cwd: rubyBench, encoding: "utf8" }).trim();

interface BakeJson {
  results: { role: string; status: string; packerRuns: number; base?: { packerRuns: number } }[];
}

async function bake(args: string[]): Promise<{ seconds: number; doc: BakeJson; stderr: string }> {
  const t = performance.now();
  const r = await runCli(["bake", "ami", "--json", "--config", config, ...args], { timeoutMs: 900_000 });
  const seconds = (performance.now() - t) / 1000;
  if (r.code !== 0) throw new Error(`imgtool bake ami ${args.join(" ")} failed:\n${r.stderr.slice(-2000)}`);
  return { seconds, doc: JSON.parse(r.stdout) as BakeJson, stderr: r.stderr };
}

const rows: BenchRow[] = [];
await bake([]); // make sure both roles are baked: the no-op runs start from there
const noop: number[] = [];
let packerRuns = 0;
for (let i = 0; i < RUNS; i++) {
  const { seconds, doc } = await bake([]);
  noop.push(seconds);
  packerRuns += doc.results.reduce((n, r) => n + r.packerRuns + (r.base?.packerRuns ?? 0), 0);
}
rows.push(
  row("bake", "no-op bake, both roles (imgtool bake ami)", noop, `goal < 1 s; Packer runs: ${packerRuns}`),
);
for (const role of ["task-runner", "orchestrator"]) {
  const full: number[] = [];
  const roleStage: number[] = [];
  const newCommit: number[] = [];
  let copies = 0;
  // Interleaved, so that the machine's noise falls on all alike.
  for (let i = 0; i < FULL_RUNS; i++) {
    full.push((await bake(["--role", role, "--force"])).seconds);
    roleStage.push((await bake(["--role", role, "--stage", "role", "--force"])).seconds);
    nextRubyBenchCommit(rubyBench);
    const next = await bake(["--role", role]);
    const base = next.doc.results[0]?.base;
    if (base?.packerRuns) throw new Error(`a new ruby-bench commit rebuilt the ${role} base stage`);
    newCommit.push(next.seconds);
    if (/into volume \S+ \(a copy of volume/.test(next.stderr)) copies++;
  }
  const f = row("bake", `full twin bake: ${role} (--force)`, full, "both stages, all provisioning steps");
  const ratio = (xs: number[]) => `full/role-stage median ratio ${(f.median / median(xs)).toFixed(1)}x`;
  rows.push(
    f,
    row(
      "bake",
      `role-stage rebake: ${role}, new ruby-bench commit`,
      newCommit,
      `goal < 15 s and >= 3x; ${ratio(newCommit)}; pre-load copied ${copies} of ${FULL_RUNS} times`,
    ),
    row(
      "bake",
      `role-stage rebake: ${role} (--stage role --force)`,
      roleStage,
      `goal < 15 s and >= 3x; ${ratio(roleStage)}; the pre-load pulls`,
    ),
  );
}
// The example's ruby-bench repository as scripts/setup made it (its commit is what the examples pin).
execFileSync("git", ["reset", "-q", "--hard", rubyBenchHead], { cwd: rubyBench });
report(rows);
