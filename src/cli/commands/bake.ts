/** `imgtool bake ami`: wires the bake flow to Packer, the catalog, and EC2 (aws) or the Docker engine (local). */
import path from "node:path";
import { bake, type BakeDeps, type BakeResult } from "../../bake/bake.js";
import { ROLES, type Role } from "../../config/schema.js";
import { UsageError } from "../../errors.js";
import { projectRevision, resolveRubyBenchRef } from "../../git.js";
import { makePackerRunner } from "../../packer/runner.js";
import { renderBake, writeRendered } from "../../render/packer.js";
import type { Context, GlobalArgs } from "../context.js";
import { table } from "../output.js";

export interface BakeArgs extends GlobalArgs {
  role: string;
  force: boolean;
}

/** Build the bake's dependencies for the context's target (used by `bake ami` and `pipeline`). */
export async function bakeDeps(ctx: Context): Promise<BakeDeps> {
  const packer = makePackerRunner();
  const packerVersion = await packer.version();
  if (!packerVersion) {
    throw new UsageError("Packer is not installed.", {
      fix: "scripts/setup installs it (apt-get install -y packer).",
    });
  }
  const { config } = ctx;
  const deps: BakeDeps = {
    config,
    target: ctx.target,
    events: ctx.out.event,
    packer,
    packerVersion,
    render: renderBake,
    writeRendered,
    catalog: (region) => ctx.catalog(region),
    resolveCommit: (role, src) => resolveRubyBenchRef(role, src),
    gitRevision: () => projectRevision(),
    buildRoot: path.join(config.local.state_dir, "builds"),
    signal: ctx.signal,
  };
  if (ctx.target === "aws") {
    const { Ec2Images } = await import("../../aws/ec2.js");
    const { makeAwsBakeOps } = await import("../../bake/aws-ops.js");
    deps.aws = makeAwsBakeOps({
      wait: {
        consecutive: config.aws.ami_wait.consecutive,
        intervalMs: config.aws.ami_wait.interval_seconds * 1000,
      },
      config,
      events: ctx.out.event,
      ec2: async (r) => new Ec2Images((await ctx.aws(r)).ec2, r),
    });
    deps.packerEnv = {
      AWS_REGION: config.aws.regions[0],
      ...(ctx.args.profile ? { AWS_PROFILE: ctx.args.profile } : {}),
    };
  } else {
    const { requireStack, dockerHost, registryPassword } = await import("../../local/stack.js");
    const { makeTwinOps } = await import("../../bake/twin-ops.js");
    const stack = requireStack(config.local.state_dir);
    const registry = {
      endpoint: stack.registry.endpoint,
      user: stack.registry.user,
      password: registryPassword(stack),
    };
    deps.registry = registry;
    deps.twin = makeTwinOps({ docker: await ctx.docker(), registry });
    deps.packerEnv = { DOCKER_HOST: dockerHost(stack) };
  }
  return deps;
}

export function rolesOf(role: string): Role[] {
  return role === "all" ? [...ROLES] : [role as Role];
}

export function bakeTable(results: BakeResult[]): string {
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
  const results = await bake(roles, await bakeDeps(ctx), { force: args.force, abortReason: ctx.abortReason });
  ctx.out.result({ results }, () => bakeTable(results));
  return 0;
}
