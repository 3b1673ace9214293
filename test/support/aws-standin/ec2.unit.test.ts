/**
 * The AWS stand-in's EC2: images, snapshots, deprecation, copies, instances, spot, tags, idempotency.
 * Every operation goes through the real SDK clients made by the project's client factory (see self-test.ts).
 */
import { test, describe } from "node:test";
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
import assert from "node:assert/strict";
import { REGION, OTHER, standin, clients, rejectsWith, useStandin } from "./self-test.js";

useStandin();

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
    // A recently deregistered AMI lingers, by id and in listings, as `deregistered` (two reads by default),
    // uses its snapshots no more, can be neither deregistered again nor launched; then it is gone.
    await rejectsWith(ec2.send(new DeregisterImageCommand({ ImageId: imageId })), "InvalidAMIID.Unavailable");
    const byId = await ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }));
    assert.equal(byId.Images?.[0]?.State, "deregistered");
    const listed = await ec2.send(new DescribeImagesCommand({ Owners: ["self"] }));
    assert.equal(listed.Images?.find((i) => i.ImageId === imageId)?.State, "deregistered");
    await rejectsWith(ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] })), "InvalidAMIID.NotFound");
    standin.addImage(REGION, { name: "in-use" }); // the name is free again
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

  test("operations imgtool never calls are not there: RegisterImage is an invalid action", async () => {
    await rejectsWith(
      clients().ec2.send(
        new RegisterImageCommand({
          Name: "from-snapshot",
          RootDeviceName: "/dev/xvda",
          BlockDeviceMappings: [{ DeviceName: "/dev/xvda", Ebs: { SnapshotId: "snap-0123456789abcdef0" } }],
        }),
      ),
      "InvalidAction",
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

  test("RunInstances refuses a subnet or group that does not exist and groups of another VPC; no group: the VPC's default", async () => {
    const { imageId } = standin.addImage(REGION, { name: "runner-net" });
    const ec2 = clients().ec2;
    const vpcId = "vpc-0def0def0def0def0";
    const subnet = standin.addSubnet(REGION, { vpcId, availabilityZone: `${REGION}a` });
    const own = standin.addSecurityGroup(REGION, { groupName: "own", vpcId });
    const other = standin.addSecurityGroup(REGION, { groupName: "of-the-default-vpc" });
    const refused = async (extra: Partial<RunInstancesCommandInput>, code: string, text: RegExp) =>
      assert.rejects(ec2.send(new RunInstancesCommand(launch(imageId, extra))), (e: Error) => {
        assert.equal(e.name, code);
        assert.match(e.message, text);
        return true;
      });
    await refused({ SubnetId: "subnet-0fff0fff" }, "InvalidSubnetID.NotFound", /subnet-0fff0fff/);
    await refused(
      { SubnetId: subnet, SecurityGroupIds: ["sg-0fff0fff"] },
      "InvalidGroup.NotFound",
      /sg-0fff0fff/,
    );
    await refused(
      { SubnetId: subnet, SecurityGroupIds: [other] },
      "InvalidParameter",
      /belong to different networks/,
    );
    await refused({ SecurityGroupIds: [own] }, "InvalidParameter", /belong to different networks/);
    assert.equal(standin.state.region(REGION).ec2.instances.size, 0, "nothing started");
    const run = await ec2.send(new RunInstancesCommand(launch(imageId, { SubnetId: subnet })));
    const group = [...standin.state.region(REGION).ec2.securityGroups.values()].find(
      (g) => g.vpcId === vpcId && g.groupName === "default",
    );
    assert.deepEqual(
      run.Instances?.[0]?.SecurityGroups?.map((g) => g.GroupId),
      [group?.groupId],
    );
  });

  test("RunInstances launches with the requested settings, pending then running after a describe", async () => {
    const { imageId } = standin.addImage(REGION, { name: "runner", rootVolumeSize: 16 });
    const vpcId = "vpc-0abc0abc0abc0abc0";
    standin.addSubnet(REGION, { subnetId: "subnet-0abc", vpcId, availabilityZone: `${REGION}b` });
    for (const groupId of ["sg-01", "sg-02"])
      standin.addSecurityGroup(REGION, { groupId, groupName: groupId, vpcId });
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
    assert.equal(first?.VpcId, vpcId);
    assert.equal(first?.Placement?.AvailabilityZone, `${REGION}b`, "the subnet's zone");
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
