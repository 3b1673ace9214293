// The children imgtool spawns are registered so that an interrupt sent to imgtool alone reaches them: real
// `sleep` processes (and a shell leading its own process group with a `sleep` below it) are spawned, the run's
// AbortSignal is aborted, and the processes must be gone. Polls are bounded; nothing waits on the clock.
import { afterEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { once } from "node:events";
import { exec } from "../src/exec.js";
import {
  interruptChildren,
  interruptChildrenOn,
  killAllChildren,
  pendingWork,
  registerChild,
  registerPending,
} from "../src/process-group.js";

/** Alive: /proc has it and it is not a zombie (a reparented child may wait for a reaper that never comes). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** Wait until `pid` is gone: polled, bounded (5 s), never a fixed sleep to sync on. */
async function gone(pid: number): Promise<boolean> {
  const deadline = Date.now() + 5_000;
  while (alive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setImmediate(r));
  }
  return true;
}

/** The first line a child writes on stdout. */
async function firstLine(child: ChildProcess): Promise<string> {
  let text = "";
  for await (const chunk of child.stdout!) {
    text += String(chunk);
    if (text.includes("\n")) return text.split("\n")[0]!;
  }
  throw new Error(`the child ended before writing a line: ${JSON.stringify(text)}`);
}

const spawned: ChildProcess[] = [];
afterEach(() => {
  killAllChildren();
  for (const c of spawned.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});

describe("children of imgtool (src/process-group.ts)", () => {
  test("aborting the run's signal stops every registered sleep; an exited child is forgotten", async () => {
    const ac = new AbortController();
    interruptChildrenOn(ac.signal);
    const sleeps = [0, 1, 2].map(() => spawn("sleep", ["300"], { stdio: "ignore" }));
    spawned.push(...sleeps);
    for (const c of sleeps) registerChild(c, "sleep 300");
    const exits = sleeps.map((c) => once(c, "exit"));
    for (const c of sleeps) assert.ok(alive(c.pid!), "the sleep runs before the abort");

    ac.abort("SIGINT");
    const ended = await Promise.all(exits);
    assert.deepEqual(
      ended.map(([, sig]) => sig),
      ["SIGTERM", "SIGTERM", "SIGTERM"],
    );
    for (const c of sleeps) assert.ok(await gone(c.pid!), `sleep ${c.pid} is still there`);
    assert.deepEqual(interruptChildren(), [], "exited children are no longer registered");
  });

  test("a child leading its own process group: the interrupt reaches the sleep below it too", async () => {
    const ac = new AbortController();
    interruptChildrenOn(ac.signal);
    const sh = spawn("sh", ["-c", "sleep 300 & echo $!; wait"], {
      detached: true,
      stdio: ["ignore", "pipe", "ignore"],
    });
    spawned.push(sh);
    registerChild(sh, "sh", { group: true });
    const exit = once(sh, "exit");
    const grandchild = Number(await firstLine(sh));
    assert.ok(alive(grandchild), "the grandchild sleep runs");

    ac.abort("SIGTERM");
    await exit;
    assert.ok(await gone(grandchild), `the grandchild sleep ${grandchild} outlived the interrupt`);
  });

  test("a child that ignores the interrupt is killed by killAllChildren (the second signal), group and all", async () => {
    const sh = spawn("sh", ["-c", 'trap "" TERM; sleep 300 & echo $!; wait'], {
      detached: true,
      stdio: ["ignore", "pipe", "ignore"],
    });
    spawned.push(sh);
    registerChild(sh, "stubborn sh", { group: true });
    const exit = once(sh, "exit");
    const grandchild = Number(await firstLine(sh));

    assert.deepEqual(
      interruptChildren().map((c) => c.what),
      ["stubborn sh"],
    );
    assert.ok(alive(sh.pid!), "SIGTERM is ignored (trap), so the child is still there");
    const killed = killAllChildren();
    assert.deepEqual(
      killed.map((c) => [c.what, c.pid]),
      [["stubborn sh", sh.pid]],
    );
    const [, sig] = await exit;
    assert.equal(sig, "SIGKILL");
    assert.ok(await gone(grandchild), `the grandchild sleep ${grandchild} survived the kill`);
  });

  test("src/exec.ts registers what it spawns: an interrupt ends its child", async () => {
    const run = exec(["sleep", "300"]);
    const hit = interruptChildren();
    assert.deepEqual(
      hit.map((c) => c.what),
      ["sleep 300"],
    );
    const r = await run;
    assert.equal(r.signal, "SIGTERM");
    assert.ok(await gone(hit[0]!.pid));
  });

  test("pending work is listed until its owner says it is done", () => {
    const done = registerPending({ what: "the launch of run r1", mayLeave: "its instances" });
    assert.deepEqual(
      pendingWork().map((w) => w.what),
      ["the launch of run r1"],
    );
    done();
    assert.deepEqual(pendingWork(), []);
  });
});
