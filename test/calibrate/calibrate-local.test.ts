// `imgtool calibrate` on the local target, end to end through the compiled CLI: a local instance of the baked
// twin (test/launch/fixtures/local.ts bakes it with the real bake flow), the example fib benchmark run from the
// ruby-bench cache of the task-runner image inside the role's container, 1 worker alone, 2 pinned and 2
// unpinned; the report, its chart, the record shown by `status --version`, and `workers_per_instance:
// calibrated` at launch. Repetitions and benchmarks are few, to keep it short.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { XMLParser } from "fast-xml-parser";
import { recommend, type InstanceCalibration } from "../../src/calibrate/calibrate.js";
import { runCli } from "../support/cli.js";
import { makeLocalFixture, type LocalFixture } from "../launch/fixtures/local.js";

let fx: LocalFixture;
const out = mkdtempSync(path.join(tmpdir(), "imgtool-calibrate-out-"));
const RUN = `calib-${process.pid}`;
const LAUNCH = `calib-l-${process.pid}`;

const imgtool = (args: string[]) => runCli([...args, "--config", fx.configFile], { timeoutMs: 900_000 });

before(async () => {
  fx = await makeLocalFixture({
    configExtra: [
      "calibration:",
      "  benchmarks: [fib]",
      "  repetitions: 2",
      // Generous thresholds: the recommendation is the largest count measured (2); strict ones are checked on
      // the same rows below.
      "  max_slowdown: 50",
      "  max_cv: 5",
    ].join("\n"),
  });
});
after(async () => {
  await fx?.cleanup();
  rmSync(out, { recursive: true, force: true });
});

describe("imgtool calibrate on the local target (real engine)", () => {
  let report: { calibrations: InstanceCalibration[]; recorded: string[]; charts: string[]; runId: string };

  test("every layout measured; the recommendation follows the thresholds; a chart; the run ended", async () => {
    const r = await imgtool([
      "calibrate",
      "--workers",
      "1,2",
      "--channel",
      "latest",
      "--run-id",
      RUN,
      "--out",
      out,
      "--json",
    ]);
    assert.equal(r.code, 0, r.stderr.slice(-4000));
    report = JSON.parse(r.stdout) as typeof report;
    assert.equal(report.calibrations.length, 1);
    const c = report.calibrations[0]!;
    assert.equal(c.instanceType, "c7i.large");
    assert.equal(c.version, "v20261129-000001-cccc0001", "the task-runner twin's version");
    assert.deepEqual(
      c.rows.map((x) => `${x.benchmark} ${x.layout}`),
      ["fib 1 alone", "fib 2 pinned", "fib 2 unpinned"],
    );
    for (const x of c.rows) {
      // Every worker of every repetition reported its iterations (the fixture's harness runs 5).
      assert.ok(x.samples > 0 && x.samples % (x.workers * 2) === 0, `${x.layout}: ${x.samples} samples`);
      assert.ok(x.medianSeconds > 0 && Number.isFinite(x.cv) && x.cv >= 0);
    }
    assert.equal(c.rows[0]!.slowdown, 1);
    assert.equal(c.workerCpus.length, 2);
    assert.notEqual(c.workerCpus[0], c.workerCpus[1], "pinned workers on CPUs of their own");
    assert.deepEqual(c.recommendation, recommend(c.rows, { maxSlowdown: 50, maxCv: 5 }));
    assert.equal(c.recommendation.workers, 2);
    // The same rows against thresholds nothing real meets: 1 worker (always the floor).
    assert.equal(recommend(c.rows, { maxSlowdown: 50, maxCv: 0 }).workers, 1);
    assert.equal(recommend(c.rows, { maxSlowdown: 1, maxCv: 5 }).workers, c.rows[1]!.slowdown <= 1 ? 2 : 1);

    assert.equal(report.charts.length, 1);
    const svg = readFileSync(report.charts[0]!, "utf8");
    assert.ok(new XMLParser().parse(svg).svg !== undefined);
    assert.equal(svg.match(/class="bar"/g)?.length, 3);
    assert.ok(existsSync(report.charts[0]!.replace(/\.svg$/, ".json")));

    const left = await fx.docker.listContainers({ all: true, filters: { label: [`imgtool.run-id=${RUN}`] } });
    assert.deepEqual(left, [], "the calibration's instances are gone");
  });

  test("status --version shows the calibration with the version it measured", async () => {
    const r = await imgtool(["status", "--version", "v20261129-000001-cccc0001", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as {
      calibrations: { instanceType: string; recommendedWorkers: number }[];
    };
    assert.deepEqual(
      doc.calibrations.map((x) => [x.instanceType, x.recommendedWorkers]),
      [["c7i.large", 2]],
    );
    const text = await imgtool(["status", "--version", "v20261129-000001-cccc0001"]);
    assert.match(text.stdout, /calibration c7i\.large \(local, .*\): 2 worker\(s\) per instance/);
  });

  test("workers_per_instance: calibrated launches the recorded count; a type without one is a usage error naming the command", async () => {
    const r = await imgtool([
      "launch",
      "--workers-per-instance",
      "calibrated",
      "--channel",
      "latest",
      "--run-id",
      LAUNCH,
      "--json",
    ]);
    try {
      assert.equal(r.code, 0, r.stderr.slice(-4000));
      const doc = JSON.parse(r.stdout) as { instances: { role: string; workers: { cpus: string }[] }[] };
      const runner = doc.instances.find((i) => i.role === "task-runner")!;
      assert.equal(runner.workers.length, 2);
    } finally {
      await imgtool(["terminate", "--run-id", LAUNCH]);
    }
    const none = await imgtool([
      "launch",
      "--workers-per-instance",
      "calibrated",
      "--instance-types",
      "m7i.large",
      "--channel",
      "latest",
      "--dry-run",
    ]);
    assert.equal(none.code, 2, none.stderr);
    assert.match(
      none.stderr,
      /no calibration is recorded for m7i\.large with task-runner version v20261129-000001-cccc0001/,
    );
    assert.match(none.stderr, /imgtool calibrate --instance-types m7i\.large --channel latest/);
  });
});
