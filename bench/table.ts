// Print the rows that the benchmarks appended to a BENCH_OUT file as one table (bench/run).
import { readFileSync } from "node:fs";
import { printRows, type BenchRow } from "./lib.js";

const rows = readFileSync(process.argv[2]!, "utf8")
  .split("\n")
  .filter(Boolean)
  .map((l) => JSON.parse(l) as BenchRow);
printRows(rows);
