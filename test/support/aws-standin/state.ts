/**
 * In-memory state of the AWS stand-in, per region, plus the id generator and the context every
 * operation handler receives.
 */
import { createHash } from "node:crypto";
import type { StandinIam } from "./iam.js";
import type { Ec2RouteTable, Ec2SecurityGroup, RegionState, StandinOptions } from "./types.js";

export interface ResolvedOptions {
  accountId: string;
  registry?: { endpoint: string; user: string; password: string };
  tokenTtlSeconds: number;
  copyPendingReads: number;
  instancePendingReads: number;
  deregisteredReads: number;
  snapshotInUseReads: number;
  fastRestoreReads: number;
  imageValidationMs: number;
  newParameterReads: number;
  ec2Limits?: NonNullable<StandinOptions["ec2Limits"]>;
  now: () => Date;
  iam?: StandinIam;
  describePageSize?: number;
}

export function resolveOptions(opts: StandinOptions = {}): ResolvedOptions {
  return {
    accountId: opts.accountId ?? "123456789012",
    ...(opts.registry ? { registry: opts.registry } : {}),
    tokenTtlSeconds: opts.tokenTtlSeconds ?? 43_200,
    copyPendingReads: opts.copyPendingReads ?? 2,
    instancePendingReads: opts.instancePendingReads ?? 1,
    deregisteredReads: opts.deregisteredReads ?? 2,
    snapshotInUseReads: opts.snapshotInUseReads ?? 0,
    fastRestoreReads: opts.fastRestoreReads ?? 1,
    imageValidationMs: opts.imageValidationMs ?? 0,
    newParameterReads: opts.newParameterReads ?? 0,
    ...(opts.ec2Limits ? { ec2Limits: opts.ec2Limits } : {}),
    now: opts.now ?? (() => new Date()),
    ...(opts.iam ? { iam: opts.iam } : {}),
    ...(opts.describePageSize !== undefined ? { describePageSize: opts.describePageSize } : {}),
  };
}

/** The Availability Zones every region of the stand-in has. */
export const ZONE_LETTERS = ["a", "b", "c"] as const;

/**
 * A VPC's main route table as EC2 creates it: its local route; a default VPC's also routes 0.0.0.0/0 to its
 * internet gateway.
 */
export function mainRouteTable(vpcId: string, cidr: string, internet: boolean): Ec2RouteTable {
  const hex = createHash("sha256").update(vpcId).digest("hex");
  return {
    routeTableId: `rtb-0${hex.slice(0, 16)}`,
    vpcId,
    main: true,
    subnetIds: [],
    routes: [
      { destination: cidr, target: "local" },
      ...(internet ? [{ destination: "0.0.0.0/0", target: `igw-0${hex.slice(16, 32)}` }] : []),
    ],
  };
}

/** A VPC's `default` security group as EC2 creates it: all inbound traffic from its own members. */
export function defaultSecurityGroup(vpcId: string): Ec2SecurityGroup {
  const groupId = `sg-0${createHash("sha256").update(vpcId).digest("hex").slice(0, 16)}`;
  return {
    groupId,
    groupName: "default",
    vpcId,
    description: "default VPC security group",
    ingress: [{ protocol: "-1", groups: [groupId] }],
  };
}

function emptyRegion(region: string): RegionState {
  const zones = ZONE_LETTERS.map((l) => `${region}${l}`);
  // The default VPC's subnets, one per zone, with ids derived from the region (stable across resets).
  const vpcId = `vpc-0${Buffer.from(region).toString("hex").slice(-16).padStart(16, "0")}`;
  const subnets = new Map(
    zones.map((zone, i) => {
      const subnetId = `subnet-0${Buffer.from(zone).toString("hex").slice(-16).padStart(16, "0")}`;
      return [
        subnetId,
        { subnetId, vpcId, availabilityZone: zone, cidrBlock: `172.31.${i * 16}.0/20`, defaultForAz: true },
      ] as const;
    }),
  );
  const defaultGroup = defaultSecurityGroup(vpcId);
  const mainTable = mainRouteTable(vpcId, "172.31.0.0/16", true);
  return {
    region,
    ec2: {
      fastRestores: new Map(),
      subnets,
      securityGroups: new Map([[defaultGroup.groupId, defaultGroup]]),
      routeTables: new Map([[mainTable.routeTableId, mainTable]]),
      zones,
      images: new Map(),
      snapshots: new Map(),
      volumes: new Map(),
      instances: new Map(),
      reservations: new Map(),
      runTokens: new Map(),
      copyTokens: new Map(),
    },
    ssm: { parameters: new Map(), droppedWrites: [], validating: [] },
    ecr: { repositories: new Map() },
  };
}

/** All regions' state; regions spring into existence on first use. */
export class StandinState {
  private readonly byRegion = new Map<string, RegionState>();
  private counter = 0;

  /** The state of one region (created empty on first access). */
  region(name: string): RegionState {
    let r = this.byRegion.get(name);
    if (!r) {
      r = emptyRegion(name);
      this.byRegion.set(name, r);
    }
    return r;
  }

  /** Regions touched so far. */
  get regions(): ReadonlyMap<string, RegionState> {
    return this.byRegion;
  }

  /** A fresh EC2-style id: `ami-0…` with 17 hex digits, unique across regions. */
  nextId(prefix: string): string {
    this.counter += 1;
    return `${prefix}-0${this.counter.toString(16).padStart(16, "0")}`;
  }

  /** A fresh number (IPs, request ids). */
  nextNumber(): number {
    this.counter += 1;
    return this.counter;
  }

  clear(): void {
    this.byRegion.clear();
    this.counter = 0;
  }
}

/** What an operation handler gets besides its input. */
export interface HandlerContext {
  region: string;
  /** This region's state. */
  state: RegionState;
  /** All regions (CopyImage reads the source region). */
  all: StandinState;
  options: ResolvedOptions;
  now: Date;
  /** RunInstances: why EC2 could not use the account's default EBS key with the caller's permissions, if so. */
  ebsKeyRefusal?: string;
}
