/**
 * The EC2 calls imgtool makes for AMIs (bake, copy, prune), typed with the SDK's own shapes. One instance per
 * region, built from that region's client.
 */
import {
  CopyImageCommand,
  CreateTagsCommand,
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeFastSnapshotRestoresCommand,
  DescribeSnapshotsCommand,
  DescribeSubnetsCommand,
  DisableFastSnapshotRestoresCommand,
  EnableFastSnapshotRestoresCommand,
  EnableImageDeprecationCommand,
  type DisableFastSnapshotRestoreErrorItem,
  type EnableFastSnapshotRestoreErrorItem,
  type EC2Client,
  type Filter,
  type Image,
  type Snapshot,
} from "@aws-sdk/client-ec2";
import { FailureError, errorName } from "../errors.js";

type Ec2Like = Pick<EC2Client, "send">;

export interface WaitOptions {
  /** Consecutive `available` reads needed: the state can flap right after a build or copy. @default 3 */
  consecutive?: number;
  intervalMs?: number;
  timeoutMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

/** Image states an AMI never leaves: waiting for `available` ends there. */
export const DEAD_IMAGE_STATES = ["failed", "invalid", "error", "deregistered", "disabled"] as const;

export class Ec2Images {
  constructor(
    readonly ec2: Ec2Like,
    readonly region: string,
  ) {}

  /** The newest image matching owner + name filter + architecture (what Packer's most_recent picks). */
  async newest(owner: string, name: string, arch: string): Promise<Image | undefined> {
    const images = await this.images({
      Owners: [owner],
      Filters: [
        { Name: "name", Values: [name] },
        { Name: "architecture", Values: [arch] },
        { Name: "state", Values: ["available"] },
      ],
    });
    return [...images].sort((a, b) => (b.CreationDate ?? "").localeCompare(a.CreationDate ?? ""))[0];
  }

  /** The image, or undefined when it does not exist (any more); a recently deregistered one reads `deregistered`. */
  async describe(imageId: string): Promise<Image | undefined> {
    try {
      const r = await this.ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }));
      return r.Images?.[0];
    } catch (e) {
      if (errorName(e) === "InvalidAMIID.NotFound" || errorName(e) === "InvalidAMIID.Unavailable")
        return undefined;
      throw e;
    }
  }

  /** Images of this account with all the given tags. */
  async byTags(tags: Record<string, string>): Promise<Image[]> {
    const Filters: Filter[] = Object.entries(tags).map(([k, v]) => ({ Name: `tag:${k}`, Values: [v] }));
    return this.images({ Owners: ["self"], Filters });
  }

  /**
   * Every page of a DescribeImages answer (AWS may page even when no MaxResults was asked for), without the
   * AMIs already deregistered: EC2 still lists a recently deregistered AMI (state `deregistered`) for a while,
   * but it is no version to keep or count, and its snapshots are free to delete.
   */
  private async images(input: { Owners: string[]; Filters?: Filter[] }): Promise<Image[]> {
    const out: Image[] = [];
    let NextToken: string | undefined;
    do {
      const r = await this.ec2.send(new DescribeImagesCommand({ ...input, NextToken }));
      out.push(...(r.Images ?? []).filter((i) => i.State !== "deregistered"));
      NextToken = r.NextToken;
    } while (NextToken);
    return out;
  }

  /** Snapshots of this account with all the given tags. */
  async snapshotsByTags(tags: Record<string, string>): Promise<Snapshot[]> {
    const Filters: Filter[] = Object.entries(tags).map(([k, v]) => ({ Name: `tag:${k}`, Values: [v] }));
    const out: Snapshot[] = [];
    let NextToken: string | undefined;
    do {
      const r = await this.ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ["self"], Filters, NextToken }));
      out.push(...(r.Snapshots ?? []));
      NextToken = r.NextToken;
    } while (NextToken);
    return out;
  }

  /** Snapshot ids that any registered AMI of this account still uses. */
  async snapshotsInUse(): Promise<Set<string>> {
    return new Set((await this.images({ Owners: ["self"] })).flatMap(snapshotIds));
  }

  /**
   * Wait until the image reads `available` several times in a row. Fail at once on a state it never leaves
   * (`failed`, `invalid`, `error`, `deregistered`, `disabled`), and on timeout.
   */
  async waitAvailable(imageId: string, opts: WaitOptions = {}): Promise<Image> {
    const need = opts.consecutive ?? 3;
    const interval = opts.intervalMs ?? 15_000;
    const deadline = Date.now() + (opts.timeoutMs ?? 60 * 60_000);
    const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    let streak = 0;
    for (;;) {
      const image = await this.describe(imageId);
      const state = image?.State;
      if (state !== undefined && (DEAD_IMAGE_STATES as readonly string[]).includes(state)) {
        throw new FailureError(
          `AMI ${imageId} in ${this.region} is ${state}: ${image?.StateReason?.Message ?? "no reason given"}`,
        );
      }
      streak = state === "available" ? streak + 1 : 0;
      if (streak >= need && image) return image;
      if (Date.now() > deadline) {
        throw new FailureError(
          `AMI ${imageId} in ${this.region} was not available in time (last state: ${state ?? "not found"}).`,
        );
      }
      await sleep(interval);
    }
  }

  /** Tag the AMI and every EBS snapshot behind it. */
  async tagWithSnapshots(image: Image, tags: Record<string, string>): Promise<string[]> {
    const snapshots = snapshotIds(image);
    await this.ec2.send(
      new CreateTagsCommand({
        Resources: [image.ImageId!, ...snapshots],
        Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
      }),
    );
    return snapshots;
  }

  /** Copy an AMI from another region into this one, encrypted; idempotent through the client token. */
  async copyFrom(
    sourceRegion: string,
    sourceImageId: string,
    name: string,
    clientToken: string,
  ): Promise<string> {
    const r = await this.ec2.send(
      new CopyImageCommand({
        SourceRegion: sourceRegion,
        SourceImageId: sourceImageId,
        Name: name,
        Encrypted: true,
        ClientToken: clientToken,
        CopyImageTags: true,
      }),
    );
    if (!r.ImageId)
      throw new FailureError(`CopyImage of ${sourceImageId} to ${this.region} returned no image id`);
    return r.ImageId;
  }

  async deprecate(imageId: string, at: Date): Promise<void> {
    await this.ec2.send(new EnableImageDeprecationCommand({ ImageId: imageId, DeprecateAt: at }));
  }

  async deregister(imageId: string): Promise<void> {
    await this.ec2.send(new DeregisterImageCommand({ ImageId: imageId }));
  }

  async deleteSnapshot(snapshotId: string): Promise<void> {
    await this.ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId }));
  }

  /**
   * The Availability Zones instances launch in: the subnet's, or (no subnet: EC2 picks one of the default VPC's)
   * every zone with a default subnet.
   */
  async launchZones(subnetId: string | undefined): Promise<string[]> {
    const r = await this.ec2.send(
      new DescribeSubnetsCommand(
        subnetId ? { SubnetIds: [subnetId] } : { Filters: [{ Name: "default-for-az", Values: ["true"] }] },
      ),
    );
    return [
      ...new Set((r.Subnets ?? []).flatMap((s) => (s.AvailabilityZone ? [s.AvailabilityZone] : []))),
    ].sort();
  }

  /** Enable EBS Fast Snapshot Restore for the snapshots in the zones; a refusal for any of them fails. */
  async enableFastRestores(snapshotIds: string[], zones: string[]): Promise<void> {
    const r = await this.ec2.send(
      new EnableFastSnapshotRestoresCommand({ SourceSnapshotIds: snapshotIds, AvailabilityZones: zones }),
    );
    this.refused("enable", r.Unsuccessful);
  }

  /** Disable EBS Fast Snapshot Restore for the snapshot in the zones; a refusal fails. */
  async disableFastRestores(snapshotId: string, zones: string[]): Promise<void> {
    const r = await this.ec2.send(
      new DisableFastSnapshotRestoresCommand({ SourceSnapshotIds: [snapshotId], AvailabilityZones: zones }),
    );
    this.refused("disable", r.Unsuccessful);
  }

  /** The zones where the snapshot's Fast Snapshot Restore is not `disabled` (any other state), with the state. */
  async fastRestores(snapshotId: string): Promise<{ zone: string; state: string }[]> {
    const out: { zone: string; state: string }[] = [];
    let NextToken: string | undefined;
    do {
      const r = await this.ec2.send(
        new DescribeFastSnapshotRestoresCommand({
          Filters: [{ Name: "snapshot-id", Values: [snapshotId] }],
          NextToken,
        }),
      );
      for (const f of r.FastSnapshotRestores ?? [])
        if (f.AvailabilityZone && f.State && f.State !== "disabled")
          out.push({ zone: f.AvailabilityZone, state: f.State });
      NextToken = r.NextToken;
    } while (NextToken);
    return out;
  }

  /** EC2 answers a Fast Snapshot Restore it could not change per snapshot and zone, with the call's success. */
  private refused(
    verb: string,
    items: (EnableFastSnapshotRestoreErrorItem | DisableFastSnapshotRestoreErrorItem)[] | undefined,
  ): void {
    const why = (items ?? []).flatMap((u) =>
      (u.FastSnapshotRestoreStateErrors ?? []).map((e) =>
        `${u.SnapshotId} in ${e.AvailabilityZone}: ${e.Error?.Code} ${e.Error?.Message ?? ""}`.trim(),
      ),
    );
    if (why.length)
      throw new FailureError(
        `EC2 could not ${verb} Fast Snapshot Restore in ${this.region}: ${why.join("; ")}`,
      );
  }

  /** AMI ids used by instances that are not terminated. */
  async imagesInUse(): Promise<Set<string>> {
    const used = new Set<string>();
    let NextToken: string | undefined;
    do {
      const r = await this.ec2.send(
        new DescribeInstancesCommand({
          Filters: [{ Name: "instance-state-name", Values: ["pending", "running", "stopping", "stopped"] }],
          NextToken,
        }),
      );
      for (const res of r.Reservations ?? [])
        for (const i of res.Instances ?? []) if (i.ImageId) used.add(i.ImageId);
      NextToken = r.NextToken;
    } while (NextToken);
    return used;
  }
}

export function snapshotIds(image: Image): string[] {
  return (image.BlockDeviceMappings ?? []).flatMap((m) => (m.Ebs?.SnapshotId ? [m.Ebs.SnapshotId] : []));
}
