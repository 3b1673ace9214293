// A staged bake on the local target with real Packer and the real engine: the base stage (OS updates, Docker,
// Ruby, packages, CPU settings) and the role stage (ruby-bench, pre-load, validate, version manifest) on the base
// twin, found through the catalog by the base's inputs hash. A new ruby-bench commit rebakes only the role
// stage (the base twin's id unchanged, none of its provisioning steps run); a Ruby version change rebakes both;
// the role version's manifest names its base; the age rule; another pipeline adopting the base; a removed base
// rebuilt. The engine is shared (with other tests, other pipelines, the bench): the test bakes on a base image of
// its own (imgtool/base:bookworm plus a label naming the test), so its base twins' inputs hash is its own, every
// image it makes carries that label, and its removals touch nothing else.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { bakeStaged, hashLabel, type BakeDeps, type BakeResult } from "../../src/bake/bake.js";
import { makeTwinOps } from "../../src/bake/twin-ops.js";
import { Catalog } from "../../src/catalog/catalog.js";
import { SqliteStore } from "../../src/catalog/sqlite-store.js";
import { loadConfig, type Config } from "../../src/config/load.js";
import { IMAGE_LABEL } from "../../src/config/tags.js";
import { connectDocker } from "../../src/docker/engine.js";
import { recordingSink, type ImgtoolEvent } from "../../src/events.js";
import { resolveRubyBenchRef } from "../../src/git.js";
import { dockerHost, readStack } from "../../src/local/stack.js";
import { makePackerRunner } from "../../src/packer/runner.js";
import { projectPath } from "../../src/paths.js";
import { renderBake, writeRendered } from "../../src/render/packer.js";
import { localEngine, packerVersion } from "../render/helpers.js";
import { nextRubyBenchCommit } from "../support/fixtures/ruby-bench.js";
import { dockerCli, twinBakeProject } from "../support/twin-bake.js";
import { unavailable } from "../support/unavailable.js";

const engine = localEngine();
const PV = packerVersion();
const skip = unavailable(engine.skip ?? (PV ? false : "packer is not installed (scripts/setup installs it)"));

describe("staged bake on local (real Packer, real engine)", { skip }, () => {
  const pipeline = `staged${process.pid}`;
  /** Another pipeline on the same engine, with a catalog of its own. */
  const other = `stagedb${process.pid}`;
  const dir = mkdtempSync(path.join(tmpdir(), "imgtool-bake-staged-"));
  const stateDir = path.join(dir, "state");
  let config: Config;
  let fixture: { path: string; commit: string };
  let store: SqliteStore;
  let catalog: Catalog;
  let docker: ReturnType<typeof connectDocker>;
  const env = (engine as { env?: NodeJS.ProcessEnv }).env ?? {};
  const dockerRun = dockerCli(env);
  let first: BakeResult;
  /** The label on this test's own base image, inherited by every twin baked from it. */
  const OWN = `org.imgtool.test.bake-staged=${pipeline}`;
  const ownBase = `imgtool-test/${pipeline}-base:latest`;
  /** The images this test made (its base image and every twin baked from it), narrowed by more filters. */
  const ownImages = (...filters: string[]) => {
    const ls = dockerRun([
      "image",
      "ls",
      "-a",
      "--no-trunc",
      "--format",
      "{{.ID}}",
      "--filter",
      `label=${OWN}`,
      ...filters.flatMap((f) => ["--filter", f]),
    ]);
    if (ls.code !== 0) throw new Error(`docker image ls: ${ls.out}`);
    return [...new Set(ls.out.split("\n").filter(Boolean))];
  };

  const deps = (
    cfg: Config,
    extra: Partial<BakeDeps> = {},
  ): BakeDeps & { sink: { events: ImgtoolEvent[] } } => {
    const events = recordingSink();
    return {
      sink: events,
      config: cfg,
      events,
      packer: makePackerRunner(),
      packerVersion: PV!,
      render: renderBake,
      writeRendered,
      catalog: async () => catalog,
      resolveCommit: (role, src) => resolveRubyBenchRef(role, src),
      gitRevision: async () => "test",
      ops: makeTwinOps({ docker }),
      buildRoot: path.join(dir, "builds"),
      packerEnv: { DOCKER_HOST: env.DOCKER_HOST! },
      ...extra,
    };
  };
  /** Packer's output of a bake: the scripts it provisioned with. */
  const provisioned = (events: ImgtoolEvent[]) =>
    events
      .map((e) => /Provisioning with shell script: scripts\/([a-z-]+)\.sh/.exec(e.message)?.[1])
      .filter((s): s is string => !!s);
  const labels = async (id: string) => (await docker.getImage(id).inspect()).Config.Labels ?? {};

  before(async () => {
    docker = connectDocker(dockerHost(readStack(projectPath(".imgtool")), {}));
    const project = twinBakeProject({ parent: dir, pipeline, stateDir });
    fixture = project.rubyBench;
    config = loadConfig(project.config, { explicit: true }).config;
    const from = config.roles["task-runner"].base.local.image;
    execFileSync("docker", ["image", "build", "-q", "-t", ownBase, "-"], {
      env: { ...process.env, ...env },
      input: `FROM ${from}\nLABEL ${OWN}\n`,
      stdio: ["pipe", "ignore", "inherit"],
    });
    config.roles["task-runner"].base.local.image = ownBase;
    store = new SqliteStore(path.join(dir, "catalog.db"));
    catalog = new Catalog({ store, prefix: `/imgtool/${pipeline}` });
    const d = deps(config);
    // --force: the base's provisioning runs even when the engine has a base twin of these inputs already.
    first = await bakeStaged("task-runner", d, { stage: "all", force: true });
    const steps = provisioned(d.sink.events);
    assert.ok(steps.includes("update-os") && steps.includes("install-ruby-bench"), steps.join(" "));
  });
  after(async () => {
    store?.close();
    // Only what this test made: its base image and the twins baked from it. A parent goes once its children
    // have (the engine keeps an image while a child uses it): passes until none is left or none goes. -f drops
    // every tag of one of them (the engine-wide base tag, another pipeline's tag of an adopted base): tags of
    // this test's images only.
    let left = ownImages();
    for (let gone = true; left.length && gone;) {
      const before = left.length;
      for (const id of left) dockerRun(["image", "rm", "-f", id]);
      left = ownImages();
      gone = left.length < before;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test("both stages are built; the role twin is built on the base twin and its manifest names the base version", async () => {
    const base = first.base!;
    assert.equal(base.stage, "base");
    assert.equal(base.status, "built");
    assert.equal(first.stage, "role");
    assert.equal(first.status, "built");
    assert.equal((await labels(base.artifacts[0]!.id))[IMAGE_LABEL.stage], "base");
    const roleLabels = await labels(first.artifacts[0]!.id);
    assert.equal(roleLabels[IMAGE_LABEL.stage], "role");
    assert.equal(roleLabels[IMAGE_LABEL.baseVersion], base.version);
    const { found } = await catalog.resolve(
      [
        { role: "task-runner", kind: "ami", arch: first.artifacts[0]!.arch },
        { role: "task-runner", kind: "base", arch: base.artifacts[0]!.arch },
      ],
      { meta: true },
    );
    assert.equal(found[0]!.value, first.artifacts[0]!.id);
    assert.equal(found[1]!.value, base.artifacts[0]!.id, "the base version is a catalog artefact");
    const meta = found[0]!.meta!;
    assert.equal(meta.baseVersion, base.version);
    const manifest = meta.manifest as { base?: { version: string; id: string }; [k: string]: unknown };
    assert.equal(manifest.base?.version, base.version, "the role version's manifest names its base");
    assert.equal(manifest.base?.id, base.artifacts[0]!.id);
    assert.match(JSON.stringify(manifest), new RegExp(fixture.commit), "the in-image manifest is kept");
  });

  test("unchanged inputs: both stages up to date, no Packer run", async () => {
    const d = deps(config);
    const r = await bakeStaged("task-runner", d, { stage: "all" });
    assert.equal(r.base!.status, "up-to-date");
    assert.equal(r.status, "up-to-date");
    assert.equal(r.version, first.version);
    assert.deepEqual(provisioned(d.sink.events), []);
  });

  test("a new ruby-bench commit rebakes only the role stage, on the same base twin", async () => {
    nextRubyBenchCommit(fixture.path);
    const d = deps(config);
    const r = await bakeStaged("task-runner", d, { stage: "all" });
    assert.equal(r.base!.status, "up-to-date");
    assert.equal(r.base!.artifacts[0]!.id, first.base!.artifacts[0]!.id, "the base twin is unchanged");
    assert.equal(r.status, "built");
    assert.notEqual(r.version, first.version);
    const steps = provisioned(d.sink.events);
    assert.ok(steps.includes("install-ruby-bench") && steps.includes("validate"), steps.join(" "));
    for (const s of ["update-os", "install-packages", "install-docker", "install-ruby", "configure-cpu"])
      assert.ok(!steps.includes(s), `the base step ${s} ran again: ${steps.join(" ")}`);
    assert.equal((await labels(r.artifacts[0]!.id))[IMAGE_LABEL.baseVersion], first.base!.version);
  });

  test("--stage role with a base published for the current inputs: only the role stage runs", async () => {
    const d = deps(config);
    const r = await bakeStaged("task-runner", d, { stage: "role", force: true });
    assert.equal(r.status, "built");
    assert.equal(r.base!.version, first.base!.version);
    assert.ok(!provisioned(d.sink.events).includes("update-os"));
  });

  test("a Ruby version change rebakes both stages", async () => {
    const changed = structuredClone(config);
    changed.roles["task-runner"].ruby.versions = ["3.1.2"];
    const d = deps(changed);
    const r = await bakeStaged("task-runner", d, { stage: "all" });
    assert.equal(r.base!.status, "built");
    assert.notEqual(r.base!.artifacts[0]!.id, first.base!.artifacts[0]!.id);
    assert.equal(r.status, "built");
    assert.match(r.reason ?? "", /base .* is new/);
    assert.equal((await labels(r.artifacts[0]!.id))[IMAGE_LABEL.baseVersion], r.base!.version);
  });
  test("a base older than max_age_days is rebuilt (the clock moved 8 days on, no sleep)", async () => {
    const d = deps(config, { now: () => new Date(Date.now() + 8 * 86_400_000) });
    const r = await bakeStaged("task-runner", d, { stage: "base" });
    assert.equal(r.stage, "base");
    assert.equal(r.status, "built");
    assert.match(r.reason ?? "", /days old, older than roles\.task-runner\.base\.max_age_days \(7\)/);
    assert.notEqual(r.artifacts[0]!.id, first.base!.artifacts[0]!.id);
    assert.ok(provisioned(d.sink.events).includes("update-os"), "the base's provisioning ran again");
  });

  test("another pipeline's catalog finds the base twin on the engine by its inputs hash: recorded, not rebuilt", async () => {
    const otherStore = new SqliteStore(path.join(dir, "catalog-other.db"));
    try {
      const otherCatalog = new Catalog({ store: otherStore, prefix: `/imgtool/${other}` });
      const d = deps({ ...config, pipeline: other }, { catalog: async () => otherCatalog });
      const newest = (
        await catalog.resolve([{ role: "task-runner", kind: "base", arch: first.base!.artifacts[0]!.arch }], {
          label: hashLabel(first.base!.inputsHash),
          meta: true,
        })
      ).found[0]!;
      const r = await bakeStaged("task-runner", d, { stage: "base" });
      assert.equal(r.status, "up-to-date");
      assert.equal(
        r.inputsHash,
        first.base!.inputsHash,
        "a local base's inputs do not depend on the pipeline",
      );
      assert.equal(r.artifacts[0]!.id, newest.value, "the newest base twin of these inputs");
      assert.match(r.reason ?? "", /outside this catalog: recorded, not rebuilt/);
      assert.deepEqual(provisioned(d.sink.events), [], "no Packer run");
      const { found } = await otherCatalog.resolve(
        [{ role: "task-runner", kind: "base", arch: r.artifacts[0]!.arch }],
        { meta: true },
      );
      assert.equal(found[0]?.value, newest.value);
      assert.equal(found[0]?.meta?.adopted, true);
      const tags = (await docker.getImage(newest.value).inspect()).RepoTags ?? [];
      assert.ok(tags.includes(`imgtool-twin/${other}-task-runner-base:${r.version}`), tags.join(" "));
    } finally {
      otherStore.close();
    }
  });

  test("a base twin removed outside this catalog (as another catalog's prune does) is found gone and rebuilt", async () => {
    const published = (
      await catalog.resolve([{ role: "task-runner", kind: "base", arch: first.base!.artifacts[0]!.arch }], {
        label: hashLabel(first.base!.inputsHash),
      })
    ).found[0]!.value;
    // The role twins built on it go first (the engine keeps a parent image while a child uses it).
    for (const id of ownImages(`label=${IMAGE_LABEL.stage}=role`)) dockerRun(["image", "rm", "-f", id]);
    // Every base twin of these inputs (the one published and the older one of the first bake): this test's own.
    const bases = ownImages(
      `label=${IMAGE_LABEL.inputsHash}=${first.base!.inputsHash}`,
      `label=${IMAGE_LABEL.stage}=base`,
    );
    assert.ok(bases.includes(published), bases.join(" "));
    for (const id of new Set(bases)) assert.equal(dockerRun(["image", "rm", "-f", id]).code, 0);
    const d = deps(config);
    const r = await bakeStaged("task-runner", d, { stage: "base" });
    assert.equal(r.status, "built");
    assert.match(r.reason ?? "", /is gone \(removed outside this catalog\)/);
    assert.notEqual(r.artifacts[0]!.id, published);
    assert.ok(provisioned(d.sink.events).includes("install-ruby"), "the base's provisioning ran again");
  });
});
