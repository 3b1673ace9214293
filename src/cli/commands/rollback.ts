/**
 * `imgtool rollback`: move a channel (`latest` or `stable`) back to an earlier release in one write, or with
 * --role and --kind one artefact's own `latest` label back to an earlier version; on either target.
 */
import type { ArtifactKey } from "../../catalog/catalog.js";
import { UsageError } from "../../errors.js";
import type { Context, GlobalArgs } from "../context.js";

export async function rollback(
  ctx: Context,
  args: GlobalArgs & {
    channel: "latest" | "stable";
    role?: string;
    kind?: "ami" | "image";
    arch?: string;
    to?: string;
  },
): Promise<number> {
  if (!args.role && !args.kind) return rollbackRelease(ctx, args);
  if (!args.role || !args.kind) {
    throw new UsageError(`--${args.role ? "kind" : "role"} is missing: --role and --kind go together.`, {
      fix: "Without both, `imgtool rollback [--channel stable]` moves a whole release.",
    });
  }
  if (args.channel !== "latest") {
    throw new UsageError(
      `--channel ${args.channel} with --role: an artefact's own rollback moves only latest.`,
      {
        fix: "Move stable as a whole release: `imgtool rollback --channel stable`.",
      },
    );
  }
  const catalog = await ctx.deps.catalog();
  const { role, kind } = args;
  let keys: ArtifactKey[] = [{ role, kind, ...(args.arch ? { arch: args.arch } : {}) }];
  if (args.kind === "ami" && !args.arch) {
    keys = (await catalog.status()).map((r) => r.key).filter((k) => k.role === role && k.kind === "ami");
    if (keys.length === 0) {
      throw new UsageError(`No AMI of role ${role} is in the ${ctx.target} catalog.`, {
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

/** Move a channel to an earlier release (src/catalog/release.ts): one write, in the home region's catalog. */
async function rollbackRelease(
  ctx: Context,
  args: GlobalArgs & { channel: "latest" | "stable"; to?: string },
): Promise<number> {
  const { Releases } = await import("../../catalog/release.js");
  const home = await ctx.deps.catalog(ctx.target === "aws" ? ctx.regions[0] : undefined);
  const releases = new Releases(home, { events: ctx.out.event });
  if (ctx.dryRun) {
    ctx.out.result(
      { dryRun: true, channel: args.channel, to: args.to ?? "previous" },
      () => `would move ${args.channel} to ${args.to ?? "the previous release"}`,
    );
    return 0;
  }
  const r = await releases.rollback(args.channel, args.to);
  ctx.out.result({ release: r }, () => `${r.channel}: release ${r.to} (was ${r.from ?? "unset"})`);
  return 0;
}
