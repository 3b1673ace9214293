/**
 * The instance policy's parts that come from the workload config (issue 9): the extra statements roles.<role>.run.instance_permissions lists (both roles share one instance profile).
 */
import type { Config } from "../config/load.js";
import { ROLES } from "../config/schema.js";
import type { Statement } from "./policies.js";

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
