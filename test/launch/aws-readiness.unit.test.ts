// Readiness and checks on aws through the AWS API only, as from a hosted CI runner with no path into the VPC:
// the stand-in's instances publish their records in SSM with the instance role (simulated boot, judged by the
// IAM referee), the launcher reads them in batches as the launch actor, and the orchestrator's health and the
// smoke task run on the orchestrator through the stand-in's Run Command (which runs each script with `sh` on this
// machine, standing for the instance; the instances' private addresses are reached by nothing).
import { after, afterEach, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { makeAwsClients, type AwsClients } from "../../src/aws/clients.js";
import { Ec2Instances } from "../../src/aws/ec2-instances.js";
import { SsmReadyRecords } from "../../src/aws/ready-records.js";
import { ssmRunOnInstance, type RunOnInstance } from "../../src/aws/run-command.js";
import type { Config } from "../../src/config/load.js";
import { FailureError } from "../../src/errors.js";
import { recordingSink, type ImgtoolEvent } from "../../src/events.js";
import { awsBackend } from "../../src/launch/aws.js";
import { runCommandHealthProbe } from "../../src/launch/health.js";
import { parseRecord } from "../../src/launch/aws-ready.js";
import { launch } from "../../src/launch/launch.js";
import { terminateRun } from "../../src/launch/terminate.js";
import type { LaunchOptions, LaunchResult } from "../../src/launch/types.js";
import { runCommandSmokeTask, smokeLaunch, type SmokeTask } from "../../src/pipeline/smoke.js";
import { userSmokeTask } from "../../src/pipeline/smoke-check.js";
import { Ec2Images } from "../../src/aws/ec2.js";
import { awsPruneBackend } from "../../src/prune/backends.js";
import { pruneRunRecords } from "../../src/prune/prune.js";
import { projectPath } from "../../src/paths.js";
import { bootInstances, sentCommands, type BootOutcome } from "../support/aws-standin/instances-ssm.js";
import type { Ec2Instance } from "../support/aws-standin/types.js";
import { actorCredentials } from "../support/iam-referee.js";
import { REGION, awsConfig, awsFixture, options, type AwsFixture } from "./aws-support.js";

/** A stand-in for the orchestrator's own port, on this machine's loopback (the instance's, for the scripts). */
async function orchestratorPort(handler: http.RequestListener) {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const json = (res: http.ServerResponse, status: number, doc: unknown) => {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(doc));
};

let fx: AwsFixture;
let instance: AwsClients;
let orch: Awaited<ReturnType<typeof orchestratorPort>>;
const open: (() => Promise<void>)[] = [];
beforeEach(async () => {
  fx = await awsFixture();
  instance = makeAwsClients({
    region: REGION,
    endpoint: fx.standin.endpoint,
    credentials: actorCredentials("instance"),
    retryBaseDelayMs: 5,
  });
  orch = await orchestratorPort((req, res) => {
    if (req.url === "/health") return json(res, 200, { status: "ok" });
    if (req.method === "POST" && req.url === "/tasks")
      return json(res, 201, { id: "6f1c2d3e-task", status: "queued" });
    if (req.url === "/tasks/6f1c2d3e-task")
      return json(res, 200, { id: "6f1c2d3e-task", status: "done", result: { status: "ok" } });
    json(res, 404, {});
  });
  open.push(
    () => fx.close(),
    async () => instance.ssm.destroy(),
    () => orch.close(),
  );
});
afterEach(async () => {
  while (open.length) await open.pop()!();
});
after(async () => {
  while (open.length) await open.pop()!();
});

interface Run {
  result: LaunchResult;
  events: ImgtoolEvent[];
  sleeps: number[];
}

/** The launch as `deps.ts` wires it on aws; time passes (and the instances boot) only in the injected sleeps. */
function wiring(more: { config?: Config; outcome?: (i: Ec2Instance) => BootOutcome } = {}) {
  const config = more.config ?? awsConfig(`launch:\n  orchestrator_port: ${orch.port}\n`);
  const sink = recordingSink();
  const sleeps: number[] = [];
  let clock = 1_700_000_000_000;
  const now = () => clock;
  const sleep = async (ms: number) => {
    sleeps.push(ms);
    clock += ms;
    await bootInstances(fx.standin.state, REGION, instance.ssm, more.outcome);
  };
  const run = ssmRunOnInstance(fx.clients.ssm, { sleep: async () => {} });
  const backend = awsBackend({
    config,
    region: REGION,
    ec2: async () => new Ec2Instances(fx.clients.ec2),
    events: sink,
    records: { store: async () => new SsmReadyRecords(fx.clients.ssm), sleep, now },
  });
  const deps = {
    config,
    backend,
    catalog: async () => fx.catalog,
    events: sink,
    probe: runCommandHealthProbe(run),
    sleep,
    now,
  };
  return { deps, sink, sleeps, run, backend };
}

async function launchWithRecords(
  opts: Partial<LaunchOptions>,
  more: Parameters<typeof wiring>[0] = {},
): Promise<Run> {
  const w = wiring(more);
  try {
    const result = await launch(options(opts), w.deps);
    return { result, events: w.sink.events, sleeps: w.sleeps };
  } catch (e) {
    Object.assign(e as object, { events: w.sink.events, sleeps: w.sleeps });
    throw e;
  }
}

/** A launch that must fail with a FailureError (which carries the events and the sleeps). */
async function failedLaunch(opts: Partial<LaunchOptions>, more: Parameters<typeof wiring>[0]) {
  const err = await launchWithRecords(opts, more).then(
    () => assert.fail("the launch should fail"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof FailureError, String(err));
  return err as FailureError & { sleeps?: number[] };
}

/** The pipeline's smoke launch as `imgtool pipeline --target aws` wires it; the launcher makes no HTTP call. */
function smokeOnStandin(runId: string, task?: (run: RunOnInstance) => SmokeTask) {
  const w = wiring();
  return smokeLaunch(
    { target: "aws", instanceTypes: ["c7i.large"], spot: false, keepOnFailure: false },
    {
      launch: (o) => launch(o, w.deps),
      terminate: async (id) => {
        await terminateRun({ runId: id, dryRun: false }, { backend: w.backend, events: w.sink });
      },
      task: (task ?? runCommandSmokeTask)(w.run),
      fetch: (() => assert.fail("no HTTP from the launcher")) as typeof fetch,
    },
    runId,
  );
}

const recordsOf = (runId: string) =>
  [...fx.standin.state.region(REGION).ssm.parameters.keys()].filter((n) =>
    n.startsWith(`/imgtool/bench/runs/${runId}/`),
  );

describe("aws readiness through SSM records and Run Command (AWS stand-in)", () => {
  test("every instance ready from its record, read in one batch per poll; health through Run Command on 127.0.0.1; launchToReadySeconds", async () => {
    const { result, sleeps, events } = await launchWithRecords({
      runId: "ready-1",
      taskRunners: 2,
      instanceTypes: ["c7i.large", "c7g.large"],
    });
    assert.equal(result.instances.length, 5);
    for (const i of result.instances) {
      assert.equal(i.state, "ready", i.id);
      assert.equal(i.bootToReadySeconds, 0.75, "the instance's own figure, from its record");
      assert.deepEqual(
        i.bootSteps,
        { "engine-wait": 0.01, "secret-read": 0.3, "image-check": 0.02, "worker-start": 0.4 },
        "each boot step's time, from its record",
      );
      assert.equal(typeof i.launchToReadySeconds, "number", i.id);
      assert.ok(i.launchToReadySeconds! >= 0 && i.launchToReadySeconds! <= 600);
      // The orchestrator runs one worker; a task runner one per physical core (the simulated boot: 2).
      assert.deepEqual(
        i.workers,
        i.role === "orchestrator"
          ? [{ name: "orchestrator-1", cpus: "0" }]
          : [
              { name: "task-runner-1", cpus: "0" },
              { name: "task-runner-2", cpus: "1" },
            ],
      );
    }
    assert.ok(
      result.instances.some((i) => i.launchToReadySeconds! >= 3),
      "measured on the launcher's clock: at least one poll after the RunInstances answer",
    );
    assert.equal(result.orchestrator.healthy, true);
    // One GetParametersByPath per poll serves all five instances (polls are the 3 s sleeps, plus the first).
    const gets = fx.standin.requests.filter((r) => r.operation === "GetParametersByPath");
    assert.ok(gets.every((r) => (r.params as { Path: string }).Path === "/imgtool/bench/runs/ready-1"));
    // (A second poll loop starts when an instance begins waiting after the first loop had nothing left to wait for.)
    assert.ok(gets.length - sleeps.filter((s) => s === 3000).length <= 2);
    assert.ok(gets.length < 5, `${gets.length} reads for 5 instances`);
    // The health check ran on the orchestrator itself; nothing reached a private address.
    const orchestrator = result.instances.find((i) => i.role === "orchestrator")!;
    const health = sentCommands(fx.standin.state, REGION).filter((c) => c.instanceId === orchestrator.id);
    assert.ok(health.length >= 1);
    assert.ok(health.every((c) => c.commands.join("\n").includes(`http://127.0.0.1:${orch.port}/health`)));
    assert.ok(health.every((c) => !c.commands.join("\n").includes(orchestrator.privateIp)));
    assert.ok(orch.requests.includes("GET /health"), "the script reached the orchestrator's port");
    assert.ok(events.some((e) => e.type === "ready" && /s from its RunInstances answer/.test(e.message)));
  });

  test("a failed record fails the launch at once with the instance's reason; what started is terminated and the records removed", async () => {
    const err = await failedLaunch(
      { runId: "fail-1", taskRunners: 1 },
      {
        outcome: (i) =>
          i.tags["imgtool:role"] === "task-runner"
            ? { failed: "worker task-runner-1 exited during the 5s settle window (exit code 1)" }
            : { ready: {} },
      },
    );
    assert.match(
      err.message,
      /^i-\S+ \(task-runner, c7i\.large\) failed to boot: worker task-runner-1 exited during the 5s settle window/,
    );
    assert.match(err.fix ?? "", /aws ec2 get-console-output --instance-id i-/);
    assert.ok(
      [...fx.standin.state.region(REGION).ec2.instances.values()].every((i) => i.state === "shutting-down"),
      "nothing is orphaned",
    );
    assert.deepEqual(recordsOf("fail-1"), [], "the run's records went with it");
  });

  test("an instance that publishes nothing fails the launch at its deadline (a task runner's: launch.ready_timeout_seconds and its pre-warm's limit), naming the record it waited for", async () => {
    const config = awsConfig(
      `launch:\n  orchestrator_port: ${orch.port}\n  ready_timeout_seconds: 30\nboot_budget:\n  pre_warm:\n    seconds: 15\n`,
    );
    const err = await failedLaunch(
      { runId: "silent-1", taskRunners: 1 },
      { config, outcome: (i) => (i.tags["imgtool:role"] === "task-runner" ? "silent" : { ready: {} }) },
    );
    assert.match(
      err.message,
      /^(i-\S+) \(task-runner, c7i\.large\) published no readiness record \(\/imgtool\/bench\/runs\/silent-1\/\1\) within 45 s\./,
    );
    assert.match(err.fix ?? "", /imgtool iam-policy --for instance/);
    const sleeps = err.sleeps ?? [];
    const polls = fx.standin.requests.filter((r) => r.operation === "GetParametersByPath").length;
    const waits = sleeps.filter((ms) => ms === 3000).length;
    assert.ok(polls - waits >= 1 && polls - waits <= 2, `${polls} reads, ${waits} waits: one read per poll`);
    assert.ok(waits * 3 >= 45 && waits * 3 <= 51, `${waits} waits of 3 s for a 45 s deadline`);
  });

  test("a silent orchestrator fails at launch.ready_timeout_seconds: the pre-warm's limit is the task runners' only", async () => {
    const config = awsConfig(
      `launch:\n  orchestrator_port: ${orch.port}\n  ready_timeout_seconds: 30\nboot_budget:\n  pre_warm:\n    seconds: 15\n`,
    );
    const err = await failedLaunch(
      { runId: "silent-2", taskRunners: 1 },
      { config, outcome: () => "silent" },
    );
    assert.match(
      err.message,
      /^(i-\S+) \(orchestrator, \S+\) published no readiness record \(\/imgtool\/bench\/runs\/silent-2\/\1\) within 30 s\./,
    );
  });

  test("12 task runners: records read in pages (NextToken), each instance finds its own; terminate removes them in batches of 10", async () => {
    const { result } = await launchWithRecords({ runId: "many-1", taskRunners: 12 });
    assert.equal(result.instances.filter((i) => i.state === "ready").length, 13);
    const gets = fx.standin.requests.filter((r) => r.operation === "GetParametersByPath");
    assert.ok(
      gets.some((r) => (r.params as { NextToken?: string }).NextToken),
      "a second page was read",
    );
    assert.equal(recordsOf("many-1").length, 13);
    // Another run's record stays.
    await launchWithRecords({ runId: "many-2", taskRunners: 0 });
    const sink = recordingSink();
    const { backend } = wiring();
    const t = await terminateRun({ runId: "many-1", dryRun: false }, { backend, events: sink });
    assert.equal(t.instances.length, 13);
    assert.deepEqual(recordsOf("many-1"), []);
    assert.equal(recordsOf("many-2").length, 1);
    const deletes = fx.standin.requests.filter((r) => r.operation === "DeleteParameters");
    assert.deepEqual(
      deletes.map((r) => (r.params as { Names: string[] }).Names.length),
      [10, 3],
    );
  });

  test("smoke check through Run Command: the example task is queued and awaited on the orchestrator, never over the network", async () => {
    const outcome = await smokeOnStandin("smoke-test-1");
    assert.equal(outcome.detail, "example task fib done on a task runner");
    assert.equal(outcome.passed, true);
    assert.equal(Object.keys(outcome.bootToReadySeconds).length, 2);
    assert.ok(orch.requests.includes("POST /tasks"));
    assert.ok(orch.requests.includes("GET /tasks/6f1c2d3e-task"));
    assert.deepEqual(recordsOf("smoke-test-1"), [], "ended: instances terminated, records removed");
  });

  test("smoke check: a refused task is a failed smoke test with the orchestrator's status", async () => {
    await orch.close();
    orch = await orchestratorPort((req, res) =>
      req.url === "/health" ? json(res, 200, {}) : json(res, 422, { error: "benchmark must be a name" }),
    );
    open.push(() => orch.close());
    const outcome = await smokeOnStandin("smoke-test-2");
    assert.equal(outcome.passed, false);
    assert.equal(outcome.detail, "the orchestrator refused the example task (HTTP 422)");
  });

  test("the user's smoke script (examples/smoke/fib-task.sh) runs on the orchestrator through Run Command, never over the network", async () => {
    const file = projectPath("examples", "smoke", "fib-task.sh");
    const config = awsConfig(`launch:\n  orchestrator_port: ${orch.port}\nsmoke:\n  script: ${file}\n`);
    const script = readFileSync(file);
    const outcome = await smokeOnStandin("smoke-test-3", (run) =>
      userSmokeTask(config, "aws", REGION, run, script),
    );
    assert.equal(outcome.detail, "smoke script fib-task.sh passed");
    assert.equal(outcome.passed, true);
    assert.ok(orch.requests.includes("POST /tasks"));
    assert.ok(orch.requests.includes("GET /tasks/6f1c2d3e-task"));
    const sent = sentCommands(fx.standin.state, REGION).filter((c) =>
      c.commands.join("\n").includes("IMGTOOL_SMOKE_SCRIPT"),
    );
    assert.equal(sent.length, 1, "one Run Command carried the script");
    assert.deepEqual(recordsOf("smoke-test-3"), [], "ended: instances terminated, records removed");
  });

  test("a smoke script printing 100 kB through Run Command (SSM keeps 24,000 characters of stdout): its exit code and last lines still arrive, the cut said", async () => {
    const config = awsConfig(`launch:\n  orchestrator_port: ${orch.port}\nsmoke:\n  script: /x/loud.sh\n`);
    // 100 kB as many lines, then 100 kB as one line, then the last line; the runner keeps the last 40 lines.
    const loud = (code: number) =>
      Buffer.from(
        [
          "#!/bin/sh",
          'i=0; while [ $i -lt 2000 ]; do echo "line $i of fifty bytes, padded out to length ....."; i=$((i + 1)); done',
          "head -c 100000 /dev/zero | tr '\\0' x; echo",
          "echo 'the last line'",
          `exit ${code}`,
          "",
        ].join("\n"),
      );
    const failed = await smokeOnStandin("smoke-loud-1", (run) =>
      userSmokeTask(config, "aws", REGION, run, loud(3)),
    );
    assert.equal(failed.passed, false);
    assert.equal(failed.detail, "smoke script loud.sh exited with code 3; its last line: the last line");
    const passed = await smokeOnStandin("smoke-loud-2", (run) =>
      userSmokeTask(config, "aws", REGION, run, loud(0)),
    );
    assert.deepEqual([passed.passed, passed.detail], [true, "smoke script loud.sh passed"]);
  });

  test("a smoke script printing 100 kB on one line with no newline: the mark is still the last line", async () => {
    const config = awsConfig(
      `launch:\n  orchestrator_port: ${orch.port}\nsmoke:\n  script: /x/one-line.sh\n`,
    );
    const script = Buffer.from("#!/bin/sh\nhead -c 100000 /dev/zero | tr '\\0' y\nexit 5\n");
    const outcome = await smokeOnStandin("smoke-loud-3", (run) =>
      userSmokeTask(config, "aws", REGION, run, script),
    );
    assert.equal(outcome.passed, false);
    assert.match(outcome.detail, /^smoke script one-line\.sh exited with code 5; its last line: y+$/);
    const line = outcome.detail.split(": ").at(-1)!;
    assert.ok(line.length <= 16 * 1024, `the last line is cut to its last bytes (${line.length})`);
  });

  test("prune (as the prune actor) removes the records of runs with no instance left, and keeps a live run's", async () => {
    await launchWithRecords({ runId: "ended-1", taskRunners: 1 });
    await launchWithRecords({ runId: "live-1", taskRunners: 1 });
    // Run ended-1's instances went away without `imgtool terminate` (a spot reclaim, a console click).
    for (const i of fx.standin.state.region(REGION).ec2.instances.values())
      if (i.tags["imgtool:run-id"] === "ended-1") i.state = "terminated";
    const prune = makeAwsClients({
      region: REGION,
      endpoint: fx.standin.endpoint,
      credentials: actorCredentials("prune"),
      retryBaseDelayMs: 5,
    });
    open.push(async () => {
      prune.ssm.destroy();
      prune.ec2.destroy();
    });
    const config = awsConfig(`  regions: [${REGION}]\n`);
    const backend = awsPruneBackend({
      config,
      catalog: fx.catalog,
      ec2: async (r) => new Ec2Images(prune.ec2, r),
      runs: async () => ({
        store: new SsmReadyRecords(prune.ssm),
        async liveRunIds() {
          const live = await new Ec2Instances(prune.ec2).byTags({ "imgtool:pipeline": "bench" });
          return new Set(live.map((i) => i.Tags?.find((t) => t.Key === "imgtool:run-id")?.Value ?? ""));
        },
      }),
    });
    const sink = recordingSink();
    const planned = await pruneRunRecords(backend, { dryRun: true, events: sink });
    assert.equal(planned.length, 2);
    assert.equal(recordsOf("ended-1").length, 2, "a dry run removes nothing");
    const removed = await pruneRunRecords(backend, { dryRun: false, events: sink });
    assert.deepEqual(removed.sort(), planned.sort());
    assert.deepEqual(recordsOf("ended-1"), []);
    assert.equal(recordsOf("live-1").length, 2);
    assert.ok(
      sink.events.some((e) => /removed 2 readiness record\(s\) of 1 ended run\(s\): ended-1/.test(e.message)),
    );
    assert.deepEqual(
      await pruneRunRecords(backend, { dryRun: false, events: sink }),
      [],
      "a re-run finds nothing",
    );
  });

  test("a record is read strictly: ready with its workers, failed with its reason; anything else fails the instance", () => {
    const raw = (value: unknown) => ({
      name: "/imgtool/bench/runs/r-1/i-0123456789abcdef0",
      key: "i-0123456789abcdef0",
      value: typeof value === "string" ? value : JSON.stringify(value),
    });
    const ready = {
      status: "ready",
      role: "task-runner",
      workerCpus: ["0", "2"],
      bootToReadySeconds: 1.5,
      pulled: true,
    };
    assert.deepEqual(parseRecord(raw(ready), "task-runner"), {
      ok: true,
      report: {
        workers: [
          { name: "task-runner-1", cpus: "0" },
          { name: "task-runner-2", cpus: "2" },
        ],
        bootToReadySeconds: 1.5,
        pulled: true,
        registryLogin: false,
      },
    });
    // The task runner's pre-warm time rides along when the record has it.
    const warmed = parseRecord(raw({ ...ready, prewarmSeconds: 0.25 }), "task-runner");
    assert.equal(warmed.ok && warmed.report.prewarmSeconds, 0.25);
    assert.deepEqual(
      parseRecord(raw({ status: "failed", role: "orchestrator", reason: "no engine" }), "orchestrator"),
      {
        ok: false,
        reason: "no engine",
      },
    );
    for (const [value, pattern] of [
      ["not json", /is not JSON/],
      [{ ...ready, status: "booting" }, /neither ready nor failed/],
      [{ ...ready, workerCpus: "0,2" }, /neither ready nor failed/],
      [ready, /names role task-runner, not orchestrator/],
    ] as const) {
      const r = parseRecord(raw(value), value === ready ? "orchestrator" : "task-runner");
      assert.equal(r.ok, false);
      assert.match((r as { reason: string }).reason, pattern);
    }
  });
});
