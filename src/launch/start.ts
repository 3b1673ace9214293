/**
 * The launch's start: the orchestrator first (or a running one kept); the task runners as soon as its
 * RunInstances answers with its private address (they retry it until it answers), one request per instance type,
 * all types at once, while the orchestrator's health is polled (checked once when it is already healthy) and,
 * where the target can tell, every instance's readiness is awaited. If anything fails, what this launch started is
 * terminated (unless `keepOnFailure`): nothing is orphaned. An interrupt (`deps.signal`) is such a failure: no
 * wait goes on, requests already sent are answered first (what they started is terminated too), and the launch
 * rejects with an {@link InterruptedError} that says what was terminated or left.
 */
import type { Role } from "../config/schema.js";
import { FailureError, InterruptedError, errorName, isImgtoolError, stopSignalOf } from "../errors.js";
import { registerPending } from "../process-group.js";
import { checkUserDataSize, renderUserData } from "../render/user-data.js";
import { launchTags } from "./aws.js";
import { healthCheckOf, waitHealthy } from "./health.js";
import { orchestratorUrl, readyTimeoutSeconds, userDataValues } from "./plan.js";
import type {
  BootContext,
  LaunchDeps,
  LaunchOptions,
  LaunchPlan,
  PlannedGroup,
  ReadyReport,
  StartedInstance,
} from "./types.js";

/** What the start made: the instances, their readiness, the orchestrator's address and health. */
export interface Started {
  url: string;
  started: StartedInstance[];
  ready: Map<string, ReadyReport>;
  /** checked: false when the orchestrator has no HTTP check (roles.orchestrator.run.health.http). */
  health: { healthy: boolean; checks: number; checked?: boolean };
}

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };
const settle = <T>(p: Promise<T>): Promise<Settled<T>> =>
  p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );

/** Start the plan's instances and wait for them; on any failure, terminate what was started and rethrow. */
export async function start(
  plan: LaunchPlan,
  ctx: BootContext,
  opts: LaunchOptions,
  deps: LaunchDeps,
): Promise<Started> {
  const { config, backend, events } = deps;
  const now = deps.now ?? Date.now;
  const compression = config.launch.user_data_compression;
  const started: StartedInstance[] = [];
  const ready = new Map<string, ReadyReport>();
  const readyWaits: Promise<Settled<void>>[] = [];
  /** The orchestrator's health wait; an instance's readiness wait is its role's (readyTimeoutSeconds). */
  const timeoutMs = config.launch.ready_timeout_seconds * 1000;
  /** Aborts the health wait when an instance failed to boot: no waiting out the timeout for a lost cause. */
  const abort = new AbortController();
  const stop = deps.signal;
  const onStop = () => abort.abort();
  stop?.addEventListener("abort", onStop, { once: true });
  /**
   * Task-runner start requests (each settled once its instances are recorded): a failure or an interrupt waits
   * for them, so what they start is never orphaned.
   */
  const inflight: Promise<unknown>[] = [];
  const sent = <T>(p: Promise<T>): Promise<T> => {
    inflight.push(p);
    return p;
  };
  const stopped = new Promise<never>((_, reject) => {
    if (stop?.aborted) reject(new Stopped());
    else stop?.addEventListener("abort", () => reject(new Stopped()), { once: true });
  });
  stopped.catch(() => undefined);
  /** `p`, or a rejection as soon as the run is interrupted. */
  const unlessStopped = <T>(p: Promise<T>): Promise<T> => (stop ? Promise.race([p, stopped]) : p);
  const checkStop = () => {
    if (stop?.aborted) throw new Stopped();
  };
  const forget = registerPending({
    what: `the launch of run ${opts.runId}`,
    mayLeave: `the instances it started (\`${terminateCommand(opts)}\` ends them)`,
  });
  let bootFailure: { error: unknown } | undefined;
  const watch = (insts: StartedInstance[]) => {
    if (!backend.waitReady || !opts.wait) return;
    for (const inst of insts) {
      readyWaits.push(
        settle(
          backend.waitReady(inst, readyTimeoutSeconds(config, inst.role) * 1000, stop).then((r) => {
            ready.set(inst.id, r);
            events({
              type: "ready",
              role: inst.role,
              message:
                `${inst.id} ready in ${r.bootToReadySeconds.toFixed(3)} s from its first line of user-data` +
                (r.startToReadySeconds !== undefined
                  ? ` (${r.startToReadySeconds.toFixed(3)} s from its start)`
                  : "") +
                (r.launchToReadySeconds !== undefined
                  ? ` (${r.launchToReadySeconds.toFixed(1)} s from its RunInstances answer)`
                  : "") +
                `: ${r.workers.map((w) => `${w.name} on CPU ${w.cpus}`).join(", ")}` +
                (r.pulled ? "; pulled its image" : "; no pull (baked image)") +
                (r.prewarmSeconds !== undefined ? `; pre-warm ${r.prewarmSeconds.toFixed(3)} s` : ""),
              data: { id: inst.id, ...r },
            });
          }),
        ).then((r) => {
          if (!r.ok && !bootFailure) {
            bootFailure = { error: r.error };
            abort.abort();
          }
          return r;
        }),
      );
    }
  };
  const counters: Partial<Record<Role, number>> = {};
  const request = (g: PlannedGroup) => {
    const firstIndex = counters[g.role] ?? 0;
    counters[g.role] = firstIndex + g.count;
    return {
      role: g.role,
      instanceType: g.instanceType,
      arch: g.arch,
      count: g.count,
      market: g.market,
      imageId: g.imageId,
      preloadVolume: g.preloadVolume,
      userData: g.userData,
      tags: launchTags(config.pipeline, g.role, { ami: g.amiVersion, image: g.imageVersion }, opts.runId),
      firstIndex,
      ...(g.instanceCpus ? { instanceCpus: g.instanceCpus } : {}),
      ...(g.role === "orchestrator" ? { port: ctx.orchestratorPort } : {}),
    };
  };

  let health: StartResultHealth = { healthy: false, checks: 0 };
  let url: string;
  let orchestratorId: string;
  try {
    checkStop();
    if (plan.orchestrator.reuse) {
      url = plan.orchestrator.url;
      orchestratorId = plan.orchestrator.instance.id;
    } else {
      const insts = await backend.start(request(plan.orchestrator.group), opts.runId);
      started.push(...insts);
      const orch = insts[0]!;
      orchestratorId = orch.id;
      url = orchestratorUrl(orch.privateIp, ctx.orchestratorPort);
      events({
        type: "launch",
        role: "orchestrator",
        message: `started ${orch.id} at ${orch.privateIp}: task runners will find it at ${url}`,
        data: { id: orch.id, url },
      });
      watch(insts);
      checkStop();
    }

    // The task runners, every type at once, with the orchestrator's address; its health meanwhile.
    const check = healthCheckOf(config.roles.orchestrator.run.health.http, url);
    if (!check) health = { healthy: false, checks: 0, checked: false };
    const healthWait =
      opts.wait && check
        ? settle(
            waitHealthy(check.url, {
              probe: (u) => deps.probe(u, check.status, orchestratorId),
              timeoutMs,
              ...(deps.healthIntervalMs !== undefined ? { intervalMs: deps.healthIntervalMs } : {}),
              ...(deps.sleep ? { sleep: deps.sleep } : {}),
              now,
              signal: abort.signal,
              onCheck: (n, ok) =>
                events({
                  type: "check",
                  role: "orchestrator",
                  message: `health check ${n} of ${check.url}: ${ok ? "healthy" : "not yet"}`,
                }),
            }),
          )
        : undefined;
    const groups = await Promise.all(
      plan.taskRunners.map((g) => {
        const userData = renderUserData(
          userDataValues(config, opts, ctx, "task-runner", {
            version: g.imageVersion,
            image: g.image,
            bakedImage: g.bakedImage,
            workers: g.workers,
            orchestratorUrl: url,
            instanceType: g.instanceType,
          }),
          compression,
        );
        checkUserDataSize("task-runner", userData.bytes.length, { compression });
        return sent(
          settle(
            backend.start({ ...request(g), userData }, opts.runId).then((insts) => {
              started.push(...insts);
              events({
                type: "launch",
                role: "task-runner",
                message: `started ${insts.length} x ${g.instanceType} (${insts[0]?.market ?? g.market}): ${insts.map((i) => i.id).join(", ")}`,
                data: { ids: insts.map((i) => i.id), instanceType: g.instanceType },
              });
              watch(insts);
              return insts;
            }),
          ),
        );
      }),
    );
    checkStop();
    const failedGroups = groups.flatMap((r, i) =>
      r.ok ? [] : [{ group: plan.taskRunners[i]!, error: r.error }],
    );
    if (failedGroups.length) {
      abort.abort();
      const usage = failedGroups.find((f) => isImgtoolError(f.error) && f.error.exitCode === 2);
      if (usage) throw usage.error;
      // The groups' own fixes (quota, capacity) stay with the error.
      const fixes = [
        ...new Set(
          failedGroups.flatMap((f) => (isImgtoolError(f.error) && f.error.fix ? [f.error.fix] : [])),
        ),
      ];
      throw new FailureError(
        failedGroups
          .map((f) => `Starting ${f.group.count} x ${f.group.instanceType} failed: ${describe(f.error)}`)
          .join("\n"),
        { cause: failedGroups[0]!.error, ...(fixes.length ? { fix: fixes.join(" ") } : {}) },
      );
    }
    if (healthWait) {
      const h = await unlessStopped(healthWait);
      checkStop();
      if (bootFailure) throw bootFailure.error;
      if (!h.ok) throw h.error;
      health = h.value;
      if (!health.healthy) {
        throw new FailureError(
          `The orchestrator's health check ${check!.url}${check!.status !== undefined ? ` (expecting ${check!.status})` : ""} did not pass within ${config.launch.ready_timeout_seconds} s ` +
            `(${health.checks} checks, every ${(deps.healthIntervalMs ?? 2000) / 1000} s).`,
          { fix: "Its boot log: the instance's console output (aws) or `docker logs <id>` (local)." },
        );
      }
      events({
        type: "ready",
        role: "orchestrator",
        message: `orchestrator healthy at ${url} after ${health.checks} check(s)`,
        data: { url, checks: health.checks },
      });
    }
    const readyResults = await unlessStopped(Promise.all(readyWaits));
    checkStop();
    const notReady = readyResults.find((r): r is { ok: false; error: unknown } => !r.ok);
    if (notReady) throw notReady.error;
  } catch (e) {
    abort.abort();
    // Requests already sent are answered first: what they started is terminated with the rest.
    await Promise.all(inflight);
    const outcome = await cleanUp(e, started, opts, deps);
    if (stop?.aborted) throw interrupted(opts, stopSignalOf(stop), outcome);
    throw e;
  } finally {
    stop?.removeEventListener("abort", onStop);
    forget();
  }
  return { url, started, ready, health };
}

/** The run was interrupted: the launch stops where it is and cleans up. */
class Stopped extends Error {
  constructor() {
    super("the launch was interrupted");
  }
}

function terminateCommand(opts: LaunchOptions): string {
  return `imgtool terminate --run-id ${opts.runId}${opts.target === "aws" ? " --target aws" : ""}`;
}

/** What the cleanup after a failure did with the instances this launch started. */
type CleanUpOutcome =
  | { ids: string[]; action: "none" | "kept" | "terminated" }
  | { ids: string[]; action: "failed"; error: string };

function interrupted(opts: LaunchOptions, signal: "SIGINT" | "SIGTERM", o: CleanUpOutcome): InterruptedError {
  const head = `The launch of run ${opts.runId} was interrupted (${signal})`;
  const n = `${o.ids.length} instance(s) it started (${o.ids.join(", ")})`;
  switch (o.action) {
    case "none":
      return new InterruptedError(`${head} before any instance started: nothing to clean up.`, signal);
    case "terminated":
      return new InterruptedError(`${head}: terminated the ${n}.`, signal);
    case "kept":
      return new InterruptedError(`${head}: --keep-on-failure leaves the ${n} running.`, signal, {
        fix: `\`${terminateCommand(opts)}\` ends them.`,
      });
    case "failed":
      return new InterruptedError(`${head}: terminating the ${n} failed (${o.error}).`, signal, {
        fix: `\`${terminateCommand(opts)}\` ends them.`,
      });
  }
}

function describe(e: unknown): string {
  const name = errorName(e);
  const msg = (e as Error)?.message ?? String(e);
  return name && !isImgtoolError(e) && name !== "Error" ? `${name}: ${msg}` : msg;
}

async function cleanUp(
  e: unknown,
  started: StartedInstance[],
  opts: LaunchOptions,
  deps: LaunchDeps,
): Promise<CleanUpOutcome> {
  const ids = started.map((i) => i.id);
  if (!ids.length) return { ids, action: "none" };
  const why =
    e instanceof Stopped ? "the launch was interrupted" : `the launch failed (${describe(e).split("\n")[0]})`;
  if (opts.keepOnFailure) {
    deps.events({
      type: "warn",
      message:
        `${why}; --keep-on-failure leaves ${ids.length} instance(s) running: ${ids.join(", ")} ` +
        `(\`${terminateCommand(opts)}\` ends them)`,
    });
    return { ids, action: "kept" };
  }
  deps.events({
    type: "fail",
    message: `${why}: terminating the ${ids.length} instance(s) it started: ${ids.join(", ")}`,
  });
  try {
    await deps.backend.terminate(ids);
    await deps.backend.forgetRun?.(opts.runId);
    return { ids, action: "terminated" };
  } catch (te) {
    deps.events({
      type: "fail",
      message: `terminating ${ids.join(", ")} failed too (${describe(te)}): end them with \`${terminateCommand(opts)}\``,
    });
    return { ids, action: "failed", error: describe(te) };
  }
}

type StartResultHealth = { healthy: boolean; checks: number; checked?: boolean };
