// The local twin's pre-load, checked before work: a role-stage rebake whose images are those of the role's
// latest version, on the same base (a new ruby-bench commit), copies that version's pre-loaded store into its
// own volume instead of pulling again; with no such volume (an empty, unlabelled one of its name: what the engine
// leaves when something mounts a name that is gone), or with --force, it pulls. Real CLI, Packer,
// engine and registry: the registry's own request log says whether anything was pulled, and the two volumes'
// file trees are compared by a container that mounts both, and the twin's own engine, started on the copy, has the
// image under its digest.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { DOCKER_LABEL } from "../../src/config/tags.js";
import { ENGINE_LIB_MOUNT, NESTED_ENGINE_PRIVILEGES, engineLibDir } from "../../src/docker/nested-engine.js";
import { runCli } from "../support/cli.js";
import { nextRubyBenchCommit } from "../support/fixtures/ruby-bench.js";
import { dockerCli, ownStateDir, twinBakeProject } from "../support/twin-bake.js";
import { unavailable } from "../support/unavailable.js";
import { localEngine } from "../render/helpers.js";

const local = localEngine();
const skip = unavailable(local.skip);
const env = (local as { env?: NodeJS.ProcessEnv }).env ?? {};
const docker = dockerCli(env);

interface BakeDoc {
  results: { role: string; stage?: string; status: string; version: string; artifacts: { id: string }[] }[];
}

describe(
  "the twin's pre-load copies a published store of the same images (real CLI, Packer, engine, registry)",
  { skip },
  () => {
    const pipeline = `preseed${process.pid}`;
    let dir = "";
    let cfg = "";
    let rubyBench = "";
    let registryLog = "";
    let imageRepo = "";
    let imageId = "";
    let imageRef = "";
    /** Volumes the test made without the pipeline's label. */
    const stray: string[] = [];

    /** `imgtool bake ami` of the task runner; its JSON result's role stage, stderr, and what the registry logged meanwhile. */
    const bake = async (...args: string[]) => {
      const offset = statSync(registryLog).size;
      const r = await runCli(["bake", "ami", "--role", "task-runner", "--json", "--config", cfg, ...args], {
        env: { DOCKER_HOST: "" },
        timeoutMs: 900_000,
      });
      assert.equal(r.code, 0, r.stderr.slice(-3000));
      const role = (JSON.parse(r.stdout) as BakeDoc).results.find((x) => x.stage === "role")!;
      assert.equal(role.status, "built", r.stderr.slice(-2000));
      const pulled = readFileSync(registryLog)
        .subarray(offset)
        .toString("utf8")
        .split("\n")
        .filter((l) => l.includes(`/v2/${imageRepo}/`) && /"GET /.test(l));
      const volume = new RegExp(`pre-loading \\S+ into volume (\\S+)`).exec(r.stderr)?.[1];
      assert.ok(volume, `a pre-load: ${r.stderr.slice(-2000)}`);
      return { role, stderr: r.stderr, pulled, volume };
    };
    /**
     * The file tree of a store volume (paths, types, sizes) as a container that mounts it read-only lists it:
     * whether it holds an image store, how many entries, and their digest.
     */
    const tree = (volume: string, twin: string) => {
      const r = docker([
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        `${volume}:/s:ro`,
        "--entrypoint",
        "/bin/sh",
        twin,
        "-c",
        "cd /s && test -f image/overlay2/repositories.json && echo store && " +
          "find image overlay2 -printf '%p %y %s\\n' | sort | tee /tmp/t | wc -l && sha256sum </tmp/t",
      ]);
      assert.equal(r.code, 0, r.out);
      return r.out;
    };

    before(async () => {
      dir = mkdtempSync(path.join(tmpdir(), "imgtool-preload-seed-"));
      const stateDir = ownStateDir(dir);
      const project = twinBakeProject({ parent: dir, pipeline, stateDir });
      cfg = project.config;
      rubyBench = project.rubyBench.path;
      const { publishLocalImage, pushLabelledImage, stack } = await import("../push/support.js");
      registryLog = path.join(path.dirname(stack.registry.passwordFile), "registry.log");
      imageRepo = `${pipeline}/task-runner`;
      const pushed = await pushLabelledImage(
        `${stack.registry.endpoint}/${imageRepo}`,
        "v1",
        `org.imgtool.test.preload-seed="${pipeline}"`,
      );
      imageId = pushed.imageId;
      imageRef = pushed.ref;
      await publishLocalImage(stateDir, pipeline, "task-runner", pushed.ref, "v20261204-000001-cccc0001");
    });
    after(() => {
      for (const v of stray) docker(["volume", "rm", "-f", v]);
      const label = `label=${DOCKER_LABEL.pipeline}=${pipeline}`;
      for (const v of docker(["volume", "ls", "-q", "--filter", label]).out.split("\n").filter(Boolean))
        docker(["volume", "rm", "-f", v]);
      const twins = docker(["image", "ls", "-q", "--no-trunc", `imgtool-twin/${pipeline}-task-runner`]).out;
      for (const t of new Set(twins.split("\n").filter(Boolean))) docker(["image", "rm", "-f", t]);
      if (imageId) docker(["image", "rm", "-f", imageId]);
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    test("a new ruby-bench commit: the role stage copies the latest version's store (no pull), file for file; with no such store (an empty volume of its name), or with --force, it pulls", async () => {
      const first = await bake();
      assert.doesNotMatch(first.stderr, /a copy of volume/);
      assert.ok(first.pulled.length > 0, "the first bake pulls its image from the registry");

      nextRubyBenchCommit(rubyBench);
      const second = await bake();
      assert.notEqual(second.role.version, first.role.version);
      assert.match(
        second.stderr,
        new RegExp(
          `into volume ${second.volume} \\(a copy of volume ${first.volume}: ${first.role.version} holds the same images on the same base; no pull\\)`,
        ),
      );
      assert.deepEqual(second.pulled, [], "the copy pulled nothing from the registry");
      const twin = second.role.artifacts[0]!.id;
      const copied = tree(second.volume, twin);
      assert.match(copied, /^store\n\d{3,}\n[0-9a-f]{64} /, "the copy holds the engine's image store");
      assert.equal(copied, tree(first.volume, twin), "the copy is the first version's store, file for file");
      // The real judge of a store: the twin's own engine, started on the copy, has the image under its digest.
      const engine = docker([
        "run",
        "--rm",
        ...NESTED_ENGINE_PRIVILEGES.CapAdd.flatMap((c) => ["--cap-add", c]),
        ...NESTED_ENGINE_PRIVILEGES.SecurityOpt.flatMap((o) => ["--security-opt", o]),
        "--network",
        "host",
        "-v",
        `${second.volume}:/var/lib/docker`,
        "-v",
        "/sys/fs/cgroup:/sys/fs/cgroup",
        "-v",
        `${engineLibDir()}:${ENGINE_LIB_MOUNT}:ro`,
        "--entrypoint",
        "/bin/sh",
        twin,
        "-c",
        `sh ${ENGINE_LIB_MOUNT}/imgtool-engine start --host-network --pidfile /run/t.pid --wait 30 -- ` +
          `--host unix:///var/run/docker.sock && docker image inspect --format '{{index .RepoDigests 0}}' "$0"; ` +
          `rc=$?; sh ${ENGINE_LIB_MOUNT}/imgtool-engine stop --pidfile /run/t.pid --wait 60; exit $rc`,
        imageRef,
      ]);
      assert.equal(engine.code, 0, engine.out);
      assert.equal(engine.out.trim(), imageRef, "the engine on the copied store has the image by its digest");

      // The latest version's store was removed, and a volume of its name is back, empty and unlabelled (what the
      // engine makes when something mounts a name that is gone): not a store to copy; the next rebake pulls.
      docker(["volume", "rm", "-f", second.volume]);
      assert.equal(docker(["volume", "create", second.volume]).code, 0);
      stray.push(second.volume);
      nextRubyBenchCommit(rubyBench);
      const third = await bake();
      assert.match(
        third.stderr,
        new RegExp(
          `the pre-loaded store of ${second.role.version} \\(volume ${second.volume}\\) is not labelled as ${second.role.version}'s store of \\S+: pulling`,
        ),
      );
      assert.doesNotMatch(third.stderr, /a copy of volume/);
      assert.ok(third.pulled.length > 0, "with no store to copy, the bake pulls");

      // --force pulls afresh, though the latest version's store holds the same images.
      const forced = await bake("--stage", "role", "--force");
      assert.doesNotMatch(forced.stderr, /a copy of volume/);
      assert.ok(forced.pulled.length > 0, "--force pulls");
    });
  },
);
