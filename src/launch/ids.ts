/** Run ids, the names derived from them, and RunInstances client tokens. */
import { createHash, randomBytes } from "node:crypto";
import { UsageError } from "../errors.js";

export type Market = "spot" | "on-demand";

/** Lower-case letters, digits and '-', 1-32 characters: it goes into tags, container names and tokens. */
export const RUN_ID_RE = /^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/;

/** A new run id: launch time and 4 random hex digits, e.g. 20261129-174501-3fa2. */
export function newRunId(
  now: Date = new Date(),
  random: () => string = () => randomBytes(2).toString("hex"),
) {
  const iso = now.toISOString();
  return `${iso.slice(0, 10).replace(/-/g, "")}-${iso.slice(11, 19).replace(/:/g, "")}-${random()}`;
}

export function checkRunId(runId: string, flag = "--run-id"): string {
  if (!RUN_ID_RE.test(runId)) {
    throw new UsageError(`${flag} ${JSON.stringify(runId)} is not a run id.`, {
      fix: "Use 1-32 lower-case letters, digits and '-', starting and ending with a letter or digit (e.g. nightly-42).",
    });
  }
  return runId;
}

/**
 * The ClientToken of one RunInstances request: run id, role, instance type and market, so that a retried call
 * returns the instances the first one started, and a fallback to on-demand (or another type) is a new request.
 * EC2 takes at most 64 ASCII characters: a longer token keeps its start and ends with a hash of the whole.
 */
export function clientToken(runId: string, role: string, instanceType: string, market: Market): string {
  const full = `${runId}-${role}-${instanceType}-${market}`;
  if (full.length <= 64) return full;
  return `${full.slice(0, 51)}-${createHash("sha256").update(full).digest("hex").slice(0, 12)}`;
}

/** Local instance (container) name; also its id in the output. */
export function localInstanceName(pipeline: string, runId: string, role: string, index: number): string {
  return `imgtool-${pipeline}-${runId}-${role}-${index + 1}`;
}
