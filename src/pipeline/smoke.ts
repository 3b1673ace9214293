/**
 * The pipeline's smoke launch: one orchestrator and one task runner from `latest`, wait until ready, queue one
 * example task at the orchestrator and wait for a worker to report it done; always end the run afterwards.
 */
import { isImgtoolError } from "../errors.js";
import type { LaunchOptions, LaunchResult } from "../launch/types.js";
import type { SmokeOutcome } from "./pipeline.js";

export interface SmokeDeps {
  launch(opts: LaunchOptions): Promise<LaunchResult>;
  terminate(runId: string): Promise<void>;
  /** HTTP to the orchestrator's example API. @default fetch */
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
  const http = deps.fetch ?? fetch;
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
    const boot = Object.fromEntries(
      result.instances
        .filter((i) => i.bootToReadySeconds !== null)
        .map((i) => [`${i.role} ${i.id}`, i.bootToReadySeconds!]),
    );
    const url = result.orchestrator.url;
    if (!url || result.orchestrator.healthy === false) {
      return {
        passed: false,
        bootToReadySeconds: boot,
        detail: `the orchestrator did not become healthy (${url ?? "no address"})`,
      };
    }
    const created = await http(`${url}/tasks`, {
      signal: AbortSignal.timeout(10_000),
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ benchmark }),
    });
    if (created.status !== 201) {
      return {
        passed: false,
        bootToReadySeconds: boot,
        detail: `the orchestrator refused the example task (HTTP ${created.status})`,
      };
    }
    const id = String(((await created.json()) as { id: unknown }).id);
    const deadline = Date.now() + (deps.taskTimeoutMs ?? 120_000);
    let task: { status?: string; result?: { status?: string } } = {};
    while (Date.now() < deadline) {
      task = (await (
        await http(`${url}/tasks/${id}`, { signal: AbortSignal.timeout(10_000) })
      ).json()) as typeof task;
      if (task.status === "done" || task.status === "failed") break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const passed = task.status === "done" && task.result?.status === "ok";
    return {
      passed,
      bootToReadySeconds: boot,
      detail: passed
        ? `example task ${benchmark} done on a task runner`
        : `example task ${benchmark} ended ${task.status ?? "unfinished"}${task.result?.status ? ` (${task.result.status})` : ""}`,
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
