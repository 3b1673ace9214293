// Fault: SIGINT or SIGTERM sent to the imgtool process alone (not its group: what a supervisor or a CI runner
// sends) while Packer builds the local twin. The signal is sent once Packer's build container exists (seen in
// Packer's output), never after a fixed sleep. Afterwards: exit 130 / 143, a message that says what was
// cleaned up, Packer's container and processes gone, no twin image, nothing in the catalog.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Catalog } from "../../src/catalog/catalog.js";
import { SqliteStore } from "../../src/catalog/sqlite-store.js";
import { startCli } from "../support/cli.js";
import { dockerCli, ownStateDir, processesIn, twinBakeProject } from "../support/twin-bake.js";
import { unavailable } from "../support/unavailable.js";
import { localEngine } from "../render/helpers.js";

const engine = localEngine();
const env = (engine as { env?: NodeJS.ProcessEnv }).env ?? {};

const docker = dockerCli(env);

describe("fault: a signal to imgtool during Packer", { skip: unavailable(engine.skip) }, () => {
  const images: string[] = [];
  const dirs: string[] = [];
  after(() => {
    for (const i of images) docker(["image", "rm", "-f", i]);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  for (const [sig, code] of [
    ["SIGINT", 130],
    ["SIGTERM", 143],
  ] as const) {
    test(`${sig} to the imgtool process: Packer stops and cleans up, exit ${code}, nothing left or published`, async () => {
      const pipeline = `fault${sig.toLowerCase()}${process.pid}`;
      const dir = mkdtempSync(path.join(tmpdir(), "imgtool-fault-bake-"));
      dirs.push(dir);
      // Its own state folder (knowing the real stack): its catalog and run records are this test's alone.
      const stateDir = ownStateDir(dir);
      const cfg = twinBakeProject({ parent: dir, pipeline, stateDir }).config;
      const cli = startCli(["bake", "ami", "--force", "--role", "task-runner", "--config", cfg], {
        env: { DOCKER_HOST: "" },
      });
      const buildDir = (await cli.waitFor(/baking \S+ with Packer in (\S+)/))[1]!;
      const container = (await cli.waitFor(/Container ID: ([0-9a-f]{12,64})/))[1]!;
      assert.equal(docker(["container", "inspect", container]).code, 0, "Packer's build container exists");
      process.kill(cli.pid, sig);
      const r = await cli.done;
      images.push(`imgtool-twin/${pipeline}-task-runner`);

      assert.equal(r.code, code, r.stderr.slice(-3000));
      assert.match(
        r.stderr,
        new RegExp(
          `The task-runner bake was interrupted \\(${sig}\\): Packer cleaned up, nothing was published`,
        ),
      );
      assert.doesNotMatch(r.stderr, /Builds finished|internal error/);
      assert.notEqual(
        docker(["container", "inspect", container]).code,
        0,
        `Packer's container ${container} is left`,
      );
      assert.deepEqual(processesIn(buildDir), [], "a Packer process still runs in the bake's folder");
      const twins = docker(["image", "ls", "-q", `imgtool-twin/${pipeline}-task-runner`]).out.trim();
      assert.equal(twins, "", "a twin image was tagged");
      const runs = path.join(stateDir, "runs");
      assert.deepEqual(
        existsSync(runs) ? readdirSync(runs).filter((n) => !n.startsWith(".")) : [],
        [],
        "the run's folder (Packer's temp folder) is left",
      );
      const store = new SqliteStore(path.join(stateDir, "catalog.db"));
      try {
        const cat = new Catalog({ store, prefix: `/imgtool/${pipeline}` });
        assert.deepEqual(await cat.status(), [], "the catalog records an interrupted bake");
      } finally {
        store.close();
      }
    });
  }
});
