// `imgtool calibrate --target aws` against the wire-level AWS stand-in: one task runner per instance type through
// the launch flow (the instances boot in the stand-in and publish their ready records with the instance role),
// every script sent through SSM Run Command (AWS-RunShellScript) as the launch actor, never over the network,
// the result recorded in the SSM catalog next to the version (judged by the IAM referee with the launch policy),
// and the run ended. The stand-in runs each script with sh here, with a stand-in `docker` on its PATH.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { makeAwsClients, type AwsClients } from "../../src/aws/clients.js";
import { Ec2Instances } from "../../src/aws/ec2-instances.js";
import { SsmReadyRecords } from "../../src/aws/ready-records.js";
import { ssmRunOnInstance } from "../../src/aws/run-command.js";
import { calibrate, runCommandScript, type CalibrateOptions } from "../../src/calibrate/run.js";
import { calibrationFor } from "../../src/calibrate/records.js";
import { recordingSink } from "../../src/events.js";
import { awsBackend } from "../../src/launch/aws.js";
import { launch } from "../../src/launch/launch.js";
import { terminateRun } from "../../src/launch/terminate.js";
import { bootInstances, sentCommands, setInstanceShell } from "../support/aws-standin/instances-ssm.js";
import { actorCredentials } from "../support/iam-referee.js";
import { REGION, awsConfig, awsFixture, standinProbe, type AwsFixture } from "../launch/aws-support.js";

const VERSION = "v20261129-000000-aaaa0001";

/** A stand-in `docker`: pinned runs measure steady times, unpinned ones noisy times. */
function fakeDocker(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "imgtool-calib-aws-"));
  writeFileSync(
    path.join(dir, "docker"),
    [
      "#!/bin/sh",
      'case "$1" in run) ;; *) exit 0 ;; esac',
      'case "$*" in *--cpuset-cpus*) t="0.1,0.1,0.1" ;; *) t="0.1,0.3,0.2" ;; esac',
      'printf "harness output\\n{\\"warmup\\":[1],\\"bench\\":[%s]}\\n" "$t"',
    ].join("\n"),
  );
  chmodSync(path.join(dir, "docker"), 0o755);
  return dir;
}

let fx: AwsFixture;
let instance: AwsClients;
before(async () => {
  fx = await awsFixture();
  instance = makeAwsClients({
    region: REGION,
    endpoint: fx.standin.endpoint,
    credentials: actorCredentials("instance"),
    retryBaseDelayMs: 5,
  });
  const bin = fakeDocker();
  setInstanceShell(
    fx.standin.state,
    REGION,
    (_inst, commands) =>
      new Promise((resolve) => {
        execFile(
          "sh",
          ["-c", commands.join("\n")],
          { env: { ...process.env, PATH: `${bin}:${process.env.PATH}` }, timeout: 30_000 },
          (error, stdout, stderr) =>
            resolve({
              exitCode: error ? (typeof error.code === "number" ? error.code : 1) : 0,
              stdout,
              stderr,
            }),
        );
      }),
  );
});
after(async () => {
  instance?.ssm.destroy();
  await fx?.close();
});

describe("imgtool calibrate on aws (AWS stand-in, SSM Run Command)", () => {
  test("one instance per type, every script through Run Command, the result recorded with the version, the run ended", async () => {
    const config = awsConfig();
    const sink = recordingSink();
    let clock = 1_700_000_000_000;
    const sleep = async (ms: number) => {
      clock += ms;
      await bootInstances(fx.standin.state, REGION, instance.ssm);
    };
    const backend = awsBackend({
      config,
      region: REGION,
      ec2: async () => new Ec2Instances(fx.clients.ec2),
      events: sink,
      records: { store: async () => new SsmReadyRecords(fx.clients.ssm), sleep, now: () => clock },
    });
    const launchDeps = {
      config,
      backend,
      catalog: async () => fx.catalog,
      events: sink,
      probe: standinProbe(),
      sleep,
      now: () => clock,
    };
    const opts: CalibrateOptions = {
      target: "aws",
      runId: "calib-aws-1",
      instanceTypes: ["c7i.large", "c7g.large"],
      workers: [1, 2],
      benchmarks: ["fib"],
      label: "latest",
      dryRun: false,
      settings: { ...config.calibration, repetitions: 2 },
    };
    const result = await calibrate(opts, {
      launch: (o) => launch(o, launchDeps),
      terminate: async (runId) => {
        await terminateRun({ runId, dryRun: false }, { backend, events: sink });
      },
      runScript: runCommandScript(ssmRunOnInstance(fx.clients.ssm, { pollMs: 10 })),
      catalog: async () => fx.catalog,
      events: sink,
    });

    assert.deepEqual(result.calibrations.map((c) => c.instanceType).sort(), ["c7g.large", "c7i.large"]);
    for (const c of result.calibrations) {
      assert.equal(c.version, VERSION);
      assert.deepEqual(
        c.rows.map((r) => [r.layout, r.samples]),
        [
          ["1 alone", 6],
          ["2 pinned", 12],
          ["2 unpinned", 12],
        ],
      );
      const unpinned = c.rows.find((r) => r.layout === "2 unpinned")!;
      assert.ok(unpinned.cv > config.calibration.max_cv && unpinned.slowdown === 2, "shown, not counted");
      assert.equal(c.recommendation.workers, 2);
      // Recorded in the SSM catalog under the version, as the launch actor.
      const rec = await calibrationFor(fx.catalog, VERSION, c.instanceType);
      assert.equal(rec?.recommendedWorkers, 2);
      assert.equal(rec?.target, "aws");
    }
    const runners = result.calibrations.map((c) => c.instanceId);
    const sent = sentCommands(fx.standin.state, REGION);
    for (const id of runners) {
      const mine = sent.filter((s) => s.instanceId === id).map((s) => s.commands.join("\n"));
      assert.match(
        mine[0]!,
        /docker stop --time 2 task-runner-1 task-runner-2/,
        "the workers are quieted first",
      );
      assert.equal(mine.length, 1 + 3, "quiet, then one command per layout");
      assert.ok(mine.some((m) => m.includes("--cpuset-cpus")));
    }
    assert.ok(
      sent.every((s) => runners.includes(s.instanceId)),
      "nothing runs on the orchestrator",
    );
    const states = [...fx.standin.state.region(REGION).ec2.instances.values()].map((i) => i.state);
    assert.ok(
      states.length === 3 && states.every((s) => s === "terminated" || s === "shutting-down"),
      states.join(),
    );
  });

  test("a dry run plans, launches nothing and records nothing", async () => {
    const config = awsConfig();
    const before = fx.standin.state.region(REGION).ec2.instances.size;
    const r = await calibrate(
      {
        target: "aws",
        runId: "calib-aws-dry",
        instanceTypes: ["c7i.large"],
        benchmarks: ["fib"],
        label: "latest",
        dryRun: true,
        settings: config.calibration,
      },
      {
        launch: (o) =>
          launch(o, {
            config,
            backend: awsBackend({
              config,
              region: REGION,
              ec2: async () => new Ec2Instances(fx.clients.ec2),
              events: () => {},
            }),
            catalog: async () => fx.catalog,
            events: () => {},
            probe: standinProbe(),
          }),
        terminate: async () => assert.fail("nothing to end"),
        runScript: async () => assert.fail("nothing runs"),
        catalog: async () => fx.catalog,
        events: () => {},
      },
    );
    assert.deepEqual(r.planned, [
      { instanceType: "c7i.large", version: VERSION, image: r.planned![0]!.image, workers: "auto" },
    ]);
    assert.match(r.planned![0]!.image, /task-runner@sha256:a{64}$/);
    assert.equal(fx.standin.state.region(REGION).ec2.instances.size, before);
  });
});
