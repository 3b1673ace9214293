// `imgtool bake ami` on the local target: a real Packer build of the task-runner twin through the CLI, its
// record in the catalog; a second bake with unchanged inputs runs no Packer; a one-byte change to a script
// rebakes.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { bakeRole, type BakeDeps } from "../../src/bake/bake.js";
import { makeTwinOps } from "../../src/bake/twin-ops.js";
import { Catalog } from "../../src/catalog/catalog.js";
import { SqliteStore } from "../../src/catalog/sqlite-store.js";
import { loadConfig } from "../../src/config/load.js";
import { connectDocker } from "../../src/docker/engine.js";
import { recordingSink } from "../../src/events.js";
import { resolveRubyBenchRef } from "../../src/git.js";
import { dockerHost, registryPassword, requireStack } from "../../src/local/stack.js";
import { makePackerRunner } from "../../src/packer/runner.js";
import { projectPath } from "../../src/paths.js";
import { renderBake, writeRendered, type RenderedBake } from "../../src/render/packer.js";
import { runCli } from "../support/cli.js";
import { twinBakeProject } from "../support/twin-bake.js";

interface BakeJson {
  results: {
    role: string;
    status: string;
    version: string;
    inputsHash: string;
    packerRuns: number;
    artifacts: { id: string; arch: string }[];
  }[];
}

describe("bake ami on local (real Packer, real engine)", () => {
  const stateDir = projectPath(".imgtool");
  const stack = requireStack(stateDir);
  const docker = connectDocker(dockerHost(stack, {}));
  const pipeline = `bake${process.pid}`;
  const dir = mkdtempSync(path.join(tmpdir(), "imgtool-bake-local-"));
  const { config: cfg, rubyBench: fixture } = twinBakeProject({ parent: dir, pipeline, stateDir });
  const built: string[] = [];
  let first: BakeJson["results"][number];

  before(async () => {
    const r = await runCli(["bake", "ami", "--role", "task-runner", "--json", "--config", cfg], {
      env: { DOCKER_HOST: "" },
      timeoutMs: 600_000,
    });
    assert.equal(r.code, 0, r.stderr.slice(-3000));
    first = (JSON.parse(r.stdout) as BakeJson).results[0]!;
    built.push(first.version);
  });
  after(async () => {
    for (const v of built)
      await docker
        .getImage(`imgtool-twin/${pipeline}-task-runner:${v}`)
        .remove()
        .catch(() => undefined);
    // The staged bake's base twins (`bake ami` bakes a base stage, then the role stage on it).
    for (const img of await docker.listImages({
      filters: JSON.stringify({ reference: [`imgtool-twin/${pipeline}-task-runner-base`] }),
    }))
      for (const t of img.RepoTags ?? [])
        await docker
          .getImage(t)
          .remove()
          .catch(() => undefined);
  });

  test("the twin is built, tagged with its version and published with its version manifest", async () => {
    assert.equal(first.status, "built");
    assert.equal(first.packerRuns, 1);
    const image = await docker.getImage(`imgtool-twin/${pipeline}-task-runner:${first.version}`).inspect();
    assert.equal(image.Id, first.artifacts[0]!.id);
    const store = new SqliteStore(path.join(stateDir, "catalog.db"));
    try {
      const cat = new Catalog({ store, prefix: `/imgtool/${pipeline}` });
      const { found } = await cat.resolve(
        [{ role: "task-runner", kind: "ami", arch: first.artifacts[0]!.arch }],
        { meta: true },
      );
      assert.equal(found[0]!.value, image.Id);
      const meta = found[0]!.meta!;
      assert.equal(meta.version, first.version);
      assert.equal(meta.rubyBenchCommit, fixture.commit);
      const manifest = meta.manifest as Record<string, unknown>;
      assert.ok(manifest, "write-manifest.sh's version manifest is stored with the catalog entry");
      assert.match(JSON.stringify(manifest), /3\.1/, "it records the Ruby version");
      assert.match(JSON.stringify(manifest), new RegExp(fixture.commit), "and the ruby-bench commit");
    } finally {
      store.close();
    }
  });

  test("a second bake with unchanged inputs runs no Packer and says up to date", async () => {
    const r = await runCli(["bake", "ami", "--role", "task-runner", "--json", "--config", cfg], {
      env: { DOCKER_HOST: "" },
    });
    assert.equal(r.code, 0, r.stderr);
    const again = (JSON.parse(r.stdout) as BakeJson).results[0]!;
    assert.equal(again.status, "up-to-date");
    assert.equal(again.packerRuns, 0);
    assert.equal(again.version, first.version);
    assert.match(r.stderr, /up to date/);
    assert.doesNotMatch(r.stderr, /Provisioning with shell script/);
  });

  test("a one-byte change to a provisioning script rebakes", async () => {
    const { config } = loadConfig(cfg, { explicit: true });
    const store = new SqliteStore(path.join(stateDir, "catalog.db"));
    const cat = new Catalog({ store, prefix: `/imgtool/${pipeline}` });
    const packer = makePackerRunner();
    const oneByte = (r: RenderedBake): RenderedBake => ({
      ...r,
      files: { ...r.files, "scripts/cleanup.sh": `${r.files["scripts/cleanup.sh"]}\n` },
    });
    const deps: BakeDeps = {
      config,
      events: recordingSink(),
      packer,
      packerVersion: (await packer.version())!,
      render: (...a) => oneByte(renderBake(...a)),
      writeRendered,
      catalog: async () => cat,
      resolveCommit: (role, src) => resolveRubyBenchRef(role, src),
      gitRevision: async () => "test",
      ops: makeTwinOps({
        docker,
        registry: {
          endpoint: stack.registry.endpoint,
          user: stack.registry.user,
          password: registryPassword(stack),
        },
      }),
      buildRoot: path.join(dir, "builds"),
      packerEnv: { DOCKER_HOST: dockerHost(stack, {}) },
    };
    try {
      const r = await bakeRole("task-runner", deps);
      built.push(r.version);
      assert.equal(r.status, "built");
      assert.equal(r.packerRuns, 1);
      assert.notEqual(r.inputsHash, first.inputsHash);
    } finally {
      store.close();
    }
  });
});
