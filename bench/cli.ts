/**
 * Cold start of `imgtool --help` (compiled CLI, no TypeScript loader, no AWS SDK or dockerode loaded) against
 * `node -e 0`, the floor any Node CLI pays. Goal: under 150 ms. Run: npx tsx bench/cli.ts (BENCH_RUNS=N).
 */
import { spawnSync } from "node:child_process";
import { projectPath } from "../src/paths.js";
import { report, row } from "./lib.js";

const RUNS = Number(process.env.BENCH_RUNS ?? 15);

function time(argv: string[]): number {
  const t = process.hrtime.bigint();
  const r = spawnSync(process.execPath, argv, { stdio: "ignore" });
  if (r.status !== 0) throw new Error(`${argv.join(" ")} exited ${r.status}`);
  return Number(process.hrtime.bigint() - t) / 1e9;
}

const help: number[] = [];
const floor: number[] = [];
time([projectPath("bin", "imgtool"), "--help"]); // warm the file cache once
for (let i = 0; i < RUNS; i++) {
  help.push(time([projectPath("bin", "imgtool"), "--help"]));
  floor.push(time(["-e", "0"]));
}
const h = row("cli", "imgtool --help (cold process)", help, "goal < 150 ms");
const f = row("cli", "node -e 0 (baseline)", floor, "");
h.note = `goal < 150 ms; ${(h.median / f.median).toFixed(1)}x node -e 0 (+${((h.median - f.median) * 1000).toFixed(0)} ms)`;
report([h, f]);
