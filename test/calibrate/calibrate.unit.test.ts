// The pure core of `imgtool calibrate`: statistics, layouts, the instance's output read back, the summary, the
// recommendation against the thresholds, the record's size, the SVG chart (read back by a real XML parser) and
// the on-instance script (run by a real sh against a stand-in `docker` that logs what it was asked).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { XMLParser } from "fast-xml-parser";
import {
  ALONE,
  RECORD_LIMIT,
  defaultCounts,
  layoutsFor,
  parseRecord,
  parseSamples,
  recommend,
  resultTimes,
  summarise,
  toRecord,
  type InstanceCalibration,
  type Row,
  type Sample,
} from "../../src/calibrate/calibrate.js";
import { layoutScript, quietScript } from "../../src/calibrate/script.js";
import { coefficientOfVariation, mean, median, stddev } from "../../src/calibrate/stats.js";
import { calibrationSvg, escapeXml } from "../../src/calibrate/svg.js";

const close = (a: number, b: number, eps = 1e-9) => assert.ok(Math.abs(a - b) < eps, `${a} != ${b}`);

describe("statistics", () => {
  test("median, mean, sample stddev, coefficient of variation", () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.ok(Number.isNaN(median([])));
    assert.equal(mean([1, 2, 3, 4]), 2.5);
    close(stddev([2, 4, 4, 4, 5, 5, 7, 9]), Math.sqrt(32 / 7));
    close(coefficientOfVariation([2, 4, 4, 4, 5, 5, 7, 9]), Math.sqrt(32 / 7) / 5);
    assert.equal(coefficientOfVariation([5]), 0);
    assert.equal(coefficientOfVariation([1, 1, 1]), 0);
  });
});

describe("layouts", () => {
  test("1 alone first, then every count above 1 pinned and unpinned, ascending, without repeats", () => {
    assert.deepEqual(
      layoutsFor([4, 2, 1, 2]).map((l) => l.name),
      [ALONE, "2 pinned", "2 unpinned", "4 pinned", "4 unpinned"],
    );
    assert.deepEqual(layoutsFor([1]), [{ name: ALONE, workers: 1, pinned: true }]);
  });

  test("default counts: 1, 2, 4, ... and the physical cores", () => {
    assert.deepEqual(defaultCounts(1), [1]);
    assert.deepEqual(defaultCounts(2), [1, 2]);
    assert.deepEqual(defaultCounts(6), [1, 2, 4, 6]);
    assert.deepEqual(defaultCounts(8), [1, 2, 4, 8]);
  });
});

describe("the instance's output", () => {
  test("ruby-bench's bench list and a stand-in's times are read; anything else is not", () => {
    assert.deepEqual(resultTimes({ warmup: [9], bench: [0.1, 0.2] }), [0.1, 0.2]);
    assert.deepEqual(resultTimes({ times: [0.3] }), [0.3]);
    assert.equal(resultTimes({ bench: [] }), undefined);
    assert.equal(resultTimes({ bench: ["x"] }), undefined);
    assert.equal(resultTimes(null), undefined);
  });

  test("samples from marked lines; other lines ignored; an unreadable result fails naming the layout", () => {
    const out = [
      "noise",
      'imgtool-calibrate 1 1 {"bench":[0.1,0.2]}',
      'imgtool-calibrate 1 2 {"times":[0.3]}',
      'imgtool-calibrate 2 1 {"bench":[0.4]}',
    ].join("\n");
    assert.deepEqual(parseSamples(out, "fib", "2 pinned"), [
      { benchmark: "fib", layout: "2 pinned", repetition: 1, worker: 1, times: [0.1, 0.2] },
      { benchmark: "fib", layout: "2 pinned", repetition: 1, worker: 2, times: [0.3] },
      { benchmark: "fib", layout: "2 pinned", repetition: 2, worker: 1, times: [0.4] },
    ]);
    assert.throws(() => parseSamples("imgtool-calibrate 1 1 oops", "fib", "1 alone"), /fib \(1 alone\)/);
  });
});

const sample = (layout: string, times: number[], benchmark = "fib"): Sample => ({
  benchmark,
  layout,
  repetition: 1,
  worker: 1,
  times,
});

describe("summary and recommendation", () => {
  const layouts = layoutsFor([1, 2, 4]);
  const samples = [
    sample(ALONE, [1.0, 1.0, 1.02]),
    sample("2 pinned", [1.05, 1.05, 1.06]),
    sample("2 unpinned", [1.3, 1.0, 1.6]),
    sample("4 pinned", [1.5, 1.5, 1.5]),
    sample("4 unpinned", [1.6, 1.6, 1.6]),
  ];
  const rows = summarise(samples, layouts, ["fib"]);

  test("per layout: samples, median, CV and slowdown against 1 alone", () => {
    assert.deepEqual(
      rows.map((r) => r.layout),
      [ALONE, "2 pinned", "2 unpinned", "4 pinned", "4 unpinned"],
    );
    const two = rows.find((r) => r.layout === "2 pinned")!;
    assert.equal(two.samples, 3);
    assert.equal(two.medianSeconds, 1.05);
    close(two.slowdown, 1.05);
    assert.equal(rows[0]!.slowdown, 1);
    close(rows.find((r) => r.layout === "4 pinned")!.cv, 0);
    assert.ok(rows.find((r) => r.layout === "2 unpinned")!.cv > 0.2);
  });

  test("the largest pinned count within both thresholds; unpinned layouts never count", () => {
    assert.equal(recommend(rows, { maxSlowdown: 1.1, maxCv: 0.05 }).workers, 2);
    assert.equal(recommend(rows, { maxSlowdown: 2, maxCv: 0.05 }).workers, 4);
    const strict = recommend(rows, { maxSlowdown: 1.01, maxCv: 0.05 });
    assert.equal(strict.workers, 1);
    assert.deepEqual(strict.within, [1]);
    assert.match(strict.rejected.find((r) => r.workers === 2)!.why, /fib slowdown 1\.050 > 1\.01/);
  });

  test("a CV over the threshold rejects a count; every benchmark must pass; none passing: 1", () => {
    const noisy: Row[] = rows.map((r) => (r.layout === "4 pinned" ? { ...r, cv: 0.2 } : r));
    const r = recommend(noisy, { maxSlowdown: 2, maxCv: 0.05 });
    assert.equal(r.workers, 2);
    assert.match(r.rejected[0]!.why, /fib CV 0\.2000 > 0\.05/);
    const two = summarise(
      [...samples, sample(ALONE, [1], "nbody"), sample("2 pinned", [3], "nbody")],
      layouts,
      ["fib", "nbody"],
    );
    assert.equal(recommend(two, { maxSlowdown: 1.1, maxCv: 0.05 }).workers, 1, "nbody is 3x slower with 2");
    const none = recommend(
      rows.map((x) => ({ ...x, cv: 1 })),
      { maxSlowdown: 9, maxCv: 0.05 },
    );
    assert.equal(none.workers, 1);
    assert.deepEqual(none.within, []);
  });
});

function calibration(rows: Row[], over: Partial<InstanceCalibration> = {}): InstanceCalibration {
  return {
    instanceType: "c7i.large",
    version: "v20261129-000001-cccc0001",
    image: "127.0.0.1:5000/x/task-runner@sha256:" + "a".repeat(64),
    instanceId: "i-1",
    workerCpus: ["0", "1"],
    layouts: layoutsFor([1, 2]),
    rows,
    thresholds: { maxSlowdown: 1.1, maxCv: 0.05 },
    recommendation: recommend(rows, { maxSlowdown: 1.1, maxCv: 0.05 }),
    ...over,
  };
}

describe("the record", () => {
  const rows = summarise([sample(ALONE, [1, 1.01]), sample("2 pinned", [1.02, 1.03])], layoutsFor([2]), [
    "fib",
  ]);

  test("compact, read back as it was written", () => {
    const rec = toRecord(calibration(rows), "local", new Date("2026-12-03T10:00:00Z"));
    assert.equal(rec.recommendedWorkers, 2);
    assert.equal(rec.rows!.length, 2);
    assert.deepEqual(parseRecord(JSON.stringify(rec)), rec);
    assert.equal(parseRecord("{}"), undefined);
    assert.equal(parseRecord("not json"), undefined);
  });

  test("too many rows for SSM's 4 KB: the rows are left out, the recommendation kept", () => {
    const many = Array.from({ length: 80 }, (_, i) => ({ ...rows[0]!, benchmark: `benchmark_${i}` }));
    const c = calibration(many, { recommendation: { workers: 2, within: [1, 2], rejected: [] } });
    const rec = toRecord(c, "aws", new Date());
    assert.equal(rec.rows, undefined);
    assert.ok(Buffer.byteLength(JSON.stringify(rec)) <= RECORD_LIMIT);
    assert.equal(rec.recommendedWorkers, 2);
    assert.deepEqual(rec.within, [1, 2]);
  });
});

describe("the SVG chart", () => {
  test("one bar per layout and benchmark, the threshold line, hostile names escaped; valid XML", () => {
    const rows = summarise(
      [
        sample(ALONE, [1]),
        sample("2 pinned", [1.2]),
        sample("2 unpinned", [1.4]),
        sample(ALONE, [2], "<x&'\">"),
      ],
      layoutsFor([2]),
      ["fib", "<x&'\">"],
    );
    const svg = calibrationSvg(calibration(rows));
    const doc = new XMLParser({ ignoreAttributes: false }).parse(svg) as { svg: unknown };
    assert.ok(doc.svg, "parses as XML");
    assert.equal(svg.match(/class="bar"/g)?.length, 4);
    assert.equal(svg.match(/class="threshold"/g)?.length, 2);
    assert.ok(svg.includes(escapeXml("<x&'\">")) && !svg.includes("<x&'\">"));
    assert.match(svg, /recommended: 1 worker/);
  });
});

describe("the on-instance scripts (real sh, a stand-in docker)", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "imgtool-calib-sh-"));
  const log = path.join(dir, "docker.log");
  writeFileSync(
    path.join(dir, "docker"),
    [
      "#!/bin/sh",
      `echo "$*" >> '${log}'`,
      'case "$1" in run) ;; *) exit 0 ;; esac',
      'for a in "$@"; do case "$a" in nobench) echo "no benchmark nobench in /opt/ruby-bench" >&2; exit 3 ;; esac; done',
      "echo harness output",
      `printf '\\n{"bench":[0.5,0.25]}\\n'`,
    ].join("\n"),
  );
  chmodSync(path.join(dir, "docker"), 0o755);
  const sh = (lines: string[]) => {
    try {
      return {
        code: 0,
        out: execFileSync("sh", ["-c", lines.join("\n")], {
          env: { ...process.env, PATH: `${dir}:${process.env.PATH}` },
          encoding: "utf8",
        }),
      };
    } catch (e) {
      return { code: (e as { status: number }).status, out: String((e as { stdout: string }).stdout) };
    }
  };
  const base = {
    image: "reg/x@sha256:" + "b".repeat(64),
    benchmark: "fib",
    cpus: ["0", "1", "2"],
    repetitions: 2,
    warmupIterations: 1,
    iterations: 2,
  };

  test("pinned: every worker at once on its own CPU, every repetition; each result on a marked line", () => {
    writeFileSync(log, "");
    const r = sh(layoutScript({ ...base, layout: { name: "2 pinned", workers: 2, pinned: true } }));
    assert.equal(r.code, 0, r.out);
    const samples = parseSamples(r.out, "fib", "2 pinned");
    assert.equal(samples.length, 4);
    assert.deepEqual(samples[0]!.times, [0.5, 0.25]);
    // (each run's arguments span lines: the in-container script is one of them)
    const runs = readFileSync(log, "utf8")
      .split("\n")
      .filter((l) => l.startsWith("run "));
    assert.equal(runs.length, 4);
    assert.equal(runs.filter((l) => l.includes("--cpuset-cpus 0 ")).length, 2);
    assert.equal(runs.filter((l) => l.includes("--cpuset-cpus 1 ")).length, 2);
    assert.ok(runs.every((l) => l.includes("--network none") && l.includes("MIN_BENCH_ITRS=2")));
    assert.ok(runs.every((l) => l.includes(base.image)));
  });

  test("unpinned: no CPU set; a failing run fails the script with its error", () => {
    writeFileSync(log, "");
    const r = sh(layoutScript({ ...base, layout: { name: "3 unpinned", workers: 3, pinned: false } }));
    assert.equal(r.code, 0, r.out);
    assert.equal(parseSamples(r.out, "fib", "3 unpinned").length, 6);
    assert.ok(!readFileSync(log, "utf8").includes("--cpuset-cpus"));
    const bad = sh(
      layoutScript({ ...base, benchmark: "nobench", layout: { name: ALONE, workers: 1, pinned: true } }),
    );
    assert.equal(bad.code, 1);
    assert.match(bad.out, /imgtool-calibrate-failed 1 1 exit 3/);
    assert.match(bad.out, /no benchmark nobench/);
  });

  test("more pinned workers than CPUs is refused before anything runs; quiet stops the named workers", () => {
    assert.throws(
      () => layoutScript({ ...base, layout: { name: "4 pinned", workers: 4, pinned: true } }),
      /needs 4 CPUs/,
    );
    writeFileSync(log, "");
    const q = sh(quietScript(["task-runner-1", "task-runner-2"]));
    assert.match(q.out, /imgtool-calibrate quiet/);
    assert.match(readFileSync(log, "utf8"), /^stop --time 2 task-runner-1 task-runner-2$/m);
  });
});
