/**
 * The AWS stand-in's authorization: each call judged with the caller's generated IAM policy (by access key id)
 * by the independent evaluator, answered as AWS answers a denial or an unknown key.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { CreateTagsCommand, RunInstancesCommand, TerminateInstancesCommand } from "@aws-sdk/client-ec2";
import { CreateRepositoryCommand } from "@aws-sdk/client-ecr";
import { GetParameterCommand, PutParameterCommand } from "@aws-sdk/client-ssm";
import { GetCallerIdentityCommand } from "@aws-sdk/client-sts";
import { makeAwsClients, type AwsClients } from "../../src/aws/clients.js";
import { parseConfig } from "../../src/config/load.js";
import { startAwsStandin, type AwsStandin } from "./aws-standin/index.js";
import { actorCredentials, actorPolicies, SETUP_KEY } from "./iam-referee.js";

const REGION = "us-east-1";
const config = parseConfig("pipeline: bench\naws:\n  instance_profile: imgtool-instances\n", {
  baseDir: "/",
}).config!;

let standin: AwsStandin;
const made: AwsClients[] = [];
function as(actor: Parameters<typeof actorCredentials>[0] | { key: string }): AwsClients {
  const c = makeAwsClients({
    region: REGION,
    endpoint: standin.endpoint,
    credentials:
      typeof actor === "string"
        ? actorCredentials(actor)
        : async () => ({ accessKeyId: actor.key, secretAccessKey: "s" }),
    retryBaseDelayMs: 5,
    maxAttempts: 1,
  });
  made.push(c);
  return c;
}

async function rejectsWith(p: Promise<unknown>, name: string, message?: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.equal((e as Error).name, name, (e as Error).message);
    if (message) assert.match((e as Error).message, message);
    return true;
  });
}

const tagSpec = (pipeline: string) =>
  (["instance", "volume"] as const).map((ResourceType) => ({
    ResourceType,
    Tags: [{ Key: "imgtool:pipeline", Value: pipeline }],
  }));

describe("aws stand-in: every call judged with the caller's IAM policy", () => {
  before(async () => {
    standin = await startAwsStandin({
      iam: { policies: actorPolicies(config), setupKey: SETUP_KEY, denialsExpected: true },
    });
  });
  after(async () => {
    for (const c of made) for (const k of ["ec2", "ssm", "ecr", "sts"] as const) c[k].destroy();
    await standin.close();
  });

  test("an unknown access key is refused as each service refuses it; GetCallerIdentity needs no permission", async () => {
    const stranger = as({ key: "AKIDSTRANGER" });
    await rejectsWith(
      stranger.ec2.send(new TerminateInstancesCommand({ InstanceIds: ["i-1"] })),
      "AuthFailure",
    );
    await rejectsWith(
      stranger.ssm.send(new GetParameterCommand({ Name: "/x" })),
      "UnrecognizedClientException",
    );
    const who = await as("prune").sts.send(new GetCallerIdentityCommand({}));
    assert.equal(who.Account, standin.accountId);
  });

  test("launch: RunInstances tagged with its pipeline passes; untagged or another pipeline's is UnauthorizedOperation", async () => {
    const image = standin.addImage(REGION, { name: "ami-for-iam" }).imageId;
    const launch = as("launch").ec2;
    const run = (tags: ReturnType<typeof tagSpec> | undefined) =>
      launch.send(
        new RunInstancesCommand({
          ImageId: image,
          MinCount: 1,
          MaxCount: 1,
          InstanceType: "c7i.large",
          IamInstanceProfile: { Name: "imgtool-instances" },
          ...(tags ? { TagSpecifications: tags } : {}),
        }),
      );
    const ok = await run(tagSpec("bench"));
    assert.equal(ok.Instances?.length, 1);
    await rejectsWith(run(undefined), "UnauthorizedOperation", /not authorized to perform: ec2:RunInstances/);
    await rejectsWith(run(tagSpec("other")), "UnauthorizedOperation");
  });

  test("launch: passing another role, tagging an existing instance, terminating another pipeline's: all denied", async () => {
    const image = standin.addImage(REGION, { name: "ami-for-iam-2" }).imageId;
    const theirs = await as("setup").ec2.send(
      new RunInstancesCommand({
        ImageId: image,
        MinCount: 1,
        MaxCount: 1,
        TagSpecifications: tagSpec("other"),
      }),
    );
    const id = theirs.Instances?.[0]?.InstanceId ?? "";
    const launch = as("launch").ec2;
    await rejectsWith(
      launch.send(
        new RunInstancesCommand({
          ImageId: image,
          MinCount: 1,
          MaxCount: 1,
          IamInstanceProfile: { Name: "admin" },
          TagSpecifications: tagSpec("bench"),
        }),
      ),
      "UnauthorizedOperation",
      /iam:PassRole/,
    );
    await rejectsWith(
      launch.send(
        new CreateTagsCommand({ Resources: [id], Tags: [{ Key: "imgtool:pipeline", Value: "bench" }] }),
      ),
      "UnauthorizedOperation",
    );
    await rejectsWith(
      launch.send(new TerminateInstancesCommand({ InstanceIds: [id] })),
      "UnauthorizedOperation",
    );
    assert.equal(standin.state.region(REGION).ec2.instances.get(id)?.state, "pending", "still there");
  });

  test("SSM and ECR answer AccessDeniedException: another secret, another repository", async () => {
    await as("setup").ssm.send(
      new PutParameterCommand({ Name: "/other/secrets/key", Value: "x", Type: "SecureString" }),
    );
    await rejectsWith(
      as("instance").ssm.send(new GetParameterCommand({ Name: "/other/secrets/key", WithDecryption: true })),
      "AccessDeniedException",
      /ssm:GetParameter on resource: arn:aws:ssm:us-east-1:123456789012:parameter\/other\/secrets\/key/,
    );
    await rejectsWith(
      as("push").ecr.send(new CreateRepositoryCommand({ repositoryName: "other/app" })),
      "AccessDeniedException",
    );
    await rejectsWith(
      as("launch").ssm.send(
        new PutParameterCommand({ Name: "/imgtool/bench/x", Value: "1", Overwrite: true }),
      ),
      "AccessDeniedException",
    );
  });
});
