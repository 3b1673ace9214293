/**
 * Least-privilege IAM policy documents for each actor of the pipeline, scoped to the pipeline's SSM prefix,
 * ECR repositories and resource tags where AWS allows it. `imgtool iam-policy --for ACTOR` prints one.
 */
import type { Config } from "../config/load.js";
import { ROLES } from "../config/schema.js";
import { TAG } from "../config/tags.js";

import { recordStatements } from "./records-policy.js";
import { workloadStatements } from "./workload-policy.js";

export const ACTORS = ["bake", "push", "launch", "prune", "instance"] as const;
export type Actor = (typeof ACTORS)[number];

export interface Statement {
  Sid: string;
  Effect: "Allow";
  Action: string[];
  Resource: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

export interface PolicyDocument {
  Version: "2012-10-17";
  Statement: Statement[];
}

/** What Packer's amazon-ebs builder does without destroying anything (from Packer's documented minimal set). */
const PACKER_EC2 = [
  "ec2:AuthorizeSecurityGroupIngress",
  "ec2:CopyImage",
  "ec2:CreateImage",
  "ec2:CreateKeyPair",
  "ec2:CreateSecurityGroup",
  "ec2:CreateSnapshot",
  "ec2:DeleteKeyPair",
  "ec2:DeleteSecurityGroup",
  "ec2:DescribeImageAttribute",
  "ec2:DescribeImages",
  "ec2:DescribeInstances",
  "ec2:DescribeInstanceStatus",
  "ec2:DescribeRegions",
  "ec2:DescribeSecurityGroups",
  "ec2:DescribeSnapshots",
  "ec2:DescribeSubnets",
  "ec2:DescribeTags",
  "ec2:DescribeVolumes",
  "ec2:EnableImageDeprecation",
  "ec2:ModifyImageAttribute",
  "ec2:ModifyInstanceAttribute",
  "ec2:ModifySnapshotAttribute",
  "ec2:RegisterImage",
  "ec2:RunInstances",
];

/**
 * What Packer (cleanup of its build instance, volumes, and of an AMI it could not finish) and the bake
 * (a failed copy) destroy: only resources carrying the pipeline's tag, which Packer puts on all of them
 * (run_tags, run_volume_tags, tags, snapshot_tags).
 */
const PACKER_EC2_DESTRUCTIVE = [
  "ec2:DeleteSnapshot",
  "ec2:DeleteVolume",
  "ec2:DeregisterImage",
  "ec2:StopInstances",
  "ec2:TerminateInstances",
];

/** The partition of a region's ARNs (`aws`, `aws-cn`, `aws-us-gov`). */
export function partitionOf(region: string): string {
  if (region.startsWith("cn-")) return "aws-cn";
  if (region.startsWith("us-gov-")) return "aws-us-gov";
  return "aws";
}

/**
 * The SSM parameters the instances read at boot (through the instance role): every declared secret
 * (`secrets.<name>.aws_parameter`; the default orchestrator-api-key follows `aws.api_key_parameter`). The
 * instance policy and the launcher's existence check both follow this list.
 */
export function instanceSecrets(config: Config): string[] {
  return Object.values(config.secrets).map((s) => s.aws_parameter);
}

/**
 * The role launch passes to its instances, as its ARN names it after `role/` (path and name): `aws.instance_role`,
 * else the profile's name.
 */
export function instanceRoleName(config: Config): string | undefined {
  return (config.aws.instance_role ?? config.aws.instance_profile)?.replace(/^\//, "");
}

export interface PolicyExtras {
  /**
   * bake: the ECR repositories of the stacks' third-party images (`stackRepositories`, read from the compose
   * files by the caller): the bake resolves them to digests and its build instance pulls them with its token.
   */
  stackRepositories?: string[];
}

export function policyFor(actor: Actor, config: Config, extras: PolicyExtras = {}): PolicyDocument {
  const partitions = [...new Set(config.aws.regions.map(partitionOf))];
  const arns = (rest: string): string[] => partitions.map((p) => `arn:${p}:${rest}`);
  const prefix = config.aws.ssm_prefix.replace(/^\//, "");
  const params = [...arns(`ssm:*:*:parameter/${prefix}`), ...arns(`ssm:*:*:parameter/${prefix}/*`)];
  const repos = ROLES.flatMap((r) => arns(`ecr:*:*:repository/${config.aws.ecr.repositories[r]}`));
  const pipelineTag = { [`aws:ResourceTag/${TAG.pipeline}`]: config.pipeline };
  const secretArns = instanceSecrets(config).flatMap((name) =>
    arns(`ssm:*:*:parameter/${name.replace(/^\//, "")}`),
  );
  const requestTag = { [`aws:RequestTag/${TAG.pipeline}`]: config.pipeline };
  const catalogRead: Statement = {
    Sid: "CatalogRead",
    Effect: "Allow",
    Action: ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath", "ssm:GetParameterHistory"],
    Resource: params,
  };
  const catalogWrite: Statement = {
    Sid: "CatalogWrite",
    Effect: "Allow",
    Action: ["ssm:PutParameter", "ssm:LabelParameterVersion", "ssm:UnlabelParameterVersion"],
    Resource: params,
  };
  // Publish leases (src/catalog/lease.ts): created with PutParameter (Overwrite=false) and read like the
  // catalog; deleted when released or taken over, and nothing else under the prefix is ever deleted.
  const leases: Statement = {
    Sid: "PublishLeases",
    Effect: "Allow",
    Action: ["ssm:DeleteParameter"],
    Resource: arns(`ssm:*:*:parameter/${prefix}/leases/*`),
  };
  const ecrToken: Statement = {
    Sid: "EcrToken",
    Effect: "Allow",
    Action: ["ecr:GetAuthorizationToken"],
    Resource: "*",
  };
  const ecrPull: Statement = {
    Sid: "EcrPull",
    Effect: "Allow",
    Action: ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
    Resource: repos,
  };
  const identity: Statement = {
    Sid: "Identity",
    Effect: "Allow",
    Action: ["sts:GetCallerIdentity"],
    Resource: "*",
  };
  /** Tags only on what RunInstances creates, in the same request: never on an instance that exists. */
  const tagAtLaunch = (kinds: string[]): Statement => ({
    Sid: "TagAtLaunch",
    Effect: "Allow",
    Action: ["ec2:CreateTags"],
    Resource: kinds.flatMap((k) => arns(`ec2:*:*:${k}/*`)),
    Condition: { StringEquals: { "ec2:CreateAction": "RunInstances", ...requestTag } },
  });

  switch (actor) {
    case "bake":
      return {
        Version: "2012-10-17",
        Statement: [
          identity,
          { Sid: "PackerAmazonEbs", Effect: "Allow", Action: PACKER_EC2, Resource: "*" },
          // imgtool's own pre-check of the bake subnet (`pipeline`, `doctor`): does it route to the internet?
          { Sid: "BakeSubnetRoute", Effect: "Allow", Action: ["ec2:DescribeRouteTables"], Resource: "*" },
          tagAtLaunch(["instance", "volume"]),
          {
            // Packer's amazon plugin (1.x) puts run_tags on its temporary key pair and security group as it creates
            // them (CreateKeyPair, CreateSecurityGroup with TagSpecifications): EC2 asks for ec2:CreateTags too.
            Sid: "TagPackerTemporaries",
            Effect: "Allow",
            Action: ["ec2:CreateTags"],
            Resource: [...arns("ec2:*:*:key-pair/*"), ...arns("ec2:*:*:security-group/*")],
            Condition: {
              StringEquals: { "ec2:CreateAction": ["CreateKeyPair", "CreateSecurityGroup"], ...requestTag },
            },
          },
          {
            // Packer tags its AMI and snapshots after CreateImage, the bake its copies: with the pipeline's tag,
            // on images and snapshots that carry no other pipeline's tag.
            Sid: "TagOwnImages",
            Effect: "Allow",
            Action: ["ec2:CreateTags"],
            Resource: [...arns("ec2:*::image/*"), ...arns("ec2:*::snapshot/*")],
            Condition: { StringEquals: requestTag, StringEqualsIfExists: pipelineTag },
          },
          // aws.fast_snapshot_restore: the bake enables it for its own AMIs' snapshots (the zones come from
          // ec2:DescribeSubnets, which Packer's set has).
          ...(config.aws.fast_snapshot_restore
            ? [
                {
                  Sid: "FastSnapshotRestoreOwn",
                  Effect: "Allow" as const,
                  Action: ["ec2:EnableFastSnapshotRestores"],
                  Resource: arns("ec2:*::snapshot/*"),
                  Condition: { StringEquals: pipelineTag },
                },
              ]
            : []),
          {
            Sid: "PackerCleanupOwn",
            Effect: "Allow",
            Action: PACKER_EC2_DESTRUCTIVE,
            Resource: "*",
            Condition: { StringEquals: pipelineTag },
          },
          {
            Sid: "EncryptedCopies",
            Effect: "Allow",
            Action: [
              "kms:CreateGrant",
              "kms:Decrypt",
              "kms:DescribeKey",
              "kms:Encrypt",
              "kms:GenerateDataKeyWithoutPlaintext",
              "kms:ReEncryptFrom",
              "kms:ReEncryptTo",
            ],
            Resource: "*",
            Condition: { StringLike: { "kms:ViaService": "ec2.*.amazonaws.com" } },
          },
          catalogRead,
          catalogWrite,
          leases,
          // The bake hands the build instance a registry token for its pre-load pull: the token pulls with the
          // bake's own permissions.
          ecrToken,
          ecrPull,
          // A stack's third-party images (e.g. library/postgres), exactly those repositories. A pull-through cache
          // (only where stack.registry.aws names one) imports an image on its first pull and makes its repository
          // then: the puller needs ecr:BatchImportUpstreamImage and ecr:CreateRepository on it.
          ...(extras.stackRepositories?.length
            ? [
                {
                  Sid: "StackImagesPull",
                  Effect: "Allow" as const,
                  Action: [
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:BatchGetImage",
                    ...(ROLES.some((r) => config.roles[r].stack?.registry.aws)
                      ? ["ecr:BatchImportUpstreamImage", "ecr:CreateRepository"]
                      : []),
                    "ecr:GetDownloadUrlForLayer",
                  ],
                  Resource: [...new Set(extras.stackRepositories)].flatMap((r) =>
                    arns(`ecr:*:*:repository/${r}`),
                  ),
                },
              ]
            : []),
        ],
      };
    case "push":
      return {
        Version: "2012-10-17",
        Statement: [
          identity,
          ecrToken,
          {
            Sid: "EcrRepositories",
            Effect: "Allow",
            Action: [
              "ecr:CreateRepository",
              "ecr:DescribeRepositories",
              "ecr:BatchGetRepositoryScanningConfiguration",
              "ecr:DescribeImages",
              "ecr:BatchGetImage",
              "ecr:BatchCheckLayerAvailability",
              "ecr:GetDownloadUrlForLayer",
              "ecr:InitiateLayerUpload",
              "ecr:UploadLayerPart",
              "ecr:CompleteLayerUpload",
              "ecr:PutImage",
              "ecr:PutLifecyclePolicy",
              "ecr:GetLifecyclePolicy",
              "ecr:TagResource",
            ],
            Resource: repos,
          },
          catalogRead,
          catalogWrite,
          leases,
        ],
      };
    case "launch": {
      const role = instanceRoleName(config);
      return {
        Version: "2012-10-17",
        Statement: [
          identity,
          catalogRead,
          // Before any RunInstances: every secret the instances read exists (src/launch/precheck.ts), in the
          // catalog's batched GetParameters, wherever it is kept. Never decrypted: no kms:Decrypt here.
          ...(secretArns.length
            ? [
                {
                  Sid: "SecretsExist",
                  Effect: "Allow" as const,
                  Action: ["ssm:GetParameters"],
                  Resource: secretArns,
                },
              ]
            : []),
          {
            Sid: "Describe",
            Effect: "Allow",
            Action: ["ec2:DescribeInstances", "ec2:DescribeImages"],
            Resource: "*",
          },
          {
            // Before any RunInstances: the images the instances would pull exist (src/launch/image-check.ts).
            Sid: "CheckRoleImages",
            Effect: "Allow",
            Action: ["ecr:DescribeImages"],
            Resource: repos,
          },
          {
            Sid: "RunTaggedInstances",
            Effect: "Allow",
            Action: ["ec2:RunInstances"],
            Resource: [
              ...arns("ec2:*:*:instance/*"),
              ...arns("ec2:*:*:volume/*"),
              ...arns("ec2:*:*:spot-instances-request/*"),
            ],
            Condition: { StringEquals: requestTag },
          },
          tagAtLaunch(["instance", "volume", "spot-instances-request"]),
          {
            Sid: "RunFromResources",
            Effect: "Allow",
            Action: ["ec2:RunInstances"],
            Resource: [
              ...arns("ec2:*::image/*"),
              ...arns("ec2:*:*:subnet/*"),
              ...arns("ec2:*:*:security-group/*"),
              ...arns("ec2:*:*:network-interface/*"),
              ...arns("ec2:*:*:key-pair/*"),
            ],
          },
          {
            Sid: "TerminateOwnRuns",
            Effect: "Allow",
            Action: ["ec2:TerminateInstances"],
            Resource: arns("ec2:*:*:instance/*"),
            Condition: { StringEquals: pipelineTag },
          },
          // Encrypted volumes when the account's default EBS key is a customer-managed key: EC2 uses the key with
          // the launcher's permissions, through its own endpoint in the launch's region (without them, EC2 starts
          // the instance and then terminates it: Client.InternalError).
          ...ebsKeyStatements(config),
          ...(role
            ? [
                {
                  Sid: "PassInstanceRole",
                  Effect: "Allow" as const,
                  Action: ["iam:PassRole"],
                  Resource: arns(`iam::*:role/${role}`),
                  Condition: { StringEquals: { "iam:PassedToService": "ec2.amazonaws.com" } },
                },
              ]
            : []),
          ...recordStatements("launch", config, arns),
          {
            // `imgtool calibrate` records its result next to the version it measured.
            Sid: "CalibrationRecords",
            Effect: "Allow",
            Action: ["ssm:PutParameter", "ssm:LabelParameterVersion"],
            Resource: arns(`ssm:*:*:parameter/${prefix}/calibration/*`),
          },
        ],
      };
    }
    case "prune":
      return {
        Version: "2012-10-17",
        Statement: [
          identity,
          catalogRead,
          {
            Sid: "Describe",
            Effect: "Allow",
            Action: [
              "ec2:DescribeImages",
              "ec2:DescribeSnapshots",
              "ec2:DescribeInstances",
              "ec2:DescribeFastSnapshotRestores",
            ],
            Resource: "*",
          },
          {
            // A snapshot's Fast Snapshot Restore is disabled before it is deleted (EC2 refuses otherwise), whatever
            // aws.fast_snapshot_restore says now: a version baked with it on is billed until then.
            Sid: "DeleteOwnImages",
            Effect: "Allow",
            Action: [
              "ec2:DeregisterImage",
              "ec2:DeleteSnapshot",
              "ec2:EnableImageDeprecation",
              "ec2:DisableFastSnapshotRestores",
            ],
            Resource: "*",
            Condition: { StringEquals: pipelineTag },
          },
          ...recordStatements("prune", config, arns),
        ],
      };
    case "instance":
      return {
        Version: "2012-10-17",
        Statement: [
          ecrToken,
          ecrPull,
          // IAM refuses a statement with no resource: with no secret declared, neither is there.
          ...(secretArns.length
            ? [
                {
                  Sid: "OwnSecrets",
                  Effect: "Allow" as const,
                  Action: ["ssm:GetParameter"],
                  Resource: secretArns,
                },
                {
                  Sid: "DecryptOwnSecret",
                  Effect: "Allow" as const,
                  Action: ["kms:Decrypt"],
                  Resource: "*",
                  Condition: { StringLike: { "kms:ViaService": "ssm.*.amazonaws.com" } },
                },
              ]
            : []),
          ...recordStatements("instance", config, arns),
          ...workloadStatements(config),
        ],
      };
  }
}

/**
 * kms:CreateGrant (only for an AWS resource: the volume), kms:GenerateDataKeyWithoutPlaintext and kms:Decrypt on
 * the regions' keys, only through `ec2.<region>.amazonaws.com` of a configured region.
 */
function ebsKeyStatements(config: Config): Statement[] {
  const keys = config.aws.regions.map((r) => `arn:${partitionOf(r)}:kms:${r}:*:key/*`);
  const via = { "kms:ViaService": config.aws.regions.map((r) => `ec2.${r}.amazonaws.com`) };
  return [
    {
      Sid: "EncryptedVolumesGrant",
      Effect: "Allow",
      Action: ["kms:CreateGrant"],
      Resource: keys,
      Condition: { StringEquals: via, Bool: { "kms:GrantIsForAWSResource": "true" } },
    },
    {
      Sid: "EncryptedVolumes",
      Effect: "Allow",
      Action: ["kms:Decrypt", "kms:GenerateDataKeyWithoutPlaintext"],
      Resource: keys,
      Condition: { StringEquals: via },
    },
  ];
}

/** Every action any actor's policy allows (for the coverage check against the calls imgtool makes). */
export function allActions(config: Config): Set<string> {
  return new Set(ACTORS.flatMap((a) => policyFor(a, config).Statement.flatMap((s) => s.Action)));
}
