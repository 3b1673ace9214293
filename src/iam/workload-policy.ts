/**
 * The instance policy's parts that come from the workload config (issue 9): read exactly the declared secrets,
 * and the extra statements roles.<role>.run.instance_permissions lists (both roles share one instance profile).
 */
import type { Config } from "../config/load.js";
import { ROLES } from "../config/schema.js";
import type { Statement } from "./policies.js";

/** The ARN of each declared secret's SSM parameter, any region and account (the profile is shared). */
export function declaredSecretArns(config: Config): string[] {
  return Object.values(config.secrets).map(
    (s) => `arn:aws:ssm:*:*:parameter/${s.aws_parameter.replace(/^\//, "")}`,
  );
}

/** The roles' extra instance statements, as written, each with a Sid (Workload<Role><n> when it has none). */
export function workloadStatements(config: Config): Statement[] {
  return ROLES.flatMap((role) =>
    config.roles[role].run.instance_permissions.map((st, i): Statement => ({
      Sid: st.Sid ?? `Workload${role === "task-runner" ? "TaskRunner" : "Orchestrator"}${i + 1}`,
      Effect: st.Effect,
      Action: typeof st.Action === "string" ? [st.Action] : st.Action,
      Resource: st.Resource,
      ...(st.Condition ? { Condition: st.Condition } : {}),
    })),
  );
}
