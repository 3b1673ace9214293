// src/aws/ec2.ts against the AWS stand-in: every Describe follows NextToken (the stand-in pages even when no
// MaxResults was asked for, as AWS may), InvalidAMIID.NotFound means "not found", and the wait for
// `available` ends at once on a state an AMI never leaves.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { makeAwsClients } from "../../src/aws/clients.js";
import { Ec2Images } from "../../src/aws/ec2.js";
import { parseConfig } from "../../src/config/load.js";
import { FailureError } from "../../src/errors.js";
import { startAwsStandin, type AwsStandin } from "../support/aws-standin/index.js";
import { actorCredentials, actorPolicies } from "../support/iam-referee.js";

const REGION = "us-east-1";
const config = parseConfig("pipeline: bench\n", { baseDir: "/" }).config!;

describe("Ec2Images on the stand-in (pages of one)", () => {
  let standin: AwsStandin;
  let images: Ec2Images;
  const tags = { "imgtool:pipeline": "bench", "imgtool:role": "task-runner" };
  before(async () => {
    standin = await startAwsStandin({ describePageSize: 1, iam: { policies: actorPolicies(config) } });
    const clients = makeAwsClients({
      region: REGION,
      endpoint: standin.endpoint,
      credentials: actorCredentials("prune"),
      retryBaseDelayMs: 5,
    });
    images = new Ec2Images(clients.ec2, REGION);
  });
  after(async () => {
    await standin.close();
  });

  test("byTags, newest and snapshotsInUse read every page", async () => {
    const ids = [1, 2, 3].map(
      (d) =>
        standin.addImage(REGION, {
          name: `al2023-ami-2026.${d}-x86_64`,
          architecture: "x86_64",
          creationDate: new Date(Date.UTC(2026, 0, d)).toISOString(),
          tags,
        }).imageId,
    );
    assert.deepEqual((await images.byTags(tags)).map((i) => i.ImageId).sort(), [...ids].sort());
    assert.equal((await images.newest(standin.accountId, "al2023-ami-*-x86_64", "x86_64"))?.ImageId, ids[2]);
    assert.equal((await images.snapshotsInUse()).size, 3);
    assert.ok(standin.count("DescribeImages", "ec2") >= 9, "three pages per call");
  });

  test("an AMI that does not exist is not found, not an error", async () => {
    assert.equal(await images.describe("ami-0000000000000dead"), undefined);
  });

  for (const state of ["deregistered", "disabled", "failed"] as const) {
    test(`waiting for available ends at once when the AMI is ${state}`, async () => {
      const id = standin.addImage(REGION, { name: `gone-${state}`, tags }).imageId;
      standin.state.region(REGION).ec2.images.get(id)!.state = state;
      const sleeps: number[] = [];
      await assert.rejects(
        images.waitAvailable(id, { sleep: async (ms) => void sleeps.push(ms), timeoutMs: 3_600_000 }),
        (e: unknown) => e instanceof FailureError && e.message.includes(`is ${state}`),
      );
      assert.deepEqual(sleeps, [], "no wait at all");
    });
  }
});
