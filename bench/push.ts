/**
 * Benchmark of `imgtool push image` on the local target (real engine, real registry), medians over several
 * runs:
 * - unchanged: both roles, nothing changed since the last push (the `imgtool` command end to end, and the
 *   flow alone); goal under 1 s, zero builds, zero bytes uploaded;
 * - cold: one role, built without the builder's cache and pushed to a registry the engine has never pushed to
 *   (a fresh proxy port in front of the registry), so every layer is compressed and uploaded;
 * - code change: one application file changed, pushed again (the layers before the application's are reused).
 * Bytes are counted by a proxy in front of the registry, not taken from the daemon's word.
 *
 * Run: npx tsx bench/push.ts        (BENCH_RUNS=N for the unchanged case, BENCH_COLD_RUNS=N for the others)
 */
import { appendFileSync } from "node:fs";
import { report, row } from "./lib.js";
import path from "node:path";
import type { Role } from "../src/config/schema.js";
import type { DockerEngine } from "../src/docker/engine.js";
import { pushImages, type PushReport } from "../src/push/push.js";
import { runCli } from "../test/support/cli.js";
import { makeBenchRepo } from "../test/support/fixtures/bench-repo.js";
import { startRegistryProxy, type RegistryProxy } from "../test/support/registry-proxy.js";
import { copyExample, countingEngine, engine, localDeps, stack, tempProject } from "../test/push/support.js";

const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const COLD_RUNS = Number(process.env.BENCH_COLD_RUNS ?? 3);

interface Row {
  name: string;
  times: number[];
  builds: number[];
  bytes: number[];
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const fmtS = (ms: number) => `${(ms / 1000).toFixed(ms < 10_000 ? 3 : 1)} s`;
const fmtB = (n: number) =>
  n === 0 ? "0" : n < 1e6 ? `${(n / 1e3).toFixed(1)} kB` : `${(n / 1e6).toFixed(1)} MB`;

function check(report: PushReport, want: string) {
  for (const r of report.results) {
    if (r.status !== want)
      throw new Error(`${r.role}: ${r.status}, expected ${want}: ${r.error?.message ?? ""}`);
  }
}

const repo = makeBenchRepo();
const runnerYaml = `roles:\n  task-runner:\n    ruby_bench:\n      repository: ${repo.path}\n`;
const rows: Row[] = [];
const proxies: RegistryProxy[] = [];

async function unchanged() {
  const proxy = await startRegistryProxy(stack.registry.endpoint);
  proxies.push(proxy);
  const p = tempProject(runnerYaml, { registry: proxy.host });
  check(
    await pushImages(
      { config: p.config, target: "local", roles: ["task-runner", "orchestrator"] },
      localDeps(p, proxy.host),
    ),
    "pushed",
  );
  const cli: Row = { name: "unchanged, both roles: `imgtool push image`", times: [], builds: [], bytes: [] };
  const flow: Row = { name: "unchanged, both roles: the flow alone", times: [], builds: [], bytes: [] };
  for (let i = 0; i < RUNS; i++) {
    proxy.reset();
    const t0 = performance.now();
    const r = await runCli(["push", "image", "--json", "--config", p.configFile], { timeoutMs: 120_000 });
    cli.times.push(performance.now() - t0);
    if (r.code !== 0) throw new Error(r.stderr);
    const results = (JSON.parse(r.stdout) as { results: { status: string; built: boolean }[] }).results;
    if (results.some((x) => x.status !== "up-to-date")) throw new Error(r.stdout);
    cli.builds.push(results.filter((x) => x.built).length);
    cli.bytes.push(proxy.uploadedBytes());

    proxy.reset();
    const deps = localDeps(p, proxy.host);
    const t1 = performance.now();
    const report = await pushImages(
      { config: p.config, target: "local", roles: ["task-runner", "orchestrator"] },
      deps,
    );
    flow.times.push(performance.now() - t1);
    check(report, "up-to-date");
    flow.builds.push(deps.docker.builds);
    flow.bytes.push(proxy.uploadedBytes());
  }
  rows.push(cli, flow);
}

/** The engine with every build made without the builder's cache. */
function coldEngine(): DockerEngine & { builds: number; pushes: number } {
  return countingEngine({ ...engine, build: (req, on) => engine.build({ ...req, noCache: true }, on) });
}

async function cold(role: Role) {
  const row: Row = { name: `cold build and push: ${role}`, times: [], builds: [], bytes: [] };
  for (let i = 0; i < COLD_RUNS; i++) {
    // A registry address the engine has never pushed to: it cannot skip or mount a layer.
    const proxy = await startRegistryProxy(stack.registry.endpoint);
    proxies.push(proxy);
    const p = tempProject(runnerYaml, { registry: proxy.host });
    const deps = { ...localDeps(p, proxy.host), docker: coldEngine() };
    const t0 = performance.now();
    const report = await pushImages({ config: p.config, target: "local", roles: [role] }, deps);
    row.times.push(performance.now() - t0);
    check(report, "pushed");
    row.builds.push(deps.docker.builds);
    row.bytes.push(proxy.uploadedBytes());
    await proxy.close();
  }
  rows.push(row);
}

async function codeChange(role: Role) {
  const row: Row = { name: `one app file changed: ${role}`, times: [], builds: [], bytes: [] };
  const proxy = await startRegistryProxy(stack.registry.endpoint);
  proxies.push(proxy);
  const p = tempProject(runnerYaml, { registry: proxy.host });
  const app = copyExample(role, p.dir);
  const rc = p.config.roles[role];
  const config = {
    ...p.config,
    roles: { ...p.config.roles, [role]: { ...rc, app: { ...rc.app, context: app } } },
  };
  check(await pushImages({ config, target: "local", roles: [role] }, localDeps(p, proxy.host)), "pushed");
  const file = path.join(app, role === "orchestrator" ? "orchestrator.rb" : "task_runner.rb");
  for (let i = 0; i < COLD_RUNS; i++) {
    appendFileSync(file, `# change ${p.pipeline} ${i}\n`);
    proxy.reset();
    const deps = localDeps(p, proxy.host);
    const t0 = performance.now();
    const report = await pushImages({ config, target: "local", roles: [role] }, deps);
    row.times.push(performance.now() - t0);
    check(report, "pushed");
    row.builds.push(deps.docker.builds);
    row.bytes.push(proxy.uploadedBytes());
  }
  rows.push(row);
}

try {
  await unchanged();
  for (const role of ["orchestrator", "task-runner"] as const) await cold(role);
  for (const role of ["orchestrator", "task-runner"] as const) await codeChange(role);
} finally {
  for (const p of proxies) await p.close().catch(() => {});
}

const table = [
  ["case", "runs", "median", "min", "max", "builds (median)", "uploaded (median)"],
  ...rows.map((r) => [
    r.name,
    String(r.times.length),
    fmtS(median(r.times)),
    fmtS(Math.min(...r.times)),
    fmtS(Math.max(...r.times)),
    String(median(r.builds)),
    fmtB(median(r.bytes)),
  ]),
];
const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
for (const row of table)
  console.log(row.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  "));
const goal = rows[0]!;
const ok = median(goal.times) < 1000 && goal.builds.every((b) => b === 0) && goal.bytes.every((b) => b === 0);
console.log(`\nunchanged push goal (< 1 s, 0 builds, 0 bytes): ${ok ? "met" : "NOT met"}`);
process.exitCode = ok ? 0 : 1;

// For bench/run: the same rows in the shared format.
report(
  rows.map((r) => ({
    ...row(
      "push",
      r.name,
      r.times.map((t) => t / 1000),
      `builds ${median(r.builds)}, uploaded ${fmtB(median(r.bytes))}`,
    ),
  })),
  { printed: true },
);
