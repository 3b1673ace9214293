/** `imgtool bake ami`: the bake flow with the composition root's dependencies (src/cli/deps.ts). */
import { bake, type BakeResult } from "../../bake/bake.js";
import type { Context, GlobalArgs } from "../context.js";
import { table } from "../output.js";
import { rolesOf } from "../roles.js";
import { recordPublished } from "../release.js";

export interface BakeArgs extends GlobalArgs {
  role: string;
  force: boolean;
}

function bakeTable(results: BakeResult[]): string {
  return table(
    ["ROLE", "STATUS", "VERSION", "ARTIFACTS", "SECONDS"],
    results.map((r) => [
      r.role,
      r.status,
      r.version,
      r.artifacts
        .map((a) => `${a.region === "local" ? "" : `${a.region}/`}${a.arch} ${a.id.slice(0, 19)}`)
        .join(", "),
      r.seconds.toFixed(1),
    ]),
  );
}

export async function bakeAmi(ctx: Context, args: BakeArgs): Promise<number> {
  const roles = rolesOf(args.role);
  if (ctx.dryRun) {
    ctx.out.result(
      { dryRun: true, roles, target: ctx.target },
      () =>
        `would bake ${roles.join(", ")} on ${ctx.target} (\`imgtool render\` writes the files Packer would run)`,
    );
    return 0;
  }
  const results = await bake(roles, await ctx.deps.bake(), {
    force: args.force,
    abortReason: ctx.abortReason,
  });
  // The release of what is published now, written last (launches of latest follow it).
  const { release, status } = await recordPublished(ctx, roles, "ami");
  ctx.out.result({ results, release: { id: release.id, status } }, () => bakeTable(results));
  return 0;
}
