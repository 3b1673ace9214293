// An interrupt (the CLI's AbortSignal, aborted by SIGINT or SIGTERM) during `imgtool launch`, driven through the
// real launch flow with a stand-in instance backend (a recording fake, named so in every test) and an in-memory
// catalog: the waits stop, start requests already sent are answered first, every instance this launch started is
// terminated (or left with --keep-on-failure), and the launch rejects with an InterruptedError whose exit code is
// 130 (SIGINT) or 143 (SIGTERM) and whose one line says what was done. The interrupt is sent on an observed call
// of the backend, never after a sleep.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Catalog } from "../../src/catalog/catalog.js";
import { SqliteStore } from "../../src/catalog/sqlite-store.js";
import { parseConfig, type Config } from "../../src/config/load.js";
import { InterruptedError } from "../../src/errors.js";
import { recordingSink } from "../../src/events.js";
import { launch } from "../../src/launch/launch.js";
import type {
  GroupRequest,
  LaunchBackend,
  LaunchOptions,
  ReadyReport,
  StartedInstance,
} from "../../src/launch/types.js";
import { pendingWork } from "../../src/process-group.js";
import { options } from "./aws-support.js";

function config(): Config {
  const r = parseConfig("pipeline: bench\n", { baseDir: "/tmp" });
  if (!r.config) throw new Error(r.errors.join("\n"));
  return r.config;
}

async function catalogWithArtefacts(): Promise<Catalog> {
  const catalog = new Catalog({ store: new SqliteStore(":memory:"), prefix: "/imgtool/bench" });
  const image = (role: string) => `registry.test/bench/${role}@sha256:${"c".repeat(64)}`;
  const meta = (version: string, role: string) => ({
    version,
    inputsHash: "0123456789abcdef",
    builtAt: "2026-11-29T00:00:00Z",
    image: image(role),
    preloadVolume: null,
  });
  for (const [role, arch] of [
    ["orchestrator", "x86_64"],
    ["task-runner", "x86_64"],
    ["task-runner", "arm64"],
  ] as const) {
    await catalog.publish({ role, kind: "ami", arch }, `ami-${role}-${arch}`, meta("v1-ami", role));
  }
  for (const role of ["orchestrator", "task-runner"] as const)
    await catalog.publish({ role, kind: "image" }, image(role), meta("v1-img", role));
  return catalog;
}

/**
 * A stand-in instance backend: records every call; `onStart` may hold a start request back (to interrupt while
 * it is in flight); `waitReady` (when `withReadiness`) resolves never, and rejects once the launch's signal is
 * aborted, as the local backend does.
 */
function fakeBackend(
  opts: {
    onStart?: (req: GroupRequest, n: number) => Promise<void> | void;
    withReadiness?: { onWait: (inst: StartedInstance) => void };
    terminateFails?: boolean;
  } = {},
) {
  const calls = { starts: [] as GroupRequest[], terminated: [] as string[][], waits: [] as string[] };
  let next = 0;
  const backend: LaunchBackend = {
    target: "aws",
    bootContext: async () => ({
      region: "us-east-1",
      registry: { user: "AWS", auth: "ecr", passwordFile: "" },
      secret: { source: "file", parameter: "/run/secrets/orchestrator-api-key" },
      orchestratorPort: 8080,
    }),
    prepare: async () => undefined,
    async start(req) {
      calls.starts.push(req);
      await opts.onStart?.(req, calls.starts.length);
      return Array.from({ length: req.count }, (): StartedInstance => {
        next++;
        return {
          id: `i-${req.role}-${next}`,
          role: req.role,
          instanceType: req.instanceType,
          arch: req.arch,
          market: "on-demand",
          privateIp: `10.0.0.${next}`,
          state: "pending",
        };
      });
    },
    async terminate(ids) {
      calls.terminated.push([...ids]);
      if (opts.terminateFails) throw new Error("RequestLimitExceeded: slow down");
      return ids;
    },
    find: async () => [],
    ...(opts.withReadiness
      ? {
          waitReady(inst: StartedInstance, _timeoutMs: number, signal?: AbortSignal) {
            calls.waits.push(inst.id);
            opts.withReadiness!.onWait(inst);
            return new Promise<ReadyReport>((_, reject) => {
              const stop = () => reject(new Error(`stopped waiting for ${inst.id}`));
              if (signal?.aborted) stop();
              else signal?.addEventListener("abort", stop, { once: true });
            });
          },
        }
      : {}),
  };
  return { backend, calls };
}

/** Two task-runner types (x86_64 and arm64): two start requests besides the orchestrator's. */
const TYPES = ["c7i.large", "c7g.large"];

/** An orchestrator health check that never answers (an unreachable address): only the interrupt ends the wait. */
const silentProbe = () => new Promise<boolean>(() => undefined);

async function run(
  backend: LaunchBackend,
  signal: AbortSignal,
  extra: Partial<LaunchOptions> = {},
): Promise<unknown> {
  const sink = recordingSink();
  try {
    await launch(options({ runId: "intr-1", taskRunners: 2, instanceTypes: TYPES, ...extra }), {
      config: config(),
      backend,
      catalog: catalogWithArtefacts,
      events: sink,
      probe: silentProbe,
      signal,
    });
  } catch (e) {
    return e;
  }
  throw new Error("the launch did not reject");
}

describe("an interrupt during a launch (stand-in instance backend)", () => {
  test("SIGINT while a task-runner request is in flight: it is answered first, then all 5 started instances are terminated; exit 130", async () => {
    const ac = new AbortController();
    let answer!: () => void;
    let reached!: () => void;
    const third = new Promise<void>((r) => (reached = r));
    const { backend, calls } = fakeBackend({
      onStart: (_req, n) => {
        // The 3rd request (the second task-runner type): interrupted while it is in flight.
        if (n !== 3) return;
        ac.abort("SIGINT");
        reached();
        return new Promise<void>((r) => (answer = r));
      },
    });
    const pending = run(backend, ac.signal);
    await third;
    // Let everything the interrupt set going run (all of it is promise callbacks), then look.
    await new Promise<void>((r) => setImmediate(r));
    assert.equal(calls.starts.length, 3, "three start requests were sent");
    assert.deepEqual(calls.terminated, [], "nothing is terminated while a request is still unanswered");
    answer();
    const e = await pending;

    assert.ok(e instanceof InterruptedError, String(e));
    assert.equal(e.exitCode, 130);
    assert.equal(e.signal, "SIGINT");
    assert.equal(calls.terminated.length, 1);
    assert.deepEqual(
      [...calls.terminated[0]!].sort(),
      ["i-orchestrator-1", "i-task-runner-2", "i-task-runner-3", "i-task-runner-4", "i-task-runner-5"].sort(),
      "every instance this launch started, the late answer's too",
    );
    assert.match(
      e.message,
      /^The launch of run intr-1 was interrupted \(SIGINT\): terminated the 5 instance\(s\)/,
    );
    assert.doesNotMatch(e.message, /\n/, "one line");
    assert.deepEqual(pendingWork(), [], "the launch no longer counts as pending work");
  });

  test("SIGTERM while waiting for readiness: the waits stop at once, every instance is terminated; exit 143", async () => {
    const ac = new AbortController();
    let waiting = 0;
    const { backend, calls } = fakeBackend({
      withReadiness: {
        onWait: () => {
          // Every instance is being waited for (1 orchestrator + 2 x 2 task runners): interrupt.
          if (++waiting === 5) ac.abort("SIGTERM");
        },
      },
    });
    const e = await run(backend, ac.signal);

    assert.ok(e instanceof InterruptedError, String(e));
    assert.equal(e.exitCode, 143);
    assert.equal(calls.waits.length, 5);
    assert.equal(calls.terminated.flat().length, 5);
    assert.match(e.message, /interrupted \(SIGTERM\): terminated the 5 instance\(s\)/);
  });

  test("--keep-on-failure: nothing is terminated, the message names what runs and the fix ends it", async () => {
    const ac = new AbortController();
    const { backend, calls } = fakeBackend({
      onStart: (_req, n) => {
        if (n === 1) ac.abort("SIGINT");
      },
    });
    const e = await run(backend, ac.signal, { keepOnFailure: true });

    assert.ok(e instanceof InterruptedError, String(e));
    assert.equal(e.exitCode, 130);
    assert.equal(calls.starts.length, 1, "no task runner starts after the interrupt");
    assert.deepEqual(calls.terminated, []);
    assert.match(
      e.message,
      /--keep-on-failure leaves the 1 instance\(s\) it started \(i-orchestrator-1\) running/,
    );
    assert.equal(e.fix, "`imgtool terminate --run-id intr-1 --target aws` ends them.");
  });

  test("interrupted before the first start: nothing is started or terminated", async () => {
    const ac = new AbortController();
    ac.abort("SIGINT");
    const { backend, calls } = fakeBackend();
    const e = await run(backend, ac.signal);

    assert.ok(e instanceof InterruptedError, String(e));
    assert.equal(e.exitCode, 130);
    assert.deepEqual(calls.starts, []);
    assert.deepEqual(calls.terminated, []);
    assert.match(e.message, /before any instance started: nothing to clean up/);
  });

  test("a termination that fails is said, with the command that ends them", async () => {
    const ac = new AbortController();
    const { backend, calls } = fakeBackend({
      terminateFails: true,
      onStart: (_req, n) => {
        if (n === 1) ac.abort("SIGTERM");
      },
    });
    const e = await run(backend, ac.signal);

    assert.ok(e instanceof InterruptedError, String(e));
    assert.equal(e.exitCode, 143);
    assert.deepEqual(calls.terminated, [["i-orchestrator-1"]]);
    assert.match(
      e.message,
      /terminating the 1 instance\(s\) it started \(i-orchestrator-1\) failed \(.*slow down\)/,
    );
    assert.match(e.fix ?? "", /imgtool terminate --run-id intr-1 --target aws/);
  });
});
