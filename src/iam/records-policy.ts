/**
 * The statements behind readiness records and checks through AWS (no network path into the VPC): instances
 * publish their readiness record under `<ssm_prefix>/runs/` and run what SSM Run Command sends them; the
 * launcher reads and removes records and runs its health and smoke checks on its pipeline's instances only;
 * prune removes records of runs that ended without `terminate`.
 */
import type { Config } from "../config/load.js";
import { TAG, runRecordsRoot } from "../config/tags.js";
import { RUN_SHELL_DOCUMENT } from "../aws/run-command-names.js";
import type { Statement } from "./policies.js";

/**
 * What the SSM agent needs for Run Command (the Run Command part of AmazonSSMManagedInstanceCore): registering
 * the instance and its message channels. Not that policy's `ssm:GetParameter(s)` on every parameter: the
 * instance reads only its declared secrets.
 */
export const SSM_AGENT_ACTIONS = [
  "ssm:UpdateInstanceInformation",
  "ssmmessages:CreateControlChannel",
  "ssmmessages:CreateDataChannel",
  "ssmmessages:OpenControlChannel",
  "ssmmessages:OpenDataChannel",
  "ec2messages:AcknowledgeMessage",
  "ec2messages:DeleteMessage",
  "ec2messages:FailMessage",
  "ec2messages:GetEndpoint",
  "ec2messages:GetMessages",
  "ec2messages:SendReply",
];

export function recordStatements(
  actor: "launch" | "prune" | "instance",
  config: Config,
  arns: (rest: string) => string[],
): Statement[] {
  const root = runRecordsRoot(config.aws.ssm_prefix).replace(/^\//, "");
  const records = arns(`ssm:*:*:parameter/${root}/*`);
  const readAndRemove: Statement = {
    Sid: "RunRecords",
    Effect: "Allow",
    Action: ["ssm:GetParametersByPath", "ssm:DeleteParameters"],
    Resource: [...arns(`ssm:*:*:parameter/${root}`), ...records],
  };
  switch (actor) {
    case "launch":
      return [
        readAndRemove,
        {
          Sid: "RunCommandOnOwnInstances",
          Effect: "Allow",
          Action: ["ssm:SendCommand"],
          Resource: arns("ec2:*:*:instance/*"),
          Condition: { StringEquals: { [`aws:ResourceTag/${TAG.pipeline}`]: config.pipeline } },
        },
        {
          Sid: "RunShellScriptDocument",
          Effect: "Allow",
          Action: ["ssm:SendCommand"],
          // `*:*`: AWS-owned documents have no account in their ARN (`arn:aws:ssm:REGION::document/...`); `*` also
          // matches the empty account.
          Resource: arns(`ssm:*:*:document/${RUN_SHELL_DOCUMENT}`),
        },
        { Sid: "CommandResults", Effect: "Allow", Action: ["ssm:GetCommandInvocation"], Resource: "*" },
      ];
    case "prune":
      return [readAndRemove];
    case "instance":
      return [
        {
          // Under the runs path only: IAM cannot tie a parameter's name to the calling instance's id, so the
          // launcher accepts a record only under its run's path and named after an instance it started.
          Sid: "PublishRunRecords",
          Effect: "Allow",
          Action: ["ssm:PutParameter"],
          Resource: records,
        },
        { Sid: "SsmAgent", Effect: "Allow", Action: SSM_AGENT_ACTIONS, Resource: "*" },
      ];
  }
}
