// Fault: SIGINT or SIGTERM sent to the imgtool process alone (not its group: what a supervisor or a CI runner
// sends) during the pre-load step of a local bake (after Packer committed the twin, while the pre-load container
// pulls the role's image into the twin's store), with the real CLI, Packer, engine and registry. The signal is
// sent once the pre-load container exists (its start seen in imgtool's output, then the container polled with a
// bound), never after a fixed sleep. Afterwards: exit 130 / 143, a message that names what was removed, the
// catalog as it was (no AMI entry), and nothing of the run left, by label and by path: no pre-load container,
// no twin image, no pre-load volume, no run folder (which held the registry password file).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Catalog } from "../../src/catalog/catalog.js";
import { SqliteStore } from "../../src/catalog/sqlite-store.js";
import { DOCKER_LABEL } from "../../src/config/tags.js";
import { startCli } from "../support/cli.js";
import { dockerCli, ownStateDir, twinBakeProject } from "../support/twin-bake.js";
import { unavailable } from "../support/unavailable.js";
import { localEngine } from "../render/helpers.js";

const local = localEngine();
const skip = unavailable(local.skip);
const env = (local as { env?: NodeJS.ProcessEnv }).env ?? {};
const docker = dockerCli(env);

/** The catalog's entries, as `status` would list them (less their age, which the clock moves). */
/**
 * The catalog's entries but the base stage's (`--force` rebakes the base, published before the role stage), or,
 * with kind "base", the base stage's only.
 */
async function catalogEntries(stateDir: string, pipeline: string, kind?: "base"): Promise<unknown> {
  const store = new SqliteStore(path.join(stateDir, "catalog.db"));
  try {
    const entries = await new Catalog({ store, prefix: `/imgtool/${pipeline}` }).status();
    return entries
      .filter((e) => (e.key.kind === "base") === (kind === "base"))
      .map(({ ageSeconds: _age, ...rest }) => rest);
  } finally {
    store.close();
  }
}

describe("fault: a signal to imgtool during the pre-load", { skip }, () => {
  const pipeline = `faultpresig${process.pid}`;
  const cleanup: string[][] = [];
  let dir = "";
  let stateDir = "";
  let cfg = "";
  after(() => {
    for (const args of cleanup.reverse()) docker(args);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  // One project and one role image, pushed and published once, for both bakes' pre-load to pull.
  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "imgtool-fault-preload-sig-"));
    stateDir = ownStateDir(dir);
    cfg = twinBakeProject({ parent: dir, pipeline, stateDir }).config;
    const { publishLocalImage, pushLabelledImage, stack } = await import("../push/support.js");
    const pushed = await pushLabelledImage(
      `${stack.registry.endpoint}/${pipeline}/task-runner`,
      "v1",
      `org.imgtool.test.preload="${pipeline}"`,
    );
    cleanup.push(["image", "rm", "-f", pushed.imageId]);
    await publishLocalImage(stateDir, pipeline, "task-runner", pushed.ref, "v20261203-000001-bbbb0001");
  });

  for (const [sig, code] of [
    ["SIGINT", 130],
    ["SIGTERM", 143],
  ] as const) {
    test(`${sig} to the imgtool process: the pre-load is killed, its container, volume, twin and secret file removed, exit ${code}, nothing published`, async () => {
      const catalogBefore = await catalogEntries(stateDir, pipeline);
      const cli = startCli(["bake", "ami", "--force", "--role", "task-runner", "--config", cfg], {
        env: { DOCKER_HOST: "" },
        timeoutMs: 1_200_000,
      });
      const volume = (await cli.waitFor(/pre-loading \S+ into volume (\S+)/))[1]!;
      cleanup.push(["volume", "rm", "-f", volume]);
      const runs = readdirSync(path.join(stateDir, "runs")).filter((n) => !n.startsWith("."));
      assert.equal(runs.length, 1, `one run folder: ${runs.join(", ")}`);
      const runId = runs[0]!;
      const runDir = path.join(stateDir, "runs", runId);
      const label = `label=${DOCKER_LABEL.owner}=${runId}`;
      const twins = docker(["image", "ls", "-q", "--no-trunc", "--filter", label]).out.trim();
      for (const t of twins.split("\n").filter(Boolean)) cleanup.push(["image", "rm", "-f", t]);
      // Signal once the pre-load container runs (polled with a bound, never a sleep-and-hope) and the password
      // file it mounts exists.
      let preload = "";
      for (let i = 0; i < 600 && !preload; i++) {
        preload = docker([
          "ps",
          "-q",
          "--filter",
          label,
          "--filter",
          `volume=${volume}`,
          "--filter",
          "status=running",
        ]).out.trim();
        if (!preload) await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(preload, "the pre-load container runs");
      cleanup.push(["container", "rm", "-f", preload]);
      const secrets = readdirSync(runDir, { recursive: true, encoding: "utf8" }).filter((f) =>
        f.endsWith("registry-password"),
      );
      assert.equal(secrets.length, 1, "the registry password file is in the run's folder");
      process.kill(cli.pid, sig);
      const r = await cli.done;

      assert.equal(r.code, code, r.stderr.slice(-3000));
      assert.match(
        r.stderr,
        new RegExp(
          `The task-runner bake was interrupted \\(${sig}\\) during the pre-load \\(its container was killed at once\\); ` +
            `removed pre-load container ${preload.slice(0, 12)}, volume ${volume}, ` +
            `twin image imgtool-twin/${pipeline}-task-runner:\\S+ \\([0-9a-f]{12}\\); nothing was published\\.`,
        ),
      );
      assert.doesNotMatch(r.stderr, /could NOT remove|internal error/);

      assert.equal(docker(["ps", "-aq", "--filter", label]).out.trim(), "", "a container of the run is left");
      // The base twin the run published before its role stage carries the run's label too, and stays.
      assert.equal(
        docker([
          "image",
          "ls",
          "-q",
          "--filter",
          label,
          "--filter",
          "label=org.imgtool.stage=role",
        ]).out.trim(),
        "",
        "an image of the run's role stage is left",
      );
      const baseEntry = (await catalogEntries(stateDir, pipeline, "base")) as {
        current?: { value: string };
      }[];
      assert.deepEqual(
        [
          ...new Set(
            docker(["image", "ls", "-q", "--no-trunc", "--filter", label]).out.split("\n").filter(Boolean),
          ),
        ],
        baseEntry.map((e) => e.current?.value),
        "an image of the run other than its published base twin is left",
      );
      assert.equal(
        docker(["image", "ls", "-q", `imgtool-twin/${pipeline}-task-runner`]).out.trim(),
        "",
        "the unpublished twin is still tagged",
      );
      assert.equal(
        docker(["volume", "ls", "-q", "--filter", label]).out.trim(),
        "",
        "a volume of the run is left",
      );
      assert.notEqual(docker(["volume", "inspect", volume]).code, 0, `the pre-load volume ${volume} is left`);
      assert.equal(existsSync(runDir), false, "the run's folder (registry password file) is left");
      assert.deepEqual(
        readdirSync(path.join(stateDir, "runs")).filter((n) => !n.startsWith(".")),
        [],
        "a run folder is left",
      );
      assert.deepEqual(await catalogEntries(stateDir, pipeline), catalogBefore, "the catalog changed");
    });
  }
});
