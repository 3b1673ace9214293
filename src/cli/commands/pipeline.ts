/** `imgtool pipeline`: push, bake, smoke launch, promote; a report per role and stage. */
import { errorName, isImgtoolError, UsageError } from "../../errors.js";
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
  // aws: the smoke launch's task runners must reach the orchestrator's port; a security group without that rule
  // fails the smoke task after every push and bake, so it is checked before them.
  if (target === "aws" && args.smoke && args.networkCheck) await checkSmokeNetwork(ctx);
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

async function checkSmokeNetwork(ctx: Context): Promise<void> {
  const region = ctx.regions[0]!;
  const { launchNetworkCheck, networkReadProblem } = await import("../../doctor/network.js");
  const probes = ctx.deps.doctorProbes();
  if (!probes.awsLaunchNetwork) return;
  let net;
  try {
    net = await probes.awsLaunchNetwork(region);
  } catch (e) {
    const problem = networkReadProblem(errorName(e), (e as Error).message, region);
    if (problem?.kind === "missing") {
      throw new UsageError(`${problem.message}. Nothing was pushed or baked.`, {
        fix: problem.fix,
        cause: e,
      });
    }
    // A pre-check only: refused or failed reads (throttling, the network) leave it to the smoke launch.
    if (problem?.kind === "denied" || isAwsOrNetworkError(e)) {
      ctx.out.warn(
        `the launch network was not checked (${errorName(e) ?? (e as Error).message}): the smoke launch's task runners may not reach the orchestrator`,
      );
      return;
    }
    throw e;
  }
  const check = launchNetworkCheck(net, ctx.config.launch.orchestrator_port, region);
  if (!check.ok) {
    throw new UsageError(`The smoke launch cannot pass: ${check.state}. Nothing was pushed or baked.`, {
      ...(check.fix ? { fix: `${check.fix} (or --no-network-check to skip this check)` } : {}),
    });
  }
  ctx.out.event({ type: "check", message: `launch network: ${check.state}` });
}

/** An AWS service's answer (the SDK's exceptions carry $metadata) or a failed connection (an errno code). */
function isAwsOrNetworkError(e: unknown): boolean {
  return (
    typeof e === "object" &&
    e !== null &&
    ("$metadata" in e || typeof (e as NodeJS.ErrnoException).code === "string")
  );
}
