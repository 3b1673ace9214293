/**
 * The orchestrator's health: checked once when it is already healthy, otherwise polled every 2 s until it
 * answers or the time is up (seed items 7 and 8).
 */
import http from "node:http";

/** One health check: true when the orchestrator answered 2xx. Never throws. */
export type HealthProbe = (url: string) => Promise<boolean>;

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

/** GET <url>/health over HTTP, answered 2xx within `timeoutMs`. */
export function httpHealthProbe(timeoutMs = 1_500): HealthProbe {
  return (url) =>
    new Promise((resolve) => {
      const req = http.get(`${url.replace(/\/+$/, "")}/health`, { timeout: timeoutMs }, (res) => {
        res.resume();
        resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300);
      });
      req.on("timeout", () => req.destroy());
      req.on("error", () => resolve(false));
    });
}
