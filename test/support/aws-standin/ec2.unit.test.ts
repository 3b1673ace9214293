/**
 * Tests of the AWS stand-in (test/support/aws-standin): every operation through the real SDK clients
 * made by the project's client factory, the service rules the stand-in reproduces, and scripted faults.
 */
import { test, describe, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  CopyImageCommand,
  CreateTagsCommand,
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeSnapshotsCommand,
  EnableImageDeprecationCommand,
  RegisterImageCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
} from "@aws-sdk/client-ec2";
import type { DescribeImagesCommandInput, RunInstancesCommandInput } from "@aws-sdk/client-ec2";
import {
  BatchDeleteImageCommand,
  BatchGetImageCommand,
  CreateRepositoryCommand,
  DescribeImagesCommand as EcrDescribeImagesCommand,
  DescribeRepositoriesCommand,
  GetAuthorizationTokenCommand,
  GetLifecyclePolicyCommand,
  PutImageCommand,
  PutImageScanningConfigurationCommand,
  PutLifecyclePolicyCommand,
} from "@aws-sdk/client-ecr";
import {
  DeleteParameterCommand,
  GetParameterCommand,
  GetParameterHistoryCommand,
  GetParametersByPathCommand,
  GetParametersCommand,
  LabelParameterVersionCommand,
  PutParameterCommand,
  UnlabelParameterVersionCommand,
} from "@aws-sdk/client-ssm";
import { GetCallerIdentityCommand } from "@aws-sdk/client-sts";
import { makeAwsClients } from "../../src/aws/clients.js";
import type { AwsClientOptions, AwsClients } from "../../src/aws/clients.js";
import { startAwsStandin } from "./aws-standin/index.js";
import type { AwsStandin } from "./aws-standin/index.js";

// These protocol tests call every operation the stand-in knows, not just those imgtool makes: keep them out of
// the log that test/iam/coverage.check.ts compares with the IAM policies.
delete process.env.IMGTOOL_AWS_CALLS_LOG;

const REGION = "us-east-1";
const OTHER = "eu-west-1";

let standin: AwsStandin;
const made: AwsClients[] = [];

function clients(region = REGION, extra: Partial<AwsClientOptions> = {}): AwsClients {
  const c = makeAwsClients({
    region,
    endpoint: standin.endpoint,
    credentials: async () => ({ accessKeyId: "AKIDTEST", secretAccessKey: "secret" }),
    retryBaseDelayMs: 5,
    ...extra,
  });
  made.push(c);
  return c;
}

/** Assert that a call fails with the given AWS error name (and, optionally, message pattern and status). */
async function rejectsWith(
  p: Promise<unknown>,
  name: string,
  message?: RegExp,
  status?: number,
): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof Error, `expected an Error, got ${String(e)}`);
    assert.equal(e.name, name, `expected ${name}, got ${e.name}: ${e.message}`);
    if (message) assert.match(e.message, message);
    if (status !== undefined) {
      const meta = (e as { $metadata?: { httpStatusCode?: number } }).$metadata;
      assert.equal(meta?.httpStatusCode, status);
    }
    return true;
  });
}

function sha256(text: string): string {
  return `sha256:${createHash("sha256").update(text).digest("hex")}`;
}

function manifest(n: number): string {
  return JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.docker.distribution.manifest.v2+json",
    config: {
      mediaType: "application/vnd.docker.container.image.v1+json",
      size: 100,
      digest: `sha256:${"c".repeat(63)}${n}`,
    },
    layers: [
      {
        mediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip",
        size: 1000 + n,
        digest: `sha256:${"d".repeat(63)}${n}`,
      },
    ],
  });
}

before(async () => {
  standin = await startAwsStandin();
});

after(async () => {
  for (const c of made) {
    c.ec2.destroy();
    c.ssm.destroy();
    c.ecr.destroy();
    c.sts.destroy();
  }
  await standin.close();
});

beforeEach(() => standin.reset());

// ---------------------------------------------------------------- routing and recording

describe("routing and recording", () => {
  test("STS GetCallerIdentity answers the account; the request is recorded with region, attempt and form", async () => {
    const out = await clients(OTHER).sts.send(new GetCallerIdentityCommand({}));
    assert.equal(out.Account, "123456789012");
    assert.equal(out.Arn, "arn:aws:iam::123456789012:user/standin");
    assert.ok(out.UserId);
    assert.equal(standin.requests.length, 1);
    const r = standin.requests[0];
    assert.equal(r?.service, "sts");
    assert.equal(r?.operation, "GetCallerIdentity");
    assert.equal(r?.region, OTHER);
    assert.equal(r?.attempt, 1);
    assert.equal(r?.status, 200);
    assert.deepEqual(r?.params, { Action: "GetCallerIdentity", Version: "2011-06-15" });
    assert.match(r?.headers["authorization"] ?? "", /\/eu-west-1\/sts\/aws4_request/);
    assert.equal(standin.count("GetCallerIdentity", "sts"), 1);
    assert.equal(standin.count("GetCallerIdentity", "ec2"), 0);
  });

  test("EC2 and ECR operations of the same name are told apart; JSON params are parsed", async () => {
    const c = clients();
    await c.ec2.send(new DescribeImagesCommand({ Owners: ["self"] }));
    await c.ecr.send(new CreateRepositoryCommand({ repositoryName: "bench" }));
    await c.ecr.send(new EcrDescribeImagesCommand({ repositoryName: "bench" }));
    assert.equal(standin.count("DescribeImages"), 2);
    assert.equal(standin.count("DescribeImages", "ec2"), 1);
    assert.equal(standin.count("DescribeImages", "ecr"), 1);
    const ecrReq = standin.requests.find((r) => r.service === "ecr" && r.operation === "DescribeImages");
    assert.deepEqual(ecrReq?.params, { repositoryName: "bench" });
    const ec2Req = standin.requests.find((r) => r.service === "ec2");
    assert.equal((ec2Req?.params as Record<string, string>)["Owner.1"], "self");
  });

  test("request bodies are recorded verbatim, so tests can look for planted secrets", async () => {
    await clients().ssm.send(
      new PutParameterCommand({ Name: "/bench/token", Value: "s3cr3t-PLANTED", Type: "SecureString" }),
    );
    const hits = standin.requests.filter((r) => r.body.includes("s3cr3t-PLANTED"));
    assert.equal(hits.length, 1);
    assert.equal(hits[0]?.operation, "PutParameter");
  });

  test("unknown JSON operations and Query actions are answered with the protocol's error", async () => {
    const json = await fetch(standin.endpoint, {
      method: "POST",
      headers: { "x-amz-target": "AmazonSSM.NoSuchThing", "content-type": "application/x-amz-json-1.1" },
      body: "{}",
    });
    assert.equal(json.status, 400);
    assert.equal(((await json.json()) as { __type: string }).__type, "UnknownOperationException");
    const query = await fetch(standin.endpoint, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "Action=NoSuchAction&Version=2016-11-15",
    });
    assert.equal(query.status, 400);
    assert.match(await query.text(), /<Code>InvalidAction<\/Code>/);
    assert.equal(standin.requests.length, 2);
  });

  test("reset clears state, requests and faults", async () => {
    standin.addImage(REGION, { name: "to-forget" });
    standin.faults.add({ operation: "GetCallerIdentity", kind: "error", code: "AccessDenied" });
    await rejectsWith(clients().sts.send(new GetCallerIdentityCommand({})), "AccessDenied");
    standin.reset();
    assert.equal(standin.requests.length, 0);
    assert.equal(standin.state.region(REGION).ec2.images.size, 0);
    const out = await clients().sts.send(new GetCallerIdentityCommand({}));
    assert.equal(out.Account, "123456789012");
  });
});

// ---------------------------------------------------------------- EC2 images and snapshots

describe("EC2 images and snapshots", () => {
  test("DescribeImages answers imagesSet with dates, architecture, tags, mappings and deprecation", async () => {
    const { imageId, snapshotIds } = standin.addImage(REGION, {
      name: "ruby-3.4-x86",
      tags: { Role: "bench", Ruby: "3.4" },
      deprecationTime: "2031-01-01T00:00:00.000Z",
      rootVolumeSize: 30,
    });
    const out = await clients().ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }));
    const img = out.Images?.[0];
    assert.equal(out.Images?.length, 1);
    assert.equal(img?.ImageId, imageId);
    assert.equal(img?.Name, "ruby-3.4-x86");
    assert.equal(img?.State, "available");
    assert.equal(img?.Architecture, "x86_64");
    assert.equal(img?.OwnerId, "123456789012");
    assert.match(img?.CreationDate ?? "", /^\d{4}-\d\d-\d\dT/);
    assert.equal(img?.DeprecationTime, "2031-01-01T00:00:00.000Z");
    assert.deepEqual(
      img?.Tags?.map((t) => `${t.Key}=${t.Value}`),
      ["Role=bench", "Ruby=3.4"],
    );
    assert.equal(img?.BlockDeviceMappings?.[0]?.Ebs?.SnapshotId, snapshotIds[0]);
    assert.equal(img?.BlockDeviceMappings?.[0]?.Ebs?.VolumeSize, 30);
    assert.equal(img?.RootDeviceName, "/dev/xvda");
  });

  test("DescribeImages filters: name wildcards, state, tag:KEY, tag-key, architecture, owners", async () => {
    standin.addImage(REGION, { name: "ruby-3.4-x86", tags: { Role: "bench" } });
    standin.addImage(REGION, {
      name: "ruby-3.4-arm",
      architecture: "arm64",
      tags: { Role: "bench", Arm: "" },
    });
    standin.addImage(REGION, { name: "ruby-3.3-x86", tags: { Role: "old" } });
    standin.addImage(REGION, { name: "ubuntu-24.04", ownerId: "099720109477" });
    standin.addImage(OTHER, { name: "ruby-3.4-x86" });
    const ec2 = clients().ec2;
    const names = async (input: DescribeImagesCommandInput): Promise<string[]> =>
      ((await ec2.send(new DescribeImagesCommand(input))).Images ?? []).map((i) => i.Name ?? "").sort();
    assert.deepEqual(await names({ Filters: [{ Name: "name", Values: ["ruby-3.4-*"] }] }), [
      "ruby-3.4-arm",
      "ruby-3.4-x86",
    ]);
    assert.deepEqual(await names({ Filters: [{ Name: "name", Values: ["ruby-3.?-x86"] }] }), [
      "ruby-3.3-x86",
      "ruby-3.4-x86",
    ]);
    assert.deepEqual(await names({ Filters: [{ Name: "tag:Role", Values: ["bench"] }] }), [
      "ruby-3.4-arm",
      "ruby-3.4-x86",
    ]);
    assert.deepEqual(await names({ Filters: [{ Name: "tag-key", Values: ["Arm"] }] }), ["ruby-3.4-arm"]);
    assert.deepEqual(
      await names({
        Filters: [
          { Name: "architecture", Values: ["x86_64"] },
          { Name: "state", Values: ["available"] },
        ],
        Owners: ["self"],
      }),
      ["ruby-3.3-x86", "ruby-3.4-x86"],
    );
    assert.deepEqual(await names({ Owners: ["099720109477"] }), ["ubuntu-24.04"]);
    assert.deepEqual(await names({ Filters: [{ Name: "state", Values: ["pending"] }] }), []);
    await rejectsWith(
      ec2.send(new DescribeImagesCommand({ Filters: [{ Name: "no-such-filter", Values: ["x"] }] })),
      "InvalidParameterValue",
      /no-such-filter/,
    );
  });

  test("DescribeImages of unknown or malformed ids fails like EC2", async () => {
    const ec2 = clients().ec2;
    await rejectsWith(
      ec2.send(new DescribeImagesCommand({ ImageIds: ["ami-0123456789abcdef0"] })),
      "InvalidAMIID.NotFound",
      /ami-0123456789abcdef0/,
      400,
    );
    await rejectsWith(
      ec2.send(new DescribeImagesCommand({ ImageIds: ["not-an-ami"] })),
      "InvalidAMIID.Malformed",
    );
  });

  test("CreateTags tags images, snapshots and instances; unknown ids fail", async () => {
    const { imageId, snapshotIds } = standin.addImage(REGION, { name: "tag-me" });
    const ec2 = clients().ec2;
    const run = await ec2.send(new RunInstancesCommand({ ImageId: imageId, MinCount: 1, MaxCount: 1 }));
    const instanceId = run.Instances?.[0]?.InstanceId ?? "";
    const snapshotId = snapshotIds[0] ?? "";
    await ec2.send(
      new CreateTagsCommand({
        Resources: [imageId, snapshotId, instanceId],
        Tags: [{ Key: "Catalog", Value: "v1" }],
      }),
    );
    const region = standin.state.region(REGION);
    assert.equal(region.ec2.images.get(imageId)?.tags["Catalog"], "v1");
    assert.equal(region.ec2.snapshots.get(snapshotId)?.tags["Catalog"], "v1");
    assert.equal(region.ec2.instances.get(instanceId)?.tags["Catalog"], "v1");
    const snaps = await ec2.send(
      new DescribeSnapshotsCommand({ Filters: [{ Name: "tag:Catalog", Values: ["v1"] }] }),
    );
    assert.deepEqual(
      snaps.Snapshots?.map((s) => s.SnapshotId),
      [snapshotId],
    );
    await rejectsWith(
      ec2.send(
        new CreateTagsCommand({ Resources: ["snap-0123456789abcdef0"], Tags: [{ Key: "a", Value: "b" }] }),
      ),
      "InvalidSnapshot.NotFound",
    );
    await rejectsWith(
      ec2.send(new CreateTagsCommand({ Resources: [imageId], Tags: [{ Key: "aws:reserved", Value: "b" }] })),
      "InvalidParameterValue",
    );
  });

  test("DescribeSnapshots by id, owner and tag; unknown ids fail", async () => {
    const a = standin.addImage(REGION, { name: "snap-a" });
    standin.addImage(REGION, { name: "snap-b" });
    const ec2 = clients().ec2;
    await ec2.send(
      new CreateTagsCommand({ Resources: a.snapshotIds, Tags: [{ Key: "Keep", Value: "yes" }] }),
    );
    const byId = await ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: a.snapshotIds }));
    assert.equal(byId.Snapshots?.length, 1);
    assert.equal(byId.Snapshots?.[0]?.State, "completed");
    assert.equal(byId.Snapshots?.[0]?.OwnerId, "123456789012");
    const mine = await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ["self"] }));
    assert.equal(mine.Snapshots?.length, 2);
    const tagged = await ec2.send(
      new DescribeSnapshotsCommand({ OwnerIds: ["self"], Filters: [{ Name: "tag:Keep", Values: ["yes"] }] }),
    );
    assert.deepEqual(
      tagged.Snapshots?.map((s) => s.SnapshotId),
      a.snapshotIds,
    );
    await rejectsWith(
      ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: ["snap-0123456789abcdef0"] })),
      "InvalidSnapshot.NotFound",
    );
  });

  test("DeleteSnapshot is refused while a registered AMI uses it, works after DeregisterImage", async () => {
    const { imageId, snapshotIds } = standin.addImage(REGION, { name: "in-use" });
    const snapshotId = snapshotIds[0] ?? "";
    const ec2 = clients().ec2;
    await rejectsWith(
      ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId })),
      "InvalidSnapshot.InUse",
      new RegExp(imageId),
    );
    const dereg = await ec2.send(new DeregisterImageCommand({ ImageId: imageId }));
    assert.equal(dereg.Return, true);
    await rejectsWith(ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] })), "InvalidAMIID.NotFound");
    await ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId }));
    assert.equal(standin.state.region(REGION).ec2.snapshots.has(snapshotId), false);
    await rejectsWith(
      ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId })),
      "InvalidSnapshot.NotFound",
    );
    await rejectsWith(ec2.send(new DeregisterImageCommand({ ImageId: imageId })), "InvalidAMIID.NotFound");
  });

  test("CopyImage: the copy lives in the caller's region, is pending for two reads, copies and encrypts the snapshot", async () => {
    const src = standin.addImage(REGION, {
      name: "ruby-src",
      tags: { Role: "bench" },
      architecture: "arm64",
    });
    const ec2 = clients(OTHER).ec2;
    const copy = await ec2.send(
      new CopyImageCommand({
        SourceRegion: REGION,
        SourceImageId: src.imageId,
        Name: "ruby-copy",
        Encrypted: true,
        KmsKeyId: "alias/bench",
      }),
    );
    const copyId = copy.ImageId ?? "";
    assert.match(copyId, /^ami-[0-9a-f]{17}$/);
    assert.notEqual(copyId, src.imageId);
    assert.equal(standin.state.region(REGION).ec2.images.has(copyId), false);
    const states: string[] = [];
    for (let i = 0; i < 3; i++) {
      const out = await ec2.send(new DescribeImagesCommand({ ImageIds: [copyId] }));
      states.push(out.Images?.[0]?.State ?? "");
    }
    assert.deepEqual(states, ["pending", "pending", "available"]);
    const img = (await ec2.send(new DescribeImagesCommand({ ImageIds: [copyId] }))).Images?.[0];
    assert.equal(img?.Name, "ruby-copy");
    assert.equal(img?.Architecture, "arm64");
    assert.equal(img?.Tags, undefined, "tags are not copied without CopyImageTags");
    const snapId = img?.BlockDeviceMappings?.[0]?.Ebs?.SnapshotId ?? "";
    assert.notEqual(snapId, src.snapshotIds[0]);
    const snap = (await ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapId] }))).Snapshots?.[0];
    assert.equal(snap?.Encrypted, true);
    assert.equal(snap?.KmsKeyId, "alias/bench");
    assert.equal(snap?.State, "completed");
    await rejectsWith(
      ec2.send(new CopyImageCommand({ SourceRegion: REGION, SourceImageId: src.imageId, Name: "ruby-copy" })),
      "InvalidAMIName.Duplicate",
    );
    // ClientToken: a repeated request answers the same copy; other parameters are a mismatch.
    const again = {
      SourceRegion: REGION,
      SourceImageId: src.imageId,
      Name: "ruby-copy-2",
      ClientToken: "copy-1",
    };
    const c1 = await ec2.send(new CopyImageCommand(again));
    const c2 = await ec2.send(new CopyImageCommand(again));
    assert.equal(c2.ImageId, c1.ImageId);
    await rejectsWith(
      ec2.send(new CopyImageCommand({ ...again, Name: "ruby-copy-3" })),
      "IdempotentParameterMismatch",
    );
    await rejectsWith(
      ec2.send(new CopyImageCommand({ SourceRegion: OTHER, SourceImageId: src.imageId, Name: "x-copy" })),
      "InvalidAMIID.NotFound",
    );
  });

  test("EnableImageDeprecation sets deprecationTime (rounded to the minute) and refuses the past", async () => {
    const { imageId } = standin.addImage(REGION, { name: "deprecate-me" });
    const ec2 = clients().ec2;
    const at = new Date(Date.now() + 30 * 86_400_000);
    at.setUTCSeconds(10, 0);
    const out = await ec2.send(new EnableImageDeprecationCommand({ ImageId: imageId, DeprecateAt: at }));
    assert.equal(out.Return, true);
    const img = (await ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }))).Images?.[0];
    const expected = new Date(at);
    expected.setUTCSeconds(0, 0);
    assert.equal(img?.DeprecationTime, expected.toISOString());
    await rejectsWith(
      ec2.send(
        new EnableImageDeprecationCommand({
          ImageId: imageId,
          DeprecateAt: new Date(Date.now() - 86_400_000),
        }),
      ),
      "InvalidParameterValue",
    );
  });

  test("RegisterImage registers an available AMI from a snapshot; names are unique", async () => {
    const base = standin.addImage(REGION, { name: "base" });
    const ec2 = clients().ec2;
    const out = await ec2.send(
      new RegisterImageCommand({
        Name: "packer-ruby",
        Architecture: "arm64",
        RootDeviceName: "/dev/xvda",
        BlockDeviceMappings: [
          { DeviceName: "/dev/xvda", Ebs: { SnapshotId: base.snapshotIds[0], VolumeSize: 20 } },
        ],
        TagSpecifications: [{ ResourceType: "image", Tags: [{ Key: "Builder", Value: "packer" }] }],
      }),
    );
    const img = (await ec2.send(new DescribeImagesCommand({ ImageIds: [out.ImageId ?? ""] }))).Images?.[0];
    assert.equal(img?.State, "available");
    assert.equal(img?.Architecture, "arm64");
    assert.equal(img?.Tags?.[0]?.Value, "packer");
    assert.equal(img?.BlockDeviceMappings?.[0]?.Ebs?.VolumeSize, 20);
    await rejectsWith(
      ec2.send(
        new RegisterImageCommand({
          Name: "packer-ruby",
          BlockDeviceMappings: [{ DeviceName: "/dev/xvda", Ebs: { SnapshotId: base.snapshotIds[0] } }],
        }),
      ),
      "InvalidAMIName.Duplicate",
    );
  });
});

// ---------------------------------------------------------------- EC2 instances

describe("EC2 instances", () => {
  const launch = (
    imageId: string,
    extra: Partial<RunInstancesCommandInput> = {},
  ): RunInstancesCommandInput => ({
    ImageId: imageId,
    InstanceType: "c7i.large",
    MinCount: 1,
    MaxCount: 1,
    ...extra,
  });

  test("RunInstances launches with the requested settings, pending then running after a describe", async () => {
    const { imageId } = standin.addImage(REGION, { name: "runner", rootVolumeSize: 16 });
    const ec2 = clients().ec2;
    const userData = Buffer.from("#!/bin/sh\necho hi\n").toString("base64");
    const run = await ec2.send(
      new RunInstancesCommand(
        launch(imageId, {
          MaxCount: 2,
          UserData: userData,
          SubnetId: "subnet-0abc",
          SecurityGroupIds: ["sg-01", "sg-02"],
          IamInstanceProfile: { Name: "bench-runner" },
          MetadataOptions: { HttpTokens: "required", HttpPutResponseHopLimit: 2 },
          BlockDeviceMappings: [{ DeviceName: "/dev/xvda", Ebs: { VolumeSize: 50, VolumeType: "gp3" } }],
          TagSpecifications: [{ ResourceType: "instance", Tags: [{ Key: "Name", Value: "bench" }] }],
          InstanceMarketOptions: { MarketType: "spot", SpotOptions: { SpotInstanceType: "one-time" } },
        }),
      ),
    );
    assert.match(run.ReservationId ?? "", /^r-[0-9a-f]{17}$/);
    assert.equal(run.Instances?.length, 2);
    const first = run.Instances?.[0];
    assert.equal(first?.State?.Name, "pending");
    assert.equal(first?.State?.Code, 0);
    assert.match(first?.PrivateIpAddress ?? "", /^10\.0\.\d+\.\d+$/);
    assert.notEqual(first?.PrivateIpAddress, run.Instances?.[1]?.PrivateIpAddress);
    assert.equal(first?.InstanceType, "c7i.large");
    assert.equal(first?.SubnetId, "subnet-0abc");
    assert.deepEqual(
      first?.SecurityGroups?.map((g) => g.GroupId),
      ["sg-01", "sg-02"],
    );
    assert.equal(first?.IamInstanceProfile?.Arn, "arn:aws:iam::123456789012:instance-profile/bench-runner");
    assert.equal(first?.MetadataOptions?.HttpTokens, "required");
    assert.equal(first?.MetadataOptions?.HttpPutResponseHopLimit, 2);
    assert.equal(first?.InstanceLifecycle, "spot");
    assert.equal(first?.Tags?.[0]?.Value, "bench");
    const stored = standin.state.region(REGION).ec2.instances.get(first?.InstanceId ?? "");
    assert.equal(Buffer.from(stored?.userData ?? "", "base64").toString(), "#!/bin/sh\necho hi\n");
    const volumeId = stored?.blockDeviceMappings[0]?.volumeId ?? "";
    assert.equal(standin.state.region(REGION).ec2.volumes.get(volumeId)?.size, 50);

    const d1 = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [first?.InstanceId ?? ""] }));
    assert.equal(d1.Reservations?.[0]?.Instances?.[0]?.State?.Name, "pending");
    const d2 = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [first?.InstanceId ?? ""] }));
    assert.equal(d2.Reservations?.[0]?.Instances?.[0]?.State?.Name, "running");
    assert.equal(d2.Reservations?.[0]?.ReservationId, run.ReservationId);
  });

  test("RunInstances validates the AMI (per region), architecture and user data", async () => {
    const { imageId } = standin.addImage(REGION, { name: "x86-only" });
    await rejectsWith(
      clients(OTHER).ec2.send(new RunInstancesCommand(launch(imageId))),
      "InvalidAMIID.NotFound",
    );
    const ec2 = clients().ec2;
    await rejectsWith(
      ec2.send(new RunInstancesCommand(launch(imageId, { InstanceType: "c7g.large" }))),
      "InvalidParameterValue",
      /architecture 'arm64'.*'x86_64'/,
    );
    await rejectsWith(
      ec2.send(new RunInstancesCommand(launch(imageId, { UserData: "#!/bin/sh not base64" }))),
      "InvalidParameterValue",
      /BASE64/,
    );
    await rejectsWith(
      ec2.send(
        new RunInstancesCommand(
          launch(imageId, { BlockDeviceMappings: [{ DeviceName: "/dev/xvda", Ebs: { VolumeSize: 4 } }] }),
        ),
      ),
      "InvalidBlockDeviceMapping",
    );
    assert.equal(standin.state.region(REGION).ec2.instances.size, 0);
  });

  test("RunInstances ClientToken: same token and params return the same reservation; other params mismatch", async () => {
    const { imageId } = standin.addImage(REGION, { name: "idem" });
    const ec2 = clients().ec2;
    const a = await ec2.send(
      new RunInstancesCommand(launch(imageId, { ClientToken: "bench-1", MaxCount: 2 })),
    );
    const b = await ec2.send(
      new RunInstancesCommand(launch(imageId, { ClientToken: "bench-1", MaxCount: 2 })),
    );
    assert.equal(b.ReservationId, a.ReservationId);
    assert.deepEqual(
      b.Instances?.map((i) => i.InstanceId),
      a.Instances?.map((i) => i.InstanceId),
    );
    assert.equal(standin.state.region(REGION).ec2.instances.size, 2);
    await rejectsWith(
      ec2.send(new RunInstancesCommand(launch(imageId, { ClientToken: "bench-1", MaxCount: 3 }))),
      "IdempotentParameterMismatch",
    );
    assert.equal(standin.state.region(REGION).ec2.instances.size, 2);
  });

  test("capacity errors are scripted with an error fault and are not retried", async () => {
    const { imageId } = standin.addImage(REGION, { name: "capacity" });
    standin.faults.add({
      service: "ec2",
      operation: "RunInstances",
      kind: "error",
      code: "InsufficientInstanceCapacity",
      message:
        "We currently do not have sufficient c7i.large capacity in the Availability Zone you requested",
      calls: [1],
    });
    const ec2 = clients().ec2;
    await rejectsWith(
      ec2.send(new RunInstancesCommand(launch(imageId))),
      "InsufficientInstanceCapacity",
      /c7i\.large/,
      400,
    );
    assert.equal(standin.count("RunInstances"), 1);
    assert.equal(standin.state.region(REGION).ec2.instances.size, 0);
    const ok = await ec2.send(new RunInstancesCommand(launch(imageId)));
    assert.equal(ok.Instances?.length, 1);
  });

  test("DescribeInstances filters by tag and state; TerminateInstances answers current and previous state", async () => {
    const { imageId } = standin.addImage(REGION, { name: "fleet" });
    const ec2 = clients().ec2;
    const tagged = (role: string): Partial<RunInstancesCommandInput> => ({
      TagSpecifications: [{ ResourceType: "instance", Tags: [{ Key: "Role", Value: role }] }],
    });
    const a = await ec2.send(new RunInstancesCommand(launch(imageId, tagged("bench"))));
    await ec2.send(new RunInstancesCommand(launch(imageId, tagged("build"))));
    const aId = a.Instances?.[0]?.InstanceId ?? "";
    await ec2.send(new DescribeInstancesCommand({})); // pending -> running
    const bench = await ec2.send(
      new DescribeInstancesCommand({ Filters: [{ Name: "tag:Role", Values: ["bench"] }] }),
    );
    assert.deepEqual(
      bench.Reservations?.flatMap((r) => r.Instances?.map((i) => i.InstanceId)),
      [aId],
    );
    const term = await ec2.send(new TerminateInstancesCommand({ InstanceIds: [aId] }));
    assert.deepEqual(term.TerminatingInstances?.[0], {
      InstanceId: aId,
      CurrentState: { Code: 32, Name: "shutting-down" },
      PreviousState: { Code: 16, Name: "running" },
    });
    await ec2.send(new DescribeInstancesCommand({})); // shutting-down -> terminated
    const running = await ec2.send(
      new DescribeInstancesCommand({ Filters: [{ Name: "instance-state-name", Values: ["running"] }] }),
    );
    const runningIds = running.Reservations?.flatMap((r) => r.Instances?.map((i) => i.InstanceId)) ?? [];
    assert.equal(runningIds.length, 1);
    assert.ok(!runningIds.includes(aId));
    const gone = await ec2.send(
      new DescribeInstancesCommand({ Filters: [{ Name: "instance-state-name", Values: ["terminated"] }] }),
    );
    assert.equal(gone.Reservations?.[0]?.Instances?.[0]?.InstanceId, aId);
    await rejectsWith(
      ec2.send(new DescribeInstancesCommand({ InstanceIds: ["i-0123456789abcdef0"] })),
      "InvalidInstanceID.NotFound",
    );
  });
});

// ---------------------------------------------------------------- SSM

describe("SSM Parameter Store", () => {
  test("PutParameter versions, Overwrite, Type, Tier; GetParameter with selectors and decryption", async () => {
    const ssm = clients().ssm;
    const v1 = await ssm.send(new PutParameterCommand({ Name: "/bench/ami", Value: "one", Type: "String" }));
    assert.equal(v1.Version, 1);
    assert.equal(v1.Tier, "Standard");
    await rejectsWith(
      ssm.send(new PutParameterCommand({ Name: "/bench/ami", Value: "two", Type: "String" })),
      "ParameterAlreadyExists",
    );
    const v2 = await ssm.send(new PutParameterCommand({ Name: "/bench/ami", Value: "two", Overwrite: true }));
    assert.equal(v2.Version, 2);
    await rejectsWith(
      ssm.send(new PutParameterCommand({ Name: "/bench/new", Value: "x" })),
      "ValidationException",
      /type/,
    );
    const latest = await ssm.send(new GetParameterCommand({ Name: "/bench/ami" }));
    assert.equal(latest.Parameter?.Value, "two");
    assert.equal(latest.Parameter?.Version, 2);
    assert.equal(latest.Parameter?.DataType, "text");
    assert.equal(latest.Parameter?.ARN, "arn:aws:ssm:us-east-1:123456789012:parameter/bench/ami");
    const first = await ssm.send(new GetParameterCommand({ Name: "/bench/ami:1" }));
    assert.equal(first.Parameter?.Value, "one");
    assert.equal(first.Parameter?.Selector, ":1");
    await rejectsWith(
      ssm.send(new GetParameterCommand({ Name: "/bench/ami:7" })),
      "ParameterVersionNotFound",
    );
    await rejectsWith(
      ssm.send(new GetParameterCommand({ Name: "/bench/none" })),
      "ParameterNotFound",
      undefined,
      400,
    );

    await ssm.send(
      new PutParameterCommand({ Name: "/bench/secret", Value: "hunter2", Type: "SecureString" }),
    );
    const plain = await ssm.send(new GetParameterCommand({ Name: "/bench/secret", WithDecryption: true }));
    assert.equal(plain.Parameter?.Value, "hunter2");
    const sealed = await ssm.send(new GetParameterCommand({ Name: "/bench/secret" }));
    assert.notEqual(sealed.Parameter?.Value, "hunter2");
    assert.ok(
      !Buffer.from(sealed.Parameter?.Value ?? "", "base64")
        .toString()
        .includes("hunter2"),
    );

    const adv = await ssm.send(
      new PutParameterCommand({
        Name: "/bench/big",
        Value: "x".repeat(5000),
        Type: "String",
        Tier: "Intelligent-Tiering",
      }),
    );
    assert.equal(adv.Tier, "Advanced");
    await rejectsWith(
      ssm.send(new PutParameterCommand({ Name: "/bench/big2", Value: "x".repeat(5000), Type: "String" })),
      "ValidationException",
      /4096/,
    );
    // Other regions have their own parameters.
    await rejectsWith(
      clients(OTHER).ssm.send(new GetParameterCommand({ Name: "/bench/ami" })),
      "ParameterNotFound",
    );
  });

  test("GetParameters: at most 10 names, version and label selectors, InvalidParameters as given", async () => {
    const ssm = clients().ssm;
    await ssm.send(new PutParameterCommand({ Name: "/p/a", Value: "a1", Type: "String" }));
    await ssm.send(new PutParameterCommand({ Name: "/p/a", Value: "a2", Type: "String", Overwrite: true }));
    await ssm.send(
      new LabelParameterVersionCommand({ Name: "/p/a", ParameterVersion: 1, Labels: ["stable"] }),
    );
    const out = await ssm.send(
      new GetParametersCommand({
        Names: ["/p/a", "/p/a:1", "/p/a:stable", "/p/a:9", "/p/a:nolabel", "/p/missing"],
      }),
    );
    assert.deepEqual(
      out.Parameters?.map((p) => `${p.Name}${p.Selector ?? ""}=${p.Value}`),
      ["/p/a=a2", "/p/a:1=a1", "/p/a:stable=a1"],
    );
    assert.deepEqual(out.InvalidParameters, ["/p/a:9", "/p/a:nolabel", "/p/missing"]);
    const eleven = Array.from({ length: 11 }, (_, i) => `/p/n${i}`);
    await rejectsWith(ssm.send(new GetParametersCommand({ Names: eleven })), "ValidationException", /10/);
  });

  test("GetParametersByPath: direct children or recursive, MaxResults <= 10, NextToken pages", async () => {
    const ssm = clients().ssm;
    for (const name of ["/fleet/a", "/fleet/b", "/fleet/c", "/fleet/deep/d", "/fleet/deep/e", "/other/x"]) {
      await ssm.send(new PutParameterCommand({ Name: name, Value: name, Type: "String" }));
    }
    const direct = await ssm.send(new GetParametersByPathCommand({ Path: "/fleet" }));
    assert.deepEqual(
      direct.Parameters?.map((p) => p.Name),
      ["/fleet/a", "/fleet/b", "/fleet/c"],
    );
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await ssm.send(
        new GetParametersByPathCommand({ Path: "/fleet/", Recursive: true, MaxResults: 2, NextToken: token }),
      );
      seen.push(...(page.Parameters ?? []).map((p) => p.Name ?? ""));
      token = page.NextToken;
      pages += 1;
    } while (token);
    assert.equal(pages, 3);
    assert.deepEqual(seen, ["/fleet/a", "/fleet/b", "/fleet/c", "/fleet/deep/d", "/fleet/deep/e"]);
    await rejectsWith(
      ssm.send(new GetParametersByPathCommand({ Path: "/fleet", MaxResults: 11 })),
      "ValidationException",
    );
  });

  test("GetParameterHistory: versions with labels and data type, MaxResults <= 50, pagination", async () => {
    const ssm = clients().ssm;
    for (let i = 1; i <= 5; i++) {
      await ssm.send(
        new PutParameterCommand({ Name: "/h", Value: `v${i}`, Type: "String", Overwrite: i > 1 }),
      );
    }
    await ssm.send(new LabelParameterVersionCommand({ Name: "/h", ParameterVersion: 2, Labels: ["blue"] }));
    const p1 = await ssm.send(new GetParameterHistoryCommand({ Name: "/h", MaxResults: 3 }));
    assert.deepEqual(
      p1.Parameters?.map((p) => p.Version),
      [1, 2, 3],
    );
    assert.deepEqual(p1.Parameters?.[1]?.Labels, ["blue"]);
    assert.equal(p1.Parameters?.[0]?.DataType, "text");
    assert.ok(p1.Parameters?.[0]?.LastModifiedDate instanceof Date);
    assert.ok(p1.NextToken);
    const p2 = await ssm.send(
      new GetParameterHistoryCommand({ Name: "/h", MaxResults: 3, NextToken: p1.NextToken }),
    );
    assert.deepEqual(
      p2.Parameters?.map((p) => p.Value),
      ["v4", "v5"],
    );
    assert.equal(p2.NextToken, undefined);
    await rejectsWith(
      ssm.send(new GetParameterHistoryCommand({ Name: "/h", MaxResults: 51 })),
      "ValidationException",
    );
    await rejectsWith(ssm.send(new GetParameterHistoryCommand({ Name: "/nope" })), "ParameterNotFound");
  });

  test("LabelParameterVersion: labels move, bad labels come back in InvalidLabels with HTTP 200, limits", async () => {
    const ssm = clients().ssm;
    for (let i = 1; i <= 3; i++) {
      await ssm.send(
        new PutParameterCommand({ Name: "/l", Value: `v${i}`, Type: "String", Overwrite: i > 1 }),
      );
    }
    const onLatest = await ssm.send(new LabelParameterVersionCommand({ Name: "/l", Labels: ["current"] }));
    assert.equal(onLatest.ParameterVersion, 3);
    await ssm.send(
      new LabelParameterVersionCommand({ Name: "/l", ParameterVersion: 1, Labels: ["current"] }),
    );
    const versions = standin.state.region(REGION).ssm.parameters.get("/l")?.versions ?? [];
    assert.deepEqual(
      versions.map((v) => v.labels),
      [["current"], [], []],
    );

    const mixed = await ssm.send(
      new LabelParameterVersionCommand({
        Name: "/l",
        ParameterVersion: 2,
        Labels: ["ok-label_1.0", "1starts-with-digit", "awsReserved", "SSMx", "has space", "x".repeat(101)],
      }),
    );
    assert.equal(mixed.$metadata.httpStatusCode, 200);
    assert.deepEqual(mixed.InvalidLabels, [
      "1starts-with-digit",
      "awsReserved",
      "SSMx",
      "has space",
      "x".repeat(101),
    ]);
    assert.deepEqual(versions[1]?.labels, ["ok-label_1.0"]);
    const rec = standin.requests.filter((r) => r.operation === "LabelParameterVersion").at(-1);
    assert.equal(rec?.status, 200);

    const ten = Array.from({ length: 10 }, (_, i) => `l${i}`);
    await ssm.send(new LabelParameterVersionCommand({ Name: "/l", ParameterVersion: 3, Labels: ten }));
    await rejectsWith(
      ssm.send(new LabelParameterVersionCommand({ Name: "/l", ParameterVersion: 3, Labels: ["eleventh"] })),
      "ParameterVersionLabelLimitExceeded",
    );
    await rejectsWith(
      ssm.send(new LabelParameterVersionCommand({ Name: "/l", ParameterVersion: 9, Labels: ["x"] })),
      "ParameterVersionNotFound",
    );
  });

  test("UnlabelParameterVersion reports RemovedLabels and InvalidLabels", async () => {
    const ssm = clients().ssm;
    await ssm.send(new PutParameterCommand({ Name: "/u", Value: "v", Type: "String" }));
    await ssm.send(new LabelParameterVersionCommand({ Name: "/u", ParameterVersion: 1, Labels: ["a", "b"] }));
    const out = await ssm.send(
      new UnlabelParameterVersionCommand({ Name: "/u", ParameterVersion: 1, Labels: ["a", "zzz"] }),
    );
    assert.deepEqual(out.RemovedLabels, ["a"]);
    assert.deepEqual(out.InvalidLabels, ["zzz"]);
    const got = await ssm.send(new GetParameterCommand({ Name: "/u:b" }));
    assert.equal(got.Parameter?.Version, 1);
    await rejectsWith(ssm.send(new GetParameterCommand({ Name: "/u:a" })), "ParameterNotFound");
  });

  test("past 100 versions the oldest is dropped silently", async () => {
    const ssm = clients().ssm;
    for (let i = 1; i <= 101; i++) {
      await ssm.send(
        new PutParameterCommand({ Name: "/many", Value: `v${i}`, Type: "String", Overwrite: true }),
      );
    }
    const versions = standin.state.region(REGION).ssm.parameters.get("/many")?.versions ?? [];
    assert.equal(versions.length, 100);
    assert.equal(versions[0]?.version, 2);
    await rejectsWith(ssm.send(new GetParameterCommand({ Name: "/many:1" })), "ParameterVersionNotFound");
    assert.equal((await ssm.send(new GetParameterCommand({ Name: "/many" }))).Parameter?.Version, 101);
    const history = await ssm.send(new GetParameterHistoryCommand({ Name: "/many", MaxResults: 50 }));
    assert.equal(history.Parameters?.[0]?.Version, 2);
  });

  test("a labelled oldest version blocks version 101 with ParameterMaxVersionLimitExceeded", async () => {
    const ssm = clients().ssm;
    for (let i = 1; i <= 100; i++) {
      await ssm.send(
        new PutParameterCommand({ Name: "/pinned", Value: `v${i}`, Type: "String", Overwrite: true }),
      );
    }
    await ssm.send(
      new LabelParameterVersionCommand({ Name: "/pinned", ParameterVersion: 1, Labels: ["golden"] }),
    );
    await rejectsWith(
      ssm.send(new PutParameterCommand({ Name: "/pinned", Value: "v101", Type: "String", Overwrite: true })),
      "ParameterMaxVersionLimitExceeded",
      /Version 1/,
    );
    assert.equal((await ssm.send(new GetParameterCommand({ Name: "/pinned" }))).Parameter?.Version, 100);
    // Moving the label away unblocks the write.
    await ssm.send(
      new LabelParameterVersionCommand({ Name: "/pinned", ParameterVersion: 50, Labels: ["golden"] }),
    );
    const ok = await ssm.send(
      new PutParameterCommand({ Name: "/pinned", Value: "v101", Type: "String", Overwrite: true }),
    );
    assert.equal(ok.Version, 101);
  });

  test("aws:ec2:image: malformed values fail; a missing AMI is accepted but the write is dropped", async () => {
    const { imageId } = standin.addImage(REGION, { name: "catalog-ami" });
    const ssm = clients().ssm;
    const put = (Name: string, Value: string, Overwrite = false) =>
      ssm.send(
        new PutParameterCommand({ Name, Value, Type: "String", DataType: "aws:ec2:image", Overwrite }),
      );
    await rejectsWith(put("/ami/bad", "not-an-ami"), "ValidationException", /not-an-ami/);
    const v1 = await put("/ami/current", imageId);
    assert.equal(v1.Version, 1);
    const ghost = "ami-0fffffffffffffff0";
    const v2 = await put("/ami/current", ghost, true);
    assert.equal(v2.Version, 2, "PutParameter answers success with the new version");
    await rejectsWith(
      ssm.send(new GetParameterCommand({ Name: "/ami/current:2" })),
      "ParameterVersionNotFound",
    );
    const now = await ssm.send(new GetParameterCommand({ Name: "/ami/current" }));
    assert.equal(now.Parameter?.Value, imageId);
    assert.equal(now.Parameter?.DataType, "aws:ec2:image");
    // The AMI exists in us-east-1 only: the same write in another region is dropped.
    const other = await clients(OTHER).ssm.send(
      new PutParameterCommand({
        Name: "/ami/current",
        Value: imageId,
        Type: "String",
        DataType: "aws:ec2:image",
      }),
    );
    assert.equal(other.Version, 1);
    await rejectsWith(
      clients(OTHER).ssm.send(new GetParameterCommand({ Name: "/ami/current" })),
      "ParameterNotFound",
    );
    assert.deepEqual(
      standin.state.region(REGION).ssm.droppedWrites.map((d) => `${d.name}:${d.version}=${d.value}`),
      [`/ami/current:2=${ghost}`],
    );
    const v3 = await put("/ami/current", imageId, true);
    assert.equal(v3.Version, 3);
  });

  test("DeleteParameter removes every version; deleting again is ParameterNotFound", async () => {
    const ssm = clients().ssm;
    await ssm.send(new PutParameterCommand({ Name: "/d", Value: "v", Type: "String" }));
    await ssm.send(new DeleteParameterCommand({ Name: "/d" }));
    await rejectsWith(ssm.send(new GetParameterCommand({ Name: "/d" })), "ParameterNotFound");
    await rejectsWith(ssm.send(new DeleteParameterCommand({ Name: "/d" })), "ParameterNotFound");
  });
});

// ---------------------------------------------------------------- ECR

describe("ECR", () => {
  test("GetAuthorizationToken answers the configured registry and token lifetime", async () => {
    const fixed = new Date("2026-01-01T00:00:00.000Z");
    const own = await startAwsStandin({
      accountId: "210987654321",
      registry: { endpoint: "http://127.0.0.1:5999", user: "AWS", password: "pa55:word" },
      tokenTtlSeconds: 600,
      now: () => fixed,
    });
    try {
      const ecr = makeAwsClients({
        region: REGION,
        endpoint: own.endpoint,
        credentials: async () => ({ accessKeyId: "AKIDTEST", secretAccessKey: "secret" }),
        retryBaseDelayMs: 5,
      }).ecr;
      const out = await ecr.send(new GetAuthorizationTokenCommand({}));
      const data = out.authorizationData?.[0];
      assert.equal(data?.proxyEndpoint, "http://127.0.0.1:5999");
      assert.equal(Buffer.from(data?.authorizationToken ?? "", "base64").toString(), "AWS:pa55:word");
      assert.equal(data?.expiresAt?.toISOString(), "2026-01-01T00:10:00.000Z");
      const repo = await ecr.send(new CreateRepositoryCommand({ repositoryName: "bench" }));
      assert.equal(repo.repository?.repositoryUri, "127.0.0.1:5999/bench");
      assert.equal(repo.repository?.registryId, "210987654321");
      ecr.destroy();
    } finally {
      await own.close();
    }
  });

  test("CreateRepository settings, RepositoryAlreadyExistsException, DescribeRepositories", async () => {
    const ecr = clients().ecr;
    const created = await ecr.send(
      new CreateRepositoryCommand({
        repositoryName: "bench/ruby",
        imageTagMutability: "IMMUTABLE",
        imageScanningConfiguration: { scanOnPush: true },
        encryptionConfiguration: { encryptionType: "KMS", kmsKey: "alias/ecr" },
      }),
    );
    assert.equal(
      created.repository?.repositoryArn,
      "arn:aws:ecr:us-east-1:123456789012:repository/bench/ruby",
    );
    assert.equal(
      created.repository?.repositoryUri,
      "123456789012.dkr.ecr.us-east-1.amazonaws.com/bench/ruby",
    );
    assert.equal(created.repository?.imageTagMutability, "IMMUTABLE");
    assert.equal(created.repository?.imageScanningConfiguration?.scanOnPush, true);
    assert.deepEqual(created.repository?.encryptionConfiguration, {
      encryptionType: "KMS",
      kmsKey: "alias/ecr",
    });
    assert.ok(created.repository?.createdAt instanceof Date);
    await rejectsWith(
      ecr.send(new CreateRepositoryCommand({ repositoryName: "bench/ruby" })),
      "RepositoryAlreadyExistsException",
    );
    await rejectsWith(
      ecr.send(new CreateRepositoryCommand({ repositoryName: "Bad_Name!" })),
      "InvalidParameterException",
    );
    await ecr.send(new CreateRepositoryCommand({ repositoryName: "bench/base" }));
    const named = await ecr.send(new DescribeRepositoriesCommand({ repositoryNames: ["bench/ruby"] }));
    assert.deepEqual(
      named.repositories?.map((r) => r.repositoryName),
      ["bench/ruby"],
    );
    const all = await ecr.send(new DescribeRepositoriesCommand({}));
    assert.equal(all.repositories?.length, 2);
    await rejectsWith(
      ecr.send(new DescribeRepositoriesCommand({ repositoryNames: ["nope"] })),
      "RepositoryNotFoundException",
      /nope/,
    );
  });

  test("PutImage computes the digest; DescribeImages by tag and digest; BatchGetImage with failures", async () => {
    const ecr = clients().ecr;
    await ecr.send(new CreateRepositoryCommand({ repositoryName: "app" }));
    const m1 = manifest(1);
    const put = await ecr.send(
      new PutImageCommand({ repositoryName: "app", imageManifest: m1, imageTag: "v1" }),
    );
    assert.equal(put.image?.imageId?.imageDigest, sha256(m1));
    await rejectsWith(
      ecr.send(new PutImageCommand({ repositoryName: "app", imageManifest: m1, imageTag: "v1" })),
      "ImageAlreadyExistsException",
    );
    await rejectsWith(
      ecr.send(
        new PutImageCommand({ repositoryName: "app", imageManifest: manifest(2), imageDigest: sha256(m1) }),
      ),
      "ImageDigestDoesNotMatchException",
    );
    standin.addEcrImage(REGION, "app", {
      digest: `sha256:${"a".repeat(64)}`,
      tags: ["seeded"],
      sizeBytes: 1234,
    });

    const byTag = await ecr.send(
      new EcrDescribeImagesCommand({ repositoryName: "app", imageIds: [{ imageTag: "v1" }] }),
    );
    const detail = byTag.imageDetails?.[0];
    assert.equal(detail?.imageDigest, sha256(m1));
    assert.deepEqual(detail?.imageTags, ["v1"]);
    assert.equal(detail?.imageSizeInBytes, 1101);
    assert.ok(detail?.imagePushedAt instanceof Date);
    const byDigest = await ecr.send(
      new EcrDescribeImagesCommand({
        repositoryName: "app",
        imageIds: [{ imageDigest: `sha256:${"a".repeat(64)}` }],
      }),
    );
    assert.equal(byDigest.imageDetails?.[0]?.imageSizeInBytes, 1234);
    const all = await ecr.send(new EcrDescribeImagesCommand({ repositoryName: "app" }));
    assert.equal(all.imageDetails?.length, 2);
    await rejectsWith(
      ecr.send(
        new EcrDescribeImagesCommand({
          repositoryName: "app",
          imageIds: [{ imageTag: "v1" }, { imageTag: "nope" }],
        }),
      ),
      "ImageNotFoundException",
      /nope/,
    );
    await rejectsWith(
      ecr.send(new EcrDescribeImagesCommand({ repositoryName: "zzz" })),
      "RepositoryNotFoundException",
    );

    const got = await ecr.send(
      new BatchGetImageCommand({
        repositoryName: "app",
        imageIds: [{ imageTag: "v1" }, { imageTag: "missing" }],
      }),
    );
    assert.equal(got.images?.[0]?.imageManifest, m1);
    assert.deepEqual(got.images?.[0]?.imageId, { imageDigest: sha256(m1), imageTag: "v1" });
    assert.equal(got.failures?.[0]?.failureCode, "ImageNotFound");
    assert.deepEqual(got.failures?.[0]?.imageId, { imageTag: "missing" });
  });

  test("tags move in MUTABLE repositories; IMMUTABLE ones refuse with ImageTagAlreadyExistsException", async () => {
    const ecr = clients().ecr;
    await ecr.send(new CreateRepositoryCommand({ repositoryName: "mutable" }));
    await ecr.send(
      new CreateRepositoryCommand({ repositoryName: "frozen", imageTagMutability: "IMMUTABLE" }),
    );
    for (const repositoryName of ["mutable", "frozen"]) {
      await ecr.send(new PutImageCommand({ repositoryName, imageManifest: manifest(1), imageTag: "latest" }));
    }
    await ecr.send(
      new PutImageCommand({ repositoryName: "mutable", imageManifest: manifest(2), imageTag: "latest" }),
    );
    const moved = await ecr.send(
      new EcrDescribeImagesCommand({ repositoryName: "mutable", imageIds: [{ imageTag: "latest" }] }),
    );
    assert.equal(moved.imageDetails?.[0]?.imageDigest, sha256(manifest(2)));
    const old = await ecr.send(
      new EcrDescribeImagesCommand({
        repositoryName: "mutable",
        imageIds: [{ imageDigest: sha256(manifest(1)) }],
      }),
    );
    assert.equal(old.imageDetails?.[0]?.imageTags, undefined, "the old image is left untagged");
    await rejectsWith(
      ecr.send(
        new PutImageCommand({ repositoryName: "frozen", imageManifest: manifest(2), imageTag: "latest" }),
      ),
      "ImageTagAlreadyExistsException",
      /immutable/,
    );
    // A new tag on an immutable repository is fine.
    const fresh = await ecr.send(
      new PutImageCommand({ repositoryName: "frozen", imageManifest: manifest(2), imageTag: "v2" }),
    );
    assert.equal(fresh.image?.imageId?.imageTag, "v2");
  });

  test("BatchDeleteImage: more than 100 ids is InvalidParameterException; missing ones go to failures", async () => {
    const ecr = clients().ecr;
    const d1 = `sha256:${"1".repeat(64)}`;
    const d2 = `sha256:${"2".repeat(64)}`;
    standin.addEcrImage(REGION, "prune", { digest: d1, tags: ["a", "b"] });
    standin.addEcrImage(REGION, "prune", { digest: d2, tags: ["c"] });
    const tooMany = Array.from({ length: 101 }, (_, i) => ({ imageTag: `t${i}` }));
    await rejectsWith(
      ecr.send(new BatchDeleteImageCommand({ repositoryName: "prune", imageIds: tooMany })),
      "InvalidParameterException",
      /100/,
    );
    const out = await ecr.send(
      new BatchDeleteImageCommand({
        repositoryName: "prune",
        imageIds: [{ imageTag: "a" }, { imageDigest: d2 }, { imageTag: "ghost" }],
      }),
    );
    assert.deepEqual(out.imageIds, [
      { imageDigest: d1, imageTag: "a" },
      { imageDigest: d2, imageTag: "c" },
    ]);
    assert.deepEqual(out.failures, [
      {
        imageId: { imageTag: "ghost" },
        failureCode: "ImageNotFound",
        failureReason: "Requested image not found",
      },
    ]);
    const repo = standin.state.region(REGION).ecr.repositories.get("prune");
    assert.deepEqual([...(repo?.images.keys() ?? [])], [d1]);
    assert.deepEqual(repo?.images.get(d1)?.tags, ["b"]);
  });

  test("lifecycle policy and scanning configuration", async () => {
    const ecr = clients().ecr;
    await ecr.send(new CreateRepositoryCommand({ repositoryName: "policy" }));
    await rejectsWith(
      ecr.send(new GetLifecyclePolicyCommand({ repositoryName: "policy" })),
      "LifecyclePolicyNotFoundException",
    );
    const text = JSON.stringify({
      rules: [
        {
          rulePriority: 1,
          selection: {
            tagStatus: "untagged",
            countType: "sinceImagePushed",
            countUnit: "days",
            countNumber: 7,
          },
          action: { type: "expire" },
        },
      ],
    });
    const put = await ecr.send(
      new PutLifecyclePolicyCommand({ repositoryName: "policy", lifecyclePolicyText: text }),
    );
    assert.equal(put.lifecyclePolicyText, text);
    const got = await ecr.send(new GetLifecyclePolicyCommand({ repositoryName: "policy" }));
    assert.equal(got.lifecyclePolicyText, text);
    await rejectsWith(
      ecr.send(new PutLifecyclePolicyCommand({ repositoryName: "policy", lifecyclePolicyText: "{not json" })),
      "InvalidParameterException",
    );
    const scan = await ecr.send(
      new PutImageScanningConfigurationCommand({
        repositoryName: "policy",
        imageScanningConfiguration: { scanOnPush: true },
      }),
    );
    assert.equal(scan.imageScanningConfiguration?.scanOnPush, true);
    assert.equal(standin.state.region(REGION).ecr.repositories.get("policy")?.scanOnPush, true);
  });
});

// ---------------------------------------------------------------- faults

describe("faults", () => {
  test("throttle on the first two calls: the SDK retries and the third attempt succeeds", async () => {
    const ssm = clients().ssm;
    await ssm.send(new PutParameterCommand({ Name: "/t", Value: "v", Type: "String" }));
    standin.faults.add({ service: "ssm", operation: "GetParameter", kind: "throttle", calls: [1, 2] });
    const out = await ssm.send(new GetParameterCommand({ Name: "/t" }));
    assert.equal(out.Parameter?.Value, "v");
    assert.equal(out.$metadata.attempts, 3);
    const attempts = standin.requests.filter((r) => r.operation === "GetParameter");
    assert.deepEqual(
      attempts.map((r) => [r.attempt, r.status]),
      [
        [1, 400],
        [2, 400],
        [3, 200],
      ],
    );
    assert.match(attempts[0]?.body ?? "", /"Name":"\/t"/);
  });

  test("throttling answers in each protocol's shape (EC2 RequestLimitExceeded, STS Throttling, ECR ThrottlingException)", async () => {
    const c = clients(REGION, { maxAttempts: 1 });
    standin.faults.add({ operation: "DescribeImages", service: "ec2", kind: "throttle" });
    standin.faults.add({ operation: "GetCallerIdentity", kind: "throttle" });
    standin.faults.add({ operation: "DescribeRepositories", kind: "throttle" });
    await rejectsWith(
      c.ec2.send(new DescribeImagesCommand({})),
      "RequestLimitExceeded",
      /Request limit exceeded/,
      400,
    );
    await rejectsWith(c.sts.send(new GetCallerIdentityCommand({})), "Throttling", /Rate exceeded/, 400);
    await rejectsWith(
      c.ecr.send(new DescribeRepositoriesCommand({})),
      "ThrottlingException",
      /Rate exceeded/,
      400,
    );
  });

  test("HTTP 500 and 503 are retried", async () => {
    const ecr = clients().ecr;
    await ecr.send(new CreateRepositoryCommand({ repositoryName: "retry" }));
    standin.faults.add({ operation: "DescribeRepositories", kind: "http500", calls: [1] });
    standin.faults.add({ operation: "DescribeRepositories", kind: "http503", calls: [2] });
    const out = await ecr.send(new DescribeRepositoriesCommand({}));
    assert.equal(out.repositories?.[0]?.repositoryName, "retry");
    assert.deepEqual(
      standin.requests.filter((r) => r.operation === "DescribeRepositories").map((r) => r.status),
      [500, 503, 200],
    );
    standin.faults.add({ operation: "GetCallerIdentity", kind: "http503" });
    await rejectsWith(
      clients(REGION, { maxAttempts: 2 }).sts.send(new GetCallerIdentityCommand({})),
      "ServiceUnavailable",
      undefined,
      503,
    );
    assert.equal(standin.count("GetCallerIdentity"), 2);
  });

  test("slow: past the client's timeout the SDK retries; without applyFirst nothing happened", async () => {
    const ssm = clients(REGION, { requestTimeoutMs: 300 }).ssm;
    standin.faults.add({ operation: "PutParameter", kind: "slow", delayMs: 600, calls: [1] });
    const out = await ssm.send(
      new PutParameterCommand({ Name: "/slow", Value: "v", Type: "String", Overwrite: true }),
    );
    assert.equal(out.Version, 1, "the first, timed-out attempt did not create a version");
    await new Promise((resolve) => setTimeout(resolve, 500)); // past the delay: still nothing done for attempt 1
    assert.equal(standin.state.region(REGION).ssm.parameters.get("/slow")?.versions.length, 1);
    assert.deepEqual(
      standin.requests.filter((r) => r.operation === "PutParameter").map((r) => [r.attempt, r.status]),
      [
        [1, 0],
        [2, 200],
      ],
    );
    standin.faults.add({ operation: "GetCallerIdentity", kind: "slow", delayMs: 2_000 });
    await rejectsWith(
      clients(REGION, { requestTimeoutMs: 300, maxAttempts: 1 }).sts.send(new GetCallerIdentityCommand({})),
      "TimeoutError",
    );
  });

  test("drop: the connection is destroyed without an answer and the SDK retries", async () => {
    const ssm = clients().ssm;
    standin.faults.add({ operation: "PutParameter", kind: "drop", calls: [1] });
    const out = await ssm.send(new PutParameterCommand({ Name: "/drop", Value: "v", Type: "String" }));
    assert.equal(out.Version, 1);
    assert.deepEqual(
      standin.requests.filter((r) => r.operation === "PutParameter").map((r) => r.status),
      [0, 200],
    );
    standin.faults.add({ operation: "GetParameter", kind: "drop" });
    await assert.rejects(
      clients(REGION, { maxAttempts: 1 }).ssm.send(new GetParameterCommand({ Name: "/drop" })),
      (e: unknown) => {
        assert.ok(e instanceof Error);
        assert.match(`${(e as { code?: string }).code ?? ""} ${e.message}`, /ECONNRESET|socket hang up/);
        return true;
      },
    );
  });

  test("error: RepositoryNotFoundException just after a create, then the repository is there", async () => {
    const ecr = clients().ecr;
    await ecr.send(new CreateRepositoryCommand({ repositoryName: "eventual" }));
    standin.faults.add({
      service: "ecr",
      operation: "DescribeRepositories",
      kind: "error",
      code: "RepositoryNotFoundException",
      message: "The repository with name 'eventual' does not exist",
      calls: [1],
    });
    await rejectsWith(
      ecr.send(new DescribeRepositoriesCommand({ repositoryNames: ["eventual"] })),
      "RepositoryNotFoundException",
      /eventual/,
      400,
    );
    const out = await ecr.send(new DescribeRepositoriesCommand({ repositoryNames: ["eventual"] }));
    assert.equal(out.repositories?.[0]?.repositoryName, "eventual");
  });

  test("applyFirst + slow: RunInstances launches, the answer is late, the retry gets the same reservation", async () => {
    const { imageId } = standin.addImage(REGION, { name: "apply-first" });
    standin.faults.add({
      operation: "RunInstances",
      kind: "slow",
      delayMs: 2_000,
      calls: [1],
      applyFirst: true,
    });
    const ec2 = clients(REGION, { requestTimeoutMs: 300 }).ec2;
    const out = await ec2.send(new RunInstancesCommand({ ImageId: imageId, MinCount: 1, MaxCount: 1 }));
    const runs = standin.requests.filter((r) => r.operation === "RunInstances");
    assert.equal(runs.length, 2);
    const token = (runs[0]?.params as Record<string, string>)["ClientToken"];
    assert.ok(token);
    assert.equal((runs[1]?.params as Record<string, string>)["ClientToken"], token);
    const instances = [...standin.state.region(REGION).ec2.instances.values()];
    assert.equal(instances.length, 1, "exactly one instance despite the retry");
    assert.equal(out.Instances?.[0]?.InstanceId, instances[0]?.instanceId);
  });

  test("applyFirst + drop / throttle: the state changed although the client saw a failure", async () => {
    standin.faults.add({ operation: "PutParameter", kind: "drop", calls: [1], applyFirst: true });
    const once = clients(REGION, { maxAttempts: 1 }).ssm;
    await assert.rejects(once.send(new PutParameterCommand({ Name: "/af", Value: "v1", Type: "String" })));
    const got = await clients().ssm.send(new GetParameterCommand({ Name: "/af" }));
    assert.equal(got.Parameter?.Value, "v1");

    standin.faults.add({ operation: "PutParameter", kind: "throttle", calls: [1], applyFirst: true });
    await rejectsWith(
      once.send(new PutParameterCommand({ Name: "/af", Value: "v2", Type: "String", Overwrite: true })),
      "ThrottlingException",
    );
    const after2 = await clients().ssm.send(new GetParameterCommand({ Name: "/af" }));
    assert.equal(after2.Parameter?.Version, 2);
  });

  test("faults are scoped by service and counted per fault from when they were added", async () => {
    await clients().ec2.send(new DescribeImagesCommand({}));
    standin.faults.add({
      service: "ecr",
      operation: "DescribeImages",
      kind: "error",
      code: "RepositoryNotFoundException",
      calls: [2],
    });
    const c = clients(REGION, { maxAttempts: 1 });
    await c.ec2.send(new DescribeImagesCommand({})); // ec2: not counted
    standin.addEcrImage(REGION, "scoped", { digest: `sha256:${"3".repeat(64)}`, tags: ["x"] });
    await c.ecr.send(new EcrDescribeImagesCommand({ repositoryName: "scoped" })); // ecr call 1
    await rejectsWith(
      c.ecr.send(new EcrDescribeImagesCommand({ repositoryName: "scoped" })),
      "RepositoryNotFoundException",
    );
    const third = await c.ecr.send(new EcrDescribeImagesCommand({ repositoryName: "scoped" }));
    assert.equal(third.imageDetails?.length, 1);
    standin.faults.clear();
    standin.faults.add({ operation: "GetCallerIdentity", kind: "error", code: "ExpiredToken", status: 403 });
    await rejectsWith(c.sts.send(new GetCallerIdentityCommand({})), "ExpiredToken", undefined, 403);
  });
});
