/**
 * The aws target of `imgtool launch`: one RunInstances per group (MinCount = MaxCount = the group's count), with
 * a ClientToken of run id, role, type and market; IMDSv2 required, an encrypted root volume, tags on instances
 * and volumes. Spot requests that meet a capacity error fall back to on-demand (a new request: new token).
 */
import type { Instance } from "@aws-sdk/client-ec2";
import type { Config } from "../config/load.js";
import type { Role } from "../config/schema.js";
import { FailureError, UsageError, errorName } from "../errors.js";
import type { EventSink } from "../events.js";
import type { Ec2Instances } from "../aws/ec2-instances.js";
import { clientToken, type Market } from "./ids.js";
import { EC2_USER_DATA_TOO_LARGE, userDataRefused } from "./cloud-init.js";
import type { BootContext, FoundInstance, GroupRequest, LaunchBackend, StartedInstance } from "./types.js";
import { TAG, runRecordsPath } from "../config/tags.js";
import type { ReadyRecordStore } from "../aws/ready-records.js";
import { runRecordWaiter } from "./aws-ready.js";

/** RunInstances errors that mean "no spot capacity for this request": fall back to on-demand. */
export const SPOT_CAPACITY_ERRORS = [
  "InsufficientInstanceCapacity",
  "InsufficientCapacity",
  "InsufficientHostCapacity",
  "SpotMaxPriceTooLow",
  "MaxSpotInstanceCountExceeded",
  "UnfulfillableCapacity",
] as const;

export interface AwsLaunchDeps {
  config: Config;
  region: string;
  /** The EC2 adapter, made only when the first call is due (after the checks that need no API call). */
  ec2: () => Promise<Ec2Instances>;
  events: EventSink;
  /** Allow a launch without aws.instance_profile (the instances could not read their secret). Tests only. */
  allowNoInstanceProfile?: boolean;
  /**
   * The instances' readiness records (SSM, made when first used): with it the launch waits for every instance's
   * record and terminate removes a run's records; without it (tests of the EC2 calls alone) neither happens.
   */
  records?: {
    store: () => Promise<ReadyRecordStore>;
    /** @default 3000 */
    intervalMs?: number;
    sleep?: (ms: number) => Promise<void>;
    now?: () => number;
  };
}

/**
 * IMDSv2's hop limit for an instance of `role`: 2 for a Compose stack, whose services sit behind the project's
 * bridge (one more hop: with 1, the token's answer never reaches them, and a service that needs the instance
 * role, roles.<role>.run.instance_permissions, gets no credentials; EC2's guide says 2 for containers); 1 for
 * the workers, which run on the host's network.
 */
export function imdsHopLimit(config: Config, role: Role): 1 | 2 {
  return config.roles[role].stack ? 2 : 1;
}

export function awsBackend(deps: AwsLaunchDeps): LaunchBackend {
  const { config, events } = deps;
  const ec2 = deps.ec2;
  const rootDevices = new Map<string, string>();
  const now = deps.records?.now ?? Date.now;
  /** Per instance this backend started: its run and when RunInstances answered with it. */
  const startedAt = new Map<string, { runId: string; at: number }>();
  const waiters = new Map<string, ReturnType<typeof runRecordWaiter>>();

  const toStarted = (i: Instance, req: GroupRequest, market: Market): StartedInstance => ({
    id: i.InstanceId ?? "",
    role: req.role,
    instanceType: i.InstanceType ?? req.instanceType,
    arch: req.arch,
    market,
    privateIp: i.PrivateIpAddress ?? "",
    state: i.State?.Name ?? "pending",
  });

  const runOnce = async (req: GroupRequest, runId: string, market: Market): Promise<StartedInstance[]> => {
    const token = clientToken(runId, req.role, req.instanceType, market);
    const tags = Object.entries(req.tags).map(([Key, Value]) => ({ Key, Value }));
    const root = rootDevices.get(req.imageId);
    events({
      type: "launch",
      role: req.role,
      message: `RunInstances: ${req.count} x ${req.instanceType} (${req.arch}, ${market}) from ${req.imageId}, token ${token}`,
      data: { instanceType: req.instanceType, count: req.count, market, token, imageId: req.imageId },
    });
    const ec2Client = await ec2();
    const instances = await explainDenial(market, req, () =>
      ec2Client.run({
        ImageId: req.imageId,
        InstanceType: req.instanceType as never,
        MinCount: req.count,
        MaxCount: req.count,
        ClientToken: token,
        UserData: req.userData.bytes.toString("base64"),
        MetadataOptions: {
          HttpTokens: "required",
          HttpEndpoint: "enabled",
          HttpPutResponseHopLimit: imdsHopLimit(config, req.role),
        },
        ...(root
          ? {
              BlockDeviceMappings: [
                { DeviceName: root, Ebs: { Encrypted: true, DeleteOnTermination: true, VolumeType: "gp3" } },
              ],
            }
          : {}),
        // The spot request is tagged too: the launch policy allows RunInstances only on tagged resources.
        TagSpecifications: [
          { ResourceType: "instance", Tags: tags },
          { ResourceType: "volume", Tags: tags },
          ...(market === "spot" ? [{ ResourceType: "spot-instances-request" as const, Tags: tags }] : []),
        ],
        InstanceInitiatedShutdownBehavior: "terminate",
        ...(config.aws.instance_profile ? { IamInstanceProfile: { Name: config.aws.instance_profile } } : {}),
        ...(config.aws.subnet_id ? { SubnetId: config.aws.subnet_id } : {}),
        ...(config.aws.security_group_ids.length ? { SecurityGroupIds: config.aws.security_group_ids } : {}),
        ...(config.aws.key_name ? { KeyName: config.aws.key_name } : {}),
        ...(market === "spot"
          ? {
              InstanceMarketOptions: {
                MarketType: "spot",
                SpotOptions: { SpotInstanceType: "one-time", InstanceInterruptionBehavior: "terminate" },
              },
            }
          : {}),
      }),
    );
    // EC2 keeps a ClientToken for days: a run id used before gets that launch's instances back (or a mismatch).
    const ended = instances.filter((i) => ENDED_STATES.has(i.State?.Name ?? ""));
    if (ended.length)
      throw runIdReused(runId, ended.map((i) => `${i.InstanceId} ${i.State?.Name}`).join(", "));
    const at = now();
    for (const i of instances) if (i.InstanceId) startedAt.set(i.InstanceId, { runId, at });
    if (instances.length !== req.count) {
      throw new FailureError(
        `RunInstances for ${req.count} x ${req.instanceType} answered with ${instances.length} instance(s).`,
      );
    }
    return instances.map((i) => toStarted(i, req, market));
  };

  return {
    target: "aws",

    async bootContext(): Promise<BootContext> {
      return {
        region: deps.region,
        registry: { user: "AWS", auth: "ecr", passwordFile: "" },
        secret: {
          source: "ssm",
          parameter: config.aws.api_key_parameter ?? `${config.aws.ssm_prefix}/secrets/orchestrator-api-key`,
        },
        orchestratorPort: config.launch.orchestrator_port,
      };
    },

    async prepare() {
      if (!config.aws.instance_profile && !deps.allowNoInstanceProfile) {
        throw new UsageError(
          "aws.instance_profile is not set: the instances could not read their secret or pull from ECR.",
          {
            fix: "Set aws.instance_profile to a profile whose role may read the API key parameter (ssm:GetParameter, kms:Decrypt) and pull from ECR.",
          },
        );
      }
    },

    async checkImages(imageIds) {
      const images = await (await ec2()).images(imageIds);
      const out = new Map<string, { rootDeviceName: string }>();
      for (const id of imageIds) {
        const img = images.find((i) => i.ImageId === id);
        if (!img || img.State !== "available") {
          throw new UsageError(
            `AMI ${id} (from the catalog) is ${img ? img.State : "not found"} in ${deps.region}. Nothing was launched.`,
            {
              fix: "`imgtool status --target aws` shows the catalog; bake again or roll back to an AMI that exists.",
            },
          );
        }
        const root = img.RootDeviceName ?? "/dev/xvda";
        rootDevices.set(id, root);
        out.set(id, { rootDeviceName: root });
      }
      return out;
    },

    async start(req, runId) {
      if (req.market !== "spot") return runOnce(req, runId, "on-demand");
      try {
        return await runOnce(req, runId, "spot");
      } catch (e) {
        const name = errorName(e);
        if (!name || !(SPOT_CAPACITY_ERRORS as readonly string[]).includes(name)) throw e;
        events({
          type: "warn",
          role: req.role,
          message: `no spot capacity for ${req.count} x ${req.instanceType} (${name}): launching them on-demand`,
          data: { instanceType: req.instanceType, error: name },
        });
        return runOnce(req, runId, "on-demand");
      }
    },

    async terminate(ids) {
      if (ids.length) await (await ec2()).terminate(ids);
      return ids;
    },

    ...(deps.records
      ? {
          async waitReady(inst: StartedInstance, timeoutMs: number) {
            const records = deps.records!;
            const started = startedAt.get(inst.id);
            if (!started) throw new Error(`waitReady: ${inst.id} was not started by this launch`);
            let waiter = waiters.get(started.runId);
            if (!waiter) {
              const store = await records.store();
              waiter = runRecordWaiter({
                store,
                path: runRecordsPath(config.aws.ssm_prefix, started.runId),
                timeoutSeconds: timeoutMs / 1000,
                now,
                // An instance EC2 ended before it was ready (a refused EBS key, a spot reclaim) fails at once.
                instanceStates: async (ids) => (await ec2()).states(ids),
                region: deps.region,
                ...(records.intervalMs !== undefined ? { intervalMs: records.intervalMs } : {}),
                ...(records.sleep ? { sleep: records.sleep } : {}),
              });
              waiters.set(started.runId, waiter);
            }
            return waiter.wait(inst, started.at, timeoutMs / 1000);
          },

          async forgetRun(runId: string) {
            const store = await deps.records!.store();
            const found = await store.list(runRecordsPath(config.aws.ssm_prefix, runId));
            if (found.length) await store.remove(found.map((r) => r.name));
          },
        }
      : {}),

    async find(filter) {
      const tags: Record<string, string> = { [TAG.pipeline]: config.pipeline };
      if (filter.role) tags[TAG.role] = filter.role;
      if (filter.runId) tags[TAG.runId] = filter.runId;
      const found = await (await ec2()).byTags(tags, filter.running ? ["running"] : undefined);
      return found.map((i): FoundInstance => ({
        id: i.InstanceId ?? "",
        role: tagOf(i, TAG.role) ?? "",
        runId: tagOf(i, TAG.runId) ?? "",
        privateIp: i.PrivateIpAddress ?? "",
        state: i.State?.Name ?? "",
      }));
    },
  };
}

/** Spot launches in an account without the Spot service-linked role, when the caller may not create it. */
export const SPOT_ROLE_MISSING = "AuthFailure.ServiceLinkedRoleCreationNotPermitted";

/** Instance states of a launch that is over: never what a new RunInstances starts. */
const ENDED_STATES = new Set(["shutting-down", "terminated", "stopping", "stopped"]);

/** A run id whose ClientToken EC2 still remembers from an earlier launch. */
function runIdReused(runId: string, seen: string, cause?: unknown): UsageError {
  return new UsageError(
    `--run-id ${runId} was used by an earlier launch: EC2 answered its RunInstances token with that launch's request (${seen}).`,
    { fix: "Use a new --run-id (EC2 remembers a request's token for days).", ...(cause ? { cause } : {}) },
  );
}

/**
 * RunInstances refused: for permissions or user-data over EC2's limit (user errors that name the fix, not
 * capacity problems), or, on demand, for the account's vCPU quota or the zone's capacity (failures that name
 * what to change). A spot request's capacity errors pass through: the caller falls back to on-demand.
 */
async function explainDenial<T>(market: Market, req: GroupRequest, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    const name = errorName(e);
    const what = `RunInstances for ${req.count} x ${req.instanceType} (${market}) of ${req.role}`;
    if (name === "IdempotentParameterMismatch") {
      throw runIdReused(req.tags[TAG.runId] ?? "?", `${name}: other parameters under the same token`, e);
    }
    if (name === SPOT_ROLE_MISSING) {
      throw new UsageError(`${what} was refused: the account has no Spot service-linked role (${name}).`, {
        fix:
          "Create it once per account: `aws iam create-service-linked-role --aws-service-name spot.amazonaws.com` " +
          "(or set aws.spot: false).",
        cause: e,
      });
    }
    if (name === EC2_USER_DATA_TOO_LARGE.code && /\buser data\b/i.test((e as Error).message)) {
      throw userDataRefused({
        what,
        size: req.userData.bytes.length,
        error: { code: name, message: (e as Error).message },
        by: "EC2",
        cause: e,
      });
    }
    if (name === "UnauthorizedOperation") {
      throw new UsageError(`${what} was denied (UnauthorizedOperation): ${(e as Error).message}`, {
        fix:
          "Attach the policy `imgtool iam-policy --for launch` prints to the role that launches (and set " +
          "aws.instance_role if the instance profile's role has another name); " +
          "`aws sts decode-authorization-message` explains an encoded message.",
        cause: e,
      });
    }
    if (name === "VcpuLimitExceeded") {
      throw new FailureError(`${what} would pass the account's vCPU quota in this region (${name}).`, {
        fix:
          "Launch fewer or smaller instances (--task-runners, --instance-types), end runs that are still up " +
          "(`imgtool terminate --run-id ID`), or ask for more: Service Quotas, EC2, 'Running On-Demand Standard " +
          "instances' (`aws service-quotas request-service-quota-increase --service-code ec2 --quota-code L-1216C47A`).",
        cause: e,
      });
    }
    if (market === "on-demand" && (SPOT_CAPACITY_ERRORS as readonly string[]).includes(name ?? "")) {
      throw new FailureError(`${what}: EC2 has no capacity for it right now (${name}).`, {
        fix:
          "Try again later, add other instance types (--instance-types a,b), or use a subnet in another " +
          "Availability Zone (aws.subnet_id).",
        cause: e,
      });
    }
    throw e;
  }
}

function tagOf(i: Instance, key: string): string | undefined {
  return i.Tags?.find((t) => t.Key === key)?.Value;
}

/** The tags of every instance and volume a launch starts. */
export function launchTags(
  pipeline: string,
  role: Role,
  versions: { ami: string; image: string },
  runId: string,
): Record<string, string> {
  return {
    Name: `imgtool-${pipeline}-${runId}-${role}`,
    [TAG.pipeline]: pipeline,
    [TAG.role]: role,
    [TAG.version]: versions.ami,
    [TAG.imageVersion]: versions.image,
    [TAG.runId]: runId,
  };
}
