// Leftovers of dead runs, pure: run records in a temp state folder, an injected pid checker, a fake engine.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { DOCKER_LABEL, IMAGE_LABEL } from "../../src/config/tags.js";
import type { LabelledResource } from "../../src/docker/engine.js";
import { recordingSink } from "../../src/events.js";
import {
  deadRunsWarning,
  describeLeftovers,
  findLeftovers,
  publishedIn,
  removeLeftovers,
  type LeftoverEngine,
} from "../../src/leftovers/leftovers.js";
import { deadRuns, newRunId, pidAlive, processStart, runsDir, startRun } from "../../src/leftovers/runs.js";
import { runDoctor, type DoctorProbes } from "../../src/doctor/doctor.js";

const state = () => mkdtempSync(path.join(tmpdir(), "imgtool-leftovers-unit-"));

/** An engine holding `things`; removing takes them out (and says false for what is gone already). */
function fakeEngine(
  things: LabelledResource[],
): LeftoverEngine & { things: LabelledResource[]; asked: string[] } {
  const e = {
    things: [...things],
    asked: [] as string[],
    async listLabelled(label: string) {
      e.asked.push(label);
      return e.things.filter((t) => label in t.labels);
    },
    async removeLabelled(r: LabelledResource) {
      const i = e.things.findIndex((t) => t.kind === r.kind && t.id === r.id);
      if (i < 0) return false;
      // As the engine: a volume that a container still uses cannot go.
      if (r.kind === "volume" && e.things.some((t) => t.kind === "container" && t.labels.uses === r.id))
        throw new Error(`volume ${r.id} is in use`);
      e.things.splice(i, 1);
      return true;
    },
  };
  return e;
}

const owned = (kind: "container" | "volume", name: string, owner: string, extra = {}): LabelledResource => ({
  kind,
  id: name,
  name,
  labels: { [DOCKER_LABEL.owner]: owner, ...extra },
});

describe("run records", () => {
  test("a run writes its record at start and removes its folder at a clean end", () => {
    const dir = state();
    const run = startRun(dir, {
      command: "imgtool bake ami",
      pid: 4242,
      now: new Date("2026-12-03T04:15:00Z"),
    });
    assert.match(run.id, /^20261203-041500-4242-[0-9a-f]{4}$/);
    const record = JSON.parse(readFileSync(path.join(run.dir, "run.json"), "utf8")) as Record<
      string,
      unknown
    >;
    assert.deepEqual(record, {
      id: run.id,
      pid: 4242,
      command: "imgtool bake ami",
      started: "2026-12-03T04:15:00.000Z",
    });
    mkdirSync(path.join(run.dir, "packer"));
    run.end();
    assert.equal(existsSync(run.dir), false);
    assert.deepEqual(
      deadRuns(dir, () => false),
      [],
    );
  });

  test("a run whose pid is gone is dead; a live one is not; other state folders are not looked at", () => {
    const dir = state();
    const other = state();
    const live = startRun(dir, { command: "imgtool push image", pid: 100 });
    const dead = startRun(dir, { command: "imgtool bake ami", pid: 200 });
    startRun(other, { command: "imgtool bake ami", pid: 300 });
    const alive = (pid: number) => pid === 100;
    const found = deadRuns(dir, alive);
    assert.deepEqual(
      found.map((d) => [d.id, d.record?.pid]),
      [[dead.id, 200]],
    );
    assert.notEqual(found[0]!.id, live.id);
    assert.equal(deadRuns(state(), alive).length, 0, "an empty state folder has no runs");
  });

  test("a folder without a readable record is dead; one still being created is skipped", () => {
    const dir = state();
    mkdirSync(path.join(runsDir(dir), "20261203-000000-1-abcd"), { recursive: true });
    writeFileSync(path.join(runsDir(dir), "20261203-000000-1-abcd", "run.json"), "{ half");
    mkdirSync(path.join(runsDir(dir), ".20261203-000001-2-abcd.tmp"));
    const found = deadRuns(dir, () => true);
    assert.deepEqual(
      found.map((d) => [d.id, d.record]),
      [["20261203-000000-1-abcd", undefined]],
    );
  });

  test("a pid that a later process got is not the run's: the process start must match too", () => {
    const dir = state();
    const mine = processStart(process.pid);
    assert.match(mine ?? "", /^[0-9a-f-]{36}:\d+$/, "boot id and start tick of this process");
    const same = startRun(dir, { command: "imgtool bake ami", pid: process.pid });
    const reused = startRun(dir, { command: "imgtool bake ami", pid: process.pid, pidStart: "other-boot:1" });
    assert.deepEqual(
      deadRuns(dir).map((d) => d.id),
      [reused.id],
    );
    const record = JSON.parse(readFileSync(path.join(same.dir, "run.json"), "utf8")) as { pidStart?: string };
    assert.equal(record.pidStart, mine);
    assert.equal(pidAlive(process.pid, mine), true);
    assert.equal(pidAlive(process.pid, "other-boot:1"), false);
  });

  test("run ids differ by pid and random part", () => {
    const now = new Date("2026-12-03T04:15:00Z");
    assert.notEqual(
      newRunId(now, 1, () => "aaaa"),
      newRunId(now, 2, () => "aaaa"),
    );
    assert.equal(
      newRunId(now, 7, () => "00ff"),
      "20261203-041500-7-00ff",
    );
  });
});

describe("leftovers of dead runs", () => {
  test("found by owner label, only for dead runs of this state folder; removed containers first", async () => {
    const dir = state();
    const dead = startRun(dir, { command: "imgtool bake ami --force", pid: 200 });
    const live = startRun(dir, { command: "imgtool launch", pid: 100 });
    const engine = fakeEngine([
      owned("container", "packer-builder", dead.id, { uses: "twin-store" }),
      owned("volume", "twin-store", dead.id),
      owned("container", "live-instance", live.id),
      owned("container", "ended-run-instance", "20261201-000000-9-beef"),
    ]);
    const alive = (pid: number) => pid === 100;
    const found = await findLeftovers({ stateDir: dir, engine, alive });
    assert.equal(found.length, 1);
    assert.deepEqual(
      found[0]!.containers.map((c) => c.name),
      ["packer-builder"],
    );
    assert.deepEqual(
      found[0]!.volumes.map((v) => v.name),
      ["twin-store"],
    );
    assert.deepEqual(engine.asked, [DOCKER_LABEL.owner]);
    const line = describeLeftovers(found[0]!);
    assert.match(line, new RegExp(`run ${dead.id} \\(pid 200, \`imgtool bake ami --force\``));
    assert.match(line, /container packer-builder, volume twin-store, folder .*runs/);

    const events = recordingSink();
    const dry = await removeLeftovers(found, engine, { dryRun: true, events });
    assert.deepEqual(dry[0]!.removed.slice(0, 2), ["container packer-builder", "volume twin-store"]);
    assert.equal(engine.things.length, 4, "a dry run removes nothing");
    assert.equal(existsSync(dead.dir), true);
    assert.match(events.events[0]!.message, /^would remove what dead run/);

    const done = await removeLeftovers(found, engine, { dryRun: false, events });
    assert.deepEqual(done[0]!.removed, [
      "container packer-builder",
      "volume twin-store",
      `folder ${dead.dir}`,
    ]);
    assert.deepEqual(
      engine.things.map((t) => t.name),
      ["live-instance", "ended-run-instance"],
    );
    assert.equal(existsSync(dead.dir), false);
    assert.equal(existsSync(live.dir), true, "a live run's folder stays");
    assert.deepEqual(await findLeftovers({ stateDir: dir, engine, alive }), []);
  });

  test("without dead runs the engine is not asked; a new run's warning names them", async () => {
    const dir = state();
    const engine = fakeEngine([]);
    assert.deepEqual(await findLeftovers({ stateDir: dir, engine, alive: () => false }), []);
    assert.deepEqual(engine.asked, []);
    assert.equal(
      deadRunsWarning(dir, () => false),
      undefined,
    );
    const dead = startRun(dir, { command: "imgtool bake ami", pid: 200 });
    const warning = deadRunsWarning(dir, () => false);
    assert.match(warning ?? "", new RegExp(`1 earlier run\\(s\\) died without cleaning up \\(${dead.id}\\)`));
    assert.match(
      warning ?? "",
      /`imgtool doctor` lists what they left, `imgtool prune --leftovers` removes it/,
    );
  });
});

describe("doctor's leftovers line", () => {
  const probes = (runs: string[]): DoctorProbes => ({
    nodeVersion: () => "v20.0.0",
    dockerVersion: async () => "24.0.0",
    imageExists: async () => true,
    registry: async () => ({ anonymous: 401, authenticated: 200, api: "registry/2.0" }),
    packerVersion: async () => "Packer v1.6.6",
    awsIdentity: async () => ({ account: "1", arn: "arn" }),
    leftovers: async () => ({ runs }),
  });
  const input = {
    target: "local" as const,
    stack: undefined,
    dockerHost: "unix:///x.sock",
    baseImages: [],
    setupCommand: "scripts/setup",
    stateDir: "/state",
    pruneLeftoversCommand: "imgtool prune --leftovers",
  };

  test("no dead run: ok", async () => {
    const c = (await runDoctor(input, probes([]))).find((x) => x.part === "leftovers");
    assert.deepEqual(c, {
      part: "leftovers",
      ok: true,
      version: null,
      state: "none (no dead run in /state)",
      fix: null,
    });
  });

  test("a dead run: fails, names what it left and the command that removes it", async () => {
    const c = (await runDoctor(input, probes(["run r1 left container x, folder /state/runs/r1"]))).find(
      (x) => x.part === "leftovers",
    );
    assert.equal(c?.ok, false);
    assert.equal(c?.state, "1 dead run(s): run r1 left container x, folder /state/runs/r1");
    assert.equal(c?.fix, "imgtool prune --leftovers");
  });

  test("on aws too (the run folders hold Packer's temp files there)", async () => {
    const checks = await runDoctor(
      { ...input, target: "aws" },
      probes(["run r2 left folder /state/runs/r2"]),
    );
    assert.equal(checks.find((x) => x.part === "leftovers")?.ok, false);
    assert.equal(
      checks.find((x) => x.part === "docker engine"),
      undefined,
    );
  });
});

describe("leftovers: twin images and pre-load volumes of a dead bake", () => {
  const twin = (id: string, owner: string, pipeline = "bench"): LabelledResource => ({
    kind: "image",
    id,
    name: `imgtool-twin/${pipeline}-task-runner:v2`,
    labels: {
      [DOCKER_LABEL.owner]: owner,
      "org.imgtool.pipeline": pipeline,
      "org.imgtool.role": "task-runner",
    },
  });
  const store = (name: string, owner: string, version: string, extra = {}): LabelledResource =>
    owned("volume", name, owner, {
      [DOCKER_LABEL.pipeline]: "bench",
      [DOCKER_LABEL.role]: "task-runner",
      [DOCKER_LABEL.version]: version,
      [DOCKER_LABEL.image]: "127.0.0.1:5000/bench/task-runner@sha256:1",
      ...extra,
    });
  /** A catalog whose task-runner AMI history holds version v1, value sha256:published. */
  const catalog = {
    opened: 0,
    async history(key: { role: string; arch: string }) {
      return key.role === "task-runner" && key.arch === "x86_64"
        ? [{ version: "v1", value: "sha256:published" }]
        : [];
    },
  };

  test("unpublished ones are found and removed (containers, images, volumes, folder); published ones are kept and named", async () => {
    const dir = state();
    const dead = startRun(dir, { command: "imgtool pipeline", pid: 300 });
    const engine = fakeEngine([
      owned("container", "preload", dead.id),
      twin("sha256:unpublished", dead.id),
      store("imgtool-bench-task-runner-v2-store", dead.id, "v2"),
      twin("sha256:published", dead.id),
      store("imgtool-bench-task-runner-v1-store", dead.id, "v1"),
      twin("sha256:other", dead.id, "otherpipe"),
      owned("volume", "instance-vol", dead.id, {
        [DOCKER_LABEL.launch]: "instance",
        [DOCKER_LABEL.version]: "v1",
      }),
    ]);
    let opens = 0;
    const published = publishedIn(async () => {
      opens++;
      return catalog;
    }, "bench");
    const found = await findLeftovers({ stateDir: dir, engine, alive: () => false, published });
    assert.equal(opens, 1, "the catalog is opened once");
    const l = found[0]!;
    assert.deepEqual(
      l.images.map((i) => i.id),
      ["sha256:unpublished"],
    );
    assert.deepEqual(
      l.volumes.map((v) => v.name),
      ["imgtool-bench-task-runner-v2-store", "instance-vol"],
    );
    assert.deepEqual(
      l.kept.map((k) => k.id),
      ["sha256:published", "sha256:other", "imgtool-bench-task-runner-v1-store"],
    );
    assert.match(
      describeLeftovers(l),
      /container preload, image imgtool-twin\/bench-task-runner:v2, volume imgtool-bench-task-runner-v2-store, volume instance-vol, folder .*; kept image .*, volume imgtool-bench-task-runner-v1-store \(published in the catalog\)$/,
    );
    const done = await removeLeftovers(found, engine, { dryRun: false, events: recordingSink() });
    assert.deepEqual(done[0]!.removed, [
      "container preload",
      "image imgtool-twin/bench-task-runner:v2",
      "volume imgtool-bench-task-runner-v2-store",
      "volume instance-vol",
      `folder ${dead.dir}`,
    ]);
    assert.deepEqual(engine.things.map((t) => t.id).sort(), [
      "imgtool-bench-task-runner-v1-store",
      "sha256:other",
      "sha256:published",
    ]);
  });

  test("a base twin (no pipeline label) of a dead run: removed unless this catalog published it or another pipeline tagged it", async () => {
    const dir = state();
    const dead = startRun(dir, { command: "imgtool bake ami", pid: 302 });
    const base = (id: string, tags: string[]): LabelledResource => ({
      kind: "image",
      id,
      name: tags[0] ?? id.slice(7, 19),
      labels: {
        [DOCKER_LABEL.owner]: dead.id,
        [IMAGE_LABEL.role]: "task-runner",
        [IMAGE_LABEL.stage]: "base",
        [IMAGE_LABEL.inputsHash]: "abc",
      },
      tags,
    });
    const engine = fakeEngine([
      // killed before finish tagged it
      base("sha256:untagged", []),
      // killed after finish tagged it (this pipeline's tag and the engine-wide one), before the publish
      base("sha256:tagged", [
        "imgtool-twin/bench-task-runner-base:v3",
        "imgtool-base-twin/task-runner:h-abc",
      ]),
      // published in this catalog before the run died
      base("sha256:published", ["imgtool-twin/bench-task-runner-base:v1"]),
      // adopted by another pipeline on the engine
      base("sha256:adopted", ["imgtool-twin/otherpipe-task-runner-base:v2"]),
    ]);
    const history = {
      async history(key: { role: string; kind: string; arch: string }) {
        return key.kind === "base" && key.arch === "x86_64"
          ? [{ version: "v1", value: "sha256:published" }]
          : [];
      },
    };
    const [l] = await findLeftovers({
      stateDir: dir,
      engine,
      alive: () => false,
      published: publishedIn(async () => history, "bench"),
    });
    assert.deepEqual(
      l!.images.map((i) => i.id),
      ["sha256:untagged", "sha256:tagged"],
    );
    assert.deepEqual(
      l!.kept.map((k) => k.id),
      ["sha256:published", "sha256:adopted"],
    );
    await removeLeftovers([l!], engine, { dryRun: false, events: recordingSink() });
    assert.deepEqual(engine.things.map((t) => t.id).sort(), ["sha256:adopted", "sha256:published"]);
  });

  test("a catalog that cannot be read keeps every image and volume", async () => {
    const dir = state();
    const dead = startRun(dir, { command: "imgtool bake ami", pid: 301 });
    const engine = fakeEngine([twin("sha256:x", dead.id), store("s", dead.id, "v9")]);
    const published = publishedIn(async () => {
      throw new Error("The local catalog is damaged");
    }, "bench");
    const [l] = await findLeftovers({ stateDir: dir, engine, alive: () => false, published });
    assert.deepEqual(l!.images, []);
    assert.deepEqual(l!.volumes, []);
    assert.deepEqual(
      l!.kept.map((k) => k.id),
      ["sha256:x", "s"],
    );
  });
});
