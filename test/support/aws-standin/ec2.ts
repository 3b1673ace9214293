/**
 * EC2 (ec2Query protocol, XML answers) operations of the AWS stand-in: AMIs, snapshots and instances,
 * with the validation, state transitions and error codes the real service uses.
 */
import { createHash } from "node:crypto";
import { fail } from "./errors.js";
import { QueryParams, decodeToken, encodeToken, globMatch, queryFilters, queryTags } from "./params.js";
import type { QueryFilter } from "./params.js";
import {
  defaultSecurityGroup,
  mainRouteTable,
  type HandlerContext,
  type StandinState,
  type ResolvedOptions,
} from "./state.js";
import type {
  Ec2BlockDeviceMapping,
  Ec2FastRestore,
  Ec2Image,
  Ec2Instance,
  Ec2Snapshot,
  ImageSeed,
  InstanceStateName,
  RegionState,
  Ec2Route,
  RouteTableSeed,
  SecurityGroupSeed,
  SubnetSeed,
} from "./types.js";
import type { XmlObject, XmlValue } from "./xml.js";

export type Ec2Handler = (ctx: HandlerContext, params: QueryParams) => XmlObject;

const STATE_CODES: Record<InstanceStateName, number> = {
  pending: 0,
  running: 16,
  "shutting-down": 32,
  terminated: 48,
  stopping: 64,
  stopped: 80,
};

// ---------------------------------------------------------------- helpers

function idFormat(id: string, prefix: string): boolean {
  return new RegExp(`^${prefix}-([0-9a-f]{8}|[0-9a-f]{17})$`).test(id);
}

function checkAmiId(id: string): void {
  if (!idFormat(id, "ami")) fail("InvalidAMIID.Malformed", `Invalid id: "${id}" (expecting "ami-...")`);
}

function getImage(region: RegionState, id: string): Ec2Image {
  checkAmiId(id);
  const img = region.ec2.images.get(id);
  if (!img) fail("InvalidAMIID.NotFound", `The image id '[${id}]' does not exist`);
  return img;
}

/** An AMI that is not deregistered (a deregistered one lingers in DescribeImages, but uses nothing). */
function registered(img: Ec2Image): boolean {
  return img.state !== "deregistered";
}

/** The image, which must still be registered: a lingering deregistered one is "no longer available". */
function getRegisteredImage(region: RegionState, id: string): Ec2Image {
  const img = getImage(region, id);
  if (!registered(img)) fail("InvalidAMIID.Unavailable", `The image id '[${id}]' is no longer available`);
  return img;
}

function tagList(tags: Record<string, string>): XmlValue {
  const entries = Object.entries(tags);
  return entries.length ? entries.map(([key, value]) => ({ key, value })) : undefined;
}

function checkTagKeys(tags: Record<string, string>): void {
  for (const key of Object.keys(tags)) {
    if (key.toLowerCase().startsWith("aws:")) {
      fail("InvalidParameterValue", `Tag keys starting with 'aws:' are reserved for internal use`);
    }
    if (key.length > 128)
      fail("InvalidParameterValue", `Tag key exceeds the maximum length of 128 characters`);
  }
}

function addTags(target: Record<string, string>, tags: Record<string, string>): void {
  checkTagKeys(tags);
  const merged = { ...target, ...tags };
  if (Object.keys(merged).length > 50)
    fail("TagLimitExceeded", "The maximum number of tags (50) has been reached.");
  Object.assign(target, tags);
}

/** TagSpecification.N -> tags per resource type. */
function tagSpecifications(params: QueryParams, allowed: string[]): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  for (const spec of params.structs("TagSpecification")) {
    const type = spec.get("ResourceType") ?? "";
    if (!allowed.includes(type)) {
      fail("InvalidParameterValue", `'${type}' is not a valid taggable resource type for this operation.`);
    }
    const tags = queryTags(spec);
    checkTagKeys(tags);
    out.set(type, { ...(out.get(type) ?? {}), ...tags });
  }
  return out;
}

/** AND across filters, OR across one filter's values; `*`/`?` wildcards. Unknown filters are refused. */
function matchesFilters(
  filters: QueryFilter[],
  valuesOf: (name: string) => string[] | undefined,
  tags: Record<string, string>,
): boolean {
  return filters.every((f) => {
    let have: string[] | undefined;
    if (f.name.startsWith("tag:")) {
      const v = tags[f.name.slice(4)];
      have = v === undefined ? [] : [v];
    } else if (f.name === "tag-key") {
      have = Object.keys(tags);
    } else if (f.name === "tag-value") {
      have = Object.values(tags);
    } else {
      have = valuesOf(f.name);
    }
    if (have === undefined) fail("InvalidParameterValue", `The filter '${f.name}' is invalid`);
    return f.values.some((pattern) => have.some((v) => globMatch(pattern, v)));
  });
}

function ownerMatches(
  owners: string[],
  ownerId: string,
  ownerAlias: string | undefined,
  accountId: string,
): boolean {
  if (owners.length === 0) return true;
  return owners.some((o) => (o === "self" ? ownerId === accountId : o === ownerId || o === ownerAlias));
}

/** MaxResults/NextToken over a list. */
function paginate<T>(
  items: T[],
  params: QueryParams,
  scope: string,
  max = 1000,
  /** Page size when the request sets no MaxResults (AWS may page anyway); undefined: everything. */
  unasked?: number,
): { page: T[]; nextToken?: string } {
  const maxResults =
    params.int("MaxResults") ??
    (unasked !== undefined && !params.has("ImageId") && !params.has("InstanceId") ? unasked : undefined);
  const token = params.get("NextToken");
  let start = 0;
  if (token !== undefined) {
    const decoded = decodeToken(token, scope);
    if (decoded === undefined) fail("InvalidNextToken", "The token provided is invalid.");
    start = decoded;
  }
  if (maxResults === undefined) return { page: items.slice(start) };
  if (maxResults < 1 || maxResults > max) {
    fail(
      "InvalidParameterValue",
      `Value ( ${maxResults} ) for parameter maxResults is invalid. Expecting a value between 1 and ${max}.`,
    );
  }
  const end = start + maxResults;
  return {
    page: items.slice(start, end),
    ...(end < items.length ? { nextToken: encodeToken(end, scope) } : {}),
  };
}

/** Request fingerprint for idempotency: the form without Action, Version and ClientToken. */
function fingerprint(params: QueryParams): string {
  const entries = Object.entries(params.flat).filter(
    ([k]) => !["Action", "Version", "ClientToken"].includes(k),
  );
  return JSON.stringify(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function isArmInstanceType(instanceType: string): boolean {
  const family = instanceType.split(".")[0] ?? "";
  return family === "a1" || /^[a-z]+\d+g[a-z-]*$/.test(family);
}

function roundToMinute(d: Date): Date {
  return new Date(Math.round(d.getTime() / 60_000) * 60_000);
}

function parseTime(value: string, name: string): Date {
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) fail("InvalidParameterValue", `Invalid value '${value}' for ${name}`);
  return d;
}

function checkImageName(name: string): void {
  if (name.length < 3 || name.length > 128 || !/^[A-Za-z0-9()[\] ./\-'@_]+$/.test(name)) {
    fail(
      "InvalidAMIName.Malformed",
      `AMI names must be between 3 and 128 characters long, and may contain letters, numbers, '(', ')', '.', '-', '/' and '_'`,
    );
  }
}

function checkUniqueName(region: RegionState, name: string, ownerId: string): void {
  for (const img of region.ec2.images.values()) {
    if (img.name === name && img.ownerId === ownerId && registered(img)) {
      fail("InvalidAMIName.Duplicate", `AMI name ${name} is already in use by AMI ${img.imageId}`);
    }
  }
}

function newSnapshot(
  all: StandinState,
  region: RegionState,
  ownerId: string,
  now: Date,
  fields: Partial<Ec2Snapshot> & { volumeSize: number; description: string },
): Ec2Snapshot {
  const snap: Ec2Snapshot = {
    snapshotId: all.nextId("snap"),
    volumeId: all.nextId("vol"),
    state: "completed",
    progress: "100%",
    startTime: now.toISOString(),
    ownerId,
    encrypted: false,
    tags: {},
    ...fields,
  };
  region.ec2.snapshots.set(snap.snapshotId, snap);
  return snap;
}

// ---------------------------------------------------------------- seeding (addImage, RegisterImage)

export function seedImage(
  all: StandinState,
  options: ResolvedOptions,
  regionName: string,
  seed: ImageSeed,
): { imageId: string; snapshotIds: string[] } {
  const region = all.region(regionName);
  const now = options.now();
  const ownerId = seed.ownerId ?? options.accountId;
  const imageId = seed.imageId ?? all.nextId("ami");
  if (region.ec2.images.has(imageId)) throw new Error(`addImage: ${imageId} already exists in ${regionName}`);
  checkUniqueName(region, seed.name, ownerId);
  const rootDeviceName = seed.rootDeviceName ?? seed.blockDeviceMappings?.[0]?.deviceName ?? "/dev/xvda";
  const requested: Ec2BlockDeviceMapping[] = seed.blockDeviceMappings ?? [
    {
      deviceName: rootDeviceName,
      volumeSize: seed.rootVolumeSize ?? 8,
      volumeType: "gp3",
      deleteOnTermination: true,
    },
  ];
  const mappings = requested.map((m) => {
    if (m.noDevice || m.virtualName) return { ...m };
    const existing = m.snapshotId ? region.ec2.snapshots.get(m.snapshotId) : undefined;
    const snap =
      existing ??
      newSnapshot(all, region, ownerId, now, {
        ...(m.snapshotId ? { snapshotId: m.snapshotId } : {}),
        volumeSize: m.volumeSize ?? 8,
        description: `Created by CreateImage for ${imageId}`,
        encrypted: m.encrypted ?? false,
        ...(m.kmsKeyId ? { kmsKeyId: m.kmsKeyId } : {}),
      });
    return {
      volumeType: "gp3",
      deleteOnTermination: true,
      encrypted: snap.encrypted,
      ...m,
      snapshotId: snap.snapshotId,
      volumeSize: m.volumeSize ?? snap.volumeSize,
    };
  });
  const { rootVolumeSize: _r, blockDeviceMappings: _b, ...fields } = seed;
  const image: Ec2Image = {
    state: "available",
    ownerId,
    public: false,
    architecture: "x86_64",
    creationDate: now.toISOString(),
    imageType: "machine",
    rootDeviceType: "ebs",
    virtualizationType: "hvm",
    hypervisor: "xen",
    enaSupport: true,
    tags: {},
    pendingReads: 0,
    ...fields,
    imageId,
    rootDeviceName,
    blockDeviceMappings: mappings,
  };
  region.ec2.images.set(imageId, image);
  return {
    imageId,
    snapshotIds: mappings.map((m) => m.snapshotId).filter((s): s is string => s !== undefined),
  };
}

// ---------------------------------------------------------------- rendering

function renderMapping(m: Ec2BlockDeviceMapping): XmlObject {
  if (m.noDevice) return { deviceName: m.deviceName, noDevice: "" };
  if (m.virtualName) return { deviceName: m.deviceName, virtualName: m.virtualName };
  return {
    deviceName: m.deviceName,
    ebs: {
      deleteOnTermination: m.deleteOnTermination,
      iops: m.iops,
      snapshotId: m.snapshotId,
      volumeSize: m.volumeSize,
      volumeType: m.volumeType,
      throughput: m.throughput,
      kmsKeyId: m.kmsKeyId,
      encrypted: m.encrypted,
    },
  };
}

function renderImage(img: Ec2Image): XmlObject {
  return {
    imageId: img.imageId,
    imageLocation: `${img.ownerId}/${img.name}`,
    imageState: img.state,
    imageOwnerId: img.ownerId,
    creationDate: img.creationDate,
    isPublic: img.public,
    architecture: img.architecture,
    imageType: img.imageType,
    sriovNetSupport: img.sriovNetSupport,
    imageOwnerAlias: img.ownerAlias,
    name: img.name,
    description: img.description,
    rootDeviceType: img.rootDeviceType,
    rootDeviceName: img.rootDeviceName,
    blockDeviceMapping: img.blockDeviceMappings.map(renderMapping),
    virtualizationType: img.virtualizationType,
    tagSet: tagList(img.tags),
    hypervisor: img.hypervisor,
    enaSupport: img.enaSupport,
    bootMode: img.bootMode,
    imdsSupport: img.imdsSupport,
    tpmSupport: img.tpmSupport,
    deprecationTime: img.deprecationTime,
    sourceImageId: img.sourceImageId,
    sourceImageRegion: img.sourceImageRegion,
    platformDetails: "Linux/UNIX",
    usageOperation: "RunInstances",
  };
}

function renderState(state: InstanceStateName): XmlObject {
  return { code: STATE_CODES[state], name: state };
}

const USER_SHUTDOWN = {
  code: "Client.UserInitiatedShutdown",
  message: "Client.UserInitiatedShutdown: User initiated shutdown",
};

/** What EC2 says of an instance it could not start because its volume's KMS key was refused. */
export const KMS_LAUNCH_FAILURE = {
  code: "Client.InternalError",
  message: "Client.InternalError: Client error on launch",
};

/**
 * EC2 gives up on an instance it accepted but cannot start (its launchFailure): it goes to shutting-down (then
 * terminated) with that state reason, and its volumes go.
 */
export function endFailedLaunch(region: RegionState, inst: Ec2Instance, final = false): void {
  if (!inst.launchFailure) return;
  inst.state = final ? "terminated" : "shutting-down";
  inst.pendingReads = final ? 0 : 1;
  inst.stateReason = inst.launchFailure;
  inst.stateTransitionReason = inst.launchFailure.message;
  for (const b of inst.blockDeviceMappings) region.ec2.volumes.delete(b.volumeId);
}

function renderInstance(inst: Ec2Instance): XmlObject {
  return {
    instanceId: inst.instanceId,
    imageId: inst.imageId,
    instanceState: renderState(inst.state),
    privateDnsName: inst.privateDnsName,
    dnsName: "",
    reason: inst.stateTransitionReason,
    keyName: inst.keyName,
    amiLaunchIndex: inst.amiLaunchIndex,
    instanceType: inst.instanceType,
    launchTime: inst.launchTime,
    placement: { availabilityZone: inst.availabilityZone, groupName: "", tenancy: "default" },
    monitoring: { state: "disabled" },
    subnetId: inst.subnetId,
    vpcId: inst.vpcId,
    privateIpAddress: inst.privateIpAddress,
    sourceDestCheck: true,
    groupSet: inst.securityGroupIds.map((groupId) => ({ groupId, groupName: groupId })),
    stateReason:
      inst.state === "terminated" || inst.state === "shutting-down"
        ? (inst.stateReason ?? USER_SHUTDOWN)
        : undefined,
    architecture: inst.architecture,
    rootDeviceType: "ebs",
    rootDeviceName: inst.rootDeviceName,
    blockDeviceMapping: inst.blockDeviceMappings.map((b) => ({
      deviceName: b.deviceName,
      ebs: {
        volumeId: b.volumeId,
        status: "attached",
        attachTime: b.attachTime,
        deleteOnTermination: b.deleteOnTermination,
      },
    })),
    instanceLifecycle: inst.instanceLifecycle,
    spotInstanceRequestId: inst.spotInstanceRequestId,
    virtualizationType: "hvm",
    clientToken: inst.clientToken,
    tagSet: tagList(inst.tags),
    hypervisor: "xen",
    iamInstanceProfile: inst.iamInstanceProfile,
    ebsOptimized: false,
    enaSupport: true,
    metadataOptions: { state: "applied", ...inst.metadataOptions },
    platformDetails: "Linux/UNIX",
    usageOperation: "RunInstances",
  };
}

function renderReservation(region: RegionState, reservationId: string, instanceIds?: Set<string>): XmlObject {
  const res = region.ec2.reservations.get(reservationId);
  if (!res) throw new Error(`stand-in: reservation ${reservationId} vanished`);
  const instances = res.instanceIds
    .filter((id) => !instanceIds || instanceIds.has(id))
    .map((id) => region.ec2.instances.get(id))
    .filter((i): i is Ec2Instance => i !== undefined);
  return {
    reservationId: res.reservationId,
    ownerId: res.ownerId,
    groupSet: res.securityGroupIds.map((groupId) => ({ groupId, groupName: groupId })),
    instancesSet: instances.map(renderInstance),
  };
}

// ---------------------------------------------------------------- images

const describeImages: Ec2Handler = (ctx, p) => {
  const region = ctx.state;
  const ids = p.list("ImageId");
  const owners = p.list("Owner");
  const filters = queryFilters(p);
  const includeDeprecated = p.bool("IncludeDeprecated") ?? false;
  if (ids.length && p.get("MaxResults") !== undefined) {
    fail(
      "InvalidParameterCombination",
      "The parameter imageIdsSet cannot be used with the parameter maxResults",
    );
  }
  ids.forEach(checkAmiId);
  const missing = ids.filter((id) => !region.ec2.images.has(id));
  if (missing.length) fail("InvalidAMIID.NotFound", `The image id '[${missing.join(", ")}]' does not exist`);
  const nowMs = ctx.now.getTime();
  const candidates = ids.length
    ? [...new Set(ids)].map((id) => region.ec2.images.get(id)).filter((i): i is Ec2Image => i !== undefined)
    : [...region.ec2.images.values()];
  const matched = candidates.filter((img) => {
    if (!ownerMatches(owners, img.ownerId, img.ownerAlias, ctx.options.accountId)) return false;
    const deprecated = img.deprecationTime !== undefined && Date.parse(img.deprecationTime) <= nowMs;
    if (deprecated && !includeDeprecated && !ids.length && img.ownerId !== ctx.options.accountId)
      return false;
    return matchesFilters(
      filters,
      (name) => {
        switch (name) {
          case "name":
            return [img.name];
          case "state":
            return [img.state];
          case "architecture":
            return [img.architecture];
          case "image-id":
            return [img.imageId];
          case "owner-id":
            return [img.ownerId];
          case "owner-alias":
            return img.ownerAlias ? [img.ownerAlias] : [];
          case "is-public":
            return [String(img.public)];
          case "description":
            return img.description ? [img.description] : [];
          case "image-type":
            return [img.imageType];
          case "root-device-type":
            return [img.rootDeviceType];
          case "root-device-name":
            return [img.rootDeviceName];
          case "virtualization-type":
            return [img.virtualizationType];
          case "hypervisor":
            return [img.hypervisor];
          case "ena-support":
            return [String(img.enaSupport)];
          case "creation-date":
            return [img.creationDate];
          case "block-device-mapping.snapshot-id":
            return img.blockDeviceMappings.map((m) => m.snapshotId).filter((s): s is string => !!s);
          case "block-device-mapping.device-name":
            return img.blockDeviceMappings.map((m) => m.deviceName);
          default:
            return undefined;
        }
      },
      img.tags,
    );
  });
  const { page, nextToken } = paginate(
    matched,
    p,
    `images:${ctx.region}`,
    1000,
    ctx.options.describePageSize,
  );
  const body: XmlObject = { imagesSet: page.map(renderImage), nextToken };
  // Deregistered AMIs linger for a number of reads, then are gone.
  for (const img of [...region.ec2.images.values()]) {
    if (img.state !== "deregistered") continue;
    img.pendingReads -= 1;
    if (img.pendingReads <= 0) region.ec2.images.delete(img.imageId);
  }
  // CopyImage results become available after a number of reads.
  for (const img of region.ec2.images.values()) {
    if (img.state !== "pending") continue;
    img.pendingReads -= 1;
    if (img.pendingReads <= 0) {
      img.pendingReads = 0;
      img.state = "available";
      for (const m of img.blockDeviceMappings) {
        const snap = m.snapshotId ? region.ec2.snapshots.get(m.snapshotId) : undefined;
        if (snap && snap.state === "pending") {
          snap.state = "completed";
          snap.progress = "100%";
        }
      }
    }
  }
  return body;
};

const deregisterImage: Ec2Handler = (ctx, p) => {
  const img = getRegisteredImage(ctx.state, p.require("ImageId"));
  if (img.ownerId !== ctx.options.accountId) fail("AuthFailure", `Not authorized for image:${img.imageId}`);
  // It lingers in DescribeImages as `deregistered` for a while (options.deregisteredReads), then is gone.
  img.state = "deregistered";
  img.pendingReads = ctx.options.deregisteredReads;
  if (img.pendingReads <= 0) ctx.state.ec2.images.delete(img.imageId);
  // Its snapshots are released a little later (options.snapshotInUseReads).
  if (ctx.options.snapshotInUseReads > 0 && !p.bool("DeleteAssociatedSnapshots")) {
    for (const m of img.blockDeviceMappings) {
      const snap = m.snapshotId ? ctx.state.ec2.snapshots.get(m.snapshotId) : undefined;
      if (snap) snap.releasing = { reads: ctx.options.snapshotInUseReads, imageId: img.imageId };
    }
  }
  if (p.bool("DeleteAssociatedSnapshots")) {
    const results = img.blockDeviceMappings
      .map((m) => m.snapshotId)
      .filter((s): s is string => s !== undefined)
      .map((snapshotId) => {
        const inUse = [...ctx.state.ec2.images.values()].some(
          (other) => registered(other) && other.blockDeviceMappings.some((m) => m.snapshotId === snapshotId),
        );
        if (!inUse) ctx.state.ec2.snapshots.delete(snapshotId);
        return { snapshotId, returnCode: inUse ? "error-snapshot-in-use" : "success" };
      });
    return { return: true, deleteSnapshotResultSet: results };
  }
  return { return: true };
};

/** The request's ClientToken: EC2 takes at most 64 ASCII characters. */
function clientTokenOf(p: QueryParams): string | undefined {
  const token = p.get("ClientToken");
  if (token !== undefined && token.length > 64) {
    fail(
      "InvalidParameterValue",
      `Value (${token}) for parameter clientToken is invalid. Length exceeds maximum of 64 characters.`,
    );
  }
  return token;
}

const copyImage: Ec2Handler = (ctx, p) => {
  const sourceRegion = p.require("SourceRegion");
  const sourceImageId = p.require("SourceImageId");
  const name = p.require("Name");
  checkImageName(name);
  const token = clientTokenOf(p);
  const print = fingerprint(p);
  if (token !== undefined) {
    const seen = ctx.state.ec2.copyTokens.get(token);
    if (seen) {
      if (seen.fingerprint !== print) {
        fail(
          "IdempotentParameterMismatch",
          "Arguments on this idempotent request are inconsistent with arguments used in previous request(s).",
        );
      }
      return { imageId: seen.imageId };
    }
  }
  const source = getImage(ctx.all.region(sourceRegion), sourceImageId);
  if (source.state !== "available") {
    fail("IncorrectState", `Image ${sourceImageId} in ${sourceRegion} is not in the 'available' state`);
  }
  const encryptedParam = p.bool("Encrypted");
  const kmsKeyId = p.get("KmsKeyId");
  if (kmsKeyId !== undefined && encryptedParam !== true) {
    fail("InvalidParameterDependency", "The parameter KmsKeyId requires the parameter Encrypted to be set.");
  }
  const region = ctx.state;
  checkUniqueName(region, name, ctx.options.accountId);
  const tagSpecs = tagSpecifications(p, ["image", "snapshot"]);
  const imageId = ctx.all.nextId("ami");
  const sourceSnapshots = ctx.all.region(sourceRegion).ec2.snapshots;
  const mappings = source.blockDeviceMappings.map((m) => {
    if (!m.snapshotId) return { ...m };
    const srcSnap = sourceSnapshots.get(m.snapshotId);
    const encrypted = encryptedParam === true || (srcSnap?.encrypted ?? m.encrypted ?? false);
    const key = encrypted ? (kmsKeyId ?? srcSnap?.kmsKeyId ?? "alias/aws/ebs") : undefined;
    const snap = newSnapshot(ctx.all, region, ctx.options.accountId, ctx.now, {
      volumeSize: srcSnap?.volumeSize ?? m.volumeSize ?? 8,
      description: `Copied for DestinationAmi ${imageId} from SourceAmi ${sourceImageId} for SourceSnapshot ${m.snapshotId}. Task created on ${ctx.now.toISOString()}.`,
      state: "pending",
      progress: "0%",
      encrypted,
      ...(key ? { kmsKeyId: key } : {}),
      tags: { ...(tagSpecs.get("snapshot") ?? {}) },
    });
    return { ...m, snapshotId: snap.snapshotId, encrypted, ...(key ? { kmsKeyId: key } : {}) };
  });
  const description = p.get("Description") ?? source.description;
  const image: Ec2Image = {
    ...source,
    imageId,
    name,
    ...(description !== undefined ? { description } : { description: undefined }),
    state: "pending",
    ownerId: ctx.options.accountId,
    ownerAlias: undefined,
    public: false,
    creationDate: ctx.now.toISOString(),
    blockDeviceMappings: mappings,
    tags: { ...(p.bool("CopyImageTags") ? source.tags : {}), ...(tagSpecs.get("image") ?? {}) },
    deprecationTime: undefined,
    sourceImageId,
    sourceImageRegion: sourceRegion,
    pendingReads: ctx.options.copyPendingReads,
  };
  if (image.pendingReads <= 0) {
    image.state = "available";
    for (const m of mappings) {
      const snap = m.snapshotId ? region.ec2.snapshots.get(m.snapshotId) : undefined;
      if (snap) Object.assign(snap, { state: "completed", progress: "100%" });
    }
  }
  region.ec2.images.set(imageId, image);
  if (token !== undefined) region.ec2.copyTokens.set(token, { fingerprint: print, imageId });
  return { imageId };
};

const enableImageDeprecation: Ec2Handler = (ctx, p) => {
  const img = getRegisteredImage(ctx.state, p.require("ImageId"));
  if (img.ownerId !== ctx.options.accountId) fail("AuthFailure", `Not authorized for image:${img.imageId}`);
  const at = roundToMinute(parseTime(p.require("DeprecateAt"), "DeprecateAt"));
  if (at.getTime() < roundToMinute(ctx.now).getTime()) {
    fail("InvalidParameterValue", "The deprecation time can't be in the past.");
  }
  if (at.getTime() > ctx.now.getTime() + 10 * 366 * 86_400_000) {
    fail("InvalidParameterValue", "The deprecation time can't be more than 10 years in the future.");
  }
  img.deprecationTime = at.toISOString();
  return { return: true };
};

// ---------------------------------------------------------------- tags and snapshots

const createTags: Ec2Handler = (ctx, p) => {
  const resources = p.list("ResourceId");
  if (!resources.length) fail("MissingParameter", "The request must contain the parameter resourceIdSet");
  const tags = queryTags(p);
  const targets = resources.map((id) => {
    const ec2 = ctx.state.ec2;
    if (id.startsWith("ami-")) return getRegisteredImage(ctx.state, id).tags;
    if (id.startsWith("snap-")) {
      const snap = ec2.snapshots.get(id);
      if (!snap) fail("InvalidSnapshot.NotFound", `The snapshot '${id}' does not exist.`);
      return snap.tags;
    }
    if (id.startsWith("i-")) {
      const inst = ec2.instances.get(id);
      if (!inst) fail("InvalidInstanceID.NotFound", `The instance ID '${id}' does not exist`);
      return inst.tags;
    }
    if (id.startsWith("vol-")) {
      const vol = ec2.volumes.get(id);
      if (!vol) fail("InvalidVolume.NotFound", `The volume '${id}' does not exist.`);
      return vol.tags;
    }
    return fail("InvalidID", `The ID '${id}' is not valid`);
  });
  checkTagKeys(tags);
  for (const target of targets) addTags(target, tags);
  return { return: true };
};

function renderSnapshot(s: Ec2Snapshot): XmlObject {
  return {
    snapshotId: s.snapshotId,
    volumeId: s.volumeId,
    status: s.state,
    startTime: s.startTime,
    progress: s.progress,
    ownerId: s.ownerId,
    volumeSize: s.volumeSize,
    description: s.description,
    encrypted: s.encrypted,
    kmsKeyId: s.kmsKeyId,
    tagSet: tagList(s.tags),
    storageTier: "standard",
  };
}

const describeSnapshots: Ec2Handler = (ctx, p) => {
  const ids = p.list("SnapshotId");
  const owners = p.list("Owner");
  const filters = queryFilters(p);
  const snaps = ctx.state.ec2.snapshots;
  const missing = ids.filter((id) => !snaps.has(id));
  if (missing.length)
    fail("InvalidSnapshot.NotFound", `The snapshot '${missing.join(", ")}' does not exist.`);
  const candidates = ids.length
    ? [...new Set(ids)].map((id) => snaps.get(id)).filter((s): s is Ec2Snapshot => s !== undefined)
    : [...snaps.values()];
  const matched = candidates.filter(
    (s) =>
      ownerMatches(owners, s.ownerId, undefined, ctx.options.accountId) &&
      matchesFilters(
        filters,
        (name) => {
          switch (name) {
            case "snapshot-id":
              return [s.snapshotId];
            case "status":
              return [s.state];
            case "owner-id":
              return [s.ownerId];
            case "description":
              return [s.description];
            case "volume-id":
              return [s.volumeId];
            case "volume-size":
              return [String(s.volumeSize)];
            case "encrypted":
              return [String(s.encrypted)];
            case "progress":
              return [s.progress];
            default:
              return undefined;
          }
        },
        s.tags,
      ),
  );
  const { page, nextToken } = paginate(
    matched,
    p,
    `snapshots:${ctx.region}`,
    1000,
    ctx.options.describePageSize,
  );
  return { snapshotSet: page.map(renderSnapshot), nextToken };
};

const deleteSnapshot: Ec2Handler = (ctx, p) => {
  const id = p.require("SnapshotId");
  const snap = ctx.state.ec2.snapshots.get(id);
  if (!snap) fail("InvalidSnapshot.NotFound", `The snapshot '${id}' does not exist.`);
  const user = [...ctx.state.ec2.images.values()].find(
    (img) => registered(img) && img.blockDeviceMappings.some((m) => m.snapshotId === id),
  );
  if (user) fail("InvalidSnapshot.InUse", `The snapshot ${id} is currently in use by ${user.imageId}`);
  if (snap.releasing && snap.releasing.reads > 0) {
    snap.releasing.reads -= 1;
    fail("InvalidSnapshot.InUse", `The snapshot ${id} is currently in use by ${snap.releasing.imageId}`);
  }
  // As EC2 answered when Fast Snapshot Restore came out: it must be disabled in every zone first (stricter than
  // EC2 today, which disables it itself; a snapshot still `disabling` is refused too).
  const fast = [...ctx.state.ec2.fastRestores.values()].find(
    (f) => f.snapshotId === id && f.state !== "disabled",
  );
  if (fast) {
    fail(
      "InvalidSnapshot.InUse",
      `The snapshot ${id} is currently enabled for fast restores in ${fast.availabilityZone}. Fast snapshot restores must be disabled within all Availability Zones before the snapshot may be deleted.`,
    );
  }
  for (const [key, f] of ctx.state.ec2.fastRestores)
    if (f.snapshotId === id) ctx.state.ec2.fastRestores.delete(key);
  ctx.state.ec2.snapshots.delete(id);
  return { return: true };
};

// ---------------------------------------------------------------- subnets

/** Seed a subnet (not of the default VPC) in one of the region's zones. */
export function seedSubnet(all: StandinState, regionName: string, seed: SubnetSeed): string {
  const region = all.region(regionName);
  if (!region.ec2.zones.includes(seed.availabilityZone)) {
    throw new Error(
      `addSubnet: ${seed.availabilityZone} is not a zone of ${regionName} (${region.ec2.zones.join(", ")})`,
    );
  }
  const subnetId = seed.subnetId ?? all.nextId("subnet");
  const vpcId = seed.vpcId ?? "vpc-0a0b0c0d0e0f00001";
  const group = defaultSecurityGroup(vpcId);
  if (!region.ec2.securityGroups.has(group.groupId)) region.ec2.securityGroups.set(group.groupId, group);
  // A new VPC's main route table has its local route only: a private subnet until a test adds a route.
  if (![...region.ec2.routeTables.values()].some((t) => t.vpcId === vpcId && t.main)) {
    const table = mainRouteTable(vpcId, "10.0.0.0/8", false);
    region.ec2.routeTables.set(table.routeTableId, table);
  }
  region.ec2.subnets.set(subnetId, {
    subnetId,
    vpcId,
    availabilityZone: seed.availabilityZone,
    cidrBlock: seed.cidrBlock ?? "10.0.0.0/24",
    defaultForAz: false,
  });
  return subnetId;
}

// ---------------------------------------------------------------- security groups

/** Seed a security group (in the region's default VPC unless `vpcId`); its id. */
export function seedSecurityGroup(all: StandinState, regionName: string, seed: SecurityGroupSeed): string {
  const region = all.region(regionName);
  const vpcId = seed.vpcId ?? [...region.ec2.subnets.values()].find((s) => s.defaultForAz)!.vpcId;
  for (const g of region.ec2.securityGroups.values()) {
    if (g.vpcId === vpcId && g.groupName === seed.groupName)
      throw new Error(`addSecurityGroup: ${vpcId} has a group named ${seed.groupName} (${g.groupId})`);
  }
  const groupId = seed.groupId ?? all.nextId("sg");
  region.ec2.securityGroups.set(groupId, {
    groupId,
    groupName: seed.groupName,
    vpcId,
    description: seed.groupName,
    ingress: seed.ingress ?? [],
  });
  return groupId;
}

/** Seed a route table (of the default VPC unless `vpcId`); `main` replaces the VPC's main table. Its id. */
export function seedRouteTable(all: StandinState, regionName: string, seed: RouteTableSeed): string {
  const region = all.region(regionName);
  const vpcId = seed.vpcId ?? [...region.ec2.subnets.values()].find((s) => s.defaultForAz)!.vpcId;
  for (const id of seed.subnetIds ?? []) {
    const subnet = region.ec2.subnets.get(id);
    if (!subnet || subnet.vpcId !== vpcId) throw new Error(`addRouteTable: ${id} is no subnet of ${vpcId}`);
    for (const t of region.ec2.routeTables.values()) t.subnetIds = t.subnetIds.filter((x) => x !== id);
  }
  if (seed.main) {
    for (const [id, t] of region.ec2.routeTables)
      if (t.vpcId === vpcId && t.main) region.ec2.routeTables.delete(id);
  }
  const routeTableId = seed.routeTableId ?? all.nextId("rtb");
  region.ec2.routeTables.set(routeTableId, {
    routeTableId,
    vpcId,
    main: seed.main ?? false,
    subnetIds: seed.subnetIds ?? [],
    routes: seed.routes ?? [],
  });
  return routeTableId;
}

/** Target fields as EC2 names them, by the target's prefix. */
const ROUTE_TARGET_FIELDS: [string, string][] = [
  ["nat-", "natGatewayId"],
  ["tgw-", "transitGatewayId"],
  ["pcx-", "vpcPeeringConnectionId"],
  ["eigw-", "egressOnlyInternetGatewayId"],
  ["eni-", "networkInterfaceId"],
];

function renderRoute(r: Ec2Route): XmlObject {
  const destination = r.destination.startsWith("pl-")
    ? { destinationPrefixListId: r.destination }
    : r.destination.includes(":")
      ? { destinationIpv6CidrBlock: r.destination }
      : { destinationCidrBlock: r.destination };
  const field = ROUTE_TARGET_FIELDS.find(([prefix]) => r.target.startsWith(prefix))?.[1] ?? "gatewayId";
  return {
    ...destination,
    [field]: r.target,
    origin: r.target === "local" ? "CreateRouteTable" : "CreateRoute",
    state: r.state ?? "active",
  };
}

/** DescribeRouteTables: by RouteTableId.N and filters (vpc-id, route-table-id, association.subnet-id, association.main). */
const describeRouteTables: Ec2Handler = (ctx, p) => {
  const ids = p.list("RouteTableId");
  const filters = queryFilters(p);
  const tables = ctx.state.ec2.routeTables;
  for (const id of ids) {
    if (!/^rtb-[0-9a-f]+$/.test(id))
      fail("InvalidRouteTableId.Malformed", `Invalid id: "${id}" (expecting "rtb-...")`);
    if (!tables.has(id)) fail("InvalidRouteTableID.NotFound", `The routeTable ID '${id}' does not exist`);
  }
  const maxResults = p.int("MaxResults");
  if (maxResults !== undefined && (maxResults < 5 || maxResults > 100)) {
    fail(
      "InvalidParameterValue",
      `Value ( ${maxResults} ) for parameter maxResults is invalid. Expecting a value between 5 and 100.`,
    );
  }
  const candidates = ids.length ? [...new Set(ids)].map((id) => tables.get(id)!) : [...tables.values()];
  const matched = candidates.filter((t) =>
    matchesFilters(
      filters,
      (name) => {
        switch (name) {
          case "vpc-id":
            return [t.vpcId];
          case "route-table-id":
            return [t.routeTableId];
          case "association.subnet-id":
            return t.subnetIds;
          case "association.main":
            return [...(t.main ? ["true"] : []), ...(t.subnetIds.length ? ["false"] : [])];
          case "route.gateway-id":
            return t.routes.map((r) => r.target);
          case "route.destination-cidr-block":
            return t.routes.map((r) => r.destination);
          default:
            return undefined;
        }
      },
      {},
    ),
  );
  const { page, nextToken } = paginate(matched, p, `route-tables:${ctx.region}`, 100);
  return {
    routeTableSet: page.map((t) => ({
      routeTableId: t.routeTableId,
      vpcId: t.vpcId,
      ownerId: ctx.options.accountId,
      routeSet: t.routes.map(renderRoute),
      associationSet: [
        ...(t.main
          ? [
              {
                routeTableAssociationId: `rtbassoc-0${t.routeTableId.slice(5)}`,
                routeTableId: t.routeTableId,
                main: true,
                associationState: { state: "associated" },
              },
            ]
          : []),
        ...t.subnetIds.map((subnetId) => ({
          routeTableAssociationId: `rtbassoc-0${createHash("sha256").update(subnetId).digest("hex").slice(0, 16)}`,
          routeTableId: t.routeTableId,
          subnetId,
          main: false,
          associationState: { state: "associated" },
        })),
      ],
      propagatingVgwSet: [],
      tagSet: [],
    })),
    nextToken,
  };
};

/** DescribeSecurityGroups: by GroupId.N and filters (group-id, group-name, vpc-id, description, owner-id). */
const describeSecurityGroups: Ec2Handler = (ctx, p) => {
  const ids = p.list("GroupId");
  const names = p.list("GroupName");
  const filters = queryFilters(p);
  const groups = ctx.state.ec2.securityGroups;
  for (const id of ids) {
    if (!/^sg-[0-9a-f]+$/.test(id))
      fail("InvalidGroupId.Malformed", `Invalid id: "${id}" (expecting "sg-...")`);
    if (!groups.has(id)) fail("InvalidGroup.NotFound", `The security group '${id}' does not exist`);
  }
  const defaultVpc = [...ctx.state.ec2.subnets.values()].find((s) => s.defaultForAz)?.vpcId;
  for (const name of names) {
    // GroupName finds groups of the default VPC only; other VPCs' need the group-name filter.
    if (![...groups.values()].some((g) => g.groupName === name && g.vpcId === defaultVpc)) {
      fail(
        "InvalidGroup.NotFound",
        `The security group '${name}' does not exist in default VPC '${defaultVpc}'`,
      );
    }
  }
  const maxResults = p.int("MaxResults");
  if (maxResults !== undefined && (ids.length || names.length)) {
    fail(
      "InvalidParameterCombination",
      "The parameter groupIds cannot be used with the parameter maxResults",
    );
  }
  if (maxResults !== undefined && (maxResults < 5 || maxResults > 1000)) {
    fail(
      "InvalidParameterValue",
      `Value ( ${maxResults} ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.`,
    );
  }
  let candidates = [...groups.values()];
  if (ids.length) candidates = candidates.filter((g) => ids.includes(g.groupId));
  if (names.length)
    candidates = candidates.filter((g) => names.includes(g.groupName) && g.vpcId === defaultVpc);
  const matched = candidates.filter((g) =>
    matchesFilters(
      filters,
      (name) => {
        switch (name) {
          case "group-id":
            return [g.groupId];
          case "group-name":
            return [g.groupName];
          case "vpc-id":
            return [g.vpcId];
          case "description":
            return [g.description];
          case "owner-id":
            return [ctx.options.accountId];
          default:
            return undefined;
        }
      },
      {},
    ),
  );
  const { page, nextToken } = paginate(matched, p, `security-groups:${ctx.region}`, 1000);
  return {
    securityGroupInfo: page.map((g) => ({
      ownerId: ctx.options.accountId,
      groupId: g.groupId,
      groupName: g.groupName,
      groupDescription: g.description,
      vpcId: g.vpcId,
      ipPermissions: g.ingress.map((r) => ({
        ipProtocol: r.protocol,
        ...(r.protocol === "-1" ? {} : { fromPort: r.fromPort, toPort: r.toPort }),
        groups: (r.groups ?? []).map((groupId) => ({ userId: ctx.options.accountId, groupId })),
        ipRanges: (r.cidrs ?? []).map((cidrIp) => ({ cidrIp })),
        ipv6Ranges: [],
        prefixListIds: (r.prefixLists ?? []).map((prefixListId) => ({ prefixListId })),
      })),
      ipPermissionsEgress: [
        {
          ipProtocol: "-1",
          groups: [],
          ipRanges: [{ cidrIp: "0.0.0.0/0" }],
          ipv6Ranges: [],
          prefixListIds: [],
        },
      ],
    })),
    nextToken,
  };
};

const describeSubnets: Ec2Handler = (ctx, p) => {
  const ids = p.list("SubnetId");
  const filters = queryFilters(p);
  const subnets = ctx.state.ec2.subnets;
  for (const id of ids) {
    if (!/^subnet-[0-9a-f]+$/.test(id))
      fail("InvalidSubnetID.Malformed", `Invalid id: "${id}" (expecting "subnet-...")`);
    if (!subnets.has(id)) fail("InvalidSubnetID.NotFound", `The subnet ID '${id}' does not exist`);
  }
  const maxResults = p.int("MaxResults");
  if (ids.length && maxResults !== undefined) {
    fail(
      "InvalidParameterCombination",
      "The parameter subnetIds cannot be used with the parameter maxResults",
    );
  }
  if (maxResults !== undefined && (maxResults < 5 || maxResults > 1000)) {
    fail(
      "InvalidParameterValue",
      `Value ( ${maxResults} ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.`,
    );
  }
  const candidates = ids.length ? [...new Set(ids)].map((id) => subnets.get(id)!) : [...subnets.values()];
  const matched = candidates.filter((s) =>
    matchesFilters(
      filters,
      (name) => {
        switch (name) {
          case "subnet-id":
            return [s.subnetId];
          case "vpc-id":
            return [s.vpcId];
          case "availability-zone":
            return [s.availabilityZone];
          case "default-for-az":
          case "defaultForAz":
            return [String(s.defaultForAz)];
          case "state":
            return ["available"];
          case "cidr-block":
            return [s.cidrBlock];
          default:
            return undefined;
        }
      },
      {},
    ),
  );
  const { page, nextToken } = paginate(matched, p, `subnets:${ctx.region}`, 1000);
  return {
    subnetSet: page.map((s) => ({
      subnetId: s.subnetId,
      subnetArn: `arn:aws:ec2:${ctx.region}:${ctx.options.accountId}:subnet/${s.subnetId}`,
      state: "available",
      vpcId: s.vpcId,
      ownerId: ctx.options.accountId,
      cidrBlock: s.cidrBlock,
      availableIpAddressCount: 4091,
      availabilityZone: s.availabilityZone,
      defaultForAz: s.defaultForAz,
      mapPublicIpOnLaunch: s.defaultForAz,
    })),
    nextToken,
  };
};

// ---------------------------------------------------------------- fast snapshot restores

function renderFastRestore(f: Ec2FastRestore): XmlObject {
  return {
    snapshotId: f.snapshotId,
    availabilityZone: f.availabilityZone,
    state: f.state,
    stateTransitionReason: f.stateTransitionReason,
    ownerId: f.ownerId,
    enablingTime: f.enablingTime,
    optimizingTime: f.optimizingTime,
    enabledTime: f.enabledTime,
    disablingTime: f.disablingTime,
    disabledTime: f.disabledTime,
  };
}

/**
 * The request of Enable/DisableFastSnapshotRestores: snapshot ids (well-formed) and zones of this region. A zone
 * that is not the region's is refused as a whole, as EC2 does an unknown zone; a snapshot that does not exist
 * fails on its own, in `unsuccessful`, zone by zone.
 */
function fastRestoreRequest(ctx: HandlerContext, p: QueryParams): { snapshots: string[]; zones: string[] } {
  const snapshots = p.list("SourceSnapshotId");
  const zones = p.list("AvailabilityZone");
  if (!snapshots.length) fail("MissingParameter", "The request must contain the parameter SourceSnapshotId");
  if (p.list("AvailabilityZoneId").length) {
    if (zones.length)
      fail(
        "InvalidParameterCombination",
        "Either AvailabilityZone or AvailabilityZoneId must be specified, but not both",
      );
    // Zone ids name zones differently per account: the stand-in does not model them (imgtool sends names).
    fail(
      "InvalidParameterValue",
      "The AWS stand-in does not model AvailabilityZoneId: send AvailabilityZone",
    );
  }
  if (!zones.length) fail("MissingParameter", "The request must contain the parameter AvailabilityZone");
  for (const id of snapshots)
    if (!idFormat(id, "snap"))
      fail("InvalidSnapshotID.Malformed", `Invalid id: "${id}" (expecting "snap-...")`);
  const bad = zones.filter((z) => !ctx.state.ec2.zones.includes(z));
  if (bad.length) fail("InvalidParameterValue", `Invalid availability zone: [${bad.join(", ")}]`);
  return { snapshots: [...new Set(snapshots)], zones: [...new Set(zones)] };
}

const enableFastSnapshotRestores: Ec2Handler = (ctx, p) => {
  const { snapshots, zones } = fastRestoreRequest(ctx, p);
  const successful: XmlObject[] = [];
  const unsuccessful: XmlObject[] = [];
  const now = ctx.now.toISOString();
  for (const id of snapshots) {
    const snap = ctx.state.ec2.snapshots.get(id);
    const refuse = (code: string, message: string) =>
      unsuccessful.push({
        snapshotId: id,
        fastSnapshotRestoreStateErrorSet: zones.map((availabilityZone) => ({
          availabilityZone,
          error: { code, message },
        })),
      });
    if (!snap) {
      refuse("InvalidSnapshot.NotFound", `The snapshot '${id}' does not exist.`);
      continue;
    }
    if (snap.state !== "completed") {
      refuse("IncorrectState", `Snapshot '${id}' is not in the 'completed' state.`);
      continue;
    }
    for (const zone of zones) {
      const key = `${id} ${zone}`;
      let f = ctx.state.ec2.fastRestores.get(key);
      // Enabling again where it is enabled (or on its way) changes nothing; a disabled one starts over.
      if (!f || f.state === "disabled" || f.state === "disabling") {
        f = {
          snapshotId: id,
          availabilityZone: zone,
          state: "enabling",
          stateTransitionReason: "Client.UserInitiated",
          ownerId: snap.ownerId,
          enablingTime: now,
          pendingReads: ctx.options.fastRestoreReads,
        };
        ctx.state.ec2.fastRestores.set(key, f);
      }
      successful.push(renderFastRestore(f));
    }
  }
  return { successful, unsuccessful };
};

const disableFastSnapshotRestores: Ec2Handler = (ctx, p) => {
  const { snapshots, zones } = fastRestoreRequest(ctx, p);
  const successful: XmlObject[] = [];
  const unsuccessful: XmlObject[] = [];
  const now = ctx.now.toISOString();
  for (const id of snapshots) {
    if (!ctx.state.ec2.snapshots.has(id)) {
      unsuccessful.push({
        snapshotId: id,
        fastSnapshotRestoreStateErrorSet: zones.map((availabilityZone) => ({
          availabilityZone,
          error: { code: "InvalidSnapshot.NotFound", message: `The snapshot '${id}' does not exist.` },
        })),
      });
      continue;
    }
    for (const zone of zones) {
      const f = ctx.state.ec2.fastRestores.get(`${id} ${zone}`);
      // Never enabled there: EC2 answers it as disabled.
      if (!f) {
        successful.push({ snapshotId: id, availabilityZone: zone, state: "disabled" });
        continue;
      }
      if (f.state !== "disabled" && f.state !== "disabling") {
        Object.assign(f, {
          state: "disabling",
          stateTransitionReason: "Client.UserInitiated",
          disablingTime: now,
          pendingReads: ctx.options.fastRestoreReads,
        });
      }
      successful.push(renderFastRestore(f));
    }
  }
  return { successful, unsuccessful };
};

const describeFastSnapshotRestores: Ec2Handler = (ctx, p) => {
  const filters = queryFilters(p);
  const restores = [...ctx.state.ec2.fastRestores.values()];
  const matched = restores.filter((f) =>
    matchesFilters(
      filters,
      (name) => {
        switch (name) {
          case "snapshot-id":
            return [f.snapshotId];
          case "availability-zone":
            return [f.availabilityZone];
          case "owner-id":
            return [f.ownerId];
          case "state":
            return [f.state];
          default:
            return undefined;
        }
      },
      {},
    ),
  );
  const { page, nextToken } = paginate(matched, p, `fast-restores:${ctx.region}`, 200);
  const body: XmlObject = { fastSnapshotRestoreSet: page.map(renderFastRestore), nextToken };
  // enabling -> optimizing -> enabled, disabling -> disabled, a step per a number of reads.
  const now = ctx.now.toISOString();
  for (const f of restores) {
    if (f.state === "enabled" || f.state === "disabled") continue;
    f.pendingReads -= 1;
    if (f.pendingReads > 0) continue;
    f.pendingReads = ctx.options.fastRestoreReads;
    if (f.state === "enabling") Object.assign(f, { state: "optimizing", optimizingTime: now });
    else if (f.state === "optimizing") Object.assign(f, { state: "enabled", enabledTime: now });
    else Object.assign(f, { state: "disabled", disabledTime: now });
  }
  return body;
};

// ---------------------------------------------------------------- instances

function isBase64(s: string): boolean {
  return s.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(s);
}

/** vCPUs of an instance type, from its size (`large` 2, `xlarge` 4, `4xlarge` 16, `medium` 1; t* up to large 2). */
function vcpusOf(instanceType: string): number {
  const [family = "", size = ""] = instanceType.split(".");
  if (family.startsWith("t") && ["nano", "micro", "small", "medium", "large"].includes(size)) return 2;
  const fixed: Record<string, number> = { nano: 1, micro: 1, small: 1, medium: 1, large: 2, xlarge: 4 };
  const m = /^(\d+)xlarge$/.exec(size);
  return fixed[size] ?? (m ? Number(m[1]) * 4 : 96);
}

/** EC2's limits (options.ec2Limits): the Spot service-linked role, the on-demand vCPU quota, capacity. */
function checkLimits(ctx: HandlerContext, instanceType: string, count: number, spot: boolean): void {
  const limits = ctx.options.ec2Limits;
  if (!limits) return;
  if (spot && limits.spotServiceLinkedRole === false) {
    fail(
      "AuthFailure.ServiceLinkedRoleCreationNotPermitted",
      "The provided credentials do not have permission to create the service-linked role for EC2 Spot Instances.",
      403,
    );
  }
  const live = [...ctx.state.ec2.instances.values()].filter((i) => ["pending", "running"].includes(i.state));
  if (!spot && limits.onDemandVcpuQuota !== undefined) {
    const used = live
      .filter((i) => i.instanceLifecycle !== "spot")
      .reduce((n, i) => n + vcpusOf(i.instanceType), 0);
    if (used + count * vcpusOf(instanceType) > limits.onDemandVcpuQuota) {
      fail(
        "VcpuLimitExceeded",
        `You have requested more vCPU capacity than your current vCPU limit of ${limits.onDemandVcpuQuota} allows for the instance bucket that the specified instance type belongs to. Please visit http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit.`,
      );
    }
  }
  const capacity = limits.capacity?.[instanceType];
  if (capacity !== undefined) {
    const inUse = live.filter((i) => i.instanceType === instanceType).length;
    if (inUse + count > capacity) {
      fail(
        "InsufficientInstanceCapacity",
        `We currently do not have sufficient ${instanceType} capacity in the Availability Zone you requested (${ctx.region}a). Our system will be working on provisioning additional capacity. You can currently get ${instanceType} capacity by not specifying an Availability Zone in your request or choosing ${ctx.region}b, ${ctx.region}c.`,
        500,
      );
    }
  }
}

const runInstances: Ec2Handler = (ctx, p) => {
  const region = ctx.state;
  const token = clientTokenOf(p);
  const print = fingerprint(p);
  if (token !== undefined) {
    const seen = region.ec2.runTokens.get(token);
    if (seen) {
      if (seen.fingerprint !== print) {
        fail(
          "IdempotentParameterMismatch",
          "Arguments on this idempotent request are inconsistent with arguments used in previous request(s).",
        );
      }
      return renderReservation(region, seen.reservationId);
    }
  }
  const imageId = p.require("ImageId");
  const image = getImage(region, imageId);
  if (image.state !== "available") {
    fail("InvalidAMIID.Unavailable", `The image id '[${imageId}]' is not available (state ${image.state})`);
  }
  const minCount = p.int("MinCount");
  const maxCount = p.int("MaxCount");
  if (minCount === undefined) fail("MissingParameter", "The request must contain the parameter MinCount");
  if (maxCount === undefined) fail("MissingParameter", "The request must contain the parameter MaxCount");
  if (minCount < 1) fail("InvalidParameterValue", `Value (${minCount}) for parameter minCount is invalid.`);
  if (maxCount < minCount) {
    fail(
      "InvalidParameterValue",
      `Value (${maxCount}) for parameter maxCount is invalid. Must be >= minCount.`,
    );
  }
  const instanceType = p.get("InstanceType") ?? "m1.small";
  if (!/^[a-z0-9-]+\.[a-z0-9-]+$/.test(instanceType)) {
    fail("InvalidParameterValue", `Invalid value '${instanceType}' for InstanceType.`);
  }
  const typeArch = isArmInstanceType(instanceType) ? "arm64" : "x86_64";
  if (typeArch !== image.architecture) {
    fail(
      "InvalidParameterValue",
      `The architecture '${typeArch}' of the specified instance type does not match the architecture '${image.architecture}' of the specified AMI. Specify an instance type and an AMI that have matching architectures, and try again.`,
    );
  }
  const userData = p.get("UserData");
  if (userData !== undefined) {
    if (!isBase64(userData)) fail("InvalidParameterValue", "Invalid BASE64 encoding of user data.");
    if (Buffer.from(userData, "base64").length > 16_384) {
      fail("InvalidParameterValue", "User data is limited to 16384 bytes");
    }
  }
  // The subnet (else a default subnet: the default VPC) and the groups, which must be of that VPC; no group:
  // the VPC's default group, as EC2 gives it.
  const subnetId = p.get("SubnetId");
  const subnet = subnetId === undefined ? undefined : ctx.state.ec2.subnets.get(subnetId);
  if (subnetId !== undefined && !subnet) {
    fail("InvalidSubnetID.NotFound", `The subnet ID '${subnetId}' does not exist`);
  }
  const vpcId = (subnet ?? [...ctx.state.ec2.subnets.values()].find((s) => s.defaultForAz))?.vpcId;
  const requestedGroups = p.list("SecurityGroupId");
  for (const g of requestedGroups) {
    const group = ctx.state.ec2.securityGroups.get(g);
    if (!group) fail("InvalidGroup.NotFound", `The security group '${g}' does not exist in VPC '${vpcId}'`);
    if (group.vpcId !== vpcId) {
      fail(
        "InvalidParameter",
        `Security group ${g} and subnet ${subnetId ?? "(default)"} belong to different networks.`,
      );
    }
  }
  const groups = requestedGroups.length
    ? requestedGroups
    : [...ctx.state.ec2.securityGroups.values()]
        .filter((g) => g.vpcId === vpcId && g.groupName === "default")
        .map((g) => g.groupId);
  const profileName = p.get("IamInstanceProfile.Name");
  const profileArn = p.get("IamInstanceProfile.Arn");
  const iamInstanceProfile =
    profileName !== undefined || profileArn !== undefined
      ? {
          arn: profileArn ?? `arn:aws:iam::${ctx.options.accountId}:instance-profile/${profileName}`,
          id: `AIPA${createHash("sha256")
            .update(profileArn ?? profileName ?? "")
            .digest("hex")
            .toUpperCase()
            .slice(0, 17)}`,
        }
      : undefined;
  const tokens =
    p.get("MetadataOptions.HttpTokens") ?? (image.imdsSupport === "v2.0" ? "required" : "optional");
  if (!["optional", "required"].includes(tokens)) {
    fail("InvalidParameterValue", `Value (${tokens}) for parameter HttpTokens is invalid.`);
  }
  const hopLimit = p.int("MetadataOptions.HttpPutResponseHopLimit") ?? (image.imdsSupport === "v2.0" ? 2 : 1);
  if (hopLimit < 1 || hopLimit > 64) {
    fail("InvalidParameterValue", `Value (${hopLimit}) for parameter HttpPutResponseHopLimit is invalid.`);
  }
  const httpEndpoint = p.get("MetadataOptions.HttpEndpoint") ?? "enabled";
  const metadataTags = p.get("MetadataOptions.InstanceMetadataTags") ?? "disabled";
  for (const [n, v] of [
    ["HttpEndpoint", httpEndpoint],
    ["InstanceMetadataTags", metadataTags],
  ] as const) {
    if (!["enabled", "disabled"].includes(v))
      fail("InvalidParameterValue", `Value (${v}) for parameter ${n} is invalid.`);
  }
  const marketType = p.get("InstanceMarketOptions.MarketType");
  if (marketType !== undefined && !["spot", "capacity-block"].includes(marketType)) {
    fail("InvalidParameterValue", `Value (${marketType}) for parameter MarketType is invalid.`);
  }
  const tagSpecs = tagSpecifications(p, [
    "instance",
    "volume",
    "network-interface",
    "spot-instances-request",
  ]);
  // Block devices: the image's mappings, overridden by the request's.
  const overrides = new Map(
    p.structs("BlockDeviceMapping").map((m) => [m.require("DeviceName"), m] as const),
  );
  const devices: {
    deviceName: string;
    size: number;
    volumeType: string;
    snapshotId?: string;
    deleteOnTermination: boolean;
    encrypted: boolean;
  }[] = [];
  for (const m of image.blockDeviceMappings) {
    if (m.noDevice || m.virtualName) continue;
    const o = overrides.get(m.deviceName);
    overrides.delete(m.deviceName);
    if (o?.get("NoDevice") !== undefined) continue;
    const snapSize = m.volumeSize ?? 8;
    const size = o?.int("Ebs.VolumeSize") ?? snapSize;
    if (size < snapSize) {
      fail(
        "InvalidBlockDeviceMapping",
        `Volume of size ${size}GB is smaller than snapshot '${m.snapshotId}', expect size >= ${snapSize}GB`,
      );
    }
    devices.push({
      deviceName: m.deviceName,
      size,
      volumeType: o?.get("Ebs.VolumeType") ?? m.volumeType ?? "gp3",
      ...(m.snapshotId ? { snapshotId: m.snapshotId } : {}),
      deleteOnTermination: o?.bool("Ebs.DeleteOnTermination") ?? m.deleteOnTermination ?? true,
      encrypted: o?.bool("Ebs.Encrypted") ?? m.encrypted ?? false,
    });
  }
  for (const [deviceName, o] of overrides) {
    if (o.get("NoDevice") !== undefined || o.get("VirtualName") !== undefined) continue;
    const size = o.int("Ebs.VolumeSize");
    if (size === undefined)
      fail("InvalidBlockDeviceMapping", `The device '${deviceName}' needs Ebs.VolumeSize`);
    devices.push({
      deviceName,
      size,
      volumeType: o.get("Ebs.VolumeType") ?? "gp3",
      deleteOnTermination: o.bool("Ebs.DeleteOnTermination") ?? true,
      encrypted: o.bool("Ebs.Encrypted") ?? false,
    });
  }
  checkLimits(ctx, instanceType, maxCount, marketType === "spot");
  // EBS encryption by default with a customer-managed key: every new volume is encrypted with it.
  const defaultKey = ctx.options.ec2Limits?.ebsDefaultKmsKeyArn;
  if (defaultKey) for (const d of devices) d.encrypted = true;
  // Validation done: create.
  const now = ctx.now.toISOString();
  const reservationId = ctx.all.nextId("r");
  const instanceIds: string[] = [];
  for (let i = 0; i < maxCount; i++) {
    const instanceId = ctx.all.nextId("i");
    const n = ctx.all.nextNumber();
    const ip = `10.0.${Math.floor(n / 250) % 256}.${(n % 250) + 4}`;
    const blockDeviceMappings = devices.map((d) => {
      const volumeId = ctx.all.nextId("vol");
      region.ec2.volumes.set(volumeId, {
        volumeId,
        size: d.size,
        volumeType: d.volumeType,
        ...(d.snapshotId ? { snapshotId: d.snapshotId } : {}),
        instanceId,
        deviceName: d.deviceName,
        deleteOnTermination: d.deleteOnTermination,
        encrypted: d.encrypted,
        ...(d.encrypted && defaultKey ? { kmsKeyId: defaultKey } : {}),
        tags: { ...(tagSpecs.get("volume") ?? {}) },
      });
      return {
        deviceName: d.deviceName,
        volumeId,
        deleteOnTermination: d.deleteOnTermination,
        attachTime: now,
      };
    });
    const inst: Ec2Instance = {
      instanceId,
      reservationId,
      imageId,
      instanceType,
      state: "pending",
      pendingReads: ctx.options.instancePendingReads,
      stateTransitionReason: "",
      privateIpAddress: ip,
      privateDnsName: `ip-${ip.replace(/\./g, "-")}.${ctx.region}.compute.internal`,
      launchTime: now,
      architecture: image.architecture,
      availabilityZone: subnet?.availabilityZone ?? p.get("Placement.AvailabilityZone") ?? `${ctx.region}a`,
      ...(subnetId ? { subnetId } : {}),
      ...(vpcId ? { vpcId } : {}),
      securityGroupIds: groups,
      ...(iamInstanceProfile ? { iamInstanceProfile } : {}),
      ...(p.get("KeyName") !== undefined ? { keyName: p.get("KeyName") } : {}),
      ...(userData !== undefined ? { userData } : {}),
      metadataOptions: {
        httpTokens: tokens,
        httpPutResponseHopLimit: hopLimit,
        httpEndpoint,
        httpProtocolIpv6: p.get("MetadataOptions.HttpProtocolIpv6") ?? "disabled",
        instanceMetadataTags: metadataTags,
      },
      blockDeviceMappings,
      rootDeviceName: image.rootDeviceName,
      tags: { ...(tagSpecs.get("instance") ?? {}) },
      ...(token !== undefined ? { clientToken: token } : {}),
      amiLaunchIndex: i,
      ...(marketType === "spot"
        ? { instanceLifecycle: "spot" as const, spotInstanceRequestId: ctx.all.nextId("sir") }
        : {}),
      ...(marketType === "capacity-block" ? { instanceLifecycle: "capacity-block" as const } : {}),
      launchParams: { ...p.flat },
      // EC2 accepts the launch, then cannot create the encrypted volume with the caller's permissions.
      ...(ctx.ebsKeyRefusal !== undefined ? { launchFailure: KMS_LAUNCH_FAILURE } : {}),
    };
    if (inst.pendingReads <= 0) {
      if (inst.launchFailure) endFailedLaunch(region, inst, true);
      else inst.state = "running";
    }
    region.ec2.instances.set(instanceId, inst);
    instanceIds.push(instanceId);
  }
  region.ec2.reservations.set(reservationId, {
    reservationId,
    ownerId: ctx.options.accountId,
    instanceIds,
    securityGroupIds: groups,
  });
  if (token !== undefined) region.ec2.runTokens.set(token, { fingerprint: print, reservationId });
  return renderReservation(region, reservationId);
};

function checkInstanceIds(region: RegionState, ids: string[]): void {
  for (const id of ids) {
    if (!idFormat(id, "i")) fail("InvalidInstanceID.Malformed", `Invalid id: "${id}"`);
  }
  const missing = ids.filter((id) => !region.ec2.instances.has(id));
  if (missing.length === 1)
    fail("InvalidInstanceID.NotFound", `The instance ID '${missing[0]}' does not exist`);
  if (missing.length > 1)
    fail("InvalidInstanceID.NotFound", `The instance IDs '${missing.join(", ")}' do not exist`);
}

const describeInstances: Ec2Handler = (ctx, p) => {
  const region = ctx.state;
  const ids = p.list("InstanceId");
  if (ids.length && p.get("MaxResults") !== undefined) {
    fail(
      "InvalidParameterCombination",
      "The parameter instancesSet cannot be used with the parameter maxResults",
    );
  }
  checkInstanceIds(region, ids);
  const filters = queryFilters(p);
  const wanted = new Set(ids);
  const matched = [...region.ec2.instances.values()].filter(
    (inst) =>
      (!ids.length || wanted.has(inst.instanceId)) &&
      matchesFilters(
        filters,
        (name) => {
          switch (name) {
            case "instance-id":
              return [inst.instanceId];
            case "instance-state-name":
              return [inst.state];
            case "instance-state-code":
              return [String(STATE_CODES[inst.state])];
            case "image-id":
              return [inst.imageId];
            case "instance-type":
              return [inst.instanceType];
            case "private-ip-address":
              return [inst.privateIpAddress];
            case "reservation-id":
              return [inst.reservationId];
            case "subnet-id":
              return inst.subnetId ? [inst.subnetId] : [];
            case "vpc-id":
              return inst.vpcId ? [inst.vpcId] : [];
            case "client-token":
              return inst.clientToken ? [inst.clientToken] : [];
            case "architecture":
              return [inst.architecture];
            case "availability-zone":
              return [inst.availabilityZone];
            case "instance-lifecycle":
              return inst.instanceLifecycle ? [inst.instanceLifecycle] : [];
            case "key-name":
              return inst.keyName ? [inst.keyName] : [];
            default:
              return undefined;
          }
        },
        inst.tags,
      ),
  );
  const maxResults = p.int("MaxResults");
  if (maxResults !== undefined && (maxResults < 5 || maxResults > 1000)) {
    fail(
      "InvalidParameterValue",
      `Value ( ${maxResults} ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.`,
    );
  }
  const { page, nextToken } = paginate(
    matched,
    p,
    `instances:${ctx.region}`,
    1000,
    ctx.options.describePageSize,
  );
  // Group the page by reservation, in order of first appearance.
  const byReservation = new Map<string, Set<string>>();
  for (const inst of page) {
    const set = byReservation.get(inst.reservationId) ?? new Set<string>();
    set.add(inst.instanceId);
    byReservation.set(inst.reservationId, set);
  }
  const body: XmlObject = {
    reservationSet: [...byReservation].map(([rid, set]) => renderReservation(region, rid, set)),
    nextToken,
  };
  // pending -> running, shutting-down -> terminated after a number of reads.
  for (const inst of region.ec2.instances.values()) {
    if (inst.state !== "pending" && inst.state !== "shutting-down") continue;
    inst.pendingReads -= 1;
    if (inst.pendingReads <= 0) {
      inst.pendingReads = 0;
      if (inst.state === "pending" && inst.launchFailure) endFailedLaunch(region, inst);
      else inst.state = inst.state === "pending" ? "running" : "terminated";
    }
  }
  return body;
};

const terminateInstances: Ec2Handler = (ctx, p) => {
  const region = ctx.state;
  const ids = p.list("InstanceId");
  if (!ids.length) fail("MissingParameter", "The request must contain the parameter InstanceId");
  checkInstanceIds(region, ids);
  const changes = ids.map((id) => {
    const inst = region.ec2.instances.get(id);
    if (!inst) throw new Error("unreachable");
    const previous = inst.state;
    if (previous !== "terminated" && previous !== "shutting-down") {
      inst.state = "shutting-down";
      inst.stateReason = USER_SHUTDOWN;
      inst.pendingReads = 1;
      inst.stateTransitionReason = `User initiated (${ctx.now.toISOString().replace("T", " ").slice(0, 19)} GMT)`;
      for (const b of inst.blockDeviceMappings) {
        if (b.deleteOnTermination) region.ec2.volumes.delete(b.volumeId);
      }
    }
    return { instanceId: id, currentState: renderState(inst.state), previousState: renderState(previous) };
  });
  return { instancesSet: changes };
};

export const ec2Handlers: Readonly<Record<string, Ec2Handler>> = {
  DescribeImages: describeImages,
  DeregisterImage: deregisterImage,
  CopyImage: copyImage,
  EnableImageDeprecation: enableImageDeprecation,
  CreateTags: createTags,
  DescribeSnapshots: describeSnapshots,
  DeleteSnapshot: deleteSnapshot,
  DescribeSubnets: describeSubnets,
  DescribeSecurityGroups: describeSecurityGroups,
  DescribeRouteTables: describeRouteTables,
  EnableFastSnapshotRestores: enableFastSnapshotRestores,
  DisableFastSnapshotRestores: disableFastSnapshotRestores,
  DescribeFastSnapshotRestores: describeFastSnapshotRestores,
  RunInstances: runInstances,
  DescribeInstances: describeInstances,
  TerminateInstances: terminateInstances,
};
