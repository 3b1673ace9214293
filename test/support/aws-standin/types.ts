/**
 * Public types of the AWS stand-in: options, the handle tests get back, recorded requests, faults,
 * and the shapes of the in-memory per-region state (EC2, SSM, ECR).
 */

import type { StandinIam } from "./iam.js";
import type { ResourcePolicyDocument } from "../iam-referee.js";

export type Service = "ec2" | "ssm" | "ecr" | "sts";

export interface StandinOptions {
  /** Account id of the caller (owner of everything created). @default "123456789012" */
  accountId?: string;
  /** What ECR GetAuthorizationToken answers with: proxyEndpoint = endpoint, token = base64(user:password). */
  registry?: { endpoint: string; user: string; password: string };
  /** ECR token lifetime: expiresAt = now + ttl. @default 43200 */
  tokenTtlSeconds?: number;
  /** DescribeImages answers (per region) that still show a CopyImage result as `pending`. @default 2 */
  copyPendingReads?: number;
  /** DescribeInstances answers (per region) that still show a new instance as `pending`. @default 1 */
  instancePendingReads?: number;
  /**
   * DescribeImages answers (per region) that still show a deregistered AMI, in state `deregistered`, before it
   * is gone (InvalidAMIID.NotFound): EC2 shows recently deregistered images "for a short interval". @default 2
   */
  deregisteredReads?: number;
  /**
   * DeleteSnapshot answers InvalidSnapshot.InUse this many times (per snapshot) after the AMI that used it was
   * deregistered: EC2 releases a deregistered AMI's snapshots a little later (boto/boto#3019). @default 0
   */
  snapshotInUseReads?: number;
  /**
   * DescribeFastSnapshotRestores answers (per region) that a Fast Snapshot Restore stays in each passing state
   * (enabling, optimizing, disabling) before its next. @default 1
   */
  fastRestoreReads?: number;
  /**
   * How long SSM's asynchronous validation of an `aws:ec2:image` value takes (by `now`): until then the new
   * version is not readable; then it is kept if its AMI is `available`, else dropped. @default 0
   */
  imageValidationMs?: number;
  /**
   * SSM's reads are eventually consistent: GetParameter and GetParameters answer a parameter that PutParameter
   * has just created as not found this many times (per parameter) before they see it. @default 0
   */
  newParameterReads?: number;
  /**
   * EC2's limits for RunInstances, per region, as the account would meet them: `capacity` (at most this many
   * live instances of a type, any market; past it: InsufficientInstanceCapacity, HTTP 500), `onDemandVcpuQuota` (vCPUs of
   * running and pending on-demand instances; past it: VcpuLimitExceeded), `spotServiceLinkedRole: false` (the
   * account has no AWSServiceRoleForEC2Spot and the caller may not create it: a spot request fails with
   * AuthFailure.ServiceLinkedRoleCreationNotPermitted), `ebsDefaultKmsKeyArn` (EBS encryption by default with
   * this customer-managed key: every new volume is encrypted with it, and EC2 uses it with the caller's
   * permissions, kms:CreateGrant, kms:GenerateDataKeyWithoutPlaintext and kms:Decrypt through
   * `ec2.<region>.amazonaws.com`, judged by the IAM referee with the caller's policy and `ebsDefaultKmsKeyPolicy`
   * (default: AWS's default key policy, which lets the account's IAM policies decide); when one is denied,
   * RunInstances still answers `pending`, and the instance then goes to `terminated` with the state reason
   * `Client.InternalError`, as EC2 does). @default no limits
   */
  ec2Limits?: {
    capacity?: Record<string, number>;
    onDemandVcpuQuota?: number;
    spotServiceLinkedRole?: boolean;
    ebsDefaultKmsKeyArn?: string;
    ebsDefaultKmsKeyPolicy?: ResourcePolicyDocument;
  };
  /** Clock used for timestamps, token expiry and deprecation checks. @default () => new Date() */
  now?: () => Date;
  /**
   * Judge every call with the caller's IAM policy (by access key id) through the independent evaluator,
   * and answer denials as AWS does. Without it, every call is allowed.
   */
  iam?: StandinIam;
  /**
   * DescribeImages/Snapshots/Instances answer in pages of this size even when the request sets no MaxResults
   * (AWS may; callers must follow NextToken). @default everything in one answer
   */
  describePageSize?: number;
}

export interface RecordedRequest {
  service: Service;
  operation: string;
  region: string;
  /** From the SDK's `amz-sdk-request: attempt=N; max=M` header (1 when absent). */
  attempt: number;
  /** Lower-cased header names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: string;
  /** JSON 1.1: the parsed body. Query (EC2, STS): the form as a flat Record<string, string>. */
  params: unknown;
  /** HTTP status answered; 0 while unanswered, and for dropped requests or when the client went away. */
  status: number;
  /**
   * How many requests of the same service and operation were open (arrived, connection not yet closed) when
   * this one arrived, itself included: what proves calls were made in parallel, without a clock.
   */
  openAtArrival: number;
}

export type FaultKind = "throttle" | "http500" | "http503" | "slow" | "drop" | "error";

export interface FaultSpec {
  service?: Service;
  operation: string;
  /** Which calls of this operation (1-based, counted from when the fault was added) misbehave; default every call. */
  calls?: number[];
  kind: FaultKind;
  /** For kind "error" (and to override the throttle code). */
  code?: string;
  message?: string;
  /** For kind "error". @default 400 */
  status?: number;
  /** For kind "slow". @default 10000 */
  delayMs?: number;
  /** Perform the operation on the state first, then misbehave. */
  applyFirst?: boolean;
}

export interface Tag {
  Key: string;
  Value: string;
}

// ---------------------------------------------------------------- EC2 state

export type ImageState = "pending" | "available" | "failed" | "deregistered" | "disabled";

export interface Ec2BlockDeviceMapping {
  deviceName: string;
  snapshotId?: string;
  volumeSize?: number;
  volumeType?: string;
  deleteOnTermination?: boolean;
  encrypted?: boolean;
  kmsKeyId?: string;
  iops?: number;
  throughput?: number;
  noDevice?: boolean;
  virtualName?: string;
}

export interface Ec2Image {
  imageId: string;
  name: string;
  description?: string;
  state: ImageState;
  ownerId: string;
  ownerAlias?: string;
  public: boolean;
  architecture: string;
  /** ISO 8601, as EC2 answers it. */
  creationDate: string;
  imageType: string;
  rootDeviceName: string;
  rootDeviceType: string;
  virtualizationType: string;
  hypervisor: string;
  enaSupport: boolean;
  sriovNetSupport?: string;
  bootMode?: string;
  imdsSupport?: string;
  tpmSupport?: string;
  blockDeviceMappings: Ec2BlockDeviceMapping[];
  tags: Record<string, string>;
  /** ISO 8601 or undefined. */
  deprecationTime?: string;
  sourceImageId?: string;
  sourceImageRegion?: string;
  /** DescribeImages answers left that show this image as pending (CopyImage), or as deregistered. */
  pendingReads: number;
}

export interface Ec2Snapshot {
  snapshotId: string;
  volumeId: string;
  volumeSize: number;
  state: "pending" | "completed" | "error";
  progress: string;
  startTime: string;
  ownerId: string;
  description: string;
  encrypted: boolean;
  kmsKeyId?: string;
  tags: Record<string, string>;
  /** DeleteSnapshot answers InvalidSnapshot.InUse (by this AMI, just deregistered) this many more times. */
  releasing?: { reads: number; imageId: string };
}

export interface Ec2Volume {
  volumeId: string;
  size: number;
  volumeType: string;
  snapshotId?: string;
  instanceId?: string;
  deviceName?: string;
  deleteOnTermination: boolean;
  encrypted: boolean;
  kmsKeyId?: string;
  tags: Record<string, string>;
}

export type InstanceStateName =
  "pending" | "running" | "shutting-down" | "terminated" | "stopping" | "stopped";

export interface Ec2InstanceMetadataOptions {
  httpTokens: string;
  httpPutResponseHopLimit: number;
  httpEndpoint: string;
  httpProtocolIpv6: string;
  instanceMetadataTags: string;
}

export interface Ec2Instance {
  instanceId: string;
  reservationId: string;
  imageId: string;
  instanceType: string;
  state: InstanceStateName;
  /** DescribeInstances answers left before pending -> running (or shutting-down -> terminated). */
  pendingReads: number;
  stateTransitionReason: string;
  privateIpAddress: string;
  privateDnsName: string;
  launchTime: string;
  architecture: string;
  availabilityZone: string;
  subnetId?: string;
  vpcId?: string;
  securityGroupIds: string[];
  iamInstanceProfile?: { arn: string; id: string };
  keyName?: string;
  /** As sent (base64). */
  userData?: string;
  metadataOptions: Ec2InstanceMetadataOptions;
  blockDeviceMappings: {
    deviceName: string;
    volumeId: string;
    deleteOnTermination: boolean;
    attachTime: string;
  }[];
  rootDeviceName: string;
  tags: Record<string, string>;
  clientToken?: string;
  amiLaunchIndex: number;
  instanceLifecycle?: "spot" | "capacity-block";
  spotInstanceRequestId?: string;
  /** The RunInstances form (flat Query params) that created this instance. */
  launchParams: Record<string, string>;
  /** Why it left pending/running (DescribeInstances' StateReason); set on shutting-down and terminated. */
  stateReason?: { code: string; message: string };
  /** EC2 accepted the launch but cannot start it (the EBS key refused): it ends with this state reason. */
  launchFailure?: { code: string; message: string };
}

/** EBS Fast Snapshot Restore of one snapshot in one Availability Zone (EnableFastSnapshotRestores). */
export type FastRestoreState = "enabling" | "optimizing" | "enabled" | "disabling" | "disabled";

export interface Ec2FastRestore {
  snapshotId: string;
  availabilityZone: string;
  state: FastRestoreState;
  stateTransitionReason: string;
  ownerId: string;
  enablingTime?: string;
  optimizingTime?: string;
  enabledTime?: string;
  disablingTime?: string;
  disabledTime?: string;
  /** DescribeFastSnapshotRestores answers left before enabling -> optimizing -> enabled, or disabling -> disabled. */
  pendingReads: number;
}

/** One inbound rule of a security group, as DescribeSecurityGroups gives it (IpPermissions). */
export interface Ec2IngressRule {
  /** "tcp", "udp", "icmp", a protocol number, or "-1" (all traffic; no ports). */
  protocol: string;
  fromPort?: number;
  toPort?: number;
  /** Source groups (UserIdGroupPairs). */
  groups?: string[];
  /** Source IPv4 ranges (IpRanges). */
  cidrs?: string[];
  /** Source prefix lists (PrefixListIds). */
  prefixLists?: string[];
}

export interface Ec2SecurityGroup {
  groupId: string;
  groupName: string;
  vpcId: string;
  description: string;
  ingress: Ec2IngressRule[];
}

export interface SecurityGroupSeed {
  groupName: string;
  groupId?: string;
  /** Default: the region's default VPC. */
  vpcId?: string;
  ingress?: Ec2IngressRule[];
}

/** A route table: the VPC's main one (for subnets with no table of their own) or one of subnets. */
export interface Ec2RouteTable {
  routeTableId: string;
  vpcId: string;
  main: boolean;
  subnetIds: string[];
  routes: Ec2Route[];
}

/**
 * A route: destination an IPv4 or IPv6 range or a prefix list (pl-); target "local", igw-, vpce-, nat-, tgw-,
 * pcx-, eigw- (each answered in its own field, as EC2 does); state active (default) or blackhole.
 */
export interface Ec2Route {
  destination: string;
  target: string;
  state?: "active" | "blackhole";
}

export interface RouteTableSeed {
  /** Default: the region's default VPC. */
  vpcId?: string;
  routeTableId?: string;
  /** Replaces the VPC's main table. */
  main?: boolean;
  subnetIds?: string[];
  routes?: Ec2Route[];
}

export interface Ec2Subnet {
  subnetId: string;
  vpcId: string;
  availabilityZone: string;
  cidrBlock: string;
  /** A default VPC's subnet (one per Availability Zone). */
  defaultForAz: boolean;
}

export interface Ec2Reservation {
  reservationId: string;
  ownerId: string;
  instanceIds: string[];
  securityGroupIds: string[];
}

export interface Ec2State {
  images: Map<string, Ec2Image>;
  snapshots: Map<string, Ec2Snapshot>;
  volumes: Map<string, Ec2Volume>;
  instances: Map<string, Ec2Instance>;
  reservations: Map<string, Ec2Reservation>;
  /** RunInstances idempotency: ClientToken -> request fingerprint and reservation. */
  runTokens: Map<string, { fingerprint: string; reservationId: string }>;
  /** CopyImage idempotency: ClientToken -> request fingerprint and image. */
  copyTokens: Map<string, { fingerprint: string; imageId: string }>;
  /** Fast Snapshot Restore by `<snapshot id> <zone>`. */
  fastRestores: Map<string, Ec2FastRestore>;
  /** The region's subnets: its default VPC's (one per zone) and those tests add (`addSubnet`). */
  subnets: Map<string, Ec2Subnet>;
  /** The region's security groups: each VPC's `default` (all traffic from itself, as EC2 makes it) and those tests add. */
  securityGroups: Map<string, Ec2SecurityGroup>;
  /** The region's route tables: each VPC's main (the default VPC's routes to an internet gateway) and those tests add. */
  routeTables: Map<string, Ec2RouteTable>;
  /** The region's Availability Zones (`<region>a`, `b`, `c`). */
  zones: string[];
}

// ---------------------------------------------------------------- SSM state

export type SsmParameterType = "String" | "StringList" | "SecureString";

export interface SsmParameterVersion {
  version: number;
  value: string;
  type: SsmParameterType;
  dataType: string;
  tier: string;
  description?: string;
  keyId?: string;
  allowedPattern?: string;
  labels: string[];
  lastModifiedDate: Date;
  lastModifiedUser: string;
}

export interface SsmParameter {
  name: string;
  /** Readable versions, oldest first (at most 100). */
  versions: SsmParameterVersion[];
  /** Highest version number handed out, dropped writes included. */
  lastVersion: number;
  tags: Tag[];
  /** Reads left that answer it as not found (options.newParameterReads; a new parameter only). */
  unseenReads?: number;
}

export interface SsmDroppedWrite {
  name: string;
  version: number;
  value: string;
  reason: string;
}

export interface SsmState {
  parameters: Map<string, SsmParameter>;
  /** `aws:ec2:image` writes that PutParameter accepted but the asynchronous validation dropped. */
  droppedWrites: SsmDroppedWrite[];
  /** `aws:ec2:image` writes still being validated: readable (or dropped) from `at` (ms since the epoch). */
  validating: { name: string; version: SsmParameterVersion; at: number }[];
}

// ---------------------------------------------------------------- ECR state

export interface EcrImage {
  digest: string;
  tags: string[];
  pushedAt: Date;
  sizeBytes: number;
  manifest: string;
  manifestMediaType: string;
}

export interface EcrRepository {
  name: string;
  arn: string;
  uri: string;
  registryId: string;
  createdAt: Date;
  imageTagMutability: "MUTABLE" | "IMMUTABLE";
  scanOnPush: boolean;
  encryption: { encryptionType: string; kmsKey?: string };
  lifecyclePolicy?: { text: string; updatedAt: Date };
  tags: Tag[];
  /** By digest, in push order. */
  images: Map<string, EcrImage>;
}

export interface EcrState {
  repositories: Map<string, EcrRepository>;
  /**
   * The registry's scanning configuration (PutRegistryScanningConfiguration; tests set it): rules whose
   * wildcard filters pick repositories, with their frequency. A matching rule wins over the repository's own
   * scanOnPush, as ECR's registry-level (and enhanced) scanning does.
   */
  registryScanning?: {
    scanType: "BASIC" | "ENHANCED";
    rules: { scanFrequency: "SCAN_ON_PUSH" | "CONTINUOUS_SCAN" | "MANUAL"; filters: string[] }[];
  };
}

// ---------------------------------------------------------------- per region

export interface RegionState {
  readonly region: string;
  readonly ec2: Ec2State;
  readonly ssm: SsmState;
  readonly ecr: EcrState;
}

/** What `addImage` accepts: any image field, plus a name. */
export type ImageSeed = Partial<Omit<Ec2Image, "blockDeviceMappings">> & {
  name: string;
  /** Snapshots are created for mappings whose snapshotId is missing or unknown. */
  blockDeviceMappings?: Ec2BlockDeviceMapping[];
  /** Size of the root snapshot when no mappings are given. @default 8 */
  rootVolumeSize?: number;
};

/** What `addSubnet` accepts: a subnet in one of the region's zones (not of the default VPC). */
export interface SubnetSeed {
  availabilityZone: string;
  subnetId?: string;
  vpcId?: string;
  cidrBlock?: string;
}

export interface EcrImageSeed {
  digest: string;
  tags?: string[];
  sizeBytes?: number;
  pushedAt?: Date;
  manifest?: string;
  manifestMediaType?: string;
}
