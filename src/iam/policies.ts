/**
 * Least-privilege IAM policy documents for each actor of the pipeline, scoped to the pipeline's SSM prefix,
 * ECR repositories and resource tags where AWS allows it. `imgtool iam-policy --for ACTOR` prints one.
 */
import type { Config } from "../config/load.js";
import { ROLES } from "../config/schema.js";
import { TAG } from "../config/tags.js";

import { declaredSecretArns, workloadStatements } from "./workload-policy.js";

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

/** The actions Packer's amazon-ebs builder needs (Packer's documented minimal set). */
const PACKER_EC2 = [
  "ec2:AttachVolume",
  "ec2:AuthorizeSecurityGroupIngress",
  "ec2:CopyImage",
  "ec2:CreateImage",
  "ec2:CreateKeyPair",
  "ec2:CreateSecurityGroup",
  "ec2:CreateSnapshot",
  "ec2:CreateTags",
  "ec2:CreateVolume",
  "ec2:DeleteKeyPair",
  "ec2:DeleteSecurityGroup",
  "ec2:DeleteSnapshot",
  "ec2:DeleteVolume",
  "ec2:DeregisterImage",
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
  "ec2:DetachVolume",
  "ec2:GetPasswordData",
  "ec2:ModifyImageAttribute",
  "ec2:ModifyInstanceAttribute",
  "ec2:ModifySnapshotAttribute",
  "ec2:RegisterImage",
  "ec2:RunInstances",
  "ec2:StopInstances",
  "ec2:TerminateInstances",
];

export function policyFor(actor: Actor, config: Config): PolicyDocument {
  const prefix = config.aws.ssm_prefix.replace(/^\//, "");
  const params = [`arn:aws:ssm:*:*:parameter/${prefix}`, `arn:aws:ssm:*:*:parameter/${prefix}/*`];
  const repos = ROLES.map((r) => `arn:aws:ecr:*:*:repository/${config.aws.ecr.repositories[r]}`);
  const pipelineTag = { [`aws:ResourceTag/${TAG.pipeline}`]: config.pipeline };
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

  switch (actor) {
    case "bake":
      return {
        Version: "2012-10-17",
        Statement: [
          identity,
          {
            Sid: "PackerAmazonEbs",
            Effect: "Allow",
            Action: [...PACKER_EC2, "ec2:EnableImageDeprecation"],
            Resource: "*",
          },
          {
            Sid: "PassBuilderRole",
            Effect: "Allow",
            Action: ["iam:PassRole"],
            Resource: "*",
            Condition: { StringEquals: { "iam:PassedToService": "ec2.amazonaws.com" } },
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
          ecrToken,
          ecrPull,
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
              "ecr:PutImageScanningConfiguration",
              "ecr:TagResource",
            ],
            Resource: repos,
          },
          catalogRead,
          catalogWrite,
        ],
      };
    case "launch":
      return {
        Version: "2012-10-17",
        Statement: [
          identity,
          catalogRead,
          {
            Sid: "Describe",
            Effect: "Allow",
            Action: ["ec2:DescribeInstances", "ec2:DescribeImages", "ec2:DescribeInstanceTypes"],
            Resource: "*",
          },
          {
            Sid: "RunTaggedInstances",
            Effect: "Allow",
            Action: ["ec2:RunInstances", "ec2:CreateTags"],
            Resource: [
              "arn:aws:ec2:*:*:instance/*",
              "arn:aws:ec2:*:*:volume/*",
              "arn:aws:ec2:*:*:spot-instances-request/*",
            ],
            Condition: { StringEquals: { [`aws:RequestTag/${TAG.pipeline}`]: config.pipeline } },
          },
          {
            Sid: "RunFromResources",
            Effect: "Allow",
            Action: ["ec2:RunInstances"],
            Resource: [
              "arn:aws:ec2:*::image/*",
              "arn:aws:ec2:*:*:subnet/*",
              "arn:aws:ec2:*:*:security-group/*",
              "arn:aws:ec2:*:*:network-interface/*",
              "arn:aws:ec2:*:*:key-pair/*",
            ],
          },
          {
            Sid: "TerminateOwnRuns",
            Effect: "Allow",
            Action: ["ec2:TerminateInstances"],
            Resource: "*",
            Condition: { StringEquals: pipelineTag },
          },
          {
            Sid: "PassInstanceRole",
            Effect: "Allow",
            Action: ["iam:PassRole"],
            Resource: "*",
            Condition: { StringEquals: { "iam:PassedToService": "ec2.amazonaws.com" } },
          },
        ],
      };
    case "prune":
      return {
        Version: "2012-10-17",
        Statement: [
          identity,
          catalogRead,
          {
            Sid: "Describe",
            Effect: "Allow",
            Action: ["ec2:DescribeImages", "ec2:DescribeSnapshots", "ec2:DescribeInstances"],
            Resource: "*",
          },
          {
            Sid: "DeleteOwnImages",
            Effect: "Allow",
            Action: ["ec2:DeregisterImage", "ec2:DeleteSnapshot", "ec2:EnableImageDeprecation"],
            Resource: "*",
            Condition: { StringEquals: pipelineTag },
          },
        ],
      };
    case "instance":
      return {
        Version: "2012-10-17",
        Statement: [
          ecrToken,
          ecrPull,
          {
            Sid: "DeclaredSecrets",
            Effect: "Allow",
            Action: ["ssm:GetParameter"],
            Resource: declaredSecretArns(config),
          },
          {
            Sid: "DecryptOwnSecret",
            Effect: "Allow",
            Action: ["kms:Decrypt"],
            Resource: "*",
            Condition: { StringLike: { "kms:ViaService": "ssm.*.amazonaws.com" } },
          },
          ...workloadStatements(config),
        ],
      };
  }
}

/** Every action any actor's policy allows (for the coverage check against the calls imgtool makes). */
export function allActions(config: Config): Set<string> {
  return new Set(ACTORS.flatMap((a) => policyFor(a, config).Statement.flatMap((s) => s.Action)));
}
