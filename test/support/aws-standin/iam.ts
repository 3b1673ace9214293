/**
 * Authorization in the AWS stand-in: every call is judged with the caller's IAM policy (picked by the
 * access key id of the SigV4 signature) by the independent IAM evaluator of test/support/iam-referee.ts,
 * with the resource ARNs and request context AWS would evaluate: request tags and `aws:TagKeys`, the
 * resource's own tags (`aws:ResourceTag/K`), the implicit `ec2:CreateTags` of tag-on-create with
 * `ec2:CreateAction`, and `iam:PassRole` for an instance profile (role named like the profile).
 * A denied call is answered as the service answers it: EC2 `UnauthorizedOperation` (403), SSM and ECR
 * `AccessDeniedException`; an unknown key is `AuthFailure` / `UnrecognizedClientException`.
 */
import { appendFileSync } from "node:fs";
import type { PolicyDocument } from "../../../src/iam/policies.js";
import { actorOfKey, evaluate, type IamRequest, type ResourcePolicyDocument } from "../iam-referee.js";
import { ServiceError } from "./errors.js";
import { runCommandIamRequests } from "./instances-ssm.js";
import { QueryParams, type JsonObject } from "./params.js";
import type { RegionState, Service } from "./types.js";

export interface StandinIam {
  /** The policy of each access key id (see `actorPolicies(config)`); any other key is refused. */
  policies: Record<string, PolicyDocument>;
  /** A key that may do anything, for seeding state in tests; its calls are not judged. */
  setupKey?: string;
  /** The test provokes denials on purpose: do not log them for the suite's coverage check. */
  denialsExpected?: boolean;
}

export interface CallToJudge {
  service: Service;
  operation: string;
  region: string;
  params: JsonObject | Record<string, string>;
  accessKeyId: string;
  accountId: string;
  state: RegionState;
}

/** The partition of a region: ARNs in China and GovCloud are not `arn:aws:`. */
export function partitionOf(region: string): string {
  if (region.startsWith("cn-")) return "aws-cn";
  if (region.startsWith("us-gov-")) return "aws-us-gov";
  return "aws";
}

function tagContext(kind: "RequestTag" | "ResourceTag", tags: Record<string, string>) {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(tags)) out[`aws:${kind}/${k}`] = v;
  if (kind === "RequestTag" && Object.keys(tags).length) out["aws:TagKeys"] = Object.keys(tags);
  return out;
}

function queryTagMap(p: QueryParams): Record<string, string> {
  const out: Record<string, string> = {};
  for (const t of p.structs("Tag")) out[t.get("Key") ?? ""] = t.get("Value") ?? "";
  return out;
}

/** The IAM requests AWS evaluates for one API call. */
export function iamRequestsFor(call: CallToJudge): IamRequest[] {
  const { region, accountId, state } = call;
  const part = partitionOf(region);
  const ec2Arn = (type: string, id: string, account = accountId) =>
    `arn:${part}:ec2:${region}:${account}:${type}/${id}`;
  const imageArn = (id: string) => `arn:${part}:ec2:${region}::image/${id}`;
  const snapshotArn = (id: string) => `arn:${part}:ec2:${region}::snapshot/${id}`;
  const action = `${call.service}:${call.operation}`;

  if (call.service === "sts") return []; // GetCallerIdentity needs no permission, and cannot be denied
  if (call.service === "ssm") {
    const input = call.params as JsonObject;
    const runCommand = runCommandIamRequests(call.operation, input, region, accountId, part, state);
    if (runCommand) return runCommand;
    const arn = (name: string) =>
      `arn:${part}:ssm:${region}:${accountId}:parameter/${name.replace(/^\//, "")}`;
    const names =
      call.operation === "GetParameters"
        ? ((input["Names"] as string[] | undefined) ?? [])
        : call.operation === "GetParametersByPath"
          ? [String(input["Path"] ?? "")]
          : [String(input["Name"] ?? "")];
    return names.map((n) => ({ action, resource: arn(n) }));
  }
  if (call.service === "ecr") {
    const input = call.params as JsonObject;
    if (call.operation === "GetAuthorizationToken") return [{ action, resource: "*" }];
    const name = String(input["repositoryName"] ?? "");
    const resource = `arn:${part}:ecr:${region}:${accountId}:repository/${name}`;
    if (
      call.operation === "DescribeRepositories" ||
      call.operation === "BatchGetRepositoryScanningConfiguration"
    ) {
      const names = (input["repositoryNames"] as string[] | undefined) ?? [];
      return names.length
        ? names.map((n) => ({ action, resource: `arn:${part}:ecr:${region}:${accountId}:repository/${n}` }))
        : [{ action, resource: `arn:${part}:ecr:${region}:${accountId}:repository/*` }];
    }
    if (call.operation === "CreateRepository") {
      const tags: Record<string, string> = {};
      for (const t of (input["tags"] as { Key: string; Value: string }[] | undefined) ?? [])
        tags[t.Key] = t.Value;
      const ctx = tagContext("RequestTag", tags);
      return [
        { action, resource, context: ctx },
        ...(Object.keys(tags).length ? [{ action: "ecr:TagResource", resource, context: ctx }] : []),
      ];
    }
    return [{ action, resource }];
  }

  // EC2
  const p = new QueryParams(call.params as Record<string, string>);
  const ec2 = state.ec2;
  const resourceTags = (id: string): Record<string, string> =>
    (id.startsWith("ami-")
      ? ec2.images.get(id)?.tags
      : id.startsWith("snap-")
        ? ec2.snapshots.get(id)?.tags
        : id.startsWith("i-")
          ? ec2.instances.get(id)?.tags
          : id.startsWith("vol-")
            ? ec2.volumes.get(id)?.tags
            : undefined) ?? {};
  const arnOfId = (id: string) =>
    id.startsWith("ami-")
      ? imageArn(id)
      : id.startsWith("snap-")
        ? snapshotArn(id)
        : id.startsWith("i-")
          ? ec2Arn("instance", id)
          : ec2Arn("volume", id);
  const onExisting = (id: string): IamRequest => ({
    action,
    resource: arnOfId(id),
    context: tagContext("ResourceTag", resourceTags(id)),
  });
  const tagSpecs = (): Map<string, Record<string, string>> => {
    const out = new Map<string, Record<string, string>>();
    for (const s of p.structs("TagSpecification")) out.set(s.get("ResourceType") ?? "", queryTagMap(s));
    return out;
  };
  const createTagsAtCreate = (specs: Map<string, Record<string, string>>, arnOf: (type: string) => string) =>
    [...specs].map(([type, tags]) => ({
      action: "ec2:CreateTags",
      resource: arnOf(type),
      context: { ...tagContext("RequestTag", tags), "ec2:CreateAction": call.operation },
    }));

  switch (call.operation) {
    case "DeregisterImage":
    case "EnableImageDeprecation":
      return [onExisting(p.get("ImageId") ?? "")];
    case "DeleteSnapshot":
      return [onExisting(p.get("SnapshotId") ?? "")];
    case "EnableFastSnapshotRestores":
    case "DisableFastSnapshotRestores":
      return p.list("SourceSnapshotId").map(onExisting);
    case "TerminateInstances":
      return p.list("InstanceId").map(onExisting);
    case "CreateTags": {
      const request = tagContext("RequestTag", queryTagMap(p));
      return p.list("ResourceId").map((id) => {
        const existing = onExisting(id);
        return { ...existing, context: { ...existing.context, ...request } };
      });
    }
    case "CopyImage": {
      const specs = tagSpecs();
      const tags = specs.get("image") ?? {};
      return [
        { action, resource: imageArn("*"), context: tagContext("RequestTag", tags) },
        ...createTagsAtCreate(specs, (type) => (type === "image" ? imageArn("*") : snapshotArn("*"))),
      ];
    }
    case "RunInstances": {
      const specs = tagSpecs();
      const spot = p.get("InstanceMarketOptions.MarketType") === "spot";
      const imageId = p.get("ImageId") ?? "";
      const out: IamRequest[] = [
        {
          action,
          resource: ec2Arn("instance", "*"),
          context: {
            ...tagContext("RequestTag", specs.get("instance") ?? {}),
            "ec2:InstanceType": p.get("InstanceType") ?? "m1.small",
            "ec2:InstanceMarketType": spot ? "spot" : "on-demand",
          },
        },
        {
          action,
          resource: ec2Arn("volume", "*"),
          context: tagContext("RequestTag", specs.get("volume") ?? {}),
        },
        {
          action,
          resource: ec2Arn("network-interface", "*"),
          context: tagContext("RequestTag", specs.get("network-interface") ?? {}),
        },
        { action, resource: imageArn(imageId), context: tagContext("ResourceTag", resourceTags(imageId)) },
        { action, resource: ec2Arn("subnet", p.get("SubnetId") ?? "subnet-default") },
        ...(p.list("SecurityGroupId").length ? p.list("SecurityGroupId") : ["sg-default"]).map((sg) => ({
          action,
          resource: ec2Arn("security-group", sg),
        })),
        ...(p.get("KeyName") ? [{ action, resource: ec2Arn("key-pair", p.get("KeyName") ?? "") }] : []),
        ...(spot
          ? [
              {
                action,
                resource: ec2Arn("spot-instances-request", "*"),
                context: tagContext("RequestTag", specs.get("spot-instances-request") ?? {}),
              },
            ]
          : []),
        ...createTagsAtCreate(specs, (type) => ec2Arn(type, "*")),
      ];
      const profile = p.get("IamInstanceProfile.Name") ?? p.get("IamInstanceProfile.Arn")?.split("/").pop();
      if (profile) {
        out.push({
          action: "iam:PassRole",
          resource: `arn:${part}:iam::${accountId}:role/${profile}`,
          context: { "iam:PassedToService": "ec2.amazonaws.com" },
        });
      }
      return out;
    }
    default:
      // Describe*: no resource-level permissions.
      return [{ action, resource: "*" }];
  }
}

function denied(service: Service, message: string): ServiceError {
  return service === "ec2"
    ? new ServiceError(
        "UnauthorizedOperation",
        `You are not authorized to perform this operation. ${message}`,
        403,
      )
    : new ServiceError("AccessDeniedException", message, 400);
}

/** Undefined when the call may proceed; otherwise the error AWS answers with. */
export async function authorize(iam: StandinIam, call: CallToJudge): Promise<ServiceError | undefined> {
  if (iam.setupKey !== undefined && call.accessKeyId === iam.setupKey) return undefined;
  const policy = iam.policies[call.accessKeyId];
  if (!policy) {
    if (call.service === "ec2")
      return new ServiceError(
        "AuthFailure",
        "AWS was not able to validate the provided access credentials",
        401,
      );
    if (call.service === "sts")
      return new ServiceError(
        "InvalidClientTokenId",
        "The security token included in the request is invalid.",
        403,
      );
    return new ServiceError(
      "UnrecognizedClientException",
      "The security token included in the request is invalid.",
    );
  }
  const user = `arn:aws:iam::${call.accountId}:user/${call.accessKeyId}`;
  for (const req of iamRequestsFor(call)) {
    const decision = await evaluate(policy, req, call.accountId);
    const log = process.env.IMGTOOL_AWS_CALLS_LOG;
    const actor = actorOfKey(call.accessKeyId);
    if (log && actor && (decision.allowed || !iam.denialsExpected)) {
      appendFileSync(
        log,
        JSON.stringify({
          actor,
          call: `${call.service}:${call.operation}`,
          ...req,
          allowed: decision.allowed,
        }) + "\n",
      );
    }
    if (!decision.allowed) {
      return denied(
        call.service,
        `User: ${user} is not authorized to perform: ${req.action} on resource: ${req.resource} because no identity-based policy allows the ${req.action} action`,
      );
    }
  }
  return undefined;
}

/** AWS's default key policy: the account's IAM policies decide who may use the key. */
export function defaultKeyPolicy(accountId: string, partition = "aws"): ResourcePolicyDocument {
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "Enable IAM User Permissions",
        Effect: "Allow",
        Principal: { AWS: `arn:${partition}:iam::${accountId}:root` },
        Action: ["kms:*"],
        Resource: "*",
      },
    ],
  };
}

/**
 * What EC2 does with the caller's permissions when RunInstances creates a volume encrypted with a
 * customer-managed key (the account's default EBS key): a grant for the volume, a data key, and a decrypt,
 * each through `ec2.<region>.amazonaws.com`. Judged with the caller's policy and the key policy; undefined
 * when every one is allowed, else why not. The setup key may do anything.
 */
export async function ebsKeyRefusal(
  iam: StandinIam,
  call: Pick<CallToJudge, "region" | "accessKeyId" | "accountId">,
  keyArn: string,
  keyPolicy: ResourcePolicyDocument = defaultKeyPolicy(call.accountId, partitionOf(call.region)),
): Promise<string | undefined> {
  if (iam.setupKey !== undefined && call.accessKeyId === iam.setupKey) return undefined;
  const policy = iam.policies[call.accessKeyId];
  if (!policy) return `unknown access key ${call.accessKeyId}`;
  const via = { "kms:ViaService": `ec2.${call.region}.amazonaws.com`, "kms:CallerAccount": call.accountId };
  const requests: IamRequest[] = [
    { action: "kms:CreateGrant", resource: keyArn, context: { ...via, "kms:GrantIsForAWSResource": "true" } },
    { action: "kms:GenerateDataKeyWithoutPlaintext", resource: keyArn, context: via },
    { action: "kms:Decrypt", resource: keyArn, context: via },
  ];
  const actor = actorOfKey(call.accessKeyId);
  const log = process.env.IMGTOOL_AWS_CALLS_LOG;
  for (const req of requests) {
    const decision = await evaluate(policy, req, call.accountId, keyPolicy);
    if (log && actor && (decision.allowed || !iam.denialsExpected))
      appendFileSync(
        log,
        JSON.stringify({ actor, call: "ec2:RunInstances", ...req, allowed: decision.allowed }) + "\n",
      );
    if (!decision.allowed) return `${req.action} on ${keyArn} via ec2.${call.region}.amazonaws.com is denied`;
  }
  return undefined;
}
