/**
 * Shared by the benchmarks: medians and spread over repeated runs, and one row format. With BENCH_OUT set,
 * rows are appended there as JSON lines (bench/run prints them all as one table); otherwise printed.
 */
import { appendFileSync } from "node:fs";

export interface BenchRow {
  bench: string;
  case: string;
  runs: number;
  /** Seconds; null for rows that count something instead of timing it. */
  median: number | null;
  min: number | null;
  max: number | null;
  /** Something to compare with: a goal, a baseline, a count. */
  note: string;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function row(
  bench: string,
  name: string,
  secs: number[],
  note: string,
): BenchRow & { median: number; min: number; max: number } {
  return {
    bench,
    case: name,
    runs: secs.length,
    median: median(secs),
    min: Math.min(...secs),
    max: Math.max(...secs),
    note,
  };
}

export function fmt(s: number | null): string {
  if (s === null) return "-";
  return s < 0.1 ? `${(s * 1000).toFixed(1)} ms` : s < 10 ? `${s.toFixed(3)} s` : `${s.toFixed(1)} s`;
}

export function printRows(rows: BenchRow[]): void {
  const table = [
    ["bench", "case", "runs", "median", "min", "max", "note"],
    ...rows.map((r) => [r.bench, r.case, String(r.runs), fmt(r.median), fmt(r.min), fmt(r.max), r.note]),
  ];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((t) => t[i]!.length)));
  for (const t of table)
    console.log(
      t
        .map((c, i) => c.padEnd(widths[i]!))
        .join("  ")
        .trimEnd(),
    );
}

/** Report rows: to BENCH_OUT for bench/run; otherwise as a table (unless the bench printed its own). */
export function report(rows: BenchRow[], opts: { printed?: boolean } = {}): void {
  if (process.env.BENCH_OUT) {
    for (const r of rows) appendFileSync(process.env.BENCH_OUT, `${JSON.stringify(r)}\n`);
  } else if (!opts.printed) printRows(rows);
}
