/**
 * `imgtool bake ami` on the local target (real Packer, real engine), through the CLI, with the example config:
 * - no-op bake: inputs unchanged since the last bake; goal under 1 s and zero Packer runs;
 * - full twin bake of each role (--force): the whole Packer build, OS update to validate.
 * Run after `scripts/setup`: npx tsx bench/bake.ts (BENCH_RUNS=N no-op runs, BENCH_FULL_RUNS=N full bakes).
 */
import { runCli } from "../test/support/cli.js";
import { projectPath } from "../src/paths.js";
import { report, row, type BenchRow } from "./lib.js";

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const FULL_RUNS = Number(process.env.BENCH_FULL_RUNS ?? 2);
const config = projectPath("examples", "imgtool.config.yaml");

interface BakeJson {
  results: { role: string; status: string; packerRuns: number }[];
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
  packerRuns += doc.results.reduce((n, r) => n + r.packerRuns, 0);
}
rows.push(
  row("bake", "no-op bake, both roles (imgtool bake ami)", noop, `goal < 1 s; Packer runs: ${packerRuns}`),
);
for (const role of ["task-runner", "orchestrator"]) {
  const full: number[] = [];
  for (let i = 0; i < FULL_RUNS; i++) full.push((await bake(["--role", role, "--force"])).seconds);
  rows.push(
    row("bake", `full twin bake: ${role} (--force)`, full, "Packer docker builder, all provisioning steps"),
  );
}
report(rows);
