// Fault: a bake killed with SIGKILL while Packer builds the local twin (the OOM killer or a power cut takes imgtool
// and Packer at once: no cleanup runs). Packer's build container stays, labelled with the run's id, and the run's
// record and temp folder stay. Then, in the test's own state folder: a new run warns, `doctor` exits 1 naming the
// dead run and what it left with the fix, `prune --leftovers --dry-run` lists and keeps it, `prune --leftovers`
// removes it, and `doctor` is ok again with no labelled container or volume of the run left.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { DOCKER_LABEL } from "../../src/config/tags.js";
import { runCli, startCli } from "../support/cli.js";
import { dockerCli, ownStateDir, processesIn, twinBakeProject } from "../support/twin-bake.js";
import { localEngine } from "../render/helpers.js";
import { unavailable } from "../support/unavailable.js";

const engine = localEngine();
const env = (engine as { env?: NodeJS.ProcessEnv }).env ?? {};

const docker = dockerCli(env);

interface DoctorDoc {
  ok: boolean;
  checks: { part: string; ok: boolean; state: string; fix: string | null }[];
}

interface PruneDoc {
  dryRun: boolean;
  leftovers: {
    runId: string;
    pid: number;
    containers: string[];
    volumes: string[];
    dir: string;
    removed: string[];
  }[];
}

describe(
  "fault: SIGKILL during a bake, then doctor and prune --leftovers",
  { skip: unavailable(engine.skip) },
  () => {
    const dir = mkdtempSync(path.join(tmpdir(), "imgtool-fault-leftovers-"));
    const containers: string[] = [];
    after(() => {
      for (const c of containers) docker(["container", "rm", "-f", c]);
      rmSync(dir, { recursive: true, force: true });
    });

    test("the killed run's container and folder are found, listed, removed; doctor is ok after", async () => {
      const pipeline = `faultkill${process.pid}`;
      // Its own state folder (knowing the real stack): dead runs elsewhere do not count, and none are left here.
      const stateDir = ownStateDir(dir);
      const cfg = twinBakeProject({ parent: dir, pipeline, stateDir }).config;
      const cliEnv = { DOCKER_HOST: "" };
      const cli = startCli(["bake", "ami", "--force", "--role", "task-runner", "--config", cfg], {
        env: cliEnv,
      });
      const buildDir = (await cli.waitFor(/baking \S+ with Packer in (\S+)/))[1]!;
      const container = (await cli.waitFor(/Container ID: ([0-9a-f]{12,64})/))[1]!;
      containers.push(container);

      // The run's record names this process; Packer's container carries the run's id.
      const runs = readdirSync(path.join(stateDir, "runs"));
      assert.equal(runs.length, 1, `one run record: ${runs.join(", ")}`);
      const runId = runs[0]!;
      const record = JSON.parse(readFileSync(path.join(stateDir, "runs", runId, "run.json"), "utf8")) as {
        pid: number;
        command: string;
      };
      assert.equal(record.pid, cli.pid);
      assert.match(record.command, /imgtool bake ami --force/);
      const owner = docker([
        "container",
        "inspect",
        "--format",
        `{{index .Config.Labels "${DOCKER_LABEL.owner}"}}`,
        container,
      ]);
      assert.equal(owner.out.trim(), runId, "Packer's build container carries the run's owner label");
      assert.ok(
        existsSync(path.join(stateDir, "runs", runId, "packer")),
        "PACKER_TMP_DIR is in the run's folder",
      );

      // Everything dies at once: imgtool, then Packer's processes; nothing gets to clean up.
      process.kill(cli.pid, "SIGKILL");
      for (const pid of processesIn(buildDir)) {
        try {
          process.kill(pid, "SIGKILL");
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "ESRCH") throw e;
        }
      }
      const killed = await cli.done;
      assert.equal(killed.code, null, "imgtool was killed");
      const name = docker(["container", "inspect", "--format", "{{.Name}}", container]);
      assert.equal(name.code, 0, "Packer's container is left behind");
      const containerName = name.out.trim().replace(/^\//, "");

      // A new run warns (and its own record goes when it ends).
      const next = await runCli(["launch", "--dry-run", "--config", cfg], { env: cliEnv });
      assert.match(
        next.stderr,
        new RegExp(`1 earlier run\\(s\\) died without cleaning up \\(${runId}\\).*imgtool prune --leftovers`),
      );
      assert.deepEqual(readdirSync(path.join(stateDir, "runs")), [runId]);

      // doctor: exit 1, the dead run and what it left, and the fix.
      const sick = await runCli(["doctor", "--json", "--config", cfg], { env: cliEnv });
      assert.equal(sick.code, 1, sick.stdout + sick.stderr);
      const sickDoc = JSON.parse(sick.stdout) as DoctorDoc;
      const line = sickDoc.checks.find((c) => c.part === "leftovers");
      assert.equal(line?.ok, false);
      assert.match(
        line?.state ?? "",
        new RegExp(`run ${runId} \\(pid ${cli.pid}, .imgtool bake ami --force`),
      );
      assert.match(line?.state ?? "", new RegExp(`container ${containerName}`));
      assert.match(line?.state ?? "", new RegExp(`folder ${path.join(stateDir, "runs", runId)}`));
      assert.equal(line?.fix, "imgtool prune --leftovers");
      const human = await runCli(["doctor", "--config", cfg], { env: cliEnv });
      assert.equal(human.code, 1);
      assert.match(human.stdout, /^leftovers\s+-\s+FAIL 1 dead run\(s\).*imgtool prune --leftovers$/m);

      // prune --leftovers --dry-run: lists, keeps.
      const dry = await runCli(["prune", "--leftovers", "--dry-run", "--json", "--config", cfg], {
        env: cliEnv,
      });
      assert.equal(dry.code, 0, dry.stderr);
      const dryDoc = JSON.parse(dry.stdout) as PruneDoc;
      assert.equal(dryDoc.dryRun, true);
      assert.deepEqual(
        dryDoc.leftovers.map((l) => [l.runId, l.pid, l.containers]),
        [[runId, cli.pid, [containerName]]],
      );
      assert.equal(docker(["container", "inspect", container]).code, 0, "a dry run removes nothing");
      assert.ok(existsSync(path.join(stateDir, "runs", runId)));

      // prune --leftovers: removes the container and the run's folder.
      const wet = await runCli(["prune", "--leftovers", "--json", "--config", cfg], { env: cliEnv });
      assert.equal(wet.code, 0, wet.stderr);
      const wetDoc = JSON.parse(wet.stdout) as PruneDoc;
      assert.deepEqual(wetDoc.leftovers[0]!.removed, [
        `container ${containerName}`,
        `folder ${path.join(stateDir, "runs", runId)}`,
      ]);
      assert.notEqual(docker(["container", "inspect", container]).code, 0, "the container is gone");
      assert.equal(existsSync(path.join(stateDir, "runs", runId)), false, "the run's folder is gone");
      const label = `label=${DOCKER_LABEL.owner}=${runId}`;
      assert.equal(docker(["ps", "-aq", "--filter", label]).out.trim(), "", "no labelled container remains");
      assert.equal(
        docker(["volume", "ls", "-q", "--filter", label]).out.trim(),
        "",
        "no labelled volume remains",
      );

      // doctor is ok again.
      const well = await runCli(["doctor", "--json", "--config", cfg], { env: cliEnv });
      const wellDoc = JSON.parse(well.stdout) as DoctorDoc;
      assert.equal(well.code, 0, well.stdout);
      assert.equal(wellDoc.checks.find((c) => c.part === "leftovers")?.ok, true);
    });
  },
);
