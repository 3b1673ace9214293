/**
 * The orchestrator's health: checked once when it is already healthy, otherwise polled every 2 s until it
 * answers or the time is up (seed items 7 and 8).
 */
import http from "node:http";
import type { RunOnInstance } from "../aws/run-command.js";
import { healthScript, healthStatusOf } from "../render/remote-checks.js";

/**
 * One health check of the full URL: true when it answered `status` (default: any 2xx). Never throws for an
 * answer that is not (yet) healthy. `instanceId` is the orchestrator's: where the check runs (aws, through SSM
 * Run Command) rather than over the network.
 */
export type HealthProbe = (url: string, status?: number, instanceId?: string) => Promise<boolean>;

/**
 * The orchestrator's HTTP check (roles.orchestrator.run.health.http): its full URL on the orchestrator's host, at
 * the configured port (default: the orchestrator's) and path, and the status it must answer; undefined when the
 * role has no HTTP check.
 */
export function healthCheckOf(
  http: { port?: number | undefined; path: string; status?: number | undefined } | undefined,
  orchestratorUrl: string,
): { url: string; status?: number } | undefined {
  if (!http) return undefined;
  const u = new URL(orchestratorUrl);
  if (http.port !== undefined) u.port = String(http.port);
  return {
    url: `${u.protocol}//${u.host}${http.path}`,
    ...(http.status !== undefined ? { status: http.status } : {}),
  };
}

export const HEALTH_INTERVAL_MS = 2_000;

export interface HealthOutcome {
  healthy: boolean;
  /** Checks made (1 when it was already healthy). */
  checks: number;
  seconds: number;
}

export async function waitHealthy(
  url: string,
  opts: {
    probe: HealthProbe;
    timeoutMs: number;
    intervalMs?: number;
    sleep?: (ms: number) => Promise<void>;
    now?: () => number;
    onCheck?: (n: number, healthy: boolean) => void;
    /** Stop early (another part of the launch failed). */
    signal?: AbortSignal;
  },
): Promise<HealthOutcome> {
  const interval = opts.intervalMs ?? HEALTH_INTERVAL_MS;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const now = opts.now ?? Date.now;
  const started = now();
  let checks = 0;
  for (;;) {
    checks++;
    const healthy = await opts.probe(url);
    opts.onCheck?.(checks, healthy);
    if (healthy) return { healthy, checks, seconds: (now() - started) / 1000 };
    if (opts.signal?.aborted || now() - started + interval > opts.timeoutMs) {
      return { healthy: false, checks, seconds: (now() - started) / 1000 };
    }
    await sleep(interval);
  }
}

/** GET <url> over HTTP, answered `status` (default: any 2xx) within `timeoutMs`. */
export function httpHealthProbe(timeoutMs = 1_500): HealthProbe {
  return (url, status) =>
    new Promise((resolve) => {
      const req = http.get(url, { timeout: timeoutMs }, (res) => {
        res.resume();
        const code = res.statusCode ?? 0;
        resolve(status !== undefined ? code === status : code >= 200 && code < 300);
      });
      req.on("timeout", () => req.destroy());
      req.on("error", () => resolve(false));
    });
}

/**
 * aws: the health check run on the orchestrator instance itself through SSM Run Command (its port on 127.0.0.1),
 * so that the launcher needs no path into the VPC. An instance the SSM agent does not manage yet (still booting)
 * is not healthy yet.
 */
export function runCommandHealthProbe(run: RunOnInstance, timeoutSeconds = 30): HealthProbe {
  return async (url, status, instanceId) => {
    if (!instanceId) throw new Error("runCommandHealthProbe: the orchestrator's instance id is needed");
    const r = await run(instanceId, healthScript(url), { timeoutSeconds, comment: `imgtool health ${url}` });
    if (r.status !== "Success") return false;
    const code = healthStatusOf(r.stdout);
    if (code === undefined) return false;
    return status !== undefined ? code === status : code >= 200 && code < 300;
  };
}
