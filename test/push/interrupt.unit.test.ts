// An interrupt (the CLI's AbortSignal) during `imgtool push image`, through the real push flow with stand-ins for
// the engine (a recording DockerEngine whose build and push run until their AbortSignal fires, as dockerode's
// request does), for the registry API client and the login, and an in-memory catalog: the engine's build or push
// gets the run's signal, the role fails with an InterruptedError (exit 130 / 143) that says where it stopped, and
// nothing is published. The interrupt is sent on an observed engine call, never after a sleep.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Catalog } from "../../src/catalog/catalog.js";
import { SqliteStore } from "../../src/catalog/sqlite-store.js";
import { parseConfig } from "../../src/config/load.js";
import type { BuildRequest, DockerEngine } from "../../src/docker/engine.js";
import { PushFailedError } from "../../src/docker/errors.js";
import { InterruptedError } from "../../src/errors.js";
import type { Exec } from "../../src/exec.js";
import { RegistryLogin } from "../../src/push/login.js";
import { pushImages } from "../../src/push/push.js";
import { projectPath } from "../../src/paths.js";
import type { RegistryClient } from "../../src/registry/client.js";

/** Resolves once `signal` is aborted; then `fail()` says how the engine call ends. */
const untilAborted = (signal: AbortSignal | undefined, fail: () => Error) =>
  new Promise<never>((_, reject) => {
    if (!signal) return;
    if (signal.aborted) reject(fail());
    else signal.addEventListener("abort", () => reject(fail()), { once: true });
  });

/** A recording stand-in for the engine: `during` picks the call in which the test interrupts. */
function fakeEngine(during: "build" | "push", interrupt: () => void) {
  const calls: { op: string; signal?: AbortSignal | undefined }[] = [];
  const engine: DockerEngine = {
    inspectImage: async (ref) => ({
      id: `sha256:${"e".repeat(64)}`,
      architecture: "amd64",
      os: "linux",
      repoTags: [ref],
      repoDigests: [],
      labels: {},
    }),
    listLabelled: async () => [],
    removeLabelled: async () => false,
    async build(req: BuildRequest) {
      calls.push({ op: "build", signal: req.signal });
      if (during !== "build") return { imageId: `sha256:${"1".repeat(64)}`, steps: [] };
      interrupt();
      // dockerode's aborted request ends the stream with an AbortError.
      return untilAborted(req.signal, () =>
        Object.assign(new Error("The operation was aborted"), { name: "AbortError" }),
      );
    },
    tag: async () => void calls.push({ op: "tag" }),
    async push(_repo, tag, _auth, _on, signal) {
      calls.push({ op: "push", signal });
      interrupt();
      return untilAborted(signal, () => new PushFailedError(`push of ${tag} was cancelled`, false));
    },
    pull: async () => void calls.push({ op: "pull" }),
    removeImage: async () => void calls.push({ op: "removeImage" }),
  };
  return { engine, calls };
}

async function run(during: "build" | "push", sig: "SIGINT" | "SIGTERM") {
  const ac = new AbortController();
  const { engine, calls } = fakeEngine(during, () => ac.abort(sig));
  const { config } = parseConfig("pipeline: bench\n", { baseDir: projectPath() });
  const catalog = new Catalog({ store: new SqliteStore(":memory:"), prefix: "/imgtool/bench" });
  const login = new RegistryLogin(
    async () => ({
      endpoint: "http://127.0.0.1:5999",
      host: "127.0.0.1:5999",
      username: "imgtool",
      password: "pw",
      source: "a stand-in",
    }),
    { verify: async () => undefined },
  );
  // A stand-in for the registry API: the content tag is not there yet.
  const client = { host: "127.0.0.1:5999", headManifest: async () => undefined } as unknown as RegistryClient;
  const exec: Exec = async (argv) => ({
    argv,
    exitCode: 0,
    signal: null,
    stdout: `${"f".repeat(40)}\n`,
    stderr: "",
    notFound: false,
    dryRun: false,
  });
  const report = await pushImages(
    { config: config!, target: "local", roles: ["orchestrator"] },
    {
      docker: engine,
      login,
      catalog,
      rubyBench: {
        resolve: async () => assert.fail("the orchestrator has no ruby-bench"),
        checkout: async () => assert.fail("the orchestrator has no ruby-bench"),
      },
      makeRegistryClient: () => client,
      exec,
      signal: ac.signal,
    },
  );
  return { report, calls, catalog, signal: ac.signal };
}

describe("an interrupt during a push (engine, registry and login stand-ins)", () => {
  test("SIGINT during the build: the engine's build gets the run's signal, exit 130, nothing pushed or published", async () => {
    const { report, calls, catalog, signal } = await run("build", "SIGINT");
    const [r] = report.results;

    assert.equal(r?.status, "failed");
    assert.ok(r.error instanceof InterruptedError, String(r.error));
    assert.equal(r.error.exitCode, 130);
    assert.equal(
      r.error.message,
      "The orchestrator push was interrupted (SIGINT) while building: the engine's build was stopped, nothing was pushed; nothing was published.",
    );
    assert.equal(calls.find((c) => c.op === "build")?.signal, signal, "the build request carries the signal");
    assert.equal(
      calls.some((c) => c.op === "push"),
      false,
      "nothing is pushed after the interrupt",
    );
    assert.equal(r.published, false);
    assert.deepEqual(await catalog.status(), [], "nothing is in the catalog");
  });

  test("SIGTERM during the push: the daemon's push stream gets the signal, exit 143, the message says what stays", async () => {
    const { report, calls, catalog, signal } = await run("push", "SIGTERM");
    const [r] = report.results;

    assert.ok(r?.error instanceof InterruptedError, String(r?.error));
    assert.equal(r.error.exitCode, 143);
    assert.match(
      r.error.message,
      /^The orchestrator push was interrupted \(SIGTERM\) while pushing: the upload was stopped \(layers already uploaded stay in the registry, unreferenced; .*\); the image built stays in the engine's cache; nothing was published\.$/,
    );
    const push = calls.find((c) => c.op === "push");
    assert.equal(push?.signal?.aborted, true, "the push stream's signal follows the run's");
    assert.notEqual(push?.signal, undefined);
    assert.equal(signal.aborted, true);
    assert.equal(r.published, false);
    assert.deepEqual(await catalog.status(), []);
  });
});
