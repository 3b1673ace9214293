/** `imgtool status`: what the catalog holds, per role and kind. */
import type { Context, GlobalArgs } from "../context.js";
import { table } from "../output.js";

function age(seconds: number | undefined): string {
  if (seconds === undefined) return "-";
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)}h`;
  return `${Math.round(seconds / 86400)}d`;
}

export async function status(
  ctx: Context,
  args: GlobalArgs & { role: string; version?: string },
): Promise<number> {
  if (args.version) return (await import("../version-record.js")).showVersion(ctx, args.version);
  const catalog = await ctx.deps.catalog();
  const rows = (await catalog.status()).filter((r) => args.role === "all" || r.key.role === args.role);
  ctx.out.result(
    {
      target: ctx.target,
      artifacts: rows.map((r) => ({
        role: r.key.role,
        kind: r.key.kind,
        arch: r.key.arch ?? null,
        name: r.name,
        current: r.current
          ? {
              version: r.current.version ?? null,
              value: r.current.value,
              publishedAt: r.current.modifiedAt.toISOString(),
            }
          : null,
        previous: r.previous ? { version: r.previous.version ?? null, value: r.previous.value } : null,
        ageSeconds: r.ageSeconds ?? null,
        labels: r.labels,
      })),
    },
    () =>
      rows.length === 0
        ? `The ${ctx.target} catalog is empty: nothing has been baked or pushed yet.`
        : table(
            ["ROLE", "KIND", "ARCH", "CURRENT", "PREVIOUS", "AGE", "VALUE"],
            rows.map((r) => [
              r.key.role,
              r.key.kind,
              r.key.arch ?? "-",
              r.current?.version ?? "-",
              r.previous?.version ?? "-",
              age(r.ageSeconds),
              r.current?.value ?? "-",
            ]),
          ),
  );
  return 0;
}
