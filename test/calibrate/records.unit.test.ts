// Calibrations in the catalog, on both backends (the local SQLite database and SSM through the real SDK to the
// AWS stand-in): recorded next to the version they measured, found by version and instance type, invisible to the
// artefact views; `workers_per_instance: calibrated` takes them, or names the command that records them; the
// config's calibration keys and where `calibrated` is allowed.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { CalibrationRecord } from "../../src/calibrate/calibrate.js";
import { calibrationFor, calibrationsOf, recordCalibration } from "../../src/calibrate/records.js";
import { calibratedWorkers } from "../../src/calibrate/workers.js";
import { parseConfig } from "../../src/config/load.js";
import { UsageError } from "../../src/errors.js";
import type { LaunchOptions, LaunchResult } from "../../src/launch/types.js";
import { backends, meta, newCatalog, useBackends } from "../catalog/backends.js";

useBackends();

const V1 = "v20261129-000001-cccc0001";
const V2 = "v20261130-000001-cccc0002";

const rec = (version: string, instanceType: string, workers: number): CalibrationRecord => ({
  version,
  role: "task-runner",
  instanceType,
  target: "local",
  calibratedAt: "2026-12-03T10:00:00.000Z",
  recommendedWorkers: workers,
  within: Array.from({ length: workers }, (_, i) => i + 1),
  thresholds: { maxSlowdown: 1.1, maxCv: 0.05 },
  benchmarks: ["fib"],
  workerCpus: ["0", "1"],
  rows: [["fib", "1 alone", 0.001, 0.01, 1]],
});

for (const backend of backends) {
  describe(`calibration records on ${backend.name}`, () => {
    test("recorded per version and instance type; a recalibration of a version replaces its answer", async () => {
      const cat = newCatalog(backend.store());
      await cat.publish({ role: "task-runner", kind: "image" }, "reg/x@sha256:" + "c".repeat(64), meta(1));
      await recordCalibration(cat, rec(V1, "c7i.large", 2));
      await recordCalibration(cat, rec(V1, "c7g.large", 1));
      await recordCalibration(cat, rec(V2, "c7i.large", 3));
      assert.equal((await calibrationFor(cat, V1, "c7i.large"))?.recommendedWorkers, 2);
      assert.equal((await calibrationFor(cat, V2, "c7i.large"))?.recommendedWorkers, 3);
      assert.equal(await calibrationFor(cat, V2, "c7g.large"), undefined);
      await recordCalibration(cat, rec(V1, "c7i.large", 4));
      assert.equal((await calibrationFor(cat, V1, "c7i.large"))?.recommendedWorkers, 4);
      const of1 = await calibrationsOf(cat, V1);
      assert.deepEqual(of1.map((r) => `${r.instanceType}=${r.recommendedWorkers}`).sort(), [
        "c7g.large=1",
        "c7i.large=4",
      ]);
      // Not artefacts: status lists the image only.
      assert.deepEqual(
        (await cat.status()).map((r) => r.name),
        [`${cat.prefix}/task-runner/image`],
      );
    });
  });
}

describe("workers_per_instance: calibrated", () => {
  const opts: LaunchOptions = {
    target: "local",
    runId: "r1",
    taskRunners: 1,
    instanceTypes: ["c7i.large", "c7g.large"],
    spot: false,
    workersPerInstance: 1,
    reuseOrchestrator: false,
    keepOnFailure: false,
    wait: true,
    dryRun: false,
    label: "stable",
  };
  const plan = (versions: Record<string, string>) => async (o: LaunchOptions) => {
    assert.equal(o.dryRun, true, "the versions come from a dry run of the launch");
    return {
      plan: { taskRunners: o.instanceTypes.map((t) => ({ instanceType: t, amiVersion: versions[t]! })) },
    } as unknown as LaunchResult;
  };

  test("each type takes its own recorded count for the version its plan launches", async () => {
    const cat = newCatalog(backends[0]!.store());
    await recordCalibration(cat, rec(V1, "c7i.large", 2));
    await recordCalibration(cat, rec(V2, "c7g.large", 3));
    const got = await calibratedWorkers(opts, {
      plan: plan({ "c7i.large": V1, "c7g.large": V2 }),
      catalog: async () => cat,
    });
    assert.deepEqual(got, { "c7i.large": 2, "c7g.large": 3 });
  });

  test("no calibration for a type's version: a usage error naming the type, the version and the command", async () => {
    const cat = newCatalog(backends[0]!.store());
    await recordCalibration(cat, rec(V1, "c7i.large", 2));
    const err = await calibratedWorkers(
      { ...opts, target: "aws" },
      { plan: plan({ "c7i.large": V2, "c7g.large": V1 }), catalog: async () => cat },
    ).then(
      () => assert.fail("should fail"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof UsageError);
    assert.match(
      err.message,
      /c7i\.large with task-runner version v20261130-000001-cccc0002, c7g\.large with task-runner version v20261129/,
    );
    assert.match(
      err.fix ?? "",
      /imgtool calibrate --instance-types c7i\.large,c7g\.large --channel stable --target aws/,
    );
  });
});

describe("config", () => {
  test("calibration defaults; calibrated is a task-runner choice only", () => {
    const c = parseConfig("roles:\n  task-runner:\n    workers_per_instance: calibrated\n", {
      baseDir: "/tmp",
    });
    assert.deepEqual(c.errors, []);
    assert.equal(c.config!.roles["task-runner"].workers_per_instance, "calibrated");
    assert.deepEqual(c.config!.calibration, {
      benchmarks: ["fib"],
      repetitions: 5,
      warmup_iterations: 1,
      iterations: 5,
      max_slowdown: 1.1,
      max_cv: 0.05,
      timeout_seconds: 1800,
    });
    const o = parseConfig("roles:\n  orchestrator:\n    workers_per_instance: calibrated\n", {
      baseDir: "/tmp",
    });
    assert.deepEqual(o.errors, [
      'roles.orchestrator.workers_per_instance: "calibrated" is not allowed; use "auto" or a whole number from 1 to 192',
    ]);
  });

  test("thresholds and lists are checked, naming the key", () => {
    const c = parseConfig("calibration:\n  max_slowdown: 0.5\n  benchmarks: ['a b']\n  workers: [0]\n", {
      baseDir: "/tmp",
    });
    assert.equal(c.config, undefined);
    assert.ok(
      c.errors.some((e) => e.startsWith("calibration.max_slowdown:")),
      c.errors.join("\n"),
    );
    assert.ok(
      c.errors.some((e) => e.startsWith("calibration.benchmarks[0]:")),
      c.errors.join("\n"),
    );
    assert.ok(
      c.errors.some((e) => e.startsWith("calibration.workers[0]:")),
      c.errors.join("\n"),
    );
  });
});
