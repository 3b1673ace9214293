// Fault: a bake killed with SIGKILL during the pre-load (after Packer committed the twin, while the pre-load
// container pulls the role's image into the twin's store), with the real CLI, Packer, engine and registry. No
// cleanup runs: the pre-load container, the unpublished twin image, its pre-load volume and the run's folder
// (with the registry password file) stay. Then `doctor` exits 1 naming each, `prune --leftovers` removes them
// all, and nothing labelled with the run is left; the catalog never points at the unpublished twin.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { DOCKER_LABEL } from "../../src/config/tags.js";
import { runCli, startCli } from "../support/cli.js";
import { dockerCli, ownStateDir, twinBakeProject } from "../support/twin-bake.js";
import { localEngine } from "../render/helpers.js";
import { unavailable } from "../support/unavailable.js";
import { publishLocalImage, pushLabelledImage, stack } from "../push/support.js";

const local = localEngine();
const env = (local as { env?: NodeJS.ProcessEnv }).env ?? {};
const docker = dockerCli(env);

interface PruneDoc {
  leftovers: {
    runId: string;
    containers: string[];
    images: string[];
    volumes: string[];
    removed: string[];
  }[];
}

describe(
  "fault: SIGKILL during the pre-load, then doctor and prune --leftovers",
  { skip: unavailable(local.skip) },
  () => {
    const dir = mkdtempSync(path.join(tmpdir(), "imgtool-fault-preload-"));
    const cleanup: string[][] = [];
    after(() => {
      for (const args of cleanup.reverse()) docker(args);
      rmSync(dir, { recursive: true, force: true });
    });

    test("the pre-load container, twin image, volume and run folder are named by doctor and removed by prune --leftovers", async () => {
      const pipeline = `faultpre${process.pid}`;
      const stateDir = ownStateDir(dir);
      const cfg = twinBakeProject({ parent: dir, pipeline, stateDir }).config;
      const cliEnv = { DOCKER_HOST: "" };

      // The role's image, pushed and published, for the pre-load to pull.
      const pushed = await pushLabelledImage(
        `${stack.registry.endpoint}/${pipeline}/task-runner`,
        "v1",
        `org.imgtool.test.preload="${pipeline}"`,
      );
      cleanup.push(["image", "rm", "-f", pushed.imageId]);
      await publishLocalImage(stateDir, pipeline, "task-runner", pushed.ref, "v20261203-000001-aaaa0001");

      const cli = startCli(["bake", "ami", "--force", "--role", "task-runner", "--config", cfg], {
        env: cliEnv,
        timeoutMs: 1_200_000,
      });
      const volume = (await cli.waitFor(/pre-loading \S+ into volume (\S+)/))[1]!;
      const runId = readdirSync(path.join(stateDir, "runs")).filter((n) => !n.startsWith("."))[0]!;
      cleanup.push(["volume", "rm", "-f", volume]);
      // Kill once the pre-load container exists (polled with a bound, never a sleep-and-hope).
      const label = `label=${DOCKER_LABEL.owner}=${runId}`;
      let preload = "";
      for (let i = 0; i < 600 && !preload; i++) {
        preload = docker(["ps", "-aq", "--filter", label, "--filter", `volume=${volume}`]).out.trim();
        if (!preload) await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(preload, "the pre-load container appeared");
      process.kill(cli.pid, "SIGKILL");
      assert.equal((await cli.done).code, null, "imgtool was killed");
      cleanup.push(["container", "rm", "-f", preload]);
      // The role's twin (a staged bake's base twin, published before the role stage, carries the label too).
      const twins = docker([
        "image",
        "ls",
        "-q",
        "--filter",
        label,
        "--filter",
        `reference=imgtool-twin/${pipeline}-task-runner`,
      ])
        .out.trim()
        .split("\n")
        .filter(Boolean);
      for (const t of twins) cleanup.push(["image", "rm", "-f", t]);
      assert.equal(twins.length, 1, "the twin Packer committed carries the run's owner label");
      assert.equal(docker(["volume", "inspect", volume]).code, 0, "the pre-load volume is left");

      // doctor: exit 1 naming the container, the twin, the volume and the folder.
      const sick = await runCli(["doctor", "--json", "--config", cfg], { env: cliEnv });
      assert.equal(sick.code, 1, sick.stdout + sick.stderr);
      const line = (
        JSON.parse(sick.stdout) as { checks: { part: string; state: string; fix: string | null }[] }
      ).checks.find((c) => c.part === "leftovers");
      assert.match(
        line?.state ?? "",
        new RegExp(
          `run ${runId} .*container \\S+, image imgtool-twin/${pipeline}-task-runner:\\S+, volume ${volume}, folder `,
        ),
      );
      assert.equal(line?.fix, "imgtool prune --leftovers");

      // prune --leftovers removes all of it.
      const wet = await runCli(["prune", "--leftovers", "--json", "--config", cfg], { env: cliEnv });
      assert.equal(wet.code, 0, wet.stderr);
      const doc = JSON.parse(wet.stdout) as PruneDoc;
      const removed = doc.leftovers.find((l) => l.runId === runId)?.removed ?? [];
      assert.ok(
        removed.some((r) => /^container /.test(r)),
        removed.join(", "),
      );
      assert.ok(removed.includes(`volume ${volume}`), removed.join(", "));
      assert.ok(
        removed.some((r) => r.startsWith(`image imgtool-twin/${pipeline}-task-runner:`)),
        removed.join(", "),
      );
      assert.equal(docker(["ps", "-aq", "--filter", label]).out.trim(), "", "a labelled container remains");
      // The one labelled image left is the base twin the run published before its role stage: kept, as the
      // catalog points at it (a staged bake's base stage finishes before the role stage's pre-load).
      const left = [
        ...new Set(
          docker(["image", "ls", "-q", "--no-trunc", "--filter", label]).out.split("\n").filter(Boolean),
        ),
      ];
      for (const id of left) cleanup.push(["image", "rm", "-f", id]);
      const bases = await runCli(["status", "--json", "--config", cfg], { env: cliEnv });
      const published = (
        JSON.parse(bases.stdout) as { artifacts: { kind: string; current: { value: string } | null }[] }
      ).artifacts
        .filter((r) => r.kind === "base")
        .map((r) => r.current?.value);
      assert.deepEqual(left, published, "a labelled image other than the published base twin remains");
      assert.ok(
        left.every(
          (id) =>
            docker([
              "image",
              "inspect",
              "--format",
              '{{index .Config.Labels "org.imgtool.stage"}}',
              id,
            ]).out.trim() === "base",
        ),
      );
      assert.equal(
        docker(["volume", "ls", "-q", "--filter", label]).out.trim(),
        "",
        "a labelled volume remains",
      );
      assert.equal(
        existsSync(path.join(stateDir, "runs", runId)),
        false,
        "the run's folder (password file) remains",
      );

      // The catalog never pointed at the unpublished twin; doctor is ok again.
      const status = await runCli(["status", "--json", "--config", cfg], { env: cliEnv });
      assert.doesNotMatch(status.stdout, /"kind":\s*"ami"/);
      const well = await runCli(["doctor", "--json", "--config", cfg], { env: cliEnv });
      assert.equal(well.code, 0, well.stdout);
    });
  },
);
