/** What `imgtool calibrate` shows a person: per instance type, a table of benchmark and layout, and the advice. */
import type { CalibrateResult } from "../../calibrate/run.js";
import { table } from "../output.js";

const pct = (n: number) => (Number.isFinite(n) ? `${(n * 100).toFixed(2)}%` : "-");

export function humanCalibration(r: CalibrateResult): string {
  if (r.dryRun) {
    return [
      `Would calibrate on ${r.target} (run ${r.runId}, label ${r.label}): one task runner per instance type, then end the run.`,
      table(
        ["INSTANCE TYPE", "VERSION", "WORKERS", "IMAGE"],
        (r.planned ?? []).map((p) => [p.instanceType, p.version, String(p.workers), p.image]),
      ),
    ].join("\n");
  }
  return r.calibrations
    .map((c) =>
      [
        `${c.instanceType} (${c.version}, ${c.instanceId}; pinned on CPU ${c.workerCpus.join(", ")})`,
        table(
          ["BENCHMARK", "LAYOUT", "SAMPLES", "MEDIAN", "CV", "SLOWDOWN"],
          c.rows.map((x) => [
            x.benchmark,
            x.layout,
            String(x.samples),
            `${(x.medianSeconds * 1000).toFixed(3)} ms`,
            pct(x.cv),
            Number.isFinite(x.slowdown) ? `${x.slowdown.toFixed(3)}x` : "-",
          ]),
        ),
        `recommended: ${c.recommendation.workers} worker(s) per ${c.instanceType} (max slowdown ${c.thresholds.maxSlowdown}x, max CV ${pct(c.thresholds.maxCv)})`,
        ...c.recommendation.rejected.map((x) => `  not ${x.workers}: ${x.why}`),
      ].join("\n"),
    )
    .join("\n\n");
}
