// An account whose default EBS key is a customer-managed key (issue 10, section 1 item 10 and the stand-in's
// strictness): EC2 uses the key with the launcher's permissions (kms:CreateGrant, kms:GenerateDataKeyWithoutPlaintext,
// kms:Decrypt through ec2.<region>.amazonaws.com), judged by the IAM referee with the key policy. Without them
// RunInstances still answers `pending`; EC2 then terminates the instance with the state reason
// Client.InternalError. The launch must notice that at once and name the reason and the fix, not wait for its
// deadline; with the generated launch policy, the same account launches fine.
import { afterEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { makeAwsClients } from "../../src/aws/clients.js";
import { Ec2Instances } from "../../src/aws/ec2-instances.js";
import { SsmReadyRecords } from "../../src/aws/ready-records.js";
import type { Config } from "../../src/config/load.js";
import { FailureError } from "../../src/errors.js";
import { recordingSink } from "../../src/events.js";
import { policyFor } from "../../src/iam/policies.js";
import { awsBackend } from "../../src/launch/aws.js";
import { launch } from "../../src/launch/launch.js";
import type { PolicyDocument } from "../../src/iam/policies.js";
import { bootInstances } from "../support/aws-standin/instances-ssm.js";
import { ACTOR_KEYS, SETUP_KEY, actorCredentials, actorPolicies } from "../support/iam-referee.js";
import { REGION, awsConfig, awsFixture, options, standinProbe, type AwsFixture } from "./aws-support.js";

const KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

const open: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (open.length) await open.pop()!();
});

/** The stand-in with a customer-managed default EBS key; the launch actor acts with `launchPolicy`. */
async function fixture(config: Config, launchPolicy: PolicyDocument): Promise<AwsFixture> {
  const fx = await awsFixture(
    {},
    {
      ec2Limits: { ebsDefaultKmsKeyArn: KEY },
      iam: {
        policies: { ...actorPolicies(config), [ACTOR_KEYS.launch]: launchPolicy },
        setupKey: SETUP_KEY,
        denialsExpected: true,
      },
    },
  );
  open.push(() => fx.close());
  return fx;
}

/** The launch as deps.ts wires it on aws, with readiness records; time passes (and instances boot) in sleeps. */
async function launchOn(fx: AwsFixture, config: Config, runId: string) {
  const instance = makeAwsClients({
    region: REGION,
    endpoint: fx.standin.endpoint,
    credentials: actorCredentials("instance"),
    retryBaseDelayMs: 5,
  });
  open.push(async () => instance.ssm.destroy());
  const sink = recordingSink();
  const sleeps: number[] = [];
  let clock = 1_700_000_000_000;
  const now = () => clock;
  const sleep = async (ms: number) => {
    sleeps.push(ms);
    clock += ms;
    await bootInstances(fx.standin.state, REGION, instance.ssm);
  };
  const backend = awsBackend({
    config,
    region: REGION,
    ec2: async () => new Ec2Instances(fx.clients.ec2),
    events: sink,
    records: { store: async () => new SsmReadyRecords(fx.clients.ssm), sleep, now },
  });
  const run = launch(options({ runId, taskRunners: 1 }), {
    config,
    backend,
    catalog: async () => fx.catalog,
    events: sink,
    probe: standinProbe(),
    sleep,
    now,
  });
  return { run, sleeps };
}

describe("launch on aws with a customer-managed default EBS key (AWS stand-in, IAM referee with the key policy)", () => {
  test("without the KMS permissions: EC2 terminates the instances (Client.InternalError); the launch fails at once, naming it", async () => {
    const config = awsConfig("launch:\n  ready_timeout_seconds: 600\n");
    const full = policyFor("launch", config);
    const withoutKms = {
      ...full,
      Statement: full.Statement.filter((s) => !s.Action.some((a) => a.startsWith("kms:"))),
    };
    const fx = await fixture(config, withoutKms);
    const { run, sleeps } = await launchOn(fx, config, "kms-1");
    const err = await run.then(
      () => assert.fail("the launch should fail"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof FailureError, String(err));
    assert.match(
      err.message,
      /^i-\S+ \((orchestrator|task-runner), \S+\) is (terminated|shutting-down) before it was ready: Client\.InternalError: Client error on launch\.$/,
    );
    assert.match(err.fix ?? "", /default EBS key/);
    assert.match(err.fix ?? "", /kms:CreateGrant/);
    assert.match(err.fix ?? "", /ec2\.us-east-1\.amazonaws\.com/);
    assert.ok(
      sleeps.filter((ms) => ms === 3000).length <= 2,
      `failed within a poll or two, not at the 600 s deadline (${sleeps.length} sleeps)`,
    );
    // RunInstances itself succeeded: the refusal shows only in the instances' fate.
    const instances = [...fx.standin.state.region(REGION).ec2.instances.values()];
    assert.ok(instances.length >= 1);
    for (const i of instances) {
      assert.ok(["terminated", "shutting-down"].includes(i.state), i.state);
      assert.equal(i.stateReason?.code, "Client.InternalError");
    }
  });

  test("with the generated launch policy the same account launches: volumes encrypted with the account's key", async () => {
    const config = awsConfig();
    const fx = await fixture(config, policyFor("launch", config));
    const { run } = await launchOn(fx, config, "kms-2");
    const result = await run;
    assert.ok(result.instances.length >= 2);
    assert.ok(result.instances.every((i) => i.state === "ready"));
    const volumes = [...fx.standin.state.region(REGION).ec2.volumes.values()];
    assert.ok(volumes.length >= 2);
    for (const v of volumes) {
      assert.equal(v.encrypted, true);
      assert.equal(v.kmsKeyId, KEY);
    }
  });

  test("a key policy that does not trust the account's IAM policies refuses even the generated policy", async () => {
    const config = awsConfig("launch:\n  ready_timeout_seconds: 600\n");
    const fx = await awsFixture(
      {},
      {
        ec2Limits: {
          ebsDefaultKmsKeyArn: KEY,
          ebsDefaultKmsKeyPolicy: {
            Version: "2012-10-17",
            Statement: [
              {
                Sid: "OnlyTheKeyAdmin",
                Effect: "Allow",
                Principal: { AWS: "arn:aws:iam::123456789012:role/key-admin" },
                Action: ["kms:*"],
                Resource: "*",
              },
            ],
          },
        },
        iam: { policies: actorPolicies(config), setupKey: SETUP_KEY, denialsExpected: true },
      },
    );
    open.push(() => fx.close());
    const { run } = await launchOn(fx, config, "kms-3");
    await assert.rejects(
      run,
      (e: unknown) => e instanceof FailureError && /Client\.InternalError/.test(e.message),
    );
  });
});
