// An interrupt during the local bake's pre-load, through the real bake flow (bakeRole) and the real twin ops,
// with a recording stand-in for the Docker engine (a fake dockerode, named so in every test), a stand-in for
// Packer (a function that writes the manifest Packer's manifest post-processor would write) and an in-memory
// catalog. The interrupt is sent when the pre-load container starts (an observed call, never a sleep): the
// container is killed at once, its container and volume and the unpublished twin are removed, the temp file
// with the registry password is gone, nothing is published, and the one-line message says all of it.
import { afterEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type Docker from "dockerode";
import { bakeRole, type BakeDeps } from "../../src/bake/bake.js";
import { makeTwinOps } from "../../src/bake/twin-ops.js";
import { Catalog } from "../../src/catalog/catalog.js";
import { SqliteStore } from "../../src/catalog/sqlite-store.js";
import { parseConfig } from "../../src/config/load.js";
import { FailureError, InterruptedError } from "../../src/errors.js";
import { recordingSink } from "../../src/events.js";
import type { PackerRunner } from "../../src/packer/runner.js";
import { pendingWork } from "../../src/process-group.js";
import { renderBake, writeRendered, type RenderedBake } from "../../src/render/packer.js";

const TWIN = `sha256:${"7".repeat(64)}`;
const IMAGE = `127.0.0.1:5000/bench/task-runner@sha256:${"a".repeat(64)}`;

type Call = [string, ...unknown[]];

/**
 * A recording stand-in for dockerode: images, volumes and containers by name, every call in `calls`. The pre-load
 * container runs until it is killed (its wait answers 137) or, with `preloadExit`, exits by itself.
 */
function fakeDocker(
  opts: {
    onStart?: () => void;
    /** Called when imgtool starts waiting for the pre-load container to exit. */
    onWait?: () => void;
    preloadExit?: number;
    failRemove?: (what: string) => boolean;
  } = {},
) {
  const calls: Call[] = [];
  const refuse = (what: string) => {
    if (!opts.failRemove?.(what)) return;
    throw Object.assign(new Error(`(HTTP code 409) conflict - ${what} is in use`), { statusCode: 409 });
  };
  let binds: string[] = [];
  const docker = {
    getImage: (ref: string) => ({
      inspect: async () => ({ Id: `sha256:${"b".repeat(64)}` }),
      tag: async (o: { repo: string; tag: string }) =>
        void calls.push(["image.tag", ref, `${o.repo}:${o.tag}`]),
      remove: async (o?: { force?: boolean }) => {
        calls.push(["image.remove", ref, o?.force === true]);
        refuse(`image ${ref}`);
      },
    }),
    createVolume: async (o: { Name: string }) => void calls.push(["volume.create", o.Name]),
    getVolume: (name: string) => ({
      remove: async () => {
        calls.push(["volume.remove", name]);
        refuse(`volume ${name}`);
      },
    }),
    createContainer: async (spec: { Image: string; HostConfig: { Binds: string[] } }) => {
      calls.push(["container.create", spec.Image]);
      binds = spec.HostConfig.Binds;
      let exit!: (code: number) => void;
      const exited = new Promise<number>((r) => (exit = r));
      if (opts.preloadExit !== undefined) exit(opts.preloadExit);
      let running = false;
      return {
        id: "c0ffee0123456789abcdef",
        start: async () => {
          calls.push(["container.start"]);
          // The engine answers the start once the container runs: a kill before that finds it not running.
          opts.onStart?.();
          running = true;
        },
        wait: async () => {
          calls.push(["container.wait"]);
          opts.onWait?.();
          return { StatusCode: await exited };
        },
        kill: async () => {
          if (!running) {
            calls.push(["container.kill", "refused: not running"]);
            throw Object.assign(new Error("(HTTP code 409) container is not running"), { statusCode: 409 });
          }
          calls.push(["container.kill"]);
          exit(137);
        },
        remove: async (o?: { force?: boolean }) => {
          calls.push(["container.remove", o?.force === true]);
          refuse("container");
        },
        logs: async () => Buffer.from("imgtool-preload: pull failed\n"),
      };
    },
  };
  return {
    docker: docker as unknown as Docker,
    calls,
    /** The registry password file the pre-load container had mounted. */
    passwordFile: () => binds.find((b) => b.includes("registry-password"))?.split(":")[0],
  };
}

/** A stand-in for Packer: `build` writes the manifest of one docker build whose artefact is the twin image. */
function fakePacker(rendered: () => RenderedBake): PackerRunner {
  return {
    version: async () => "Packer v1.11.2",
    async run(_args, o) {
      const uuid = "fake-run";
      const builds = rendered().sources.map((s) => ({
        name: s.name,
        builder_type: "docker",
        artifact_id: TWIN,
        packer_run_uuid: uuid,
      }));
      writeFileSync(
        path.join(o.cwd, rendered().manifestFile),
        JSON.stringify({ builds, last_run_uuid: uuid }),
      );
      return { exitCode: 0, signal: null, interrupted: false, killed: false };
    },
  };
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function setup(docker: Docker, signal: AbortSignal) {
  const dir = mkdtempSync(path.join(tmpdir(), "imgtool-twin-interrupt-"));
  dirs.push(dir);
  const { config } = parseConfig(
    [
      "pipeline: bench",
      "roles:",
      "  task-runner:",
      "    ruby_bench: { repository: https://example.invalid/ruby-bench.git, ref: main }",
    ].join("\n"),
    { baseDir: dir },
  );
  const catalog = new Catalog({ store: new SqliteStore(":memory:"), prefix: "/imgtool/bench" });
  await catalog.publish({ role: "task-runner", kind: "image" }, IMAGE, {
    version: "v20261129-000000-img",
    inputsHash: "0123456789abcdef",
    builtAt: "2026-11-29T00:00:00Z",
  });
  let last: RenderedBake | undefined;
  const registry = { endpoint: "127.0.0.1:5000", user: "imgtool", password: "planted-password" };
  const events = recordingSink();
  const deps: BakeDeps = {
    config: config!,
    ops: makeTwinOps({ docker, registry, signal }),
    events,
    packer: fakePacker(() => last!),
    packerVersion: "Packer v1.11.2",
    render: (...a) => (last = renderBake(...a)),
    writeRendered,
    catalog: async () => catalog,
    resolveCommit: async () => "c".repeat(40),
    gitRevision: async () => "0123456789abcdef",
    registry,
    buildRoot: path.join(dir, "builds"),
    signal,
  };
  const amis = async () =>
    (await catalog.resolve([{ role: "task-runner", kind: "ami", arch: "x86_64" }])).found.length +
    (await catalog.resolve([{ role: "task-runner", kind: "ami", arch: "arm64" }])).found.length;
  return { deps, amis, events };
}

describe("an interrupt during the twin's pre-load (engine and Packer stand-ins)", () => {
  test("SIGINT: the pre-load container is killed at once; container, volume and twin removed; nothing published; exit 130", async () => {
    const ac = new AbortController();
    // While the pre-load runs (imgtool waits for its container): the common case.
    const fx = fakeDocker({ onWait: () => ac.abort("SIGINT") });
    const { deps, amis } = await setup(fx.docker, ac.signal);

    const e = await bakeRole("task-runner", deps, { force: true }).then(
      () => assert.fail("the bake did not reject"),
      (err: unknown) => err,
    );

    assert.ok(e instanceof InterruptedError, String(e));
    assert.equal(e.exitCode, 130);
    const names = fx.calls.map((c) => c[0]);
    assert.ok(names.includes("container.kill"), `no kill: ${JSON.stringify(fx.calls)}`);
    const volume = fx.calls.find((c) => c[0] === "volume.create")![1] as string;
    assert.match(volume, /^imgtool-bench-task-runner-v\d{8}-\d{6}-[0-9a-f]+-store$/);
    assert.deepEqual(
      fx.calls.slice(names.indexOf("container.kill")),
      [
        ["container.kill"],
        ["container.remove", true],
        ["volume.remove", volume],
        ["image.remove", TWIN, true],
      ],
      "killed, then its container, its volume and the twin removed, in that order",
    );
    assert.match(
      e.message,
      new RegExp(
        "^The task-runner bake was interrupted \\(SIGINT\\) during the pre-load \\(its container was killed at once\\); " +
          `removed pre-load container c0ffee012345, volume ${volume}, twin image imgtool-twin/bench-task-runner:v\\S+ \\(777777777777\\); ` +
          "nothing was published\\.$",
      ),
    );
    assert.equal(e.fix, undefined);
    assert.equal(await amis(), 0, "no AMI entry in the catalog");
    const secret = fx.passwordFile();
    assert.ok(secret, "the registry password was mounted from a file");
    assert.equal(existsSync(secret), false, "the temp file with the registry password is left");
    assert.deepEqual(pendingWork(), [], "the pre-load no longer counts as pending work");
  });

  test("SIGTERM, and the volume cannot be removed: exit 143, the message says what is left and how to remove it", async () => {
    const ac = new AbortController();
    // While the container is being started: its kill must still come.
    const fx = fakeDocker({
      onStart: () => ac.abort("SIGTERM"),
      failRemove: (what) => what.startsWith("volume"),
    });
    const { deps, amis } = await setup(fx.docker, ac.signal);

    const e = await bakeRole("task-runner", deps, { force: true }).then(
      () => assert.fail("the bake did not reject"),
      (err: unknown) => err,
    );

    assert.ok(e instanceof InterruptedError, String(e));
    assert.equal(e.exitCode, 143);
    assert.deepEqual(
      fx.calls.filter((c) => c[0] === "container.kill"),
      [["container.kill", "refused: not running"], ["container.kill"]],
      "the kill sent during the start found it not running; it is killed once it runs",
    );
    assert.match(e.message, /interrupted \(SIGTERM\) during the pre-load/);
    assert.match(e.message, /removed pre-load container c0ffee012345, twin image /);
    assert.match(
      e.message,
      /; could NOT remove volume imgtool-bench-task-runner-\S+-store \(.*is in use\); nothing was published\.$/,
    );
    assert.match(e.fix ?? "", /docker volume rm/);
    assert.equal(await amis(), 0);
  });

  test("without an interrupt, a failed pre-load removes its container, volume and the unpublished twin (exit 1)", async () => {
    const ac = new AbortController();
    const fx = fakeDocker({ preloadExit: 1 });
    const { deps, amis, events } = await setup(fx.docker, ac.signal);

    const e = await bakeRole("task-runner", deps, { force: true }).then(
      () => assert.fail("the bake did not reject"),
      (err: unknown) => err,
    );

    assert.ok(e instanceof FailureError, String(e));
    assert.match(e.message, /Pre-loading \S+ into the twin's image store failed \(exit 1\)/);
    const names = fx.calls.map((c) => c[0]);
    assert.equal(names.includes("container.kill"), false, "nothing is killed without an interrupt");
    assert.ok(names.includes("volume.remove") && names.includes("container.remove"));
    assert.deepEqual(fx.calls.at(-1), ["image.remove", TWIN, true]);
    assert.ok(
      events.events.some((ev) => /removed what the failed bake made: .*twin image/.test(ev.message)),
      "the removal is reported",
    );
    assert.equal(await amis(), 0);
  });
});
