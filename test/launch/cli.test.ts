// `imgtool launch` and `imgtool terminate` as a user runs them (the compiled CLI), on the aws target against the
// wire-level AWS stand-in (reached through AWS_ENDPOINT_URL): flags, the dry-run plan, --json, --emit tfvars,
// exit codes.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { makeAwsClients } from "../../src/aws/clients.js";
import { runCli } from "../support/cli.js";
import { bootInstances, sentCommands } from "../support/aws-standin/instances-ssm.js";
import { ACTOR_KEYS, actorCredentials } from "../support/iam-referee.js";
import {
  IMAGES,
  REGION,
  SECRET,
  awsFixture,
  publishUnbakedImage,
  runRequests,
  type AwsFixture,
} from "./aws-support.js";

let fx: AwsFixture;
let dir: string;
let config: string;

before(async () => {
  fx = await awsFixture();
  dir = mkdtempSync(path.join(tmpdir(), "imgtool-launch-cli-"));
  config = path.join(dir, "imgtool.config.yaml");
  writeFileSync(
    config,
    `local:\n  state_dir: ${path.join(dir, "state")}\naws:\n  regions: [${REGION}]\n  instance_profile: imgtool-instances\n`,
  );
});
after(async () => {
  await fx.close();
  rmSync(dir, { recursive: true, force: true });
});

const aws = (args: string[], configFile = config) =>
  runCli([...args, "--target", "aws", "--config", configFile], {
    env: {
      AWS_ENDPOINT_URL: fx.standin.endpoint,
      AWS_ACCESS_KEY_ID: ACTOR_KEYS.launch,
      AWS_SECRET_ACCESS_KEY: "secret",
      AWS_REGION: REGION,
      AWS_PROFILE: "",
    },
  });

describe("cli: launch and terminate on aws (AWS stand-in)", () => {
  test("--dry-run prints the plan (types, AMIs per architecture, images, workers, market) and the user-data; no EC2 call", async () => {
    fx.standin.requests.length = 0;
    const r = await aws([
      "launch",
      "--dry-run",
      "--instance-types",
      "c7i.large,c7g.large",
      "--task-runners",
      "2",
      "--spot",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Plan for run \S+ on aws .*nothing was changed\.$/m);
    assert.match(
      r.stdout,
      new RegExp(`task-runner\\s+2\\s+c7g\\.large\\s+arm64\\s+spot\\s+${fx.amis["task-runner"].arm64}`),
    );
    assert.match(
      r.stdout,
      new RegExp(`orchestrator\\s+1\\s+t3\\.medium\\s+x86_64\\s+on-demand\\s+${fx.amis.orchestrator.x86_64}`),
    );
    assert.match(r.stdout, /auto: one per physical core, read at boot/);
    assert.match(
      r.stdout,
      /----- user-data of task-runner \(c7g\.large\): \d+ bytes gzip-compressed -----\n#!\/bin\/bash/,
    );
    assert.equal(fx.standin.requests.filter((q) => q.service === "ec2").length, 0);
    assert.ok(!r.stdout.includes(SECRET) && !r.stderr.includes(SECRET));
  });

  test("launch --json --no-wait, then terminate --run-id: the run's instances end", async () => {
    const r = await aws([
      "launch",
      "--json",
      "--no-wait",
      "--run-id",
      "cli-1",
      "--task-runners",
      "2",
      "--workers-per-instance",
      "2",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as {
      runId: string;
      instances: { role: string; id: string; workers: { name: string; cpus: null }[] }[];
    };
    assert.equal(doc.runId, "cli-1");
    assert.equal(doc.instances.length, 3);
    const runner = doc.instances.find((i) => i.role === "task-runner")!;
    assert.deepEqual(runner.workers, [
      { name: "task-runner-1", cpus: null },
      { name: "task-runner-2", cpus: null },
    ]);
    assert.equal(
      runRequests(fx.standin).filter((q) => q.params["ClientToken"]?.startsWith("cli-1-")).length,
      2,
    );

    const t = await aws(["terminate", "--run-id", "cli-1", "--json"]);
    assert.equal(t.code, 0, t.stderr);
    assert.equal((JSON.parse(t.stdout) as { instances: unknown[] }).instances.length, 3);
    const states = [...fx.standin.state.region(REGION).ec2.instances.values()]
      .filter((i) => i.tags["imgtool:run-id"] === "cli-1")
      .map((i) => i.state);
    assert.deepEqual(states, ["shutting-down", "shutting-down", "shutting-down"]);
  });

  test("--emit tfvars --out writes the resolved ids", async () => {
    const out = path.join(dir, "imgtool.auto.tfvars");
    const r = await aws(["launch", "--emit", "tfvars", "--out", out]);
    assert.equal(r.code, 0, r.stderr);
    const text = readFileSync(out, "utf8");
    assert.match(text, new RegExp(`"task-runner" = "${IMAGES["task-runner"]}"`));
    assert.match(text, new RegExp(`"x86_64" = "${fx.amis.orchestrator.x86_64}"`));
  });

  test("bad flags are usage errors (exit 2) that name the flag", async () => {
    const w = await aws(["launch", "--workers-per-instance", "0"]);
    assert.equal(w.code, 2);
    assert.match(
      w.stderr,
      /--workers-per-instance "0": use auto, calibrated or a whole number from 1 to 192/,
    );
    const id = await aws(["launch", "--run-id", "Bad_Run"]);
    assert.equal(id.code, 2);
    assert.match(id.stderr, /--run-id "Bad_Run" is not a run id/);
    const t = await aws(["launch", "--instance-types", "c7i.large,huge"]);
    assert.equal(t.code, 2);
    assert.match(t.stderr, /--instance-types: "huge" is not an EC2 instance type/);
    const term = await aws(["terminate"]);
    assert.equal(term.code, 2);
    assert.match(term.stderr, /Missing required argument: run-id/);
  });

  test("launch --json waits as from a hosted runner: readiness from the instances' SSM records, health through Run Command", async () => {
    // The orchestrator's port, on this machine's loopback: where the stand-in's Run Command scripts (run by sh
    // here, standing for the instance) reach it. The CLI itself reaches no instance address.
    const health: string[] = [];
    const server = http.createServer((req, res) => {
      health.push(`${req.method} ${req.url}`);
      res.writeHead(200, { "content-type": "application/json" }).end('{"status":"ok"}');
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    const waitConfig = path.join(dir, "wait.yaml");
    writeFileSync(
      waitConfig,
      `local:\n  state_dir: ${path.join(dir, "state")}\naws:\n  regions: [${REGION}]\n  instance_profile: imgtool-instances\n` +
        `launch:\n  orchestrator_port: ${port}\n  ready_timeout_seconds: 60\n`,
    );
    const instance = makeAwsClients({
      region: REGION,
      endpoint: fx.standin.endpoint,
      credentials: actorCredentials("instance"),
    });
    // The instances boot while the CLI waits: polled, bounded by the launch's own deadline.
    let done = false;
    const booting = (async () => {
      const deadline = Date.now() + 90_000;
      while (!done && Date.now() < deadline) {
        await bootInstances(fx.standin.state, REGION, instance.ssm);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    try {
      const r = await aws(["launch", "--json", "--run-id", "cli-wait-1", "--task-runners", "1"], waitConfig);
      assert.equal(r.code, 0, r.stderr);
      const doc = JSON.parse(r.stdout) as {
        orchestrator: { id: string; healthy: boolean };
        instances: {
          id: string;
          state: string;
          privateIp: string;
          bootToReadySeconds: number;
          launchToReadySeconds: number;
        }[];
      };
      assert.equal(doc.orchestrator.healthy, true);
      assert.equal(doc.instances.length, 2);
      for (const i of doc.instances) {
        assert.equal(i.state, "ready");
        assert.equal(i.bootToReadySeconds, 0.75);
        assert.equal(typeof i.launchToReadySeconds, "number");
      }
      assert.ok(health.includes("GET /health"));
      const commands = sentCommands(fx.standin.state, REGION).filter(
        (c) => c.instanceId === doc.orchestrator.id,
      );
      assert.ok(commands.length >= 1);
      const orchestrator = doc.instances.find((i) => i.id === doc.orchestrator.id)!;
      assert.ok(commands.every((c) => !c.commands.join("\n").includes(orchestrator.privateIp)));
      assert.ok(fx.standin.requests.some((q) => q.operation === "GetParametersByPath"));

      // The human table has the aws column.
      const human = await aws(["launch", "--run-id", "cli-wait-2", "--task-runners", "0"], waitConfig);
      assert.equal(human.code, 0, human.stderr);
      assert.match(human.stdout, /BOOT-TO-READY\s+LAUNCH-TO-READY/);
      assert.match(human.stdout, /orchestrator\s+i-\S+ .* ready\s+0\.750 s\s+\d+\.\d{3} s/);
      await aws(["terminate", "--run-id", "cli-wait-2"], waitConfig);
      done = true;
      await booting;

      const t = await aws(["terminate", "--run-id", "cli-wait-1", "--json"], waitConfig);
      assert.equal(t.code, 0, t.stderr);
      assert.deepEqual(
        [...fx.standin.state.region(REGION).ssm.parameters.keys()].filter((n) =>
          n.includes("/runs/cli-wait-1/"),
        ),
        [],
        "terminate removed the run's records",
      );
    } finally {
      done = true;
      await booting;
      instance.ssm.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  // Last: it moves the catalog to an image that no AMI has baked in.
  test("an image to pull that ECR lacks: exit 1 naming it and the fix, before any RunInstances; once ECR has it, the launch goes on", async () => {
    const newer = `${IMAGES["task-runner"].split("@")[0]}@sha256:${"d".repeat(64)}`;
    await publishUnbakedImage(fx, "task-runner", newer, "v20261201-000000-img-newer");
    const r = await aws(["launch", "--no-wait", "--run-id", "cli-gone-1", "--task-runners", "1"]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(
        `The task-runner image ${newer.replace(/\./g, "\\.")} \\(version v20261201-000000-img-newer, catalog label latest\\) is gone from the registry`,
      ),
    );
    assert.match(r.stderr, /imgtool push image --role task-runner/);
    assert.doesNotMatch(r.stderr, /internal error|\n\s+at /);
    assert.equal(runRequests(fx.standin).length, 0, "RunInstances was called");

    fx.standin.addEcrImage(REGION, "bench/task-runner", { digest: newer.split("@")[1]! });
    const ok = await aws(["launch", "--no-wait", "--run-id", "cli-gone-2", "--task-runners", "1"]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(runRequests(fx.standin).length, 2);
    await aws(["terminate", "--run-id", "cli-gone-2"]);
  });
});
