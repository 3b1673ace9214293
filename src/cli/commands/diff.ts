/** `imgtool diff V1 V2`: what changed between two versions. */
import type { Context, GlobalArgs } from "../context.js";
import { table } from "../output.js";
import { versionRecord } from "../version-record.js";

/** Leaves of a JSON value as dotted paths. */
function flatten(v: unknown, prefix = "", out: Record<string, string> = {}): Record<string, string> {
  if (v !== null && typeof v === "object") {
    for (const [k, x] of Object.entries(v)) flatten(x, prefix ? `${prefix}.${k}` : k, out);
    if (Object.keys(v).length === 0) out[prefix] = JSON.stringify(v);
  } else out[prefix] = JSON.stringify(v);
  return out;
}

export async function diffCommand(
  ctx: Context,
  args: GlobalArgs & { v1: string; v2: string },
): Promise<number> {
  const catalog = await ctx.deps.catalog();
  const [a, b] = [await versionRecord(catalog, args.v1), await versionRecord(catalog, args.v2)];
  const flat = (rs: typeof a) =>
    Object.assign(
      {},
      ...rs.map((r) =>
        flatten(
          {
            value: r.value,
            inputsHash: r.inputsHash,
            base: r.base,
            gitRevision: r.gitRevision,
            manifest: r.manifest,
          },
          `${r.role}/${r.kind}${r.arch ? `/${r.arch}` : ""}`,
        ),
      ),
    ) as Record<string, string>;
  const fa = flat(a);
  const fb = flat(b);
  const changes = [...new Set([...Object.keys(fa), ...Object.keys(fb)])]
    .sort()
    .filter((k) => fa[k] !== fb[k])
    .map((k) => ({ path: k, from: fa[k] ?? null, to: fb[k] ?? null }));
  ctx.out.result({ from: args.v1, to: args.v2, changes }, () =>
    changes.length === 0
      ? `${args.v1} and ${args.v2} are the same.`
      : table(
          ["WHAT", args.v1, args.v2],
          changes.map((c) => [c.path, c.from ?? "-", c.to ?? "-"]),
        ),
  );
  return 0;
}
