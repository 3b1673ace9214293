/**
 * The pipeline's smoke launch: one orchestrator and one task runner from `latest`, wait until ready, queue one
 * example task at the orchestrator and wait for a worker to report it done; always end the run afterwards.
 */
import { isImgtoolError } from "../errors.js";
import type { LaunchOptions, LaunchResult } from "../launch/types.js";
import type { SmokeOutcome } from "./pipeline.js";
import type { BootMeasure } from "./boot-budget.js";
import type { RunOnInstance } from "../aws/run-command.js";
import { smokeAnswerOf, smokeScript } from "../render/remote-checks.js";
import { SMOKE_SETUP_FAILED, SMOKE_TIMED_OUT, smokeCheckAnswerOf } from "../render/smoke-check.js";

/** How the user's smoke script ended (config smoke.script): its exit code and the last lines of its output. */
export interface ScriptEnd {
  name: string;
  exitCode: number;
  output: string;
  timeoutSeconds: number;
}

/**
 * How the check ended: the example task refused by the orchestrator (its HTTP status), or the task's last state;
 * or the user's smoke script's end.
 */
export type TaskEnd =
  { refused: number } | { status?: string; resultStatus?: string } | { script: ScriptEnd };

/**
 * Queue one example task at the orchestrator and wait (bounded) for it to end. Local: HTTP from here
 * ({@link httpSmokeTask}); aws: a script run on the orchestrator through SSM Run Command
 * ({@link runCommandSmokeTask}), since the runner has no path into the VPC.
 */
export type SmokeTask = (
  orchestrator: { url: string; instanceId: string | null; runId: string },
  benchmark: string,
  timeoutMs: number,
) => Promise<TaskEnd>;

export interface SmokeDeps {
  launch(opts: LaunchOptions): Promise<LaunchResult>;
  terminate(runId: string): Promise<void>;
  /** How the example task is queued and awaited. @default httpSmokeTask(fetch) */
  task?: SmokeTask;
  /** HTTP to the orchestrator's example API (the default task). @default fetch */
  fetch?: typeof fetch;
  /** How long the example task may take. @default 120000 */
  taskTimeoutMs?: number;
  /** Told when ending the run fails (what was started may still be running). */
  warn?: (message: string) => void;
}

export async function smokeLaunch(
  base: Omit<
    LaunchOptions,
    "runId" | "taskRunners" | "workersPerInstance" | "reuseOrchestrator" | "dryRun" | "label" | "wait"
  >,
  deps: SmokeDeps,
  runId: string,
  benchmark = "fib",
): Promise<SmokeOutcome> {
  const task = deps.task ?? httpSmokeTask(deps.fetch ?? fetch);
  let result: LaunchResult | undefined;
  try {
    result = await deps.launch({
      ...base,
      runId,
      taskRunners: 1,
      workersPerInstance: 1,
      reuseOrchestrator: false,
      dryRun: false,
      wait: true,
      label: "latest",
    });
    const measured = result.instances.filter((i) => i.bootToReadySeconds !== null);
    const boot = Object.fromEntries(measured.map((i) => [`${i.role} ${i.id}`, i.bootToReadySeconds!]));
    const boots: BootMeasure[] = measured.map((i) => ({
      role: i.role,
      arch: i.arch,
      instanceId: i.id,
      seconds: i.bootToReadySeconds!,
      steps: i.bootSteps ?? {},
    }));
    const url = result.orchestrator.url;
    if (!url || result.orchestrator.healthy === false) {
      return {
        passed: false,
        bootToReadySeconds: boot,
        boots,
        detail: `the orchestrator did not become healthy (${url ?? "no address"})`,
      };
    }
    const end = await task(
      { url, instanceId: result.orchestrator.id, runId },
      benchmark,
      deps.taskTimeoutMs ?? 120_000,
    );
    if ("script" in end) {
      return {
        passed: end.script.exitCode === 0,
        bootToReadySeconds: boot,
        boots,
        detail: scriptDetail(end.script),
      };
    }
    if ("refused" in end) {
      return {
        passed: false,
        bootToReadySeconds: boot,
        boots,
        detail: `the orchestrator refused the example task (HTTP ${end.refused})`,
      };
    }
    const passed = end.status === "done" && end.resultStatus === "ok";
    return {
      passed,
      bootToReadySeconds: boot,
      boots,
      detail: passed
        ? `example task ${benchmark} done on a task runner`
        : `example task ${benchmark} ended ${end.status ?? "unfinished"}${end.resultStatus ? ` (${end.resultStatus})` : ""}`,
    };
  } catch (e) {
    // A usage error (nothing published, a bad instance type) is the user's to fix, not a failed smoke test.
    if (isImgtoolError(e) && e.exitCode === 2) throw e;
    return {
      passed: false,
      bootToReadySeconds: {},
      detail: (e as Error).message.split("\n")[0] ?? String(e),
    };
  } finally {
    // Always end the run: a launch that failed midway may still have started something.
    await deps
      .terminate(runId)
      .catch((e: unknown) =>
        deps.warn?.(
          `could not end smoke run ${runId}: ${(e as Error).message}; end it with imgtool terminate --run-id ${runId}`,
        ),
      );
  }
}

/** The example task over HTTP from this machine (local: the orchestrator is on this machine's network). */
export function httpSmokeTask(http: typeof fetch): SmokeTask {
  return async ({ url }, benchmark, timeoutMs) => {
    const created = await http(`${url}/tasks`, {
      signal: AbortSignal.timeout(10_000),
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ benchmark }),
    });
    if (created.status !== 201) return { refused: created.status };
    const id = String(((await created.json()) as { id: unknown }).id);
    const deadline = Date.now() + timeoutMs;
    let task: { status?: string; result?: { status?: string } } = {};
    while (Date.now() < deadline) {
      task = (await (
        await http(`${url}/tasks/${id}`, { signal: AbortSignal.timeout(10_000) })
      ).json()) as typeof task;
      if (task.status === "done" || task.status === "failed") break;
      await new Promise((r) => setTimeout(r, 250));
    }
    return {
      ...(task.status !== undefined ? { status: task.status } : {}),
      ...(task.result?.status !== undefined ? { resultStatus: task.result.status } : {}),
    };
  };
}

/** aws: the example task queued and awaited by a script on the orchestrator, through SSM Run Command. */
export function runCommandSmokeTask(run: RunOnInstance): SmokeTask {
  return async ({ url, instanceId }, benchmark, timeoutMs) => {
    if (!instanceId) throw new Error("the smoke check needs the orchestrator's instance id");
    const seconds = Math.ceil(timeoutMs / 1000);
    const r = await run(instanceId, smokeScript(url, benchmark, seconds), {
      timeoutSeconds: seconds + 60,
      comment: `imgtool smoke task ${benchmark}`,
    });
    if (r.status !== "Success") {
      throw new Error(
        `the smoke script on ${instanceId} ended ${r.status} (exit code ${r.exitCode}): ${(r.stderr || r.stdout).trim().slice(0, 200)}`,
      );
    }
    const answer = smokeAnswerOf(r.stdout);
    if ("refused" in answer) return { refused: answer.refused };
    if ("unreadable" in answer)
      throw new Error(`the smoke script's answer is unreadable: ${answer.unreadable}`);
    return {
      ...(answer.task.status !== undefined ? { status: answer.task.status } : {}),
      ...(answer.task.result?.status !== undefined ? { resultStatus: answer.task.result.status } : {}),
    };
  };
}

/** One line on how the user's smoke script ended. */
export function scriptDetail(s: ScriptEnd): string {
  const last = s.output.trimEnd().split("\n").at(-1)?.trim() || "(no output)";
  if (s.exitCode === 0) return `smoke script ${s.name} passed`;
  if (s.exitCode === SMOKE_TIMED_OUT || s.exitCode === 137) {
    return `smoke script ${s.name} timed out after ${s.timeoutSeconds} s (smoke.timeout_seconds); its last line: ${last}`;
  }
  if (s.exitCode === SMOKE_SETUP_FAILED && last.startsWith("imgtool: ")) {
    return `smoke script ${s.name} did not run: ${last.slice("imgtool: ".length)}`;
  }
  return `smoke script ${s.name} exited with code ${s.exitCode}; its last line: ${last}`;
}

/** The Run Command's own timeout for the user's smoke script: the script's plus this, for unpacking and the report. */
export const SMOKE_RUN_EXTRA_SECONDS = 60;

/**
 * The user's smoke script (config smoke.script), run on the orchestrator instance: local, inside the local
 * instance; aws, through SSM Run Command (no network path into the VPC needed). `lines` renders what runs there.
 */
export function scriptSmokeTask(
  run: RunOnInstance,
  check: {
    name: string;
    timeoutSeconds: number;
    lines(orchestrator: { url: string; instanceId: string; runId: string }): string[];
  },
): SmokeTask {
  return async ({ url, instanceId, runId }) => {
    if (!instanceId) throw new Error("the smoke check needs the orchestrator's instance id");
    const r = await run(instanceId, check.lines({ url, instanceId, runId }), {
      // The runner's own timeout ends the script; this one covers unpacking, the secrets and the report.
      timeoutSeconds: check.timeoutSeconds + SMOKE_RUN_EXTRA_SECONDS,
      comment: `imgtool smoke check ${check.name}`,
    });
    const answer = smokeCheckAnswerOf(r.stdout);
    if ("unreadable" in answer) {
      throw new Error(
        `the smoke check on ${instanceId} ended ${r.status} (exit code ${r.exitCode}) without its report: ` +
          (r.stderr.trim() || answer.unreadable).slice(0, 200),
      );
    }
    return { script: { name: check.name, timeoutSeconds: check.timeoutSeconds, ...answer } };
  };
}
