// How the local target splits this machine's CPUs between its instances (allocateLocalCpus, pure): task runners
// first, as many CPUs as their workers; the orchestrator its workers' CPUs, or, as a Compose stack (no pinned
// workers; on aws its instance has every vCPU of its type), every CPU the task runners leave.
import { test } from "node:test";
import assert from "node:assert/strict";
import { allocateLocalCpus } from "../../src/launch/plan.js";

/** A machine of `n` CPUs, one per core (no SMT). */
const machine = (n: number) => ({ allowed: Array.from({ length: n }, (_, i) => i), siblings: new Map() });

test("an orchestrator with workers: its workers' CPUs, after the task runners'", () => {
  const r = allocateLocalCpus(machine(4), { count: 1, workers: 2 }, { workers: "auto" });
  assert.deepEqual(r.runner, [[0, 1]]);
  assert.deepEqual(r.orchestrator, [2]);
  assert.deepEqual(r.warnings, []);
});

test("a Compose stack orchestrator: every CPU the task runners leave", () => {
  // Alone (the stack bench, a launch with --task-runners 0): the whole machine, as the seed's flow has it.
  assert.deepEqual(
    allocateLocalCpus(machine(2), { count: 0, workers: "auto" }, { workers: "auto", stack: true }),
    {
      runner: [],
      orchestrator: [0, 1],
      warnings: [],
    },
  );
  const beside = allocateLocalCpus(machine(4), { count: 1, workers: 1 }, { workers: "auto", stack: true });
  assert.deepEqual(beside.runner, [[0]]);
  assert.deepEqual(beside.orchestrator, [1, 2, 3]);
  // Nothing left: it shares the last CPU with a worker, and the plan says so.
  const full = allocateLocalCpus(machine(2), { count: 1, workers: "auto" }, { workers: "auto", stack: true });
  assert.deepEqual(full.runner, [[0, 1]]);
  assert.deepEqual(full.orchestrator, [1]);
  assert.match(
    full.warnings.join("\n"),
    /the orchestrator shares CPU 1 \(or its core\) with a task-runner worker/,
  );
  // Task runners that already share CPUs leave none: one CPU, shared, said so (not the ones after the wrap).
  const wrapped = allocateLocalCpus(
    machine(4),
    { count: 5, workers: "auto" },
    { workers: "auto", stack: true },
  );
  assert.deepEqual(wrapped.runner, [[0], [1], [2], [3], [0]]);
  assert.deepEqual(wrapped.orchestrator, [3]);
  assert.match(wrapped.warnings.join("\n"), /task-runner instances share CPUs/);
  assert.match(wrapped.warnings.join("\n"), /the orchestrator shares CPU 3/);
});

test("a Compose stack on an SMT machine: never a sibling of a worker's CPU", () => {
  // 4 cores, 8 threads: CPU i and i+4 are one core's two threads.
  const smt = {
    allowed: [0, 1, 2, 3, 4, 5, 6, 7],
    siblings: new Map([0, 1, 2, 3, 4, 5, 6, 7].map((c) => [c, [c % 4, (c % 4) + 4]])),
  };
  const r = allocateLocalCpus(smt, { count: 2, workers: 1 }, { workers: "auto", stack: true });
  assert.deepEqual(r.runner, [[0], [1]]);
  assert.deepEqual(r.orchestrator, [2, 3, 6, 7], "cores 2 and 3, both threads; not 4 or 5");
  assert.deepEqual(r.warnings, []);
  // Every core has a worker: the stack shares, and the plan says so.
  const busy = allocateLocalCpus(smt, { count: 4, workers: 1 }, { workers: "auto", stack: true });
  assert.deepEqual(busy.runner, [[0], [1], [2], [3]]);
  assert.deepEqual(busy.orchestrator, [7]);
  assert.match(busy.warnings.join("\n"), /the orchestrator shares CPU 7 \(or its core\)/);
});
