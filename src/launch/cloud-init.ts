/**
 * What happens to user-data between imgtool and the script's first line, as far as imgtool mirrors it or reads it
 * back. Pure: no file system, engine or network.
 *
 * - EC2 refuses user-data over 16 KB of raw bytes (before base64) in RunInstances, with
 *   `InvalidParameterValue: User data is limited to 16384 bytes`. imgtool's own check before a launch
 *   (src/launch/precheck.ts) stays first on both targets; the local target's instances refuse the same way
 *   EC2 does, in EC2's words ({@link ec2UserDataRefusal}), and an aws launch reports EC2's answer in the same
 *   shape ({@link userDataRefused}).
 * - cloud-init's own account of a boot: /run/cloud-init/result.json (the boot's errors), status.json (each
 *   stage's errors; cloud-init >= 23.4 adds recoverable WARNING/ERROR lists) and the WARNING/ERROR lines of its
 *   log, which the console carries too. A part cloud-init cannot decode or has no handler for is only a WARNING
 *   (nothing in result.json), so the log's lines are part of its words ({@link cloudInitErrors}).
 */
import { UsageError } from "../errors.js";
import { USER_DATA_LIMIT } from "../render/user-data.js";

/** An EC2 API error: its code and message, as RunInstances answers. */
export interface Ec2Error {
  code: string;
  message: string;
}

/** RunInstances' answer to user-data over the limit (the code and words EC2 answers with). */
export const EC2_USER_DATA_TOO_LARGE: Ec2Error = {
  code: "InvalidParameterValue",
  message: `User data is limited to ${USER_DATA_LIMIT} bytes`,
};

/** EC2's error for user-data of `size` raw bytes, or undefined when RunInstances accepts that size. */
export function ec2UserDataRefusal(size: number): Ec2Error | undefined {
  return size > USER_DATA_LIMIT ? EC2_USER_DATA_TOO_LARGE : undefined;
}

/**
 * The error of a group whose user-data EC2 refused: on aws, EC2's own answer; on the local target, the same rule
 * and words (the local instance stands in for EC2). A usage error: the config made the user-data that large.
 */
export function userDataRefused(opts: {
  /** The group, e.g. `RunInstances for 2 x c7i.large (on-demand) of task-runner`. */
  what: string;
  size: number;
  error: Ec2Error;
  /** Who refused: "EC2" (aws) or the local target applying EC2's rule. */
  by: "EC2" | "the local target, as EC2 does";
  cause?: unknown;
}): UsageError {
  return new UsageError(
    `${opts.what} was refused by ${opts.by}, with EC2's error ${opts.error.code}: ${opts.error.message} ` +
      `(this user-data is ${opts.size} bytes). The group was not started.`,
    {
      fix:
        "Set launch.user_data_compression: gzip, or shorten launch.worker_env and the role's run settings " +
        "(imgtool's own check before a launch names the role and its size).",
      ...(opts.cause === undefined ? {} : { cause: opts.cause }),
    },
  );
}

/** cloud-init's `v1.errors` of result.json (the boot's errors), each as cloud-init wrote it. */
export function resultErrors(text: string): string[] {
  const v1 = objectAt(parseJson(text), "v1");
  return strings(v1?.errors);
}

/** One stage of status.json: its errors (and recoverable WARNING/ERROR lines, cloud-init >= 23.4). */
export interface StageStatus {
  stage: string;
  finished: boolean;
  errors: string[];
}

/** The stages of status.json that ran (a start time), in cloud-init's boot order. */
export function statusStages(text: string): StageStatus[] {
  const v1 = objectAt(parseJson(text), "v1");
  if (!v1) return [];
  const order = ["init-local", "init", "modules-init", "modules-config", "modules-final"];
  const names = Object.keys(v1)
    .filter((k) => typeof v1[k] === "object" && v1[k] !== null && "start" in (v1[k] as object))
    .sort((a, b) => rank(order, a) - rank(order, b));
  return names.flatMap((stage): StageStatus[] => {
    const s = v1[stage] as Record<string, unknown>;
    if (s.start === null || s.start === undefined) return [];
    const recoverable = objectAt(s, "recoverable_errors");
    return [
      {
        stage,
        finished: typeof s.finished === "number",
        errors: [
          ...strings(s.errors),
          ...["CRITICAL", "ERROR", "WARNING"].flatMap((level) =>
            strings(recoverable?.[level]).map((m) => `${level}: ${m}`),
          ),
        ],
      },
    ];
  });
}

// cloud-init's log and console lines: `2026-12-03 04:05:53,234 - __init__.py[WARNING]: message` (the log file
// and Debian's console), `[CLOUDINIT] util.py[WARNING]: message` (Ubuntu's syslog format).
const LOG_PROBLEM =
  /^(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - |\[CLOUDINIT\] )?([\w.-]+\.py\[(?:WARNING|ERROR|CRITICAL)\]: .*)$/;

/** The WARNING, ERROR and CRITICAL lines of cloud-init's log (or a console that carries them), without times. */
export function logProblems(text: string): string[] {
  return text
    .split("\n")
    .map((l) => LOG_PROBLEM.exec(l.replace(/\r$/, ""))?.[1])
    .filter((l): l is string => l !== undefined);
}

/**
 * cloud-init's own words about a boot, each line once, in order: result.json's errors, each stage's errors from
 * status.json (`modules-final: ...`), then the log's WARNING/ERROR lines. Empty when cloud-init reported nothing.
 */
export function cloudInitErrors(src: { result?: string; status?: string; log?: string }): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const add = (line: string, key = line) => {
    if (seen.has(key)) return;
    seen.add(key);
    out.push(line);
  };
  for (const e of resultErrors(src.result ?? "")) add(`result.json: ${e}`, e);
  for (const s of statusStages(src.status ?? "")) for (const e of s.errors) add(`${s.stage}: ${e}`, e);
  for (const l of logProblems(src.log ?? "")) add(l);
  return out;
}

function parseJson(text: string): unknown {
  if (!text.trim()) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    if (e instanceof SyntaxError) return undefined;
    throw e;
  }
}

function objectAt(v: unknown, key: string): Record<string, unknown> | undefined {
  if (typeof v !== "object" || v === null) return undefined;
  const inner = (v as Record<string, unknown>)[key];
  return typeof inner === "object" && inner !== null && !Array.isArray(inner)
    ? (inner as Record<string, unknown>)
    : undefined;
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.map((x) => (typeof x === "string" ? x : JSON.stringify(x))) : [];
}

const rank = (order: string[], name: string) => {
  const i = order.indexOf(name);
  return i < 0 ? order.length : i;
};
