/** `imgtool pipeline`: push, bake, smoke launch, promote; a report per role and stage. */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { archesFor } from "../../bake/bake.js";
import type { ArtifactKey } from "../../catalog/catalog.js";
import type { Role } from "../../config/schema.js";
import { isImgtoolError, UsageError } from "../../errors.js";
import {
  runPipeline,
  summaryMarkdown,
  type PipelineDeps,
  type PipelineReport,
} from "../../pipeline/pipeline.js";
import type { Context, GlobalArgs } from "../context.js";
import { table } from "../output.js";
import { rolesOf } from "../roles.js";

export interface PipelineArgs extends GlobalArgs {
  role: string;
  smoke: boolean;
  force: boolean;
  out?: string;
}

export async function pipelineCommand(ctx: Context, args: PipelineArgs): Promise<number> {
  const { config, target } = ctx;
  const roles = rolesOf(args.role);
  const { regions } = ctx;
  if (ctx.dryRun) {
    ctx.out.result(
      { dryRun: true, roles, target, stages: ["push", "bake", ...(args.smoke ? ["smoke", "promote"] : [])] },
      () =>
        `would push, bake${args.smoke ? ", smoke-launch and promote" : ""} ${roles.join(", ")} on ${target}`,
    );
    return 0;
  }
  const deps: PipelineDeps = {
    async resolveRubyBench(role) {
      const { resolveRubyBenchRef } = await import("../../git.js");
      return resolveRubyBenchRef(role, config.roles[role].ruby_bench);
    },
    async push(rs, pins) {
      const { pushImages } = await import("../../push/push.js");
      const report = await pushImages(
        { config, target, roles: rs, region: ctx.homeRegion, rubyBenchCommits: pins },
        await ctx.deps.push(),
      );
      return report.results.map((r) => ({
        role: r.role,
        status: r.status,
        version: r.version ?? null,
        reference: r.reference ?? null,
        error: r.error,
      }));
    },
    async bake(rs, pins) {
      const { bake } = await import("../../bake/bake.js");
      const bd = await ctx.deps.bake();
      // The commits the run resolved once, so that the AMIs pin what the images pinned.
      const resolveCommit: typeof bd.resolveCommit = async (role, src) =>
        pins[role] ?? bd.resolveCommit(role, src);
      return bake(rs, { ...bd, resolveCommit }, { force: args.force, abortReason: ctx.abortReason });
    },
    async smoke() {
      const { launch } = await import("../../launch/launch.js");
      const { terminateRun } = await import("../../launch/terminate.js");
      const { newRunId } = await import("../../launch/ids.js");
      const { smokeLaunch, runCommandSmokeTask } = await import("../../pipeline/smoke.js");
      // The smoke launch runs where the bake published first: the home region (aws).
      const launchDeps = await ctx.deps.launch(regions[0]);
      const { backend } = launchDeps;
      return smokeLaunch(
        {
          target,
          instanceTypes: config.roles["task-runner"].instance_types.slice(0, 1),
          spot: false,
          keepOnFailure: false,
        },
        {
          launch: (o) => launch(o, launchDeps),
          terminate: async (runId) => {
            await terminateRun({ runId, dryRun: false }, { backend, events: ctx.out.event });
          },
          warn: (m) => ctx.out.warn(m),
          // aws: the example task is queued from the orchestrator itself (SSM Run Command), not over the network.
          ...(target === "aws"
            ? { task: runCommandSmokeTask(await ctx.deps.runOnInstance(regions[0])) }
            : {}),
        },
        `smoke-${newRunId()}`.slice(0, 32),
      );
    },
    catalogs: async () => Promise.all(regions.map((r) => ctx.deps.catalog(target === "aws" ? r : undefined))),
    keys: (role: Role): ArtifactKey[] => [
      { role, kind: "image" },
      ...archesFor(config, role, target).map((arch) => ({ role, kind: "ami" as const, arch })),
    ],
    events: ctx.out.event,
    signal: ctx.signal,
  };

  let report: PipelineReport | undefined;
  let failure: unknown;
  try {
    report = await runPipeline(roles, deps, { smoke: args.smoke });
  } catch (e) {
    failure = e;
    report = (e as { report?: PipelineReport }).report;
  }
  if (failure && !report) throw failure;
  const r = report!;
  ctx.out.result({ target, ok: !failure, ...r, ...(failure ? { error: errorDoc(failure) } : {}) }, () =>
    [
      table(
        ["ROLE", "STAGE", "STATUS", "VERSION", "SECONDS", "DETAIL"],
        r.stages.map((s) => [
          s.role,
          s.stage,
          s.status,
          s.version ?? "-",
          s.seconds.toFixed(1),
          s.detail ?? "",
        ]),
      ),
      r.smoke
        ? `smoke launch boot-to-ready: ${
            Object.entries(r.smoke.bootToReadySeconds)
              .map(([id, s]) => `${id} ${s.toFixed(2)} s`)
              .join(", ") || "-"
          }`
        : "",
      r.promoted ? "stable now points at the new versions." : "stable unchanged.",
    ]
      .filter(Boolean)
      .join("\n"),
  );
  if (args.out) {
    try {
      await writeOut(ctx, args.out, r, roles, deps);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (!code) throw e;
      throw new UsageError(`--out ${args.out}: cannot write the report there (${code}).`, {
        fix: "Pass a folder imgtool can create or write to.",
      });
    }
  }
  if (failure) {
    ctx.out.error(failure);
    return isImgtoolError(failure) ? failure.exitCode : 1;
  }
  return 0;
}

function errorDoc(e: unknown) {
  return { message: (e as Error).message, fix: isImgtoolError(e) ? (e.fix ?? null) : null };
}

/** --out DIR: summary.md and the version manifest of each artefact that `latest` points to. */
async function writeOut(
  ctx: Context,
  dir: string,
  report: PipelineReport,
  roles: Role[],
  deps: PipelineDeps,
) {
  await mkdir(path.join(dir, "versions"), { recursive: true });
  await writeFile(path.join(dir, "summary.md"), summaryMarkdown(report, ctx.target));
  for (const cat of await deps.catalogs()) {
    const { found } = await cat.resolve(
      roles.flatMap((r) => deps.keys(r)),
      { meta: true },
    );
    for (const a of found) {
      const region =
        typeof a.meta?.region === "string" && a.meta.region !== "local" ? `-${a.meta.region}` : "";
      const file = `${a.key.role}-${a.key.kind}${a.key.arch ? `-${a.key.arch}` : ""}${region}.json`;
      await writeFile(
        path.join(dir, "versions", file),
        `${JSON.stringify({ name: a.name, value: a.value, meta: a.meta ?? null }, null, 2)}\n`,
      );
    }
  }
}
