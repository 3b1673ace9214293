/**
 * The pure core of `imgtool calibrate` (issue 12): which layouts a calibration measures, how the instance's
 * output becomes samples, the per benchmark and layout summary (median time, coefficient of variation, slowdown
 * against 1 worker alone) and the recommendation: the largest worker count whose pinned layout stays within the
 * config's `calibration.max_slowdown` and `calibration.max_cv` for every benchmark (1 when none does; the
 * report says so). Workers are pinned at launch, so only pinned layouts are recommended; unpinned ones are
 * shown next to them for comparison.
 */
import { coefficientOfVariation, median, round } from "./stats.js";

/** One way of running a benchmark on the instance: how many at once, pinned one per CPU or not. */
export interface Layout {
  /** "1 alone", "2 pinned", "2 unpinned". */
  name: string;
  workers: number;
  pinned: boolean;
}

export const ALONE = "1 alone";

/** 1 alone, then every count above 1 pinned and unpinned, in ascending order. */
export function layoutsFor(counts: readonly number[]): Layout[] {
  const more = [...new Set(counts)].filter((n) => n > 1).sort((a, b) => a - b);
  return [
    { name: ALONE, workers: 1, pinned: true },
    ...more.flatMap((n) => [
      { name: `${n} pinned`, workers: n, pinned: true },
      { name: `${n} unpinned`, workers: n, pinned: false },
    ]),
  ];
}

/** The default worker counts for an instance with `cores` physical cores: 1, 2, 4, ... and `cores` itself. */
export function defaultCounts(cores: number): number[] {
  const out = new Set<number>([1]);
  for (let n = 2; n < cores; n *= 2) out.add(n);
  out.add(Math.max(1, cores));
  return [...out].sort((a, b) => a - b);
}

/** One run of one benchmark by one worker: its measured iterations, in seconds. */
export interface Sample {
  benchmark: string;
  layout: string;
  repetition: number;
  worker: number;
  times: number[];
}

/** The marker each result line of the on-instance script starts with (./script.ts). */
export const RESULT_MARK = "imgtool-calibrate";

/**
 * The measured iterations of one harness result (RESULT_JSON_PATH): ruby-bench's `bench` list (after its
 * warm-up), or a stand-in harness's `times`.
 */
export function resultTimes(doc: unknown): number[] | undefined {
  if (!doc || typeof doc !== "object") return undefined;
  const d = doc as { bench?: unknown; times?: unknown };
  const list = Array.isArray(d.bench) ? d.bench : Array.isArray(d.times) ? d.times : undefined;
  if (!list || list.length === 0 || !list.every((t) => typeof t === "number" && t > 0)) return undefined;
  return list as number[];
}

/**
 * The samples in the output of one layout's script: lines `imgtool-calibrate <repetition> <worker> <json>`.
 * Throws when a line's result is unreadable (the harness wrote something else).
 */
export function parseSamples(stdout: string, benchmark: string, layout: string): Sample[] {
  const out: Sample[] = [];
  for (const line of stdout.split("\n")) {
    const m = new RegExp(`^${RESULT_MARK} (\\d+) (\\d+) (.*)$`).exec(line.trim());
    if (!m) continue;
    let doc: unknown;
    try {
      doc = JSON.parse(m[3]!);
    } catch {
      doc = undefined;
    }
    const times = resultTimes(doc);
    if (!times) {
      throw new Error(
        `${benchmark} (${layout}): the harness's result is not a list of iteration times: ${m[3]!.slice(0, 200)}`,
      );
    }
    out.push({ benchmark, layout, repetition: Number(m[1]), worker: Number(m[2]), times });
  }
  return out;
}

/** One benchmark in one layout. */
export interface Row {
  benchmark: string;
  layout: string;
  workers: number;
  pinned: boolean;
  /** Iteration times measured (every worker, every repetition). */
  samples: number;
  medianSeconds: number;
  /** Coefficient of variation of the iteration times. */
  cv: number;
  /** Median against the median of 1 worker alone (1 = as fast). */
  slowdown: number;
}

/** Per benchmark and layout: median, CV, slowdown against 1 alone. Every iteration of every run is a sample. */
export function summarise(
  samples: readonly Sample[],
  layouts: readonly Layout[],
  benchmarks: string[],
): Row[] {
  const rows: Row[] = [];
  for (const benchmark of benchmarks) {
    const times = (layout: string) =>
      samples.filter((s) => s.benchmark === benchmark && s.layout === layout).flatMap((s) => s.times);
    const base = median(times(ALONE));
    for (const l of layouts) {
      const t = times(l.name);
      if (t.length === 0) continue;
      const m = median(t);
      rows.push({
        benchmark,
        layout: l.name,
        workers: l.workers,
        pinned: l.pinned,
        samples: t.length,
        medianSeconds: m,
        cv: coefficientOfVariation(t),
        slowdown: base > 0 ? m / base : NaN,
      });
    }
  }
  return rows;
}

export interface Thresholds {
  maxSlowdown: number;
  maxCv: number;
}

export interface Recommendation {
  workers: number;
  /** The pinned worker counts that stayed within both thresholds for every benchmark. */
  within: number[];
  /** Why each other count was not recommended. */
  rejected: { workers: number; why: string }[];
}

/** The largest worker count whose pinned layout stays within both thresholds for every benchmark; else 1. */
export function recommend(rows: readonly Row[], t: Thresholds): Recommendation {
  const counts = [...new Set(rows.filter((r) => r.pinned).map((r) => r.workers))].sort((a, b) => a - b);
  const within: number[] = [];
  const rejected: { workers: number; why: string }[] = [];
  for (const n of counts) {
    const problems = rows
      .filter((r) => r.pinned && r.workers === n)
      .flatMap((r) => [
        ...(!(r.slowdown <= t.maxSlowdown)
          ? [`${r.benchmark} slowdown ${r.slowdown.toFixed(3)} > ${t.maxSlowdown}`]
          : []),
        ...(!(r.cv <= t.maxCv) ? [`${r.benchmark} CV ${r.cv.toFixed(4)} > ${t.maxCv}`] : []),
      ]);
    if (problems.length) rejected.push({ workers: n, why: problems.join("; ") });
    else within.push(n);
  }
  return { workers: within.length ? Math.max(...within) : 1, within, rejected };
}

/** The calibration of one instance type: what `imgtool calibrate` reports and (compacted) records. */
export interface InstanceCalibration {
  instanceType: string;
  /** The task-runner version (its AMI's, or twin's) that was launched. */
  version: string;
  image: string;
  instanceId: string;
  /** The CPUs the pinned workers used, in order. */
  workerCpus: string[];
  layouts: Layout[];
  rows: Row[];
  thresholds: Thresholds;
  recommendation: Recommendation;
}

/** SSM's standard tier holds 4 KB: the record keeps the rows while they fit, else the recommendation only. */
export const RECORD_LIMIT = 4096;

export interface CalibrationRecord {
  version: string;
  role: "task-runner";
  instanceType: string;
  target: string;
  calibratedAt: string;
  recommendedWorkers: number;
  within: number[];
  thresholds: Thresholds;
  benchmarks: string[];
  workerCpus: string[];
  /** [benchmark, layout, median seconds, cv, slowdown] per row; absent when they did not fit. */
  rows?: [string, string, number, number, number][];
}

/** The record of a calibration as the catalog keeps it: compact JSON, at most {@link RECORD_LIMIT} bytes. */
export function toRecord(c: InstanceCalibration, target: string, at: Date): CalibrationRecord {
  const rec: CalibrationRecord = {
    version: c.version,
    role: "task-runner",
    instanceType: c.instanceType,
    target,
    calibratedAt: at.toISOString(),
    recommendedWorkers: c.recommendation.workers,
    within: c.recommendation.within,
    thresholds: c.thresholds,
    benchmarks: [...new Set(c.rows.map((r) => r.benchmark))],
    workerCpus: c.workerCpus,
    rows: c.rows.map((r) => [
      r.benchmark,
      r.layout,
      round(r.medianSeconds, 6),
      round(r.cv, 4),
      round(r.slowdown, 3),
    ]),
  };
  if (Buffer.byteLength(JSON.stringify(rec)) > RECORD_LIMIT) delete rec.rows;
  return rec;
}

/** A record read back from the catalog, checked; undefined when it is not one. */
export function parseRecord(text: string): CalibrationRecord | undefined {
  try {
    const r = JSON.parse(text) as Partial<CalibrationRecord>;
    if (typeof r.version !== "string" || typeof r.instanceType !== "string") return undefined;
    if (!Number.isInteger(r.recommendedWorkers) || r.recommendedWorkers! < 1) return undefined;
    return r as CalibrationRecord;
  } catch {
    return undefined;
  }
}
