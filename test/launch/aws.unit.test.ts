// `imgtool launch` on the aws target, through the real SDK clients to the wire-level AWS stand-in (EC2, SSM):
// batched resolves, one RunInstances per type in parallel, IMDSv2/encryption/tags, spot fallback, idempotent
// retries, cleanup after a partial failure, terminate by run id, and the secret never leaving SSM. The
// orchestrator's /health is answered by a stand-in probe (a function), named in each test that needs one.
import { after, afterEach, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { UsageError, FailureError } from "../../src/errors.js";
import { recordingSink } from "../../src/events.js";
import { awsBackend, imdsHopLimit, launchTags } from "../../src/launch/aws.js";
import type { GroupRequest } from "../../src/launch/types.js";
import { Ec2Instances } from "../../src/aws/ec2-instances.js";
import { clientToken } from "../../src/launch/ids.js";
import { terminateRun } from "../../src/launch/terminate.js";
import { renderTfvars } from "../../src/render/tfvars.js";
import { USER_DATA_LIMIT, worstCaseSize } from "../../src/render/user-data.js";
import { resolveTfvars, userDataValues } from "../../src/launch/plan.js";
import {
  IMAGES,
  REGION,
  SECRET,
  SECRET_NAME,
  awsConfig,
  awsFixture,
  launchOnStandin,
  options,
  runRequests,
  standinProbe,
  tagsOf,
  userDataOf,
  type AwsFixture,
} from "./aws-support.js";

let fx: AwsFixture;
const open: AwsFixture[] = [];
beforeEach(async () => {
  fx = await awsFixture();
  open.push(fx);
});
afterEach(async () => {
  while (open.length) await open.pop()!.close();
});
after(async () => {
  while (open.length) await open.pop()!.close();
});

const THREE_TYPES = ["c7i.large", "c7g.large", "m7i.xlarge"];

describe("launch on aws (AWS stand-in)", () => {
  test("3 types x 4: every id in one batched resolve (the release record and the secret in one GetParameters), one RunInstances per type with MinCount = MaxCount", async () => {
    const { result } = await launchOnStandin(fx, { taskRunners: 4, instanceTypes: THREE_TYPES });
    const gets = fx.standin.requests.filter((r) => r.operation === "GetParameters");
    const names = gets.flatMap((r) => (r.params as { Names: string[] }).Names);
    // The release record (every AMI of every architecture and region, both images) + the secret: one call.
    assert.deepEqual(names, ["/imgtool/bench/release:latest", SECRET_NAME]);
    assert.equal(gets.length, 1);
    assert.ok(gets.every((r) => (r.params as { Names: string[] }).Names.length <= 10));
    assert.ok(names.includes(SECRET_NAME), "the secret's existence is checked in the same batch");
    assert.ok(
      gets.every((r) => (r.params as { WithDecryption?: boolean }).WithDecryption !== true),
      "imgtool never decrypts the secret",
    );
    const runs = runRequests(fx.standin);
    assert.equal(runs.length, 4, "one for the orchestrator, one per task-runner type");
    const runnerRuns = runs.filter((r) => tagsOf(r.params, "instance")["imgtool:role"] === "task-runner");
    assert.deepEqual(runnerRuns.map((r) => r.params["InstanceType"]).sort(), [...THREE_TYPES].sort());
    for (const r of runnerRuns) {
      assert.equal(r.params["MinCount"], "4");
      assert.equal(r.params["MaxCount"], "4");
    }
    assert.equal(result.instances.filter((i) => i.role === "task-runner").length, 12);
    assert.equal(fx.standin.state.region(REGION).ec2.instances.size, 13);
  });

  test("each instance type gets its architecture's AMI; the image is the role's", async () => {
    await launchOnStandin(fx, { taskRunners: 1, instanceTypes: THREE_TYPES });
    const byType = new Map(runRequests(fx.standin).map((r) => [r.params["InstanceType"], r.params]));
    assert.equal(byType.get("c7g.large")!["ImageId"], fx.amis["task-runner"].arm64);
    assert.equal(byType.get("c7i.large")!["ImageId"], fx.amis["task-runner"].x86_64);
    assert.equal(byType.get("m7i.xlarge")!["ImageId"], fx.amis["task-runner"].x86_64);
    assert.equal(byType.get("t3.medium")!["ImageId"], fx.amis.orchestrator.x86_64);
    assert.match(userDataOf(byType.get("c7g.large")!), new RegExp(`^IMAGE=${IMAGES["task-runner"]}$`, "m"));
    assert.match(userDataOf(byType.get("t3.medium")!), new RegExp(`^IMAGE=${IMAGES.orchestrator}$`, "m"));
  });

  test("IMDSv2 required, encrypted root volume, tags (pipeline, role, version, run id) on instances and volumes", async () => {
    await launchOnStandin(fx, { taskRunners: 2, instanceTypes: ["c7i.large"], runId: "tags-1" });
    for (const r of runRequests(fx.standin)) {
      const p = r.params;
      assert.equal(p["MetadataOptions.HttpTokens"], "required");
      assert.equal(p["MetadataOptions.HttpEndpoint"], "enabled");
      // No Compose stack here: the workers run on the host's network, one hop.
      assert.equal(p["MetadataOptions.HttpPutResponseHopLimit"], "1");
      assert.equal(p["BlockDeviceMapping.1.DeviceName"], "/dev/xvda");
      assert.equal(p["BlockDeviceMapping.1.Ebs.Encrypted"], "true");
      assert.equal(p["IamInstanceProfile.Name"], "imgtool-instances");
      for (const type of ["instance", "volume"]) {
        const tags = tagsOf(p, type);
        assert.equal(tags["imgtool:pipeline"], "bench");
        assert.equal(tags["imgtool:run-id"], "tags-1");
        assert.match(tags["imgtool:role"] ?? "", /^(task-runner|orchestrator)$/);
        assert.match(
          tags["imgtool:version"] ?? "",
          /^v20261129-000000-(aaaa|bbbb)0001$/,
          "the AMI's version",
        );
        assert.match(tags["imgtool:image-version"] ?? "", /^v20261129-000000-img-/);
      }
    }
    const ec2 = fx.standin.state.region(REGION).ec2;
    for (const inst of ec2.instances.values()) {
      assert.equal(inst.metadataOptions.httpTokens, "required");
      for (const b of inst.blockDeviceMappings) assert.equal(ec2.volumes.get(b.volumeId)?.encrypted, true);
    }
  });

  test("IMDSv2's hop limit: 2 for an orchestrator that is a Compose stack (its services sit behind a bridge), 1 for workers", () => {
    const config = awsConfig();
    assert.equal(imdsHopLimit(config, "task-runner"), 1);
    assert.equal(imdsHopLimit(config, "orchestrator"), 1);
    const stacked = {
      ...config,
      roles: { ...config.roles, orchestrator: { ...config.roles.orchestrator, stack: {} } },
    } as unknown as typeof config;
    assert.equal(imdsHopLimit(stacked, "orchestrator"), 2);
    assert.equal(imdsHopLimit(stacked, "task-runner"), 1);
  });

  test("a launch with a stacked orchestrator: its RunInstances asks for hop limit 2, the task runners' for 1", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "imgtool-hop-"));
    try {
      const compose = path.join(dir, "compose.yaml");
      writeFileSync(compose, "services:\n  web:\n    build: .\n");
      const config = awsConfig(
        `roles:\n  orchestrator:\n    stack: { file: ${JSON.stringify(compose)}, app_services: [web] }\n`,
      );
      assert.ok(config.roles.orchestrator.stack, "the config has a stack");
      await launchOnStandin(fx, { taskRunners: 2, instanceTypes: ["c7i.large"], runId: "hop-1" }, { config });
      const byRole = new Map<string, string[]>();
      for (const r of runRequests(fx.standin)) {
        const role = tagsOf(r.params, "instance")["imgtool:role"] ?? "";
        byRole.set(role, [
          ...(byRole.get(role) ?? []),
          r.params["MetadataOptions.HttpPutResponseHopLimit"] ?? "",
        ]);
      }
      assert.deepEqual(Object.fromEntries(byRole), { orchestrator: ["2"], "task-runner": ["1"] });
      const ec2 = fx.standin.state.region(REGION).ec2;
      const limits = [...ec2.instances.values()].map((i) => i.metadataOptions.httpPutResponseHopLimit).sort();
      assert.deepEqual(limits, [1, 1, 2], "what EC2 (the stand-in) recorded");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("task-runner types start in parallel: the 3 RunInstances are in flight at once", async () => {
    // Each answer is held back, so calls made one after another never overlap; calls made together do.
    fx.standin.faults.add({ operation: "RunInstances", kind: "slow", delayMs: 2_000, calls: [2, 3, 4] });
    await launchOnStandin(fx, { taskRunners: 1, instanceTypes: THREE_TYPES });
    const runs = runRequests(fx.standin);
    assert.equal(runs.length, 4);
    assert.equal(
      Math.max(...runs.map((r) => r.openAtArrival)),
      3,
      `open RunInstances at each arrival: ${runs.map((r) => r.openAtArrival).join(", ")} (the types were started one after another)`,
    );
    assert.equal(fx.standin.state.region(REGION).ec2.instances.size, 4);
  });

  test("the task runners get the orchestrator's private address from its RunInstances answer", async () => {
    await launchOnStandin(fx, { taskRunners: 1 });
    const ec2 = fx.standin.state.region(REGION).ec2;
    const orch = [...ec2.instances.values()].find((i) => i.tags["imgtool:role"] === "orchestrator")!;
    const runner = runRequests(fx.standin).find((r) => r.params["InstanceType"] === "c7i.large")!;
    assert.match(
      userDataOf(runner.params),
      new RegExp(`^ORCHESTRATOR_URL=http://${orch.privateIpAddress.replace(/\./g, "\\.")}:8080$`, "m"),
    );
  });

  test("spot: InsufficientInstanceCapacity (HTTP 500, every SDK attempt) then on-demand with another token: exactly one instance", async () => {
    // Call 1 is the orchestrator; calls 2-4 are the SDK's three attempts of the spot request (same token).
    fx.standin.faults.add({
      operation: "RunInstances",
      kind: "error",
      code: "InsufficientInstanceCapacity",
      status: 500,
      message: "There is no Spot capacity available that matches your request.",
      calls: [2, 3, 4],
    });
    const { result, events } = await launchOnStandin(fx, {
      taskRunners: 1,
      instanceTypes: ["c7i.large"],
      spot: true,
    });
    const runs = runRequests(fx.standin).filter((r) => r.params["InstanceType"] === "c7i.large");
    assert.equal(runs.length, 4);
    const spot = runs.slice(0, 3);
    const onDemand = runs[3]!;
    assert.ok(spot.every((r) => r.params["InstanceMarketOptions.MarketType"] === "spot"));
    assert.equal(new Set(spot.map((r) => r.params["ClientToken"])).size, 1, "SDK retries keep the token");
    assert.equal(
      spot[0]!.params["ClientToken"],
      clientToken("test-run-1", "task-runner", "c7i.large", "spot"),
    );
    assert.equal(onDemand.params["InstanceMarketOptions.MarketType"], undefined);
    assert.equal(
      onDemand.params["ClientToken"],
      clientToken("test-run-1", "task-runner", "c7i.large", "on-demand"),
    );
    assert.notEqual(onDemand.params["ClientToken"], spot[0]!.params["ClientToken"]);
    const runners = [...fx.standin.state.region(REGION).ec2.instances.values()].filter(
      (i) => i.tags["imgtool:role"] === "task-runner",
    );
    assert.equal(runners.length, 1);
    assert.equal(runners[0]!.instanceLifecycle, undefined, "on-demand");
    assert.equal(result.instances.find((i) => i.role === "task-runner")!.market, "on-demand");
    assert.ok(
      events.some(
        (e) => e.type === "warn" && /no spot capacity .*InsufficientInstanceCapacity/.test(e.message),
      ),
    );
  });

  test("spot falls back on the other capacity errors too (MaxSpotInstanceCountExceeded), but not on other errors", async () => {
    fx.standin.faults.add({
      operation: "RunInstances",
      kind: "error",
      code: "MaxSpotInstanceCountExceeded",
      calls: [2],
    });
    const { result } = await launchOnStandin(fx, { spot: true, runId: "spot-2" });
    assert.equal(result.instances.find((i) => i.role === "task-runner")!.market, "on-demand");

    const other = await awsFixture();
    open.push(other);
    other.standin.faults.add({
      operation: "RunInstances",
      kind: "error",
      code: "InvalidParameterValue",
      calls: [2],
    });
    await assert.rejects(launchOnStandin(other, { spot: true, runId: "spot-3" }), FailureError);
    assert.equal(runRequests(other.standin).length, 2, "no on-demand retry for a request that is wrong");
  });

  test("RunInstances times out after the stand-in created the instance: the retry with the same token returns the same instance", async () => {
    // A client timeout well above what a loaded machine takes to answer (the other calls and the retry must not
    // time out too), and a delay well above the timeout.
    const slow = await awsFixture({ requestTimeoutMs: 1_500 });
    open.push(slow);
    // Call 2 (the task runner's): performed at once, answered after the client gave up.
    slow.standin.faults.add({
      operation: "RunInstances",
      kind: "slow",
      applyFirst: true,
      delayMs: 3_500,
      calls: [2],
    });
    const { result } = await launchOnStandin(slow, { taskRunners: 1, runId: "timeout-1" });
    const runs = runRequests(slow.standin).filter((r) => r.params["InstanceType"] === "c7i.large");
    assert.equal(runs.length, 2, "the SDK retried once");
    assert.equal(runs[0]!.params["ClientToken"], runs[1]!.params["ClientToken"]);
    assert.equal(runs[0]!.status, 0, "the first attempt was never answered to the client");
    const runners = [...slow.standin.state.region(REGION).ec2.instances.values()].filter(
      (i) => i.tags["imgtool:role"] === "task-runner",
    );
    assert.equal(runners.length, 1, "no duplicate");
    assert.equal(result.instances.find((i) => i.role === "task-runner")!.id, runners[0]!.instanceId);
  });

  test("a failure after two of three types started terminates those two and the orchestrator", async () => {
    fx.standin.faults.add({
      operation: "RunInstances",
      kind: "error",
      code: "Unsupported",
      message: "The requested configuration is currently not supported.",
      calls: [4],
    });
    const err = await launchOnStandin(fx, { taskRunners: 2, instanceTypes: THREE_TYPES }).then(
      () => assert.fail("the launch should fail"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof FailureError);
    assert.match(err.message, /Unsupported: The requested configuration is currently not supported/);
    const ec2 = fx.standin.state.region(REGION).ec2;
    const all = [...ec2.instances.values()];
    assert.equal(all.length, 5, "orchestrator + 2 types x 2 started");
    const terminates = fx.standin.requests.filter((r) => r.operation === "TerminateInstances");
    assert.equal(terminates.length, 1);
    const ids = Object.entries(terminates[0]!.params as Record<string, string>)
      .filter(([k]) => k.startsWith("InstanceId."))
      .map(([, v]) => v)
      .sort();
    assert.deepEqual(ids, all.map((i) => i.instanceId).sort());
    assert.ok(
      all.every((i) => i.state === "shutting-down"),
      "nothing is orphaned",
    );
  });

  test("--keep-on-failure leaves what started running and says how to end it", async () => {
    fx.standin.faults.add({ operation: "RunInstances", kind: "error", code: "Unsupported", calls: [3] });
    const err = (await launchOnStandin(fx, {
      taskRunners: 1,
      instanceTypes: ["c7i.large", "c7g.large"],
      keepOnFailure: true,
    }).catch((e: unknown) => e)) as FailureError & { events: { type: string; message: string }[] };
    assert.ok(err instanceof FailureError);
    assert.equal(fx.standin.count("TerminateInstances"), 0);
    assert.ok(
      [...fx.standin.state.region(REGION).ec2.instances.values()].every((i) => i.state !== "shutting-down"),
    );
    assert.ok(err.events.some((e) => /keep-on-failure leaves 2 instance/.test(e.message)));
  });

  test("terminate --run-id ends that run's instances (found by tag), and no other run's", async () => {
    await launchOnStandin(fx, { taskRunners: 2, runId: "run-a" });
    await launchOnStandin(fx, { taskRunners: 1, runId: "run-b" });
    const sink = recordingSink();
    const config = awsConfig();
    const backend = awsBackend({
      config,
      region: REGION,
      ec2: async () => new Ec2Instances(fx.clients.ec2),
      events: sink,
    });
    const r = await terminateRun({ runId: "run-a", dryRun: false }, { backend, events: sink });
    assert.equal(r.instances.length, 3);
    const describe = fx.standin.requests.find((q) => q.operation === "DescribeInstances")!;
    assert.equal((describe.params as Record<string, string>)["Filter.1.Name"], "tag:imgtool:pipeline");
    const byRun = (run: string) =>
      [...fx.standin.state.region(REGION).ec2.instances.values()].filter(
        (i) => i.tags["imgtool:run-id"] === run,
      );
    assert.ok(byRun("run-a").every((i) => i.state === "shutting-down"));
    assert.ok(byRun("run-b").every((i) => i.state !== "shutting-down" && i.state !== "terminated"));
    const again = await terminateRun({ runId: "run-a", dryRun: false }, { backend, events: sink });
    assert.equal(again.instances.length, 0, "a second terminate finds nothing left");
  });

  test("a run id used before: EC2 answers its token with the ended launch's instances, and the launch is a usage error naming the run id", async () => {
    const r = await launchOnStandin(fx, { taskRunners: 1, runId: "run-once" });
    const sink = recordingSink();
    const backend = awsBackend({
      config: awsConfig(),
      region: REGION,
      ec2: async () => new Ec2Instances(fx.clients.ec2),
      events: sink,
    });
    await terminateRun({ runId: "run-once", dryRun: false }, { backend, events: sink });
    const before = fx.standin.state.region(REGION).ec2.instances.size;
    await assert.rejects(
      launchOnStandin(fx, { taskRunners: 1, runId: "run-once" }),
      (e: Error) =>
        e instanceof UsageError &&
        /--run-id run-once was used by an earlier launch/.test(e.message) &&
        e.message.includes(r.result.instances[0]!.id) &&
        /new --run-id/.test(e.fix ?? ""),
    );
    assert.equal(fx.standin.state.region(REGION).ec2.instances.size, before, "no instance started");
  });

  test("the planted secret appears in no request, user-data or log; the user-data reads it at boot from SSM", async () => {
    const { result, events } = await launchOnStandin(fx, {
      taskRunners: 2,
      instanceTypes: ["c7i.large", "c7g.large"],
    });
    assert.ok(fx.standin.requests.length > 0);
    for (const r of fx.standin.requests) {
      assert.ok(!r.body.includes(SECRET), `${r.operation} request carries the secret`);
      assert.ok(!JSON.stringify(r.headers).includes(SECRET));
    }
    for (const r of runRequests(fx.standin)) {
      const ud = userDataOf(r.params);
      assert.ok(!ud.includes(SECRET));
      assert.match(ud, new RegExp(`^SECRET_LOCATIONS=\\(${SECRET_NAME}\\)$`, "m"));
      assert.match(ud, /aws ssm get-parameter [^\n]*\\\n\s*--with-decryption/);
    }
    assert.ok(!JSON.stringify(events).includes(SECRET));
    assert.ok(!JSON.stringify(result).includes(SECRET));
  });

  // Padding gzip cannot shrink (a SHA-256 chain in base64url): with a run of one letter the gzip would hardly grow,
  // and a check that measured the wrong bytes (or a bound gzip beats) would pass unnoticed.
  const NOISE = Array.from({ length: 1_000 }, (_, i) =>
    createHash("sha256").update(`pad-${i}`).digest("base64url"),
  ).join("");

  for (const compression of ["gzip", "none"] as const) {
    test(`${compression}: no API call at all when a role's user-data would be over 16 KB (the bytes sent, before base64); just under launches`, async () => {
      const config = (pad: number) =>
        awsConfig(
          `launch:\n  user_data_compression: ${compression}\n  worker_env:\n    task-runner:\n      PAD: "${NOISE.slice(0, pad)}"\n`,
        );
      const size = (pad: number) => {
        const c = config(pad);
        const ctx = {
          region: REGION,
          registry: { user: "AWS", auth: "ecr" as const, passwordFile: "" },
          secret: { source: "ssm" as const, parameter: SECRET_NAME },
          orchestratorPort: 8080,
        };
        return worstCaseSize(
          userDataValues(c, options({ runId: "big-1" }), ctx, "task-runner", {
            version: "v0",
            image: IMAGES["task-runner"],
            bakedImage: null,
            workers: "auto",
          }),
          compression,
        );
      };
      // The smallest padding that takes the worst case over the limit (binary search; both sides checked below).
      let lo = 0;
      let hi = NOISE.length;
      assert.ok(size(lo) <= USER_DATA_LIMIT && size(hi) > USER_DATA_LIMIT);
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if (size(mid) > USER_DATA_LIMIT) hi = mid;
        else lo = mid;
      }
      const over = hi;
      assert.ok(size(over - 1) <= USER_DATA_LIMIT && size(over) > USER_DATA_LIMIT);
      // The padding costs what it weighs: at least 0.7 bytes a character once gzipped.
      assert.ok(
        size(over) - size(0) >= 0.7 * over,
        `${over} characters of padding add ${size(over) - size(0)} bytes`,
      );

      const refused = await launchOnStandin(fx, { runId: "big-1" }, { config: config(over) }).catch(
        (e: unknown) => e,
      );
      assert.ok(refused instanceof UsageError, String(refused));
      const what = compression === "gzip" ? "gzip-compressed user-data" : "user-data";
      assert.match(
        refused.message,
        new RegExp(
          `task-runner's ${what} can reach ${size(over)} bytes, over EC2's limit of 16384 bytes \\(by ${size(over) - USER_DATA_LIMIT}\\)`,
        ),
      );
      assert.equal(fx.standin.requests.length, 0, "not one request");

      await launchOnStandin(fx, { runId: "big-1" }, { config: config(over - 1) });
      const runner = runRequests(fx.standin).find((r) => r.params["InstanceType"] === "c7i.large")!;
      const sent = Buffer.from(runner.params["UserData"]!, "base64");
      assert.ok(
        sent.length <= USER_DATA_LIMIT && sent.length > USER_DATA_LIMIT - 2_000,
        `${sent.length} bytes`,
      );
      assert.ok(userDataOf(runner.params).includes(`PAD=${NOISE.slice(0, over - 1)}`));
      if (compression === "gzip") {
        assert.deepEqual([...sent.subarray(0, 2)], [0x1f, 0x8b], "gzip magic");
        assert.ok(
          Buffer.byteLength(userDataOf(runner.params)) > USER_DATA_LIMIT,
          "the script itself is over 16 KB: the limit counts the gzip sent",
        );
      }
    });
  }

  test("RunInstances refusing user-data over 16 KB (the AWS stand-in answers as EC2) is a usage error in EC2's words; exactly 16384 bytes start", async () => {
    const config = awsConfig();
    const backend = awsBackend({
      config,
      region: REGION,
      ec2: async () => new Ec2Instances(fx.clients.ec2),
      events: recordingSink(),
    });
    // Past imgtool's own check (which a launch runs first): the group as the backend is handed it.
    const group = (size: number, runId: string): GroupRequest => {
      const bytes = Buffer.alloc(size, "#");
      return {
        role: "task-runner",
        instanceType: "c7i.large",
        arch: "x86_64",
        count: 1,
        market: "on-demand",
        imageId: fx.amis["task-runner"].x86_64,
        preloadVolume: null,
        userData: { role: "task-runner", text: bytes.toString(), bytes, compression: "none" },
        tags: launchTags(config.pipeline, "task-runner", { ami: "v1", image: "v1" }, runId),
      };
    };
    const err = await backend
      .start(group(USER_DATA_LIMIT + 1, "ud-over"), "ud-over")
      .catch((e: unknown) => e);
    assert.ok(err instanceof UsageError, String(err));
    assert.match(
      err.message,
      /^RunInstances for 1 x c7i\.large \(on-demand\) of task-runner was refused by EC2, with EC2's error InvalidParameterValue: User data is limited to 16384 bytes \(this user-data is 16385 bytes\)/,
    );
    assert.equal(runRequests(fx.standin).length, 1, "EC2 (the stand-in) was asked and refused");
    const started = await backend.start(group(USER_DATA_LIMIT, "ud-limit"), "ud-limit");
    assert.equal(started.length, 1);
  });

  test("gzip-compressed user-data (launch.user_data_compression) fits what the plain script does not", async () => {
    const config = awsConfig(
      `launch:\n  user_data_compression: gzip\n  worker_env:\n    task-runner:\n      PAD: "${"y".repeat(20_000)}"\n`,
    );
    await launchOnStandin(fx, { runId: "gz-1" }, { config });
    const runner = runRequests(fx.standin).find((r) => r.params["InstanceType"] === "c7i.large")!;
    const raw = Buffer.from(runner.params["UserData"]!, "base64");
    assert.deepEqual([...raw.subarray(0, 2)], [0x1f, 0x8b], "gzip magic");
    assert.ok(raw.length < USER_DATA_LIMIT);
  });

  test("a missing API key parameter is a usage error before any RunInstances", async () => {
    const err = await launchOnStandin(
      fx,
      {},
      { config: awsConfig("  api_key_parameter: /imgtool/bench/secrets/missing\n") },
    ).catch((e: unknown) => e);
    assert.ok(err instanceof UsageError);
    assert.match(err.message, /\/imgtool\/bench\/secrets\/missing does not exist in SSM/);
    assert.match(err.fix ?? "", /aws ssm put-parameter --type SecureString/);
    assert.equal(runRequests(fx.standin).length, 0);
  });

  test("orchestrator health (stand-in probe, healthy from the 3rd check) is polled every 2 s", async () => {
    const probe = standinProbe(3);
    const sleeps: number[] = [];
    const { result } = await launchOnStandin(fx, {}, { probe, sleeps });
    assert.equal(probe.urls.length, 3);
    assert.deepEqual(sleeps, [2000, 2000]);
    assert.equal(result.orchestrator.healthy, true);
    assert.equal(result.orchestrator.checks, 3);
  });

  test("--reuse-orchestrator keeps the running one (stand-in probe: healthy): one health check, RunInstances only for task runners", async () => {
    const first = await launchOnStandin(fx, { runId: "first", taskRunners: 0 });
    const orchId = first.result.orchestrator.id;
    fx.standin.state.region(REGION).ec2.instances.get(orchId!)!.state = "running";
    fx.standin.requests.length = 0;
    const probe = standinProbe(1);
    const { result } = await launchOnStandin(
      fx,
      { runId: "second", reuseOrchestrator: true, taskRunners: 1 },
      { probe },
    );
    assert.equal(probe.urls.length, 1, "checked once: it was already healthy");
    assert.equal(result.orchestrator.id, orchId);
    assert.equal(result.orchestrator.reused, true);
    const runs = runRequests(fx.standin);
    assert.equal(runs.length, 1);
    assert.equal(tagsOf(runs[0]!.params, "instance")["imgtool:role"], "task-runner");
    const names = fx.standin.requests
      .filter((r) => r.operation === "GetParameters")
      .flatMap((r) => (r.params as { Names: string[] }).Names);
    assert.ok(!names.some((n) => n.includes("/orchestrator/")), "the orchestrator's ids are not resolved");
  });

  test("a dry run resolves and renders but makes no EC2 call", async () => {
    const { result } = await launchOnStandin(fx, {
      dryRun: true,
      taskRunners: 3,
      instanceTypes: ["c7i.large", "c7g.large"],
    });
    assert.equal(fx.standin.requests.filter((r) => r.service === "ec2").length, 0);
    assert.equal(result.plan!.taskRunners.length, 2);
    assert.equal(
      result.plan!.taskRunners.find((g) => g.arch === "arm64")!.imageId,
      fx.amis["task-runner"].arm64,
    );
    assert.match(
      result.plan!.taskRunners[0]!.userData.text,
      /ORCHESTRATOR_URL='http:\/\/<orchestrator-private-address>'/,
    );
  });

  test("--emit tfvars: the resolved ids as a Terraform variables file that HCL parses (hcl2json)", async () => {
    const config = awsConfig();
    const t = await resolveTfvars(config, fx.catalog, {
      label: "latest",
      region: REGION,
      taskRunnerTypes: ["c7i.large", "c7g.large"],
      local: false,
      apiKeyParameter: SECRET_NAME,
    });
    const text = renderTfvars(t);
    const dir = mkdtempSync(path.join(tmpdir(), "imgtool-tfvars-"));
    writeFileSync(path.join(dir, "imgtool.auto.tfvars"), text);
    const { parse } = (await import("@cdktf/hcl2json")) as {
      parse: (f: string, t: string) => Promise<Record<string, unknown>>;
    };
    const doc = (await parse("imgtool.auto.tfvars", text)) as Record<string, unknown>;
    assert.deepEqual(doc["imgtool_amis"], {
      "task-runner": { x86_64: fx.amis["task-runner"].x86_64, arm64: fx.amis["task-runner"].arm64 },
      orchestrator: { x86_64: fx.amis.orchestrator.x86_64 },
    });
    assert.deepEqual(doc["imgtool_images"], IMAGES);
    assert.equal(doc["imgtool_api_key_parameter"], SECRET_NAME);
    assert.ok(!text.includes(SECRET));
    rmSync(dir, { recursive: true, force: true });
  });
});
