// Claims on the local orchestrator's port (src/launch/port-claims.ts): two launches on one machine at the same
// moment never both take one port. Each backend here stands for one `imgtool launch` process; they share the state
// folder as two processes of one checkout do. The port they want is one the kernel just handed out as free.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type Docker from "dockerode";
import { parseConfig } from "../../src/config/load.js";
import { FailureError } from "../../src/errors.js";
import type { ImgtoolEvent } from "../../src/events.js";
import { freePort, localBackend } from "../../src/launch/local.js";
import type { GroupRequest } from "../../src/launch/types.js";
import { machineArch } from "../../src/config/arch.js";
import {
  CLAIM_MAX_AGE_MS,
  CLAIM_MIN_TTL_MS,
  describeOwner,
  portClaims,
} from "../../src/launch/port-claims.js";

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
    assert.equal(held?.owner, "run-a");
    assert.equal(held?.pid, 101);
    assert.deepEqual(readdirSync(dir), ["8080.run-a"], "the losing claim is withdrawn");
    assert.equal((await b.heldBy(8080, "run-b"))?.owner, "run-a");
    await a.release("run-a");
    assert.equal(await b.heldBy(8080, "run-b"), undefined);
    assert.equal(await b.claim(8080, "run-b"), undefined);
  }),
);

test(
  "port claims: a claim holds the port for its TTL whatever its process (a --no-wait launch exits before its instance binds it), then while its process runs, a day at most; an expired claim is removed",
  withDir(async (dir) => {
    let now = 1_000_000;
    let running = false;
    const ttlMs = CLAIM_MIN_TTL_MS + 60_000;
    const c = portClaims(dir, { pid: 303, alive: () => running, now: () => now, ttlMs });
    assert.equal(await c.claim(8080, "p.run-gone"), undefined);
    now += ttlMs - 1;
    assert.equal((await c.heldBy(8080, "p.run-new"))?.owner, "p.run-gone");
    now += 1;
    running = true;
    assert.equal((await c.heldBy(8080, "p.run-new"))?.owner, "p.run-gone", "its process still runs");
    now += CLAIM_MAX_AGE_MS;
    assert.equal(await c.heldBy(8080, "p.run-new"), undefined, "a day old: its pid may be another process's");
    assert.deepEqual(readdirSync(dir), [], "the expired claim is gone");
    assert.equal(await c.claim(8080, "p.run-new"), undefined);
    // Never shorter than the minimum, whatever the option says.
    const short = portClaims(dir, { alive: () => false, now: () => now, ttlMs: 1 });
    assert.equal((await short.heldBy(8080, "p.other"))?.owner, "p.run-new");
    assert.equal(describeOwner("seed.run-1"), "run run-1 (pipeline seed)");
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

/** A Docker client that fails every call (counted): bootContext needs no engine; start fails at its first call. */
function failingEngine(calls: string[]): Docker {
  return new Proxy({} as Docker, {
    get: (_t, prop) =>
      prop === "then"
        ? undefined
        : () => {
            calls.push(String(prop));
            throw new Error(`engine called: ${String(prop)}`);
          },
  });
}

function launcher(dir: string, want: number, events: ImgtoolEvent[], calls: string[] = []) {
  const parsed = parseConfig(
    `pipeline: pc\nlocal:\n  state_dir: ${dir}\nlaunch:\n  orchestrator_port: ${want}\n`,
    { baseDir: dir },
  );
  assert.ok(parsed.config, parsed.errors.join("\n"));
  return localBackend({
    config: parsed.config,
    docker: failingEngine(calls),
    registry: { user: "AWS", passwordFile: path.join(dir, "password") },
    events: (e) => events.push(e),
    stateDir: dir,
  });
}

function request(role: "orchestrator" | "task-runner"): GroupRequest {
  const bytes = Buffer.from("#!/bin/bash\n");
  return {
    role,
    instanceType: "local",
    arch: machineArch(),
    count: 1,
    market: "on-demand",
    imageId: "sha256:twin",
    preloadVolume: null,
    userData: { role, text: bytes.toString(), bytes, compression: "none" },
    tags: {},
  };
}

test(
  "local launches: a launch avoids a port another launch claimed (and says whose); one that chose it at the same moment fails before the engine is called; a failed start, and terminate, release the claim",
  withDir(async (dir) => {
    const want = await freePort();
    const claimsDir = path.join(dir, "port-claims");
    const other = portClaims(claimsDir);
    const events: ImgtoolEvent[] = [];

    // Another launch of this checkout claimed the port (its instance has not bound it yet).
    assert.equal(await other.claim(want, "pc.run-a"), undefined);
    const calls: string[] = [];
    const later = launcher(dir, want, events, calls);
    const port = (await later.bootContext("run-b")).orchestratorPort;
    assert.notEqual(port, want);
    const warn = events.find((e) => e.type === "warn");
    assert.match(
      warn?.message ?? "",
      new RegExp(`port ${want} is claimed by the launch of run run-a \\(pipeline pc\\)`),
    );

    // At the same moment: this launch chose the port before the other claimed it.
    await other.release("pc.run-a");
    const racing = launcher(dir, want, events, calls);
    assert.equal((await racing.bootContext("run-c")).orchestratorPort, want);
    assert.equal(await other.claim(want, "pc.run-a"), undefined);
    await assert.rejects(racing.start(request("orchestrator"), "run-c"), (e: unknown) => {
      assert.ok(e instanceof FailureError, String(e));
      assert.match(
        e.message,
        new RegExp(`Port ${want} .* claimed at the same moment by the launch of run run-a`),
      );
      assert.match(e.fix ?? "", /Launch again/);
      return true;
    });
    assert.deepEqual(calls, [], "nothing was started");
    assert.deepEqual(readdirSync(claimsDir), [`${want}.pc.run-a`]);

    // The port free again: the orchestrator's start claims it; its failure (here: the engine) releases it.
    await other.release("pc.run-a");
    const failing = launcher(dir, want, events, calls);
    assert.equal((await failing.bootContext("run-d")).orchestratorPort, want);
    await assert.rejects(failing.start(request("orchestrator"), "run-d"), /engine called/);
    assert.ok(calls.length > 0);
    assert.deepEqual(readdirSync(claimsDir), [], "a failed start keeps no claim");

    // A task runners' group claims nothing; terminate (forgetRun) removes a run's claims.
    await assert.rejects(failing.start(request("task-runner"), "run-d"), /engine called/);
    assert.deepEqual(readdirSync(claimsDir), []);
    assert.equal(await portClaims(claimsDir).claim(want, "pc.run-e"), undefined);
    await launcher(dir, want, events).forgetRun!("run-e");
    assert.deepEqual(readdirSync(claimsDir), []);
  }),
);
