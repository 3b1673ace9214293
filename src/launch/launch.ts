/**
 * `imgtool launch`: start an orchestrator and task runners from the catalog's AMIs (or twins) and images.
 *
 * 1. Check before work ({@link precheck}, ./precheck.ts): every role's user-data is checked against EC2's 16 KB
 *    limit (at its largest) before any API call; every id is resolved in one batched catalog call; nothing
 *    missing, nothing too big. A dry run stops here, with the plan.
 * 2. Start ({@link start}, ./start.ts): the orchestrator first (or a running one is kept, `reuseOrchestrator`);
 *    the task runners as soon as its RunInstances answers with its private address, one request per instance
 *    type, all types at once, while the orchestrator's health is polled every 2 s. If anything fails, what this
 *    launch started is terminated (unless `keepOnFailure`): nothing is orphaned.
 * 3. Report (./report.ts): every instance, its readiness and workers, the orchestrator's address and health.
 *
 * The flow never prints: it emits events, and takes the target (backend), catalog and health probe as
 * dependencies.
 */
import { precheck } from "./precheck.js";
import { launchedResult, plannedResult } from "./report.js";
import { start } from "./start.js";
import type { LaunchDeps, LaunchOptions, LaunchResult } from "./types.js";

export type { LaunchDeps } from "./types.js";
export { planJson } from "./report.js";

/** Resolve, plan and (unless a dry run) launch. */
export async function launch(opts: LaunchOptions, deps: LaunchDeps): Promise<LaunchResult> {
  const now = deps.now ?? Date.now;
  const t0 = now();
  const elapsed = () => (now() - t0) / 1000;
  const { ctx, plan } = await precheck(opts, deps);
  if (opts.dryRun) return plannedResult(opts, plan, elapsed());
  const started = await start(plan, ctx, opts, deps);
  return launchedResult(opts, plan, started, deps, elapsed);
}
