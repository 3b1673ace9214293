/** `imgtool terminate --run-id ID`: end a run's instances, found by their run-id tag (aws) or label (local). */
import type { Role } from "../config/schema.js";
import type { EventSink } from "../events.js";
import { checkRunId } from "./ids.js";
import type { FoundInstance, LaunchBackend } from "./types.js";

const GONE = new Set(["terminated", "shutting-down"]);

export interface TerminateResult {
  runId: string;
  dryRun: boolean;
  instances: FoundInstance[];
}

export async function terminateRun(
  opts: { runId: string; role?: Role; dryRun: boolean },
  deps: { backend: LaunchBackend; events: EventSink },
): Promise<TerminateResult> {
  checkRunId(opts.runId);
  const found = (
    await deps.backend.find({ runId: opts.runId, ...(opts.role ? { role: opts.role } : {}) })
  ).filter((i) => !GONE.has(i.state));
  if (!found.length) {
    if (!opts.dryRun) await deps.backend.forgetRun?.(opts.runId);
    deps.events({
      type: "skip",
      message: `nothing to terminate: no ${opts.role ?? ""}${opts.role ? " " : ""}instance of run ${opts.runId} is left`,
    });
    return { runId: opts.runId, dryRun: opts.dryRun, instances: [] };
  }
  if (opts.dryRun) {
    deps.events({ type: "skip", message: `would terminate ${found.map((i) => i.id).join(", ")}` });
    return { runId: opts.runId, dryRun: true, instances: found };
  }
  await deps.backend.terminate(found.map((i) => i.id));
  // aws: the run's readiness records go with its instances (prune removes those of runs ended otherwise).
  await deps.backend.forgetRun?.(opts.runId);
  deps.events({
    type: "done",
    message: `terminated ${found.length} instance(s) of run ${opts.runId}: ${found.map((i) => i.id).join(", ")}`,
  });
  return { runId: opts.runId, dryRun: false, instances: found };
}
