/**
 * `imgtool prune`: delete old AMIs/snapshots (aws) or twin images/volumes (local) beyond the newest N; with
 * `--leftovers`, instead remove what dead runs left (their labelled containers and volumes, their folders).
 */
import { UsageError } from "../../errors.js";
import { prune, pruneRunRecords } from "../../prune/prune.js";
import type { Context, GlobalArgs } from "../context.js";
import { table } from "../output.js";
import { rolesOf } from "../roles.js";

export async function pruneCommand(
  ctx: Context,
  args: GlobalArgs & { keep: number; role: string; leftovers?: boolean },
): Promise<number> {
  if (args.leftovers) return pruneLeftovers(ctx);
  if (!Number.isInteger(args.keep) || args.keep < 1) {
    throw new UsageError(`--keep ${args.keep}: keep at least 1 version per role.`, { fix: "e.g. --keep 3" });
  }
  const roles = rolesOf(args.role);
  const backend = await ctx.deps.pruneBackend(await ctx.deps.catalog());
  const decisions = await prune(roles, backend, {
    keep: args.keep,
    dryRun: ctx.dryRun,
    events: ctx.out.event,
  });
  const runRecords = await pruneRunRecords(backend, { dryRun: ctx.dryRun, events: ctx.out.event });
  ctx.out.result(
    {
      target: ctx.target,
      dryRun: ctx.dryRun,
      decisions: decisions.map((d) => ({
        role: d.role,
        version: d.version,
        action: d.action,
        reason: d.reason,
        resources: d.images,
        deleted: d.deleted ?? [],
      })),
      ...(ctx.target === "aws" ? { runRecords } : {}),
    },
    () =>
      (decisions.length === 0
        ? "Nothing to prune: no baked versions found."
        : table(
            ["ROLE", "VERSION", "ACTION", "WHY"],
            decisions.map((d) => [
              d.role,
              d.version,
              d.action === "delete" ? (ctx.dryRun ? "would delete" : "deleted") : "keep",
              d.reason,
            ]),
          )) +
      (runRecords.length
        ? `\n${ctx.dryRun ? "Would remove" : "Removed"} ${runRecords.length} readiness record(s) of ended runs.`
        : ""),
  );
  return 0;
}

async function pruneLeftovers(ctx: Context): Promise<number> {
  const { findLeftovers, removeLeftovers, publishedIn } = await import("../../leftovers/leftovers.js");
  const stateDir = ctx.config.local.state_dir;
  const engine = ctx.target === "local" ? await ctx.deps.engine() : undefined;
  // A twin or pre-load volume the catalog points at was published before its run died: kept.
  const published = engine ? publishedIn(() => ctx.deps.catalog(), ctx.config.pipeline) : undefined;
  const found = await findLeftovers({ stateDir, engine, ...(published ? { published } : {}) });
  const done = await removeLeftovers(found, engine, { dryRun: ctx.dryRun, events: ctx.out.event });
  ctx.out.result(
    {
      target: ctx.target,
      dryRun: ctx.dryRun,
      leftovers: found.map((l, i) => ({
        runId: l.run.id,
        pid: l.run.record?.pid ?? null,
        command: l.run.record?.command ?? null,
        started: l.run.record?.started ?? null,
        containers: l.containers.map((c) => c.name),
        images: l.images.map((i) => i.name),
        volumes: l.volumes.map((v) => v.name),
        kept: l.kept.map((k) => `${k.kind} ${k.name}`),
        dir: l.dir,
        removed: ctx.dryRun ? [] : done[i]!.removed,
      })),
    },
    () =>
      found.length === 0
        ? `No leftovers: no dead run in ${stateDir}.`
        : table(
            ["RUN", "ACTION", "WHAT"],
            done.map((d) => [d.run, ctx.dryRun ? "would remove" : "removed", d.removed.join(", ")]),
          ),
  );
  return 0;
}
