/**
 * The boot's steps as the user-data timed them (templates/user-data/common.sh.hbs, `step NAME ...`): the ready
 * record's `bootSteps`, `{"engine-wait": 0.012, "secret-read": 0.003, "image-check": 0.041, "pre-warm": 0.3,
 * "worker-start": 1.2}` in boot order (a task runner pre-warms) (a stack role: `stack-start` instead of `worker-start`). Any step the user-data adds is
 * read the same way: nothing here lists the names.
 */

/** The task runner's step that reads the image's files before the workers start (templates/user-data/common.sh.hbs). */
export const PREWARM_STEP = "pre-warm";

/** Step name -> seconds, in boot order. */
export type BootSteps = Record<string, number>;

/** The steps of a ready record's `bootSteps`, or undefined when it has none (a user-data of an older imgtool). */
export function bootStepsOf(value: unknown): BootSteps | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const out: BootSteps = {};
  for (const [name, s] of Object.entries(value)) if (typeof s === "number" && s >= 0) out[name] = s;
  return out;
}

/** The step that took longest (the first of equals), or undefined when there is none. */
export function slowestStep(steps: BootSteps | undefined): { name: string; seconds: number } | undefined {
  let best: { name: string; seconds: number } | undefined;
  for (const [name, seconds] of Object.entries(steps ?? {}))
    if (!best || seconds > best.seconds) best = { name, seconds };
  return best;
}

/** `{ bootSteps }` when the record has them, else nothing (for a ReadyReport). */
export function withBootSteps(value: unknown): { bootSteps?: BootSteps } {
  const steps = bootStepsOf(value);
  return steps ? { bootSteps: steps } : {};
}
