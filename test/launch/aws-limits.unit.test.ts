// What EC2 answers when the account or the zone says no (issue 10, finding 2 and the stand-in's strictness):
// no Spot service-linked role, a policy without RunInstances (UnauthorizedOperation), the on-demand vCPU quota,
// no capacity, and a ClientToken longer than 64. The AWS stand-in plays each one from its state (ec2Limits, the
// caller's policy judged by the IAM referee), never by a scripted fault; the launch surfaces a clear error that
// names the fix, and ends what it started.
import { afterEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { RunInstancesCommand } from "@aws-sdk/client-ec2";
import { makeAwsClients } from "../../src/aws/clients.js";
import { FailureError, UsageError } from "../../src/errors.js";
import { policyFor } from "../../src/iam/policies.js";
import type { StandinOptions } from "../support/aws-standin/index.js";
import { ACTOR_KEYS, SETUP_KEY, actorCredentials, actorPolicies } from "../support/iam-referee.js";
import {
  REGION,
  awsConfig,
  awsFixture,
  launchOnStandin,
  runRequests,
  type AwsFixture,
} from "./aws-support.js";

const open: AwsFixture[] = [];
afterEach(async () => {
  for (const f of open.splice(0)) await f.close();
});
async function fixture(standinOpts: StandinOptions): Promise<AwsFixture> {
  const fx = await awsFixture({}, standinOpts);
  open.push(fx);
  return fx;
}
const live = (fx: AwsFixture) =>
  [...fx.standin.state.region(REGION).ec2.instances.values()].filter((i) =>
    ["pending", "running"].includes(i.state),
  );

describe("launch on aws when EC2 says no (AWS stand-in with EC2 limits and the IAM referee)", () => {
  test("spot without the Spot service-linked role: exit 2, the fix names create-service-linked-role; nothing left running", async () => {
    const fx = await fixture({ ec2Limits: { spotServiceLinkedRole: false } });
    await assert.rejects(
      launchOnStandin(fx, { spot: true, runId: "slr-1" }),
      (e: unknown) =>
        e instanceof UsageError &&
        e.exitCode === 2 &&
        /no Spot service-linked role/.test(e.message) &&
        /create-service-linked-role --aws-service-name spot\.amazonaws\.com/.test(e.fix ?? ""),
    );
    assert.ok(
      runRequests(fx.standin).every(
        (r) => r.status !== 200 || r.params["InstanceMarketOptions.MarketType"] !== "spot",
      ),
      "no spot request succeeded",
    );
    assert.deepEqual(live(fx), [], "the orchestrator it started was terminated");
  });

  test("a launch role whose policy lacks RunInstances: UnauthorizedOperation, exit 2, the fix names iam-policy --for launch", async () => {
    const config = awsConfig();
    const launch = policyFor("launch", config);
    const fx = await fixture({
      iam: {
        policies: {
          ...actorPolicies(config),
          [ACTOR_KEYS.launch]: {
            ...launch,
            Statement: launch.Statement.filter((s) => s.Sid !== "RunTaggedInstances"),
          },
        },
        setupKey: SETUP_KEY,
        denialsExpected: true,
      },
    });
    await assert.rejects(
      launchOnStandin(fx, { runId: "deny-1" }),
      (e: unknown) =>
        e instanceof UsageError &&
        /was denied \(UnauthorizedOperation\)/.test(e.message) &&
        /imgtool iam-policy --for launch/.test(e.fix ?? ""),
    );
    assert.ok(runRequests(fx.standin).some((r) => r.status === 403));
    assert.deepEqual(live(fx), []);
  });

  test("past the on-demand vCPU quota: exit 1, the fix names the quota and what to launch instead", async () => {
    // t3.medium orchestrator (2 vCPUs) + 2 x c7i.large (2 each) = 6 > 4.
    const fx = await fixture({ ec2Limits: { onDemandVcpuQuota: 4 } });
    await assert.rejects(
      launchOnStandin(fx, { runId: "quota-1", taskRunners: 2 }),
      (e: unknown) =>
        e instanceof FailureError &&
        e.exitCode === 1 &&
        /vCPU quota/.test(e.message) &&
        /VcpuLimitExceeded/.test(e.message) &&
        /L-1216C47A/.test(e.fix ?? ""),
    );
    assert.deepEqual(live(fx), [], "what did start was terminated");
  });

  test("no capacity: spot falls back to on-demand, which meets none either: exit 1, the fix names other types or zones", async () => {
    const fx = await fixture({ ec2Limits: { capacity: { "c7i.large": 0 } } });
    await assert.rejects(
      launchOnStandin(fx, { spot: true, runId: "cap-1" }),
      (e: unknown) =>
        e instanceof FailureError &&
        /no capacity/.test(e.message) &&
        /InsufficientInstanceCapacity/.test(e.message) &&
        /--instance-types/.test(e.fix ?? ""),
    );
    const markets = runRequests(fx.standin)
      .filter((r) => r.params["InstanceType"] === "c7i.large")
      .map((r) => r.params["InstanceMarketOptions.MarketType"] ?? "on-demand");
    assert.ok(markets.includes("spot") && markets.includes("on-demand"), `tried both: ${markets.join(", ")}`);
    assert.deepEqual(live(fx), []);
  });

  test("the catalog's AMI no longer exists (InvalidAMIID.NotFound): exit 2 naming the AMI, nothing launched", async () => {
    const fx = await fixture({});
    const gone = fx.amis["task-runner"].x86_64;
    fx.standin.state.region(REGION).ec2.images.delete(gone);
    await assert.rejects(
      launchOnStandin(fx, { runId: "gone-1" }),
      (e: unknown) =>
        e instanceof UsageError &&
        e.message.includes(`AMI ${gone}`) &&
        /is not found in us-east-1\. Nothing was launched/.test(e.message) &&
        /bake again or roll back/.test(e.fix ?? ""),
    );
    assert.equal(runRequests(fx.standin).length, 0);
  });

  test("ClientToken: the stand-in refuses more than 64 characters; a launch with the longest run id stays within", async () => {
    const fx = await fixture({});
    const longRun = `r${"x".repeat(30)}1`; // 32 characters: the longest run id
    const { result } = await launchOnStandin(fx, { runId: longRun });
    const tokens = runRequests(fx.standin).map((r) => r.params["ClientToken"] ?? "");
    assert.ok(tokens.length >= 2);
    assert.ok(
      tokens.every((t) => t.length > 0 && t.length <= 64),
      tokens.join(", "),
    );
    assert.equal(result.instances.length, 2);

    const setup = makeAwsClients({
      region: REGION,
      endpoint: fx.standin.endpoint,
      credentials: actorCredentials("setup"),
      maxAttempts: 1,
    });
    await assert.rejects(
      setup.ec2.send(
        new RunInstancesCommand({
          ImageId: fx.amis["task-runner"].x86_64,
          InstanceType: "c7i.large",
          MinCount: 1,
          MaxCount: 1,
          ClientToken: "t".repeat(65),
        }),
      ),
      (e: unknown) =>
        (e as Error).name === "InvalidParameterValue" && /Length exceeds/.test((e as Error).message),
    );
    setup.ec2.destroy();
  });
});
