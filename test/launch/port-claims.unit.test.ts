// Claims on the local orchestrator's port (src/launch/port-claims.ts): two launches on one machine at the same
// moment never both take one port. Each backend here stands for one `imgtool launch` process; they share the state
// folder as two processes of one checkout do. The port they want is one the kernel just handed out as free.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type Docker from "dockerode";
import { parseConfig } from "../../src/config/load.js";
import { FailureError } from "../../src/errors.js";
import type { ImgtoolEvent } from "../../src/events.js";
import { freePort, localBackend } from "../../src/launch/local.js";
import { CLAIM_TTL_MS, portClaims } from "../../src/launch/port-claims.js";

function withDir(fn: (dir: string) => Promise<void>) {
  return async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "imgtool-port-claims-"));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test(
  "port claims: the first run keeps the port; a second run's claim sees it and withdraws; release frees it",
  withDir(async (dir) => {
    const a = portClaims(dir, { pid: 101, alive: (pid) => pid === 101 });
    const b = portClaims(dir, { pid: 202, alive: (pid) => pid === 101 || pid === 202 });
    assert.equal(await a.claim(8080, "run-a"), undefined);
    assert.equal(
      await a.heldBy(8080, "run-a"),
      undefined,
      "a run's own claim never holds the port against it",
    );
    const held = await b.claim(8080, "run-b");
    assert.equal(held?.runId, "run-a");
    assert.equal(held?.pid, 101);
    assert.deepEqual(readdirSync(dir), ["8080.run-a"], "the losing claim is withdrawn");
    assert.equal((await b.heldBy(8080, "run-b"))?.runId, "run-a");
    await a.release("run-a");
    assert.equal(await b.heldBy(8080, "run-b"), undefined);
    assert.equal(await b.claim(8080, "run-b"), undefined);
  }),
);

test(
  "port claims: a claim whose process is gone holds the port for its TTL only (an instance of a --no-wait launch may still bind it)",
  withDir(async (dir) => {
    let now = 1_000_000;
    const dead = portClaims(dir, { pid: 303, alive: () => false, now: () => now });
    assert.equal(await dead.claim(8080, "run-gone"), undefined);
    now += CLAIM_TTL_MS - 1;
    assert.equal((await dead.heldBy(8080, "run-new"))?.runId, "run-gone");
    now += 1;
    assert.equal(await dead.heldBy(8080, "run-new"), undefined);
    assert.equal(await dead.claim(8080, "run-new"), undefined);
  }),
);

test(
  "port claims: a garbled claim file does not count; release of a run with no claims is a no-op",
  withDir(async (dir) => {
    const c = portClaims(dir, { alive: () => true });
    await c.release("never-claimed");
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, "9000.run-junk"), "not a claim");
    assert.equal(await c.heldBy(9000, "run-b"), undefined);
    assert.equal(await c.claim(9000, "run-b"), undefined);
  }),
);

/** A Docker client that fails every call: bootContext, prepare and forgetRun need no engine. */
const noEngine = new Proxy({} as Docker, {
  get: (_t, prop) => (prop === "then" ? undefined : () => assert.fail(`engine called: ${String(prop)}`)),
});

function launcher(dir: string, want: number, events: ImgtoolEvent[]) {
  const parsed = parseConfig(`local:\n  state_dir: ${dir}\nlaunch:\n  orchestrator_port: ${want}\n`, {
    baseDir: dir,
  });
  assert.ok(parsed.config, parsed.errors.join("\n"));
  return localBackend({
    config: parsed.config,
    docker: noEngine,
    registry: { user: "AWS", passwordFile: path.join(dir, "password") },
    events: (e) => events.push(e),
    stateDir: dir,
  });
}

test(
  "local launches: a second launch avoids the port the first claimed (and says whose); two that picked it at once: the second fails before starting anything",
  withDir(async (dir) => {
    const want = await freePort();
    const events: ImgtoolEvent[] = [];
    const first = launcher(dir, want, events);
    assert.equal((await first.bootContext("run-a")).orchestratorPort, want);
    await first.prepare("run-a");

    // Later: the port is free on the machine (no instance bound it yet), but claimed.
    const second = launcher(dir, want, events);
    const port = (await second.bootContext("run-b")).orchestratorPort;
    assert.notEqual(port, want);
    const warn = events.find((e) => e.type === "warn");
    assert.match(warn?.message ?? "", new RegExp(`port ${want} is claimed by the launch of run run-a`));
    await second.prepare("run-b");

    // At once: both chose the port before either claimed it.
    await first.forgetRun!("run-a");
    const x = launcher(dir, want, events);
    const y = launcher(dir, want, events);
    assert.equal((await x.bootContext("run-x")).orchestratorPort, want);
    assert.equal((await y.bootContext("run-y")).orchestratorPort, want);
    await x.prepare("run-x");
    await assert.rejects(y.prepare("run-y"), (e: unknown) => {
      assert.ok(e instanceof FailureError, String(e));
      assert.match(
        e.message,
        new RegExp(`Port ${want} .* claimed at the same moment by the launch of run run-x`),
      );
      assert.match(e.fix ?? "", /Launch again/);
      return true;
    });
    assert.ok(!existsSync(path.join(dir, "port-claims", `${want}.run-y`)));
    assert.ok(existsSync(path.join(dir, "port-claims", `${want}.run-x`)));

    // terminate (forgetRun) of the holder frees the port for the next launch.
    await x.forgetRun!("run-x");
    assert.equal((await launcher(dir, want, events).bootContext("run-z")).orchestratorPort, want);
  }),
);
