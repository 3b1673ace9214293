// The launcher's reading of the workers' CPU state in an aws ready record (src/launch/cpu-record.ts): what it
// cannot make out (an image baked before imgtool-cpu-state --record, a damaged record) is left out, never guessed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { workerCpuStates } from "../../src/launch/cpu-record.js";

const RECORD = {
  siblings: "3 -",
  siblingIdle: "1",
  isolated: "1",
  governors: { performance: "1", unknown: "2" },
  turbo: "off",
};

test("each worker's state from the compact record, in worker order", () => {
  assert.deepEqual(workerCpuStates(["1", "2"], RECORD), [
    { cpu: 1, sibling: "3", siblingIdle: true, isolated: true, governor: "performance", turbo: "off" },
    { cpu: 2, sibling: null, siblingIdle: null, isolated: false, governor: "unknown", turbo: "off" },
  ]);
});

test("no record, or one it cannot make out: no CPU state at all", () => {
  for (const bad of [
    null,
    undefined,
    "x",
    { ...RECORD, siblings: "3" },
    { ...RECORD, turbo: "fast" },
    { ...RECORD, isolated: "1-x" },
    { ...RECORD, governors: { performance: 1 } },
    { ...RECORD, siblings: "3 y" },
  ]) {
    assert.equal(workerCpuStates(["1", "2"], bad), undefined, JSON.stringify(bad));
  }
});
