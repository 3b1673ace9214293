// The aws launch's registry check, through the real SDK clients to the wire-level AWS stand-in (EC2, SSM, ECR),
// every call judged with the launcher's own policy (`imgtool iam-policy --for launch`): before any RunInstances,
// the images the instances would pull (the catalog's image is not the one baked into their AMI) are asked for
// in ECR by digest (DescribeImages). A digest ECR lacks, or a repository that is gone, fails the launch with
// exit 1 naming the image and the fix, and nothing is started; a digest ECR has lets the launch go on.
import { afterEach, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ecrApi } from "../../src/aws/ecr.js";
import { FailureError } from "../../src/errors.js";
import { ecrImageProbe } from "../../src/launch/image-check.js";
import {
  IMAGES,
  REGION,
  REGISTRY,
  awsFixture,
  launchOnStandin,
  publishUnbakedImage,
  runRequests,
  type AwsFixture,
} from "./aws-support.js";

/** A task-runner image pushed after the AMIs were baked: the task runners would pull it at boot. */
const NEWER = `${REGISTRY}/bench/task-runner@sha256:${"c".repeat(64)}`;
const NEWER_DIGEST = NEWER.split("@")[1]!;

let fx: AwsFixture;
beforeEach(async () => {
  fx = await awsFixture();
  await publishUnbakedImage(fx, "task-runner", NEWER, "v20261130-000000-img-newer");
});
afterEach(async () => {
  fx.clients.ecr.destroy();
  await fx.close();
});

const probe = () => ecrImageProbe(async () => ecrApi(fx.clients.ecr), REGION);

async function launchFails(): Promise<FailureError> {
  const e = await launchOnStandin(fx, { taskRunners: 1 }, { imageProbe: probe() }).then(
    () => assert.fail("the launch did not fail"),
    (x: unknown) => x,
  );
  assert.ok(e instanceof FailureError, String(e));
  return e;
}

describe("launch on aws: the images to pull are in ECR before anything starts (AWS stand-in)", () => {
  test("a digest the repository lacks (ImageNotFoundException): exit 1 naming the image and the fix, no RunInstances", async () => {
    fx.standin.addEcrImage(REGION, "bench/task-runner", { digest: IMAGES["task-runner"].split("@")[1]! });
    const e = await launchFails();
    assert.equal(e.exitCode, 1);
    assert.ok(
      e.message.includes(
        `The task-runner image ${NEWER} (version v20261130-000000-img-newer, catalog label latest) is gone from the registry ${REGISTRY}`,
      ),
      e.message,
    );
    assert.match(e.message, /Nothing was launched\.$/);
    assert.match(e.fix ?? "", /imgtool push image --role task-runner/);
    assert.match(e.fix ?? "", /imgtool rollback --role task-runner --kind image --to <version>/);
    const asked = fx.standin.requests.filter((r) => r.service === "ecr" && r.operation === "DescribeImages");
    assert.deepEqual(
      asked.map((r) => r.params),
      [
        {
          repositoryName: "bench/task-runner",
          imageIds: [{ imageDigest: NEWER_DIGEST }],
          registryId: "123456789012",
        },
      ],
      "one DescribeImages, by digest, for the one image to pull (the orchestrator's is baked in)",
    );
    assert.equal(runRequests(fx.standin).length, 0, "RunInstances was called");
    assert.equal(fx.standin.state.region(REGION).ec2.instances.size, 0);
  });

  test("a repository that is gone (RepositoryNotFoundException): exit 1, no RunInstances", async () => {
    const e = await launchFails();
    assert.match(
      e.message,
      new RegExp(`The task-runner image ${NEWER.replace(/[.]/g, "\\.")} .* is gone from the registry`),
    );
    assert.equal(runRequests(fx.standin).length, 0, "RunInstances was called");
  });

  test("the digest is in ECR: the launch goes on and starts the instances, after the check", async () => {
    fx.standin.addEcrImage(REGION, "bench/task-runner", { digest: NEWER_DIGEST });
    const { result, events } = await launchOnStandin(fx, { taskRunners: 1 }, { imageProbe: probe() });
    assert.equal(result.instances.length, 2);
    const ops = fx.standin.requests.map((r) => `${r.service}:${r.operation}`);
    const check = ops.indexOf("ecr:DescribeImages");
    assert.ok(check >= 0, "ECR was asked");
    assert.ok(check < ops.indexOf("ec2:RunInstances"), `asked after RunInstances: ${ops.join(", ")}`);
    assert.ok(
      events.some(
        (ev) => ev.type === "check" && /every image the instances will pull \(1\)/.test(ev.message),
      ),
    );
  });
});
