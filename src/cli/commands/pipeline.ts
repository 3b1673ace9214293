/** `imgtool pipeline`: push, bake, smoke launch, promote; a report per role and stage. */
import { errorName, isImgtoolError, sentence, UsageError } from "../../errors.js";
import type { PipelineReport } from "../../pipeline/pipeline.js";
import type { Context, GlobalArgs } from "../context.js";
import { rolesOf } from "../roles.js";
import { humanReport } from "../views/pipeline.js";

export interface PipelineArgs extends GlobalArgs {
  role: string;
  smoke: boolean;
  networkCheck: boolean;
  force: boolean;
  out?: string;
}

export async function pipelineCommand(ctx: Context, args: PipelineArgs): Promise<number> {
  const { target } = ctx;
  const roles = rolesOf(args.role);
  // The user's smoke script is checked before anything is built or published (a typo must not cost a bake).
  if (args.smoke && ctx.config.smoke.script) {
    const { readSmokeScript } = await import("../../pipeline/smoke-check.js");
    await readSmokeScript(ctx.config.smoke.script, {
      config: ctx.config,
      target,
      region: ctx.regions[0]!,
    });
  }
  if (ctx.dryRun) {
    const stages = ["push", "bake", ...(args.smoke ? ["smoke", "promote"] : [])];
    ctx.out.result(
      { dryRun: true, roles, target, stages },
      () =>
        `would push, bake${args.smoke ? ", smoke-launch and promote" : ""} ${roles.join(", ")} on ${target}`,
    );
    return 0;
  }
  // aws: the bake's subnet must route to the internet (Packer connects by SSH), and the smoke launch's task runners
  // must reach the orchestrator's port; either mistake would fail the run after its pushes (and bakes), so both
  // are checked before them.
  if (target === "aws") await checkPacker(ctx);
  if (target === "aws" && args.networkCheck) await checkNetwork(ctx, args.smoke);
  const { runPipeline } = await import("../../pipeline/pipeline.js");
  const deps = ctx.deps.pipeline({ force: args.force });

  // A failed run still reports what it did (the error carries the report); only then does it fail.
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
  const error = failure ? { error: errorDoc(failure) } : {};
  ctx.out.result({ target, ok: !failure, ...r, ...error }, () => humanReport(r));

  if (args.out) {
    const { writeReportFiles } = await import("../../pipeline/report-files.js");
    try {
      await writeReportFiles(args.out, r, { target, roles, deps });
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

/** aws: a Packer that cannot bake (none, or older than `packer init`) would fail the run after its pushes. */
async function checkPacker(ctx: Context): Promise<void> {
  const { packerFix, packerTooOld } = await import("../../render/packer.js");
  const version = await ctx.deps.packer().version();
  const problem =
    version === null ? "the aws bake needs Packer, and it is not installed" : packerTooOld("aws", version);
  if (problem) {
    throw new UsageError(`${sentence(problem)} Nothing was pushed or baked.`, {
      fix: packerFix("aws"),
    });
  }
}

/** The two network checks of `imgtool doctor --target aws` that a run depends on; a failure is a usage error. */
async function checkNetwork(ctx: Context, smoke: boolean): Promise<void> {
  const region = ctx.regions[0]!;
  const { bakeSubnetCheck, launchNetworkCheck, networkReadProblem } = await import("../../doctor/network.js");
  const probes = ctx.deps.doctorProbes();
  const subnetKey = ctx.config.aws.bake_subnet_id ? "aws.bake_subnet_id" : "aws.subnet_id";
  /** The read's answer; undefined when it was refused or failed (a warning: this is a pre-check only). */
  const read = async <T>(what: string, work: () => Promise<T>, key?: string): Promise<T | undefined> => {
    try {
      return await work();
    } catch (e) {
      const problem = networkReadProblem(errorName(e), (e as Error).message, region, key);
      if (problem?.kind === "missing") {
        throw new UsageError(`${problem.message}. Nothing was pushed or baked.`, {
          fix: problem.fix,
          cause: e,
        });
      }
      if (problem?.kind === "denied" || isAwsOrNetworkError(e)) {
        ctx.out.warn(`${what} was not checked (${errorName(e) ?? (e as Error).message})`);
        return undefined;
      }
      throw e;
    }
  };
  const checks = [];
  if (probes.awsBakeSubnetRoute) {
    const found = await read("the bake subnet's route", () => probes.awsBakeSubnetRoute!(region), subnetKey);
    if (found) checks.push(bakeSubnetCheck(found.route, found.key, region));
  }
  if (smoke && probes.awsLaunchNetwork) {
    const net = await read("the launch network", () => probes.awsLaunchNetwork!(region));
    if (net) checks.push(launchNetworkCheck(net, ctx.config.launch.orchestrator_port, region));
  }
  for (const check of checks) {
    if (!check.ok) {
      throw new UsageError(`${check.part}: ${check.state}. Nothing was pushed or baked.`, {
        ...(check.fix ? { fix: `${check.fix} (or --no-network-check to skip this check)` } : {}),
      });
    }
    if (check.state.startsWith("not verified")) ctx.out.warn(`${check.part}: ${check.state}`);
    else ctx.out.event({ type: "check", message: `${check.part}: ${check.state}` });
  }
}

/** An AWS service's answer (the SDK's exceptions carry $metadata) or a failed connection (an errno code). */
function isAwsOrNetworkError(e: unknown): boolean {
  return (
    typeof e === "object" &&
    e !== null &&
    ("$metadata" in e || typeof (e as NodeJS.ErrnoException).code === "string")
  );
}
