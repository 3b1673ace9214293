// Fault: SIGINT or SIGTERM sent to the imgtool process alone (not its group: what a supervisor or a CI runner
// sends) during a local launch, with the real CLI, engine and a Packer-baked twin (test/launch/fixtures/local.ts).
// The signal is sent once the orchestrator has started (seen in imgtool's output), while the task runner is
// still being started, never after a fixed sleep. Afterwards: exit 130 / 143, a message that says what was
// terminated, and nothing of the run left: no container, no volume, no instance folder.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { DOCKER_LABEL } from "../../src/config/tags.js";
import { localEngine } from "../render/helpers.js";
import { startCli, runCli } from "../support/cli.js";
import { unavailable } from "../support/unavailable.js";
import { makeLocalFixture, type LocalFixture } from "../launch/fixtures/local.js";

const skip = unavailable(localEngine().skip);

describe("fault: a signal to imgtool during a local launch", { skip }, () => {
  let fx: LocalFixture;
  const runs: string[] = [];
  before(async () => {
    fx = await makeLocalFixture();
  });
  after(async () => {
    for (const runId of runs)
      await runCli(["terminate", "--run-id", runId, "--config", fx.configFile]).catch(() => undefined);
    await fx?.cleanup();
  });

  for (const [sig, code] of [
    ["SIGINT", 130],
    ["SIGTERM", 143],
  ] as const) {
    test(`${sig} to the imgtool process: the run's instances are terminated, exit ${code}, nothing of the run left`, async () => {
      const runId = `fault-${sig.toLowerCase()}-${fx.id}`;
      runs.push(runId);
      const cli = startCli(
        [
          "launch",
          "--task-runners",
          "1",
          "--run-id",
          runId,
          "--channel",
          "latest",
          "--config",
          fx.configFile,
        ],
        { timeoutMs: 600_000 },
      );
      const orchestrator = (await cli.waitFor(/started (\S+) at \S+: task runners will find it/))[1]!;
      process.kill(cli.pid, sig);
      const r = await cli.done;

      assert.equal(r.code, code, r.stderr.slice(-3000));
      assert.match(
        r.stderr,
        new RegExp(
          `The launch of run ${runId} was interrupted \\(${sig}\\): terminated the \\d instance\\(s\\) it started \\([^)]*${orchestrator}`,
        ),
      );
      assert.doesNotMatch(r.stderr, /internal error/);
      const containers = await fx.docker.listContainers({
        all: true,
        filters: { label: [`${DOCKER_LABEL.runId}=${runId}`] },
      });
      assert.deepEqual(
        containers.map((c) => c.Names[0]),
        [],
        "a container of the run is left",
      );
      const volumes = ((await fx.docker.listVolumes()).Volumes ?? [])
        .map((v) => v.Name)
        .filter((n) => n.includes(`-${runId}-`));
      assert.deepEqual(volumes, [], "a volume of the run is left");
      const runDir = path.join(fx.stateDir, "launch", runId);
      assert.deepEqual(existsSync(runDir) ? readdirSync(runDir) : [], [], "an instance folder is left");
    });
  }
});
