/** `imgtool rollback`: move `latest` back to an earlier version, on either target. */
import { UsageError } from "../../errors.js";
import type { Context, GlobalArgs } from "../context.js";

export async function rollback(
  ctx: Context,
  args: GlobalArgs & { role: string; kind: "ami" | "image"; arch?: string; to?: string },
): Promise<number> {
  const catalog = await ctx.deps.catalog();
  let keys = [{ role: args.role, kind: args.kind, ...(args.arch ? { arch: args.arch } : {}) }];
  if (args.kind === "ami" && !args.arch) {
    keys = (await catalog.status()).map((r) => r.key).filter((k) => k.role === args.role && k.kind === "ami");
    if (keys.length === 0) {
      throw new UsageError(`No AMI of role ${args.role} is in the ${ctx.target} catalog.`, {
        fix: "`imgtool status` lists what the catalog holds.",
      });
    }
  }
  if (ctx.dryRun) {
    ctx.out.result(
      { dryRun: true, rollbacks: keys.map((k) => ({ name: catalog.name(k), to: args.to ?? "previous" })) },
      () =>
        keys
          .map((k) => `would roll back ${catalog.name(k)} to ${args.to ?? "the previous version"}`)
          .join("\n"),
    );
    return 0;
  }
  const results: Awaited<ReturnType<typeof catalog.rollback>>[] = [];
  for (const k of keys) results.push(await catalog.rollback(k, args.to));
  ctx.out.result({ rollbacks: results }, () =>
    results.map((r) => `${r.name}: latest -> ${r.to} (was ${r.from ?? "unset"})`).join("\n"),
  );
  return 0;
}
