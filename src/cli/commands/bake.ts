/** `imgtool bake ami`: the bake flow with the composition root's dependencies (src/cli/deps.ts). */
import { bake, type BakeResult, type BakeStageChoice } from "../../bake/bake.js";
import type { Context, GlobalArgs } from "../context.js";
import { table } from "../output.js";
import { rolesOf } from "../roles.js";
import { recordPublished } from "../release.js";

export interface BakeArgs extends GlobalArgs {
  role: string;
  force: boolean;
  stage: BakeStageChoice;
}

/** One row per stage (the base stage's row first), with why it was built or skipped. */
function bakeTable(results: BakeResult[]): string {
  const rows = results.flatMap((r) => [...(r.base ? [r.base] : []), r]);
  return table(
    ["ROLE", "STAGE", "STATUS", "VERSION", "ARTIFACTS", "SECONDS", "WHY"],
    rows.map((r) => [
      r.role,
      r.stage ?? "all",
      r.status,
      r.version,
      r.artifacts
        .map((a) => `${a.region === "local" ? "" : `${a.region}/`}${a.arch} ${a.id.slice(0, 19)}`)
        .join(", "),
      r.seconds.toFixed(1),
      r.reason ?? "",
    ]),
  );
}

export async function bakeAmi(ctx: Context, args: BakeArgs): Promise<number> {
  const roles = rolesOf(args.role);
  if (ctx.dryRun) {
    ctx.out.result(
      { dryRun: true, roles, target: ctx.target, stage: args.stage },
      () =>
        `would bake ${roles.join(", ")} on ${ctx.target}, ${args.stage === "all" ? "base and role stages" : `${args.stage} stage`} (\`imgtool render\` writes the files Packer would run)`,
    );
    return 0;
  }
  const results = await bake(roles, await ctx.deps.bake(), {
    force: args.force,
    stage: args.stage,
    abortReason: ctx.abortReason,
  });
  // A base stage alone publishes no AMI a launch would take: the release record is left as it is.
  if (args.stage === "base") {
    ctx.out.result({ results }, () => bakeTable(results));
    return 0;
  }
  // The release of what is published now, written last (launches of latest follow it).
  const { release, status } = await recordPublished(ctx, roles, "ami");
  ctx.out.result({ results, release: { id: release.id, status } }, () => bakeTable(results));
  return 0;
}
