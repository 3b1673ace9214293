// Fault: an interrupt while Packer runs. `packer build` is a wrapper around a second `packer build` that
// swallows SIGINT; a stand-in with the same shape (a wrapper that ignores SIGINT, an inner process that
// cleans up on it) shows that the runner reaches the inner process, waits for its cleanup, and kills the
// group (saying so) when the cleanup does not end in time. Triggered on observed output, never on a timer.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { makePackerRunner } from "../../src/packer/runner.js";

const dir = mkdtempSync(path.join(tmpdir(), "imgtool-packer-signals-"));
const wrapper = path.join(dir, "wrapper.cjs");
const inner = path.join(dir, "inner.cjs");
writeFileSync(
  wrapper,
  `const { spawn } = require("node:child_process");
process.on("SIGINT", () => console.log("wrapper: swallowed SIGINT"));
const c = spawn(process.execPath, [${JSON.stringify(inner)}, ...process.argv.slice(2)], { stdio: "inherit" });
console.log("wrapper pid " + process.pid);
c.on("exit", (code) => process.exit(code ?? 1));
`,
);
writeFileSync(
  inner,
  `const fs = require("node:fs");
const [mark, mode] = process.argv.slice(2);
process.on("SIGINT", () => {
  if (mode === "stubborn") return console.log("inner: ignoring SIGINT");
  fs.writeFileSync(mark, "cleaned up");
  console.log("inner: cleaned up");
  process.exit(1);
});
console.log("inner pid " + process.pid);
setInterval(() => {}, 1000);
`,
);

/** Running (a zombie waiting for a reaper that is not ours does not count). */
function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return false;
  }
}

async function interruptWhenStarted(mode: "clean" | "stubborn") {
  const mark = path.join(dir, `mark-${mode}`);
  const runner = makePackerRunner(process.execPath, { cleanupTimeoutMs: 3000 });
  const ac = new AbortController();
  const pids: number[] = [];
  const lines: string[] = [];
  const result = await runner.run([wrapper, mark, mode], {
    cwd: dir,
    signal: ac.signal,
    onLine: (l) => {
      lines.push(l);
      const m = /^(?:wrapper|inner) pid (\d+)$/.exec(l);
      if (m) pids.push(Number(m[1]));
      // Both processes are up: interrupt (what imgtool does on its own SIGINT or SIGTERM).
      if (pids.length === 2 && !ac.signal.aborted) ac.abort("SIGTERM");
    },
  });
  return { result, pids, lines, mark };
}

describe("fault: interrupt during Packer (a wrapper that swallows SIGINT)", () => {
  test("the interrupt reaches the inner process through the group; the runner waits for its cleanup", async () => {
    const { result, pids, lines, mark } = await interruptWhenStarted("clean");
    assert.equal(result.interrupted, true);
    assert.equal(result.killed, false, lines.join("\n"));
    assert.equal(result.exitCode, 1);
    assert.ok(existsSync(mark), `the inner process never saw SIGINT:\n${lines.join("\n")}`);
    assert.equal(readFileSync(mark, "utf8"), "cleaned up");
    assert.ok(lines.includes("wrapper: swallowed SIGINT"), "the wrapper was not signalled as a group member");
    for (const pid of pids) assert.equal(alive(pid), false, `process ${pid} is still running`);
  });

  test("a cleanup that does not end is cut short: the group is killed and the result says so", async () => {
    const { result, pids, lines } = await interruptWhenStarted("stubborn");
    assert.equal(result.interrupted, true);
    assert.equal(result.killed, true, lines.join("\n"));
    assert.ok(lines.includes("inner: ignoring SIGINT"));
    for (const pid of pids) assert.equal(alive(pid), false, `process ${pid} is still running`);
  });
});
