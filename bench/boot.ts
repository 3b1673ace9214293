/**
 * Boot-to-ready on the local target, side by side in one run: imgtool's baked user-data against the two boot
 * flows it replaces, written as what they are (bench/boot-legacy-today.sh: update packages, install Docker, log
 * in, pull, start workers; bench/boot-legacy-older.sh: the same plus clone and image build at boot). Every flow
 * boots the same kind of "instance" (a container with its own Docker engine, 2 workers, this machine's CPUs) and
 * is timed the same two ways: from the instance's start, as the engine recorded it, to its readiness marker
 * (for the baked flow that includes the twin's cloud-init stages), and from the script's first line. Rounds
 * interleave the flows; the table gives the median, min and max, and the ratios to the baked flow.
 * Then the AWS requests of a launch of 3 instance types x 4 task runners against the AWS stand-in.
 *
 *   npx tsx bench/boot.ts [--runs 5] [--legacy-runs 3] [--no-older] [--json]
 */
import { bareRepository, legacyBoot, type Sample } from "./legacy-boot.js";
import { report, row } from "./lib.js";
import { cpSync, mkdtempSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { dockerEngine } from "../src/docker/engine.js";
import { recordingSink } from "../src/events.js";
import { httpHealthProbe } from "../src/launch/health.js";
import { launch } from "../src/launch/launch.js";
import { localBackend } from "../src/launch/local.js";
import { terminateRun } from "../src/launch/terminate.js";
import type { LaunchOptions } from "../src/launch/types.js";
import { projectPath } from "../src/paths.js";
import { awsFixture, awsConfig, launchOnStandin } from "../test/launch/aws-support.js";
import { makeLocalFixture } from "../test/launch/fixtures/local.js";

const { values: args } = parseArgs({
  options: {
    runs: { type: "string", default: "5" },
    "legacy-runs": { type: "string", default: "3" },
    "no-older": { type: "boolean", default: false },
    json: { type: "boolean", default: false },
  },
});
const RUNS = Number(args.runs);
const LEGACY_RUNS = Number(args["legacy-runs"]);
const WORKERS = 2;

const log = (m: string) => process.stderr.write(`bench: ${m}\n`);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** The repository the older flow clones: the task-runner app and a Dockerfile shaped like rubybencher's. */
function legacyRepository(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "imgtool-bench-repo-"));
  const work = path.join(dir, "work");
  cpSync(projectPath("examples", "task-runner"), path.join(work, "task-runner"), {
    recursive: true,
    filter: (src) => !src.includes(`${path.sep}test`),
  });
  cpSync(projectPath("bench", "boot-legacy-task-runner.Dockerfile"), path.join(work, "Dockerfile"));
  bareRepository(work, path.join(dir, "repo.git"), "task-runner");
  return dir;
}

async function main() {
  log("making the fixture (twin, example images pushed and pre-loaded, catalog)");
  const fx = await makeLocalFixture();
  const repoDir = legacyRepository();
  const results: Record<string, Sample[]> = { baked: [], today: [], older: [] };
  // The older flow builds FROM the Ruby base, pulled from the registry as a base image would be.
  const base = `${fx.stack.registry.endpoint}/imgtool-launch-test-${fx.id}/ruby`;
  try {
    await fx.docker.getImage("imgtool/ruby:bookworm").tag({ repo: base, tag: "bookworm" });
    await dockerEngine(fx.docker).push(base, "bookworm", {
      username: fx.stack.registry.user,
      password: fx.registryPassword,
      serveraddress: fx.stack.registry.endpoint,
    });

    const sink = recordingSink();
    const backend = localBackend({
      config: fx.config,
      docker: fx.docker,
      registry: { user: fx.stack.registry.user, passwordFile: fx.stack.registry.passwordFile },
      events: sink,
    });
    const deps = {
      config: fx.config,
      backend,
      catalog: async () => fx.catalog,
      events: sink,
      probe: httpHealthProbe(),
    };
    const opts = (o: Partial<LaunchOptions>): LaunchOptions => ({
      target: "local",
      runId: "bench",
      taskRunners: 1,
      instanceTypes: ["c7i.large"],
      spot: false,
      workersPerInstance: WORKERS,
      reuseOrchestrator: true,
      keepOnFailure: false,
      wait: true,
      dryRun: false,
      label: "latest",
      ...o,
    });
    // One orchestrator for the whole bench: each baked round then boots one task-runner instance, as the
    // legacy rounds do.
    await launch(opts({ runId: `bench-orch-${fx.id}`, taskRunners: 0, reuseOrchestrator: false }), deps);

    const rounds = Math.max(RUNS, LEGACY_RUNS);
    for (let i = 1; i <= rounds; i++) {
      if (i <= RUNS) {
        const runId = `bench-${fx.id}-${i}`;
        const r = await launch(opts({ runId }), deps);
        const inst = r.instances.find((x) => x.role === "task-runner" && !x.reused)!;
        if (inst.pulled)
          throw new Error("the baked round pulled its image: the fixture is not what it should be");
        results.baked!.push({
          startToReady: inst.startToReadySeconds!,
          scriptSeconds: inst.bootToReadySeconds!,
        });
        await terminateRun({ runId, dryRun: false }, { backend, events: sink });
        log(`round ${i}: baked ${inst.startToReadySeconds!.toFixed(3)} s`);
      }
      if (i <= LEGACY_RUNS) {
        const today = await legacyBoot(fx, "today", i, WORKERS, { IMAGE: fx.images["task-runner"] }, []);
        results.today!.push(today);
        log(`round ${i}: today's flow ${today.startToReady.toFixed(1)} s`);
        if (!args["no-older"]) {
          const older = await legacyBoot(
            fx,
            "older",
            i,
            WORKERS,
            { BASE_IMAGE: `${base}:bookworm`, REPOSITORY: "file:///srv/repo.git" },
            [`${path.join(repoDir, "repo.git")}:/srv/repo.git:ro`],
          );
          results.older!.push(older);
          log(`round ${i}: older flow ${older.startToReady.toFixed(1)} s`);
        }
      }
    }
    await terminateRun({ runId: `bench-orch-${fx.id}`, dryRun: false }, { backend, events: sink });
  } finally {
    // The base's tag in the outer engine (the fixture's cleanup removes only the tags it made).
    await fx.docker
      .getImage(`${base}:bookworm`)
      .remove()
      .catch(() => undefined);
    await fx.cleanup();
    await rm(repoDir, { recursive: true, force: true });
  }

  // The AWS side: requests of one launch of 3 instance types x 4 task runners, against the stand-in.
  const aws = await awsFixture();
  const awsCounts: Record<string, number> = {};
  let names: number;
  try {
    await launchOnStandin(
      aws,
      { taskRunners: 4, instanceTypes: ["c7i.large", "c7g.large", "m7i.xlarge"] },
      { config: awsConfig() },
    );
    for (const r of aws.standin.requests) awsCounts[r.operation] = (awsCounts[r.operation] ?? 0) + 1;
    names = aws.standin.requests
      .filter((r) => r.operation === "GetParameters")
      .reduce((n, r) => n + (r.params as { Names: string[] }).Names.length, 0);
  } finally {
    await aws.close();
  }

  const baked = median(results.baked!.map((s) => s.startToReady));
  const rows = (
    [
      ["baked user-data (imgtool launch)", results.baked!],
      ["today: update, install Docker, log in, pull, start", results.today!],
      ["older: today + clone and image build at boot", results.older!],
    ] as const
  ).filter(([, s]) => s.length);
  const fmt = (n: number) => (n < 10 ? n.toFixed(2) : n.toFixed(1));
  const table = [
    ["FLOW (2 workers, this machine)", "RUNS", "MEDIAN", "MIN", "MAX", "SCRIPT MEDIAN", "VS BAKED"],
    ...rows.map(([name, s]) => {
      const xs = s.map((x) => x.startToReady);
      const m = median(xs);
      return [
        name,
        String(xs.length),
        `${fmt(m)} s`,
        `${fmt(Math.min(...xs))} s`,
        `${fmt(Math.max(...xs))} s`,
        `${fmt(median(s.map((x) => x.scriptSeconds)))} s`,
        name.startsWith("baked") ? "1x" : `${(m / baked).toFixed(1)}x slower`,
      ];
    }),
  ];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
  const text = table
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
  const awsText =
    `AWS requests of one launch, 3 instance types x 4 task runners + 1 orchestrator (AWS stand-in): ` +
    Object.entries(awsCounts)
      .map(([op, n]) => `${op} ${n}`)
      .join(", ") +
    ` (GetParameters: ${names} names, ${Math.ceil(names / 10)} calls of at most 10)`;
  report(
    [
      ...rows.flatMap(([name, xs]) => {
        const secs = xs.map((x) => x.startToReady);
        const script = xs.map((x) => x.scriptSeconds);
        return [
          row(
            "boot",
            `${name}: start to ready`,
            secs,
            name.startsWith("baked") ? "goal < 2 s" : `${(median(secs) / baked).toFixed(1)}x the baked boot`,
          ),
          row(
            "boot",
            `${name}: boot to ready (first line of the script)`,
            script,
            name.startsWith("baked")
              ? "imgtool launch's bootToReadySeconds"
              : `${(median(script) / median(results.baked!.map((x) => x.scriptSeconds))).toFixed(1)}x the baked script`,
          ),
        ];
      }),
      {
        bench: "launch",
        case: "AWS requests, 3 types x 4 task runners (stand-in)",
        runs: 1,
        median: null,
        min: null,
        max: null,
        note: Object.entries(awsCounts)
          .map(([op, n]) => `${op} ${n}`)
          .join(", "),
      },
    ],
    { printed: true },
  );
  if (args.json) {
    console.log(
      JSON.stringify(
        { results, medianBaked: baked, aws: { counts: awsCounts, getParametersNames: names } },
        null,
        2,
      ),
    );
  } else {
    console.log(
      "Boot to ready: from the instance's start (the engine's record) to its readiness marker; SCRIPT MEDIAN is the\n" +
        "script's own count from its first line. Goals: baked under 2 s, 10x faster than today's flow, 30x than the older.\n",
    );
    console.log(text);
    console.log(`\n${awsText}`);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
