/** `imgtool terminate --run-id ID`: end the instances of a run, found by tag (aws) or label (local). */
import type { Role } from "../../config/schema.js";
import type { Context, GlobalArgs } from "../context.js";
import { table } from "../output.js";

export async function terminateCommand(
  ctx: Context,
  args: GlobalArgs & { "run-id": string; role: string },
): Promise<number> {
  const { terminateRun } = await import("../../launch/terminate.js");
  const role = args.role === "all" ? undefined : (args.role as Role);
  const r = await terminateRun(
    { runId: args["run-id"], ...(role ? { role } : {}), dryRun: ctx.dryRun },
    { backend: await ctx.deps.launchBackend(), events: ctx.out.event },
  );
  ctx.out.result(r, () =>
    r.instances.length === 0
      ? `Nothing to terminate for run ${r.runId}.`
      : table(
          ["ROLE", "ID", "WAS", "NOW"],
          r.instances.map((i) => [i.role, i.id, i.state, r.dryRun ? "would terminate" : "terminated"]),
        ),
  );
  return 0;
}
