// The pipeline's decisions, with its stages handed in as stand-ins for push, bake and launch (their real
// paths have their own tests, and test/pipeline/pipeline-local.test.ts runs them all for real), over a real
// catalog: promote only after a passing smoke launch, skip what is unchanged, a failed smoke leaves stable.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { BakeResult } from "../../src/bake/bake.js";
import { Catalog, versionName } from "../../src/catalog/catalog.js";
import { recordRelease } from "../../src/catalog/release.js";
import { SqliteStore } from "../../src/catalog/sqlite-store.js";
import type { Role } from "../../src/config/schema.js";
import { FailureError, InterruptedError, UsageError } from "../../src/errors.js";
import { recordingSink } from "../../src/events.js";
import {
  runPipeline,
  summaryMarkdown,
  type PipelineDeps,
  type SmokeOutcome,
} from "../../src/pipeline/pipeline.js";
import { bootRecordName, bootRecordOf, bootRecordsOf } from "../../src/pipeline/boot-records.js";

function setup() {
  const cat = new Catalog({
    store: new SqliteStore(path.join(mkdtempSync(path.join(tmpdir(), "imgtool-pl-")), "c.db")),
    prefix: "/imgtool/p",
  });
  let n = 0;
  const calls = { push: 0, bake: 0, smoke: 0 };
  let changed = true;
  let smokeResult: SmokeOutcome = {
    passed: true,
    bootToReadySeconds: { "task-runner-0": 0.9 },
    detail: "1 task done",
  };
  const deps: PipelineDeps = {
    resolveRubyBench: async (role) => `${role === "task-runner" ? "a" : "b"}`.repeat(40),
    async push(roles) {
      calls.push++;
      return roles.map((role) => ({ role, status: "up-to-date", version: null, reference: "r@sha256:x" }));
    },
    async bake(roles: Role[]) {
      calls.bake++;
      const out: BakeResult[] = [];
      for (const role of roles) {
        if (changed) {
          n++;
          const version = versionName(new Date(Date.UTC(2026, 10, 1, 0, 0, n)), `${n}`.repeat(12));
          await cat.publish({ role, kind: "ami", arch: "x86_64" }, `sha256:${n}`, {
            version,
            inputsHash: `${n}`,
            builtAt: "",
          });
        }
        const v = (await cat.resolve([{ role, kind: "ami", arch: "x86_64" }], { meta: true })).found[0]!.meta!
          .version;
        out.push({
          role,
          target: "local",
          status: changed ? "built" : "up-to-date",
          version: v,
          inputsHash: "",
          renderedHash: "",
          artifacts: [],
          packerRuns: changed ? 1 : 0,
          seconds: 0,
          preloadedImage: null,
        });
      }
      return out;
    },
    async smoke() {
      calls.smoke++;
      return smokeResult;
    },
    catalogs: async () => [cat],
    keys: (role) => [{ role, kind: "ami", arch: "x86_64" }],
    events: recordingSink(),
  };
  return {
    cat,
    deps,
    calls,
    setChanged: (c: boolean) => (changed = c),
    setSmoke: (s: SmokeOutcome) => (smokeResult = s),
  };
}

const stableOf = async (cat: Catalog, role: string) =>
  (await cat.resolve([{ role, kind: "ami", arch: "x86_64" }], { label: "stable" })).found[0]?.value;

describe("pipeline decisions", () => {
  test("a staged bake: a bake-base row before each role's bake row, each saying why it was built or skipped (the nightly summary too)", async () => {
    const s = setup();
    const inner = s.deps.bake;
    s.deps.bake = async (roles, pins) =>
      (await inner(roles, pins)).map((r) => ({
        ...r,
        stage: "role" as const,
        reason:
          r.role === "task-runner" ? "its base v-base-2 is new" : "no role stage is published for inputs 1",
        base: {
          ...r,
          stage: "base" as const,
          status: r.role === "task-runner" ? ("built" as const) : ("up-to-date" as const),
          version: `v-base-${r.role === "task-runner" ? 2 : 1}`,
          seconds: 12.5,
          reason:
            r.role === "task-runner"
              ? "v-base-1 is 8.0 days old, older than roles.task-runner.base.max_age_days (7): rebuilt for OS updates"
              : "inputs 0123456789ab unchanged",
        },
      }));
    const r = await runPipeline(["task-runner", "orchestrator"], s.deps, { smoke: false });
    const bakes = r.stages.filter((x) => x.stage.startsWith("bake"));
    assert.deepEqual(
      bakes.map((x) => [x.role, x.stage, x.status, x.version?.startsWith("v-base") ? x.version : "role"]),
      [
        ["task-runner", "bake-base", "built", "v-base-2"],
        ["task-runner", "bake", "built", "role"],
        ["orchestrator", "bake-base", "up-to-date", "v-base-1"],
        ["orchestrator", "bake", "built", "role"],
      ],
    );
    assert.equal(bakes[0]!.seconds, 12.5);
    const md = summaryMarkdown(r, "local");
    assert.match(
      md,
      /\| task-runner \| bake-base \| built \| v-base-2 \| 12\.5 \| v-base-1 is 8\.0 days old, older than roles\.task-runner\.base\.max_age_days \(7\): rebuilt for OS updates \|/,
    );
    assert.match(
      md,
      /\| orchestrator \| bake-base \| up-to-date \| v-base-1 \| 12\.5 \| inputs 0123456789ab unchanged \|/,
    );
    assert.match(md, /\| task-runner \| bake \| built \| v\S+ \| 0\.0 \| its base v-base-2 is new \|/);
  });

  test("first run: push, bake, smoke, promote; second run with no change: nothing to smoke or promote", async () => {
    const s = setup();
    const r1 = await runPipeline(["task-runner", "orchestrator"], s.deps, { smoke: true });
    assert.equal(r1.promoted, true);
    assert.equal(s.calls.smoke, 1);
    assert.equal(await stableOf(s.cat, "task-runner"), "sha256:1");
    assert.equal(await stableOf(s.cat, "orchestrator"), "sha256:2");
    assert.match(summaryMarkdown(r1, "local"), /\| all \| promote \| promoted \|/);

    s.setChanged(false);
    const r2 = await runPipeline(["task-runner", "orchestrator"], s.deps, { smoke: true });
    assert.equal(s.calls.smoke, 1, "no smoke launch when nothing changed");
    assert.equal(r2.promoted, false);
    assert.deepEqual(
      r2.stages.filter((x) => x.stage === "smoke" || x.stage === "promote").map((x) => x.status),
      ["up-to-date", "up-to-date"],
    );
  });

  test("a failed smoke launch leaves stable where it was and fails", async () => {
    const s = setup();
    await runPipeline(["task-runner"], s.deps, { smoke: true });
    assert.equal(await stableOf(s.cat, "task-runner"), "sha256:1");
    s.setSmoke({
      passed: false,
      bootToReadySeconds: {},
      detail: "task runner could not reach the orchestrator",
    });
    await assert.rejects(
      runPipeline(["task-runner"], s.deps, { smoke: true }),
      (e: unknown) => e instanceof FailureError && /stable` was not moved/.test(e.message),
    );
    assert.equal(await stableOf(s.cat, "task-runner"), "sha256:1", "stable unchanged");
    const latest = (await s.cat.resolve([{ role: "task-runner", kind: "ami", arch: "x86_64" }])).found[0]!
      .value;
    assert.equal(latest, "sha256:2", "latest has the new version");
  });

  test("latest moving during the smoke launch (a bake by hand) is not promoted untested", async () => {
    const s = setup();
    s.deps.smoke = async () => {
      await s.cat.publish({ role: "task-runner", kind: "ami", arch: "x86_64" }, "sha256:by-hand", {
        version: versionName(new Date(Date.UTC(2026, 10, 2)), "f".repeat(12)),
        inputsHash: "f",
        builtAt: "",
      });
      // As `imgtool bake ami` does: the release of what is published now.
      await recordRelease([s.cat], [{ role: "task-runner", kind: "ami", arch: "x86_64" }], []);
      return { passed: true, bootToReadySeconds: {}, detail: "ok" };
    };
    await assert.rejects(
      runPipeline(["task-runner"], s.deps, { smoke: true }),
      /latest moved during the smoke launch/,
    );
    assert.equal(await stableOf(s.cat, "task-runner"), undefined, "nothing was promoted");
  });

  test("an interrupted pipeline starts no further stage and promotes nothing (exit 130)", async () => {
    const s = setup();
    const ac = new AbortController();
    s.deps.signal = ac.signal;
    const bake = s.deps.bake;
    s.deps.bake = async (roles, pins) => {
      const r = await bake(roles, pins);
      ac.abort();
      return r;
    };
    await assert.rejects(
      runPipeline(["task-runner"], s.deps, { smoke: true }),
      (e: unknown) => (e as { exitCode?: number }).exitCode === 130,
    );
    assert.equal(s.calls.smoke, 0);
    assert.equal(await stableOf(s.cat, "task-runner"), undefined);
  });

  test("SIGTERM during the smoke launch: the pipeline is interrupted (exit 143), not a failed smoke; stable stays", async () => {
    const s = setup();
    const ac = new AbortController();
    s.deps.signal = ac.signal;
    s.deps.smoke = async () => {
      // What smokeLaunch answers when its launch was interrupted: a smoke that did not pass.
      ac.abort("SIGTERM");
      return { passed: false, bootToReadySeconds: {}, detail: "The launch of run smoke-1 was interrupted" };
    };
    await assert.rejects(
      runPipeline(["task-runner"], s.deps, { smoke: true }),
      (e: unknown) =>
        e instanceof InterruptedError &&
        e.exitCode === 143 &&
        /^The pipeline was interrupted \(SIGTERM\): no further stage ran, stable was not moved\.$/.test(
          e.message,
        ),
    );
    assert.equal(await stableOf(s.cat, "task-runner"), undefined, "nothing was promoted");
  });

  test("--no-smoke: nothing is promoted", async () => {
    const s = setup();
    const r = await runPipeline(["task-runner"], s.deps, { smoke: false });
    assert.equal(r.promoted, false);
    assert.equal(await stableOf(s.cat, "task-runner"), undefined);
    assert.equal(s.calls.smoke, 0);
  });

  test("a failed push stops before the bake", async () => {
    const s = setup();
    s.deps.push = async (roles) =>
      roles.map((role) => ({
        role,
        status: "failed",
        version: null,
        reference: null,
        error: new FailureError("registry down"),
      }));
    await assert.rejects(runPipeline(["task-runner"], s.deps, { smoke: true }), /registry down/);
    assert.equal(s.calls.bake, 0);
  });

  test("the ruby-bench ref is resolved once per run, and push and bake get the same commit", async () => {
    const s = setup();
    // A branch that moves on every look: a second resolution would give the bake another commit.
    let moves = 0;
    const asked: Role[] = [];
    s.deps.resolveRubyBench = async (role) => {
      asked.push(role);
      moves++;
      return `${moves}`.repeat(40).slice(0, 40);
    };
    const seen: { push?: unknown; bake?: unknown } = {};
    const { push, bake } = s.deps;
    s.deps.push = async (roles, pins) => {
      seen.push = structuredClone(pins);
      return push(roles, pins);
    };
    s.deps.bake = async (roles, pins) => {
      seen.bake = structuredClone(pins);
      return bake(roles, pins);
    };
    await runPipeline(["task-runner", "orchestrator"], s.deps, { smoke: true });
    assert.deepEqual(asked, ["task-runner", "orchestrator"], "one resolution per role");
    assert.deepEqual(seen.push, { "task-runner": "1".repeat(40), orchestrator: "2".repeat(40) });
    assert.deepEqual(seen.bake, seen.push, "the bake pins exactly what the push pinned");
  });

  test("a ruby-bench ref that does not resolve stops the run before any push", async () => {
    const s = setup();
    s.deps.resolveRubyBench = async () => {
      throw new UsageError(`roles.task-runner.ruby_bench.ref: "nope" is not a branch, tag or commit`);
    };
    await assert.rejects(runPipeline(["task-runner"], s.deps, { smoke: true }), /ruby_bench\.ref: "nope"/);
    assert.equal(s.calls.push, 0);
    assert.equal(s.calls.bake, 0);
  });
});

describe("pipeline decisions: the boot budget", () => {
  const budget = {
    seconds: { "task-runner": 10, orchestrator: 20 },
    max_ratio: 1.5,
    min_slowdown_seconds: 1,
    pre_warm: { seconds: 300, in_budget: false },
  };
  const steps = { "engine-wait": 0.01, "secret-read": 0.003, "image-check": 0.04, "worker-start": 0.5 };
  const smokeWith = (seconds: number, s: Record<string, number> = steps): SmokeOutcome => ({
    passed: true,
    bootToReadySeconds: { "task-runner tr-1": seconds },
    boots: [{ role: "task-runner", arch: "x86_64", instanceId: "tr-1", seconds, steps: s }],
    detail: "1 task done",
  });
  const versionOf = (r: { stages: { role: string; stage: string; version: string | null }[] }) =>
    r.stages.find((x) => x.role === "task-runner" && x.stage === "bake")!.version!;

  test("within budget: recorded with the version, a boot row per instance, promoted", async () => {
    const s = setup();
    s.deps.bootBudget = budget;
    s.setSmoke(smokeWith(0.6));
    const r = await runPipeline(["task-runner"], s.deps, { smoke: true });
    assert.equal(r.promoted, true);
    const row = r.stages.find((x) => x.stage === "boot")!;
    assert.deepEqual(
      { role: row.role, status: row.status, version: row.version, seconds: row.seconds },
      { role: "task-runner", status: "within-budget", version: versionOf(r), seconds: 0.6 },
    );
    assert.match(row.detail!, /budget 10 s, no previous; slowest worker-start 0\.500 s/);
    assert.deepEqual(
      r.stages.map((x) => x.stage),
      ["push", "bake", "smoke", "boot", "promote"],
    );
    const rec = await bootRecordOf(s.cat, "task-runner", "x86_64", versionOf(r));
    assert.ok(rec && !("unreadable" in rec));
    assert.equal(rec.seconds, 0.6);
    assert.deepEqual(rec.steps, steps);
    assert.deepEqual(await bootRecordsOf(s.cat, versionOf(r)), [rec]);
    assert.match(
      summaryMarkdown(r, "local"),
      /- task-runner tr-1 0\.60 s \(slowest step worker-start 0\.50 s\)/,
    );
  });

  test("a boot step 2 s slower: refused against the previous version, naming the step and both numbers; stable stays", async () => {
    const s = setup();
    s.deps.bootBudget = budget;
    s.setSmoke(smokeWith(0.6));
    const first = await runPipeline(["task-runner"], s.deps, { smoke: true });
    s.setSmoke(smokeWith(2.62, { ...steps, "image-check": 2.06 }));
    let report:
      { promoted: boolean; stages: { stage: string; status: string; version: string | null }[] } | undefined;
    await assert.rejects(runPipeline(["task-runner"], s.deps, { smoke: true }), (e: unknown) => {
      report = (e as { report?: typeof report }).report;
      return (
        e instanceof FailureError &&
        e.exitCode === 1 &&
        /too slow to boot; `stable` was not moved/.test(e.message) &&
        /boot-to-ready 2\.620 s, budget 10 s, more than 1\.5x slower than the previous version/.test(
          e.message,
        ) &&
        new RegExp(`previous version ${versionOf(first)}: 0\\.600 s, 4\\.37x`).test(e.message) &&
        /slowest boot step: image-check 2\.060 s \(\+2\.020 s since /.test(e.message) &&
        /boot_budget\.seconds\.task-runner/.test(e.fix ?? "")
      );
    });
    assert.equal(report?.promoted, false);
    assert.deepEqual(
      report?.stages.filter((x) => x.stage === "boot").map((x) => x.status),
      ["slower"],
    );
    assert.equal(await stableOf(s.cat, "task-runner"), "sha256:1", "stable unchanged");
    // The refused version's boot is recorded too (status --version shows why it was refused).
    const refused = report!.stages.find((x) => x.stage === "bake")!.version!;
    const rec = await bootRecordOf(s.cat, "task-runner", "x86_64", refused);
    assert.ok(rec && !("unreadable" in rec) && rec.seconds === 2.62);
  });

  test("over the role's budget on the first run (nothing to compare with): refused", async () => {
    const s = setup();
    s.deps.bootBudget = { ...budget, seconds: { ...budget.seconds, "task-runner": 2 } };
    s.setSmoke(smokeWith(2.5, { ...steps, "worker-start": 2.4 }));
    await assert.rejects(
      runPipeline(["task-runner"], s.deps, { smoke: true }),
      (e: unknown) =>
        e instanceof FailureError &&
        /over its budget of 2 s \(boot_budget\.seconds\.task-runner\); no previous version's boot recorded; slowest boot step: worker-start 2\.400 s/.test(
          e.message,
        ),
    );
    assert.equal(await stableOf(s.cat, "task-runner"), undefined, "nothing was promoted");
  });

  test("a first night's pre-warm of minutes (aws, a lazily loaded volume): promoted; over its own ceiling: refused", async () => {
    const s = setup();
    s.deps.bootBudget = budget;
    s.setSmoke(smokeWith(180.6, { ...steps, "pre-warm": 180 }));
    const r = await runPipeline(["task-runner"], s.deps, { smoke: true });
    assert.equal(r.promoted, true);
    const row = r.stages.find((x) => x.stage === "boot")!;
    assert.equal(row.status, "within-budget");
    assert.equal(row.seconds, 0.6, "the row shows the boot the budget judged");
    assert.match(
      row.detail!,
      /^budget 10 s without pre-warm, no previous; .*; pre-warm 180\.000 s \(ceiling 300 s\)$/,
    );
    const rec = await bootRecordOf(s.cat, "task-runner", "x86_64", versionOf(r));
    assert.ok(rec && !("unreadable" in rec));
    assert.equal(rec.seconds, 180.6, "the record keeps the whole boot");
    assert.equal(rec.steps["pre-warm"], 180);

    s.setSmoke(smokeWith(400.6, { ...steps, "pre-warm": 400 }));
    let report: { stages: { stage: string; status: string }[] } | undefined;
    await assert.rejects(runPipeline(["task-runner"], s.deps, { smoke: true }), (e: unknown) => {
      report = (e as { report?: typeof report }).report;
      return (
        e instanceof FailureError &&
        /pre-warm 400\.000 s, over its ceiling of 300 s \(boot_budget\.pre_warm\.seconds\)/.test(e.message) &&
        /boot_budget\.pre_warm\.seconds/.test(e.fix ?? "")
      );
    });
    assert.deepEqual(
      report?.stages.filter((x) => x.stage === "boot").map((x) => x.status),
      ["pre-warm-over-ceiling"],
    );
  });

  test("a previous record imgtool cannot have written: a warning, the budget alone judges", async () => {
    const s = setup();
    s.deps.bootBudget = budget;
    s.setSmoke(smokeWith(0.6));
    const first = await runPipeline(["task-runner"], s.deps, { smoke: true });
    await s.cat.putRecord(
      bootRecordName(s.cat, "task-runner", "x86_64"),
      "{oops",
      [versionOf(first)],
      "task-runner",
    );
    const events = recordingSink();
    s.deps.events = events;
    s.setSmoke(smokeWith(5));
    const r = await runPipeline(["task-runner"], s.deps, { smoke: true });
    assert.equal(r.promoted, true);
    assert.ok(
      events.events.some((e) => e.type === "warn" && /is not a boot record imgtool wrote/.test(e.message)),
    );
  });

  test("without a budget in the deps (or boots in the smoke outcome), nothing is recorded or judged", async () => {
    const s = setup();
    s.setSmoke(smokeWith(100));
    const r = await runPipeline(["task-runner"], s.deps, { smoke: true });
    assert.equal(r.promoted, true);
    assert.deepEqual(r.boots, []);
    assert.deepEqual(await bootRecordsOf(s.cat, versionOf(r)), []);
  });
});
