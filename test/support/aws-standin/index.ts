/**
 * AWS stand-in for tests: a loopback HTTP server that the real AWS SDK v3 clients (EC2, SSM, ECR, STS)
 * talk to in the services' wire protocols, with in-memory per-region state, request recording and
 * scripted faults. Start one with `startAwsStandin()` and point `makeAwsClients({ endpoint })` at it.
 */
import { seedImage, seedRouteTable, seedSecurityGroup, seedSubnet } from "./ec2.js";
import { seedEcrImage } from "./ecr.js";
import { FaultRegistry } from "./faults.js";
import { startServer } from "./server.js";
import { StandinState, resolveOptions } from "./state.js";
import { Sessions, type SessionCredentials } from "./sts.js";
import type {
  EcrImage,
  EcrImageSeed,
  FaultSpec,
  ImageSeed,
  RecordedRequest,
  RouteTableSeed,
  SecurityGroupSeed,
  SubnetSeed,
  Service,
  StandinOptions,
} from "./types.js";

export type * from "./types.js";
export { StandinState } from "./state.js";
export type { SessionCredentials } from "./sts.js";

export interface AwsStandin {
  /** `http://127.0.0.1:PORT` */
  readonly endpoint: string;
  /** Account id the stand-in answers as (owner of everything created). */
  readonly accountId: string;
  /** Every request, in arrival order (faulted ones included). */
  readonly requests: RecordedRequest[];
  /** Recorded requests (every attempt) of one operation, optionally of one service. */
  count(operation: string, service?: Service): number;
  readonly faults: { add(spec: FaultSpec): void; clear(): void };
  /** In-memory state per region: `state.region("us-east-1").ec2.images` etc. */
  readonly state: StandinState;
  /** Seed an available AMI (with EBS snapshots) owned by the account unless `ownerId` says otherwise. */
  addImage(region: string, image: ImageSeed): { imageId: string; snapshotIds: string[] };
  /** Seed a subnet (of a VPC of its own) in one of the region's zones (`<region>a`, `b`, `c`); its id. */
  addSubnet(region: string, subnet: SubnetSeed): string;
  /** Seed a security group (of the default VPC unless `vpcId`) with its inbound rules; its id. */
  addSecurityGroup(region: string, group: SecurityGroupSeed): string;
  /** Seed a route table (of the default VPC unless `vpcId`; `main` replaces the VPC's main table); its id. */
  addRouteTable(region: string, table: RouteTableSeed): string;
  /** Seed an image into an ECR repository (created MUTABLE when missing). */
  addEcrImage(region: string, repositoryName: string, image: EcrImageSeed): EcrImage;
  /**
   * Session credentials that act as `accessKeyId` (an actor's key) and expire `ttlSeconds` from now on the
   * stand-in's clock (`options.now`); afterwards every service refuses them as AWS does.
   */
  issueSession(accessKeyId: string, ttlSeconds: number): SessionCredentials;
  /** Clear state, recorded requests, faults and sessions. */
  reset(): void;
  /** Resolves once every delayed ("slow") answer has been given or dropped: wait on this, never on a clock. */
  settled(): Promise<void>;
  close(): Promise<void>;
}

export async function startAwsStandin(opts?: StandinOptions): Promise<AwsStandin> {
  const options = resolveOptions(opts);
  const state = new StandinState();
  const faults = new FaultRegistry();
  const requests: RecordedRequest[] = [];
  const sessions = new Sessions();
  const server = await startServer({ state, options, faults, requests, sessions });
  return {
    endpoint: server.endpoint,
    accountId: options.accountId,
    requests,
    count: (operation, service) =>
      requests.filter((r) => r.operation === operation && (service === undefined || r.service === service))
        .length,
    faults: { add: (spec) => faults.add(spec), clear: () => faults.clear() },
    state,
    addImage: (region, image) => seedImage(state, options, region, image),
    addSubnet: (region, subnet) => seedSubnet(state, region, subnet),
    addSecurityGroup: (region, group) => seedSecurityGroup(state, region, group),
    addRouteTable: (region, table) => seedRouteTable(state, region, table),
    addEcrImage: (region, repositoryName, image) =>
      seedEcrImage(state, options, region, repositoryName, image),
    issueSession: (accessKeyId, ttlSeconds) => sessions.issue(accessKeyId, ttlSeconds, options.now()),
    reset: () => {
      sessions.clear();
      state.clear();
      requests.length = 0;
      faults.clear();
    },
    settled: () => server.settled(),
    close: () => server.close(),
  };
}
