// `packer init` one at a time (src/bake/bake.ts oneAtATime): the roles bake in parallel, and two plugin installs
// into the one plugins folder at once break each other. Timing-free: each task records when it starts and ends
// by the order of events, not by the clock.
import { test } from "node:test";
import assert from "node:assert/strict";
import { oneAtATime } from "../../src/bake/bake.js";

/** A task that logs its start, waits for `release`, then logs its end (or fails). */
function gated(log: string[], name: string, fail = false) {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const work = async () => {
    log.push(`${name} start`);
    await gate;
    log.push(`${name} end`);
    if (fail) throw new Error(`${name} failed`);
    return name;
  };
  return { work, release };
}

const tick = () => new Promise((r) => setImmediate(r));

test("under one key, a task starts only after the one before it settled, failed or not; other keys run beside it", async () => {
  const log: string[] = [];
  const packer = {};
  const other = {};
  const a = gated(log, "a", true);
  const b = gated(log, "b");
  const c = gated(log, "c");
  const pa = oneAtATime(packer, a.work);
  const pb = oneAtATime(packer, b.work);
  const pc = oneAtATime(other, c.work);
  await tick();
  assert.deepEqual(log, ["a start", "c start"], "b waits for a; c (another key) does not");
  b.release();
  await tick();
  assert.deepEqual(log, ["a start", "c start"], "b's own gate is not what holds it");
  a.release();
  await assert.rejects(pa, /a failed/);
  assert.equal(await pb, "b", "a's failure does not stop b");
  assert.deepEqual(log, ["a start", "c start", "a end", "b start", "b end"]);
  c.release();
  assert.equal(await pc, "c");
});
