/**
 * `imgtool bake ami` on the local target (real Packer, real engine), through the CLI, with the example config:
 * - no-op bake: inputs unchanged since the last bake; goal under 1 s and zero Packer runs;
 * - full twin bake of each role (--force: both stages, base and role): every provisioning step, OS update to validate;
 * - role-stage-only rebake of each role (--stage role --force: on the published base), in the same run, and the
 *   ratio of the medians; goal under 15 s and at least 3x faster than the full bake.
 * Run after `scripts/setup`: npx tsx bench/bake.ts (BENCH_RUNS=N no-op runs, BENCH_FULL_RUNS=N full and
 * role-stage bakes).
 */
import { runCli } from "../test/support/cli.js";
import { projectPath } from "../src/paths.js";
import { median, report, row, type BenchRow } from "./lib.js";

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const FULL_RUNS = Number(process.env.BENCH_FULL_RUNS ?? 2);
const config = projectPath("examples", "imgtool.config.yaml");

interface BakeJson {
  results: { role: string; status: string; packerRuns: number; base?: { packerRuns: number } }[];
}

async function bake(args: string[]): Promise<{ seconds: number; doc: BakeJson }> {
  const t = performance.now();
  const r = await runCli(["bake", "ami", "--json", "--config", config, ...args], { timeoutMs: 900_000 });
  const seconds = (performance.now() - t) / 1000;
  if (r.code !== 0) throw new Error(`imgtool bake ami ${args.join(" ")} failed:\n${r.stderr.slice(-2000)}`);
  return { seconds, doc: JSON.parse(r.stdout) as BakeJson };
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
  // Interleaved, so that the machine's noise falls on both alike.
  for (let i = 0; i < FULL_RUNS; i++) {
    full.push((await bake(["--role", role, "--force"])).seconds);
    roleStage.push((await bake(["--role", role, "--stage", "role", "--force"])).seconds);
  }
  const f = row("bake", `full twin bake: ${role} (--force)`, full, "both stages, all provisioning steps");
  const r = row(
    "bake",
    `role-stage rebake: ${role} (--stage role --force)`,
    roleStage,
    `goal < 15 s and >= 3x faster; full/role-stage median ratio ${(f.median / median(roleStage)).toFixed(1)}x`,
  );
  rows.push(f, r);
}
report(rows);
