/**
 * The AWS stand-in's EBS Fast Snapshot Restore and subnets (EC2 API shapes: SourceSnapshotId.N,
 * AvailabilityZone.N; answers `successful` / `unsuccessful` per snapshot and zone, DescribeFastSnapshotRestores
 * with filters and pages), through the real SDK: states move enabling -> optimizing -> enabled and disabling ->
 * disabled; what EC2 refuses is refused (unknown zone, malformed or unknown snapshot, no zone, zone ids, a
 * snapshot still enabled somewhere cannot be deleted).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeFastSnapshotRestoresCommand,
  DescribeSubnetsCommand,
  DisableFastSnapshotRestoresCommand,
  EnableFastSnapshotRestoresCommand,
} from "@aws-sdk/client-ec2";
import { REGION, OTHER, clients, rejectsWith, standin, useStandin } from "./self-test.js";

useStandin();

const describeAll = async (region = REGION) =>
  (await clients(region).ec2.send(new DescribeFastSnapshotRestoresCommand({}))).FastSnapshotRestores ?? [];

describe("EC2 subnets", () => {
  test("every region has a default VPC with a default subnet per zone; added subnets; filters; unknown and malformed ids", async () => {
    const ec2 = clients().ec2;
    const all = await ec2.send(new DescribeSubnetsCommand({}));
    assert.deepEqual(
      all.Subnets?.map((s) => [s.AvailabilityZone, s.DefaultForAz, s.State]),
      [
        ["us-east-1a", true, "available"],
        ["us-east-1b", true, "available"],
        ["us-east-1c", true, "available"],
      ],
    );
    const mine = standin.addSubnet(REGION, { availabilityZone: "us-east-1b" });
    const one = await ec2.send(new DescribeSubnetsCommand({ SubnetIds: [mine] }));
    assert.deepEqual(
      one.Subnets?.map((s) => [s.SubnetId, s.AvailabilityZone, s.DefaultForAz]),
      [[mine, "us-east-1b", false]],
    );
    const defaults = await ec2.send(
      new DescribeSubnetsCommand({ Filters: [{ Name: "default-for-az", Values: ["true"] }] }),
    );
    assert.equal(defaults.Subnets?.length, 3);
    assert.equal(
      (await clients(OTHER).ec2.send(new DescribeSubnetsCommand({}))).Subnets?.[0]?.AvailabilityZone,
      "eu-west-1a",
    );
    await rejectsWith(
      ec2.send(new DescribeSubnetsCommand({ SubnetIds: ["subnet-0123456789abcdef0"] })),
      "InvalidSubnetID.NotFound",
      /subnet-0123456789abcdef0/,
    );
    await rejectsWith(
      ec2.send(new DescribeSubnetsCommand({ SubnetIds: ["sn-1"] })),
      "InvalidSubnetID.Malformed",
    );
    await rejectsWith(
      ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: "no-such-filter", Values: ["x"] }] })),
      "InvalidParameterValue",
    );
  });
});

describe("EBS Fast Snapshot Restore", () => {
  test("enable in two zones: successful per zone, enabling -> optimizing -> enabled; again changes nothing; describe filters", async () => {
    const { snapshotIds } = standin.addImage(REGION, { name: "fsr-1" });
    const snap = snapshotIds[0]!;
    const ec2 = clients().ec2;
    const r = await ec2.send(
      new EnableFastSnapshotRestoresCommand({
        SourceSnapshotIds: [snap],
        AvailabilityZones: ["us-east-1a", "us-east-1c"],
      }),
    );
    assert.deepEqual(r.Unsuccessful ?? [], []);
    assert.deepEqual(
      r.Successful?.map((s) => [s.SnapshotId, s.AvailabilityZone, s.State, s.StateTransitionReason]),
      [
        [snap, "us-east-1a", "enabling", "Client.UserInitiated"],
        [snap, "us-east-1c", "enabling", "Client.UserInitiated"],
      ],
    );
    assert.ok(r.Successful?.[0]?.EnablingTime instanceof Date);
    assert.deepEqual(
      (await describeAll()).map((f) => f.State),
      ["enabling", "enabling"],
    );
    assert.deepEqual(
      (await describeAll()).map((f) => f.State),
      ["optimizing", "optimizing"],
    );
    const enabled = await describeAll();
    assert.deepEqual(
      enabled.map((f) => [f.AvailabilityZone, f.State]),
      [
        ["us-east-1a", "enabled"],
        ["us-east-1c", "enabled"],
      ],
    );
    assert.ok(enabled[0]?.EnabledTime instanceof Date);
    const again = await ec2.send(
      new EnableFastSnapshotRestoresCommand({ SourceSnapshotIds: [snap], AvailabilityZones: ["us-east-1a"] }),
    );
    assert.equal(again.Successful?.[0]?.State, "enabled");
    const filtered = await ec2.send(
      new DescribeFastSnapshotRestoresCommand({
        Filters: [
          { Name: "snapshot-id", Values: [snap] },
          { Name: "availability-zone", Values: ["us-east-1c"] },
        ],
      }),
    );
    assert.deepEqual(
      filtered.FastSnapshotRestores?.map((f) => f.AvailabilityZone),
      ["us-east-1c"],
    );
    await rejectsWith(
      ec2.send(new DescribeFastSnapshotRestoresCommand({ Filters: [{ Name: "nope", Values: ["x"] }] })),
      "InvalidParameterValue",
    );
  });

  test("refused as EC2 refuses: a zone not of the region, no zone, zone ids, no snapshot, a malformed id; an unknown snapshot fails in unsuccessful", async () => {
    const { snapshotIds } = standin.addImage(REGION, { name: "fsr-2" });
    const snap = snapshotIds[0]!;
    const ec2 = clients().ec2;
    const enable = (input: ConstructorParameters<typeof EnableFastSnapshotRestoresCommand>[0]) =>
      ec2.send(new EnableFastSnapshotRestoresCommand(input));
    await rejectsWith(
      enable({ SourceSnapshotIds: [snap], AvailabilityZones: ["eu-west-1a"] }),
      "InvalidParameterValue",
      /Invalid availability zone: \[eu-west-1a\]/,
    );
    await rejectsWith(enable({ SourceSnapshotIds: [snap] }), "MissingParameter", /AvailabilityZone/);
    await rejectsWith(
      enable({
        SourceSnapshotIds: [snap],
        AvailabilityZones: ["us-east-1a"],
        AvailabilityZoneIds: ["use1-az1"],
      }),
      "InvalidParameterCombination",
    );
    await rejectsWith(
      enable({ SourceSnapshotIds: [], AvailabilityZones: ["us-east-1a"] }),
      "MissingParameter",
      /SourceSnapshotId/,
    );
    await rejectsWith(
      enable({ SourceSnapshotIds: ["vol-0123456789abcdef0"], AvailabilityZones: ["us-east-1a"] }),
      "InvalidSnapshotID.Malformed",
    );
    const unknown = "snap-0123456789abcdef0";
    const r = await enable({
      SourceSnapshotIds: [snap, unknown],
      AvailabilityZones: ["us-east-1a", "us-east-1b"],
    });
    assert.deepEqual(
      r.Successful?.map((s) => [s.SnapshotId, s.AvailabilityZone]),
      [
        [snap, "us-east-1a"],
        [snap, "us-east-1b"],
      ],
    );
    assert.deepEqual(
      r.Unsuccessful?.map((u) => [
        u.SnapshotId,
        u.FastSnapshotRestoreStateErrors?.map((e) => [e.AvailabilityZone, e.Error?.Code]),
      ]),
      [
        [
          unknown,
          [
            ["us-east-1a", "InvalidSnapshot.NotFound"],
            ["us-east-1b", "InvalidSnapshot.NotFound"],
          ],
        ],
      ],
    );
  });

  test("a snapshot enabled somewhere cannot be deleted; disable -> disabling -> disabled, then it can", async () => {
    const { imageId, snapshotIds } = standin.addImage(REGION, { name: "fsr-3" });
    const snap = snapshotIds[0]!;
    const ec2 = clients().ec2;
    await ec2.send(
      new EnableFastSnapshotRestoresCommand({ SourceSnapshotIds: [snap], AvailabilityZones: ["us-east-1b"] }),
    );
    await ec2.send(new DeregisterImageCommand({ ImageId: imageId }));
    await rejectsWith(
      ec2.send(new DeleteSnapshotCommand({ SnapshotId: snap })),
      "InvalidSnapshot.InUse",
      /enabled for fast restores in us-east-1b/,
    );
    const off = await ec2.send(
      new DisableFastSnapshotRestoresCommand({
        SourceSnapshotIds: [snap],
        AvailabilityZones: ["us-east-1a", "us-east-1b"],
      }),
    );
    assert.deepEqual(
      off.Successful?.map((s) => [s.AvailabilityZone, s.State]),
      [
        ["us-east-1a", "disabled"],
        ["us-east-1b", "disabling"],
      ],
    );
    await rejectsWith(ec2.send(new DeleteSnapshotCommand({ SnapshotId: snap })), "InvalidSnapshot.InUse");
    assert.deepEqual(
      (await describeAll()).map((f) => f.State),
      ["disabling"],
    );
    const done = await describeAll();
    assert.deepEqual(
      done.map((f) => f.State),
      ["disabled"],
    );
    assert.ok(done[0]?.DisabledTime instanceof Date);
    await ec2.send(new DeleteSnapshotCommand({ SnapshotId: snap }));
    assert.deepEqual(await describeAll(), []);
    const gone = await ec2.send(
      new DisableFastSnapshotRestoresCommand({
        SourceSnapshotIds: [snap],
        AvailabilityZones: ["us-east-1a"],
      }),
    );
    assert.equal(
      gone.Unsuccessful?.[0]?.FastSnapshotRestoreStateErrors?.[0]?.Error?.Code,
      "InvalidSnapshot.NotFound",
    );
  });
});
