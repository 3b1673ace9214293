/** `imgtool push image`: build and push each role's image when its content tag is new; publish by digest. */
import type { Context, GlobalArgs } from "../context.js";
import { table } from "../output.js";
import { rolesOf } from "../roles.js";
import { recordPublished } from "../release.js";

export async function pushImage(ctx: Context, args: GlobalArgs & { role: string }): Promise<number> {
  const roles = rolesOf(args.role);
  const { pushImages } = await import("../../push/push.js");
  const report = await pushImages(
    { config: ctx.config, target: ctx.target, roles, dryRun: ctx.dryRun, region: ctx.homeRegion },
    await ctx.deps.push(),
  );
  const failed = report.results.filter((r) => r.error);
  // The release of what is published now, written last (launches of latest follow it).
  const release = !ctx.dryRun && failed.length === 0 ? await recordPublished(ctx, roles, "image") : undefined;
  ctx.out.result(
    {
      target: ctx.target,
      results: report.results.map((r) => ({
        role: r.role,
        target: r.target,
        status: r.status,
        uri: r.uri ?? null,
        digest: r.digest ?? null,
        tag: r.tag,
        reference: r.reference ?? null,
        platforms: r.platforms,
        inputsHash: r.inputsHash,
        published: r.published,
        version: r.version ?? null,
        built: r.built,
        steps: r.steps,
        layers: r.layers,
        bytesPushed: r.bytesPushed,
        ...(r.error ? { error: { message: r.error.message, fix: r.error.fix ?? null } } : {}),
      })),
      ...(release ? { release: { id: release.release.id, status: release.status } } : {}),
    },
    () =>
      table(
        ["ROLE", "STATUS", "TAG", "REFERENCE"],
        report.results.map((r) => [r.role, r.status, r.tag, r.reference ?? "-"]),
      ),
  );
  for (const r of failed) ctx.out.error(r.error);
  return failed.reduce((code, r) => Math.max(code, r.error?.exitCode ?? 1), 0);
}
