/**
 * The boot budget's judgement (issue 12, section 1), pure: a new version's boot-to-ready, as its smoke launch
 * measured it, against the role's budget in config and against the previous version's (the one `stable` pointed
 * at), and the lines that say why a version was refused: both numbers and the slowest boot step. By default the
 * budget and the ratio judge the boot without its `pre-warm` step (both versions' boots alike), and the step has
 * its own ceiling (boot_budget.pre_warm): on aws it reads a fresh volume that loads lazily from S3.
 */
import type { BootBudgetConfig } from "../config/boot-budget.js";
import type { Arch, Role } from "../config/schema.js";
import { PREWARM_STEP, slowestStep, type BootSteps } from "../launch/boot-steps.js";

/** One instance's boot in the smoke launch. */
export interface BootMeasure {
  role: Role;
  arch: Arch | null;
  instanceId: string;
  /** From the first line of user-data to ready. */
  seconds: number;
  /** Each boot step's seconds, in boot order (empty from a user-data that does not time them). */
  steps: BootSteps;
}

/** What the catalog keeps per version (src/pipeline/boot-records.ts): the boot its smoke launch measured. */
export interface BootRecord {
  schema: 1;
  role: Role;
  arch: string;
  /** The AMI (twin) version that booted. */
  version: string;
  /** The image version its workers ran, when known. */
  imageVersion: string | null;
  target: string;
  instanceId: string;
  seconds: number;
  steps: BootSteps;
  measuredAt: string;
}

export interface BootVerdict {
  role: Role;
  arch: string;
  version: string;
  instanceId: string;
  /** Boot-to-ready as measured, every step included. */
  seconds: number;
  /** Every step as the instance timed it (the pre-warm too). */
  steps: BootSteps;
  /** What the budget and the ratio judged: `seconds` without the pre-warm step unless pre_warm.in_budget. */
  judgedSeconds: number;
  /** The pre-warm step was left out of judgedSeconds (the instance pre-warmed and pre_warm.in_budget is off). */
  prewarmApart: boolean;
  budgetSeconds: number;
  /** The previous version's record (null: none recorded, e.g. the first pipeline run). */
  previous: { version: string; seconds: number; judgedSeconds: number; steps: BootSteps } | null;
  /** judgedSeconds / the previous version's judgedSeconds (null without a previous record). */
  ratio: number | null;
  overBudget: boolean;
  /** More than max_ratio slower than the previous version, and by at least min_slowdown_seconds. */
  slowerThanPrevious: boolean;
  /** The pre-warm step's seconds against its own ceiling (null: the instance did not pre-warm). */
  prewarm: { seconds: number; ceiling: number; over: boolean } | null;
  /** The slowest of the judged steps. */
  slowest: { name: string; seconds: number } | null;
  /** The judged step that grew most against the previous version (null without a previous record or growth). */
  grewMost: { name: string; by: number } | null;
  ok: boolean;
}

const round3 = (n: number) => Math.round(n * 1000) / 1000;

/** The steps the budget judges: all of them, or all but the pre-warm when it is judged apart. */
function judgedSteps(steps: BootSteps, apart: boolean): BootSteps {
  if (!apart) return steps;
  return Object.fromEntries(Object.entries(steps).filter(([name]) => name !== PREWARM_STEP));
}

/** A boot's seconds without its pre-warm step when that is judged apart. */
function judgedOf(seconds: number, steps: BootSteps, apart: boolean): number {
  const prewarm = steps[PREWARM_STEP];
  return apart && prewarm !== undefined ? round3(Math.max(0, seconds - prewarm)) : seconds;
}

/** Judge one boot against the budget and the previous version's record (when there is one). */
export function judgeBoot(
  m: Omit<BootMeasure, "arch"> & { arch: string; version: string },
  previous: Pick<BootRecord, "version" | "seconds" | "steps"> | undefined,
  budget: BootBudgetConfig,
): BootVerdict {
  const apart = !budget.pre_warm.in_budget;
  const prewarmSeconds = m.steps[PREWARM_STEP];
  const judgedSeconds = judgedOf(m.seconds, m.steps, apart);
  const steps = judgedSteps(m.steps, apart);
  const prev = previous && {
    version: previous.version,
    seconds: previous.seconds,
    judgedSeconds: judgedOf(previous.seconds, previous.steps, apart),
    steps: previous.steps,
  };
  const budgetSeconds = budget.seconds[m.role];
  const overBudget = judgedSeconds > budgetSeconds;
  const ratio = prev && prev.judgedSeconds > 0 ? round3(judgedSeconds / prev.judgedSeconds) : null;
  const slowerThanPrevious =
    prev !== undefined &&
    judgedSeconds > prev.judgedSeconds * budget.max_ratio &&
    judgedSeconds - prev.judgedSeconds >= budget.min_slowdown_seconds;
  const prewarm =
    prewarmSeconds === undefined
      ? null
      : {
          seconds: prewarmSeconds,
          ceiling: budget.pre_warm.seconds,
          over: prewarmSeconds > budget.pre_warm.seconds,
        };
  let grewMost: BootVerdict["grewMost"] = null;
  if (prev) {
    for (const [name, s] of Object.entries(steps)) {
      const by = s - (prev.steps[name] ?? 0);
      if (by > 0 && (!grewMost || by > grewMost.by)) grewMost = { name, by: round3(by) };
    }
  }
  return {
    role: m.role,
    arch: m.arch,
    version: m.version,
    instanceId: m.instanceId,
    seconds: m.seconds,
    steps: m.steps,
    judgedSeconds,
    prewarmApart: apart && prewarmSeconds !== undefined,
    budgetSeconds,
    previous: prev ?? null,
    ratio,
    overBudget,
    slowerThanPrevious,
    prewarm,
    slowest: slowestStep(steps) ?? null,
    grewMost,
    ok: !overBudget && !slowerThanPrevious && !prewarm?.over,
  };
}

const s3 = (n: number) => `${n.toFixed(3)} s`;

/** The slowest step, and (when another) the one that grew most since the previous version. */
export function stepsPhrase(v: BootVerdict): string {
  if (!v.slowest) {
    return Object.keys(v.steps).length
      ? "no boot step but the pre-warm was timed"
      : "the boot steps were not timed (an instance of an older user-data)";
  }
  const grew = v.grewMost && v.previous ? ` (+${s3(v.grewMost.by)} since ${v.previous.version})` : "";
  const slowest = `slowest boot step: ${v.slowest.name} ${s3(v.slowest.seconds)}`;
  if (!v.grewMost || v.grewMost.name === v.slowest.name) return `${slowest}${grew}`;
  return `${slowest}; grew most: ${v.grewMost.name}${grew}`;
}

/** The boot the budget judged: "boot-to-ready 1.200 s", or without the pre-warm and the whole boot after it. */
function bootPhrase(v: BootVerdict): string {
  return v.prewarmApart
    ? `boot-to-ready without ${PREWARM_STEP} ${s3(v.judgedSeconds)} (${s3(v.seconds)} with it)`
    : `boot-to-ready ${s3(v.seconds)}`;
}

/** The pre-warm step against its own ceiling, when the instance pre-warmed. */
function prewarmPhrase(v: BootVerdict): string {
  if (!v.prewarm) return "";
  return v.prewarm.over
    ? `${PREWARM_STEP} ${s3(v.prewarm.seconds)}, over its ceiling of ${v.prewarm.ceiling} s (boot_budget.pre_warm.seconds)`
    : `${PREWARM_STEP} ${s3(v.prewarm.seconds)} (ceiling ${v.prewarm.ceiling} s)`;
}

/** Against the previous version: its time (judged alike) and the ratio, or that there is none. */
function previousPhrase(v: BootVerdict, budget: BootBudgetConfig): string {
  if (!v.previous) return "no previous version's boot recorded";
  return (
    `previous version ${v.previous.version}: ${s3(v.previous.judgedSeconds)}` +
    (v.ratio === null ? "" : `, ${v.ratio.toFixed(2)}x (max ${budget.max_ratio}x)`)
  );
}

/**
 * One line per verdict: "task-runner v... (instance): boot-to-ready without pre-warm 2.713 s (3.001 s with it),
 * over its budget of 2 s (...), pre-warm 0.288 s (ceiling 900 s); previous ...; slowest ...".
 */
export function verdictLine(v: BootVerdict, budget: BootBudgetConfig): string {
  const why = [
    v.overBudget
      ? `over its budget of ${v.budgetSeconds} s (boot_budget.seconds.${v.role})`
      : `budget ${v.budgetSeconds} s`,
    v.slowerThanPrevious ? `more than ${budget.max_ratio}x slower than the previous version` : "",
    prewarmPhrase(v),
  ].filter(Boolean);
  return (
    `${v.role} ${v.version} (${v.instanceId}): ${bootPhrase(v)}, ${why.join(", ")}; ` +
    `${previousPhrase(v, budget)}; ${stepsPhrase(v)}`
  );
}

/** The stage row's status of a verdict. */
export function verdictStatus(v: BootVerdict): string {
  if (v.ok) return "within-budget";
  if (v.overBudget) return "over-budget";
  if (v.slowerThanPrevious) return "slower";
  return "pre-warm-over-ceiling";
}

/** The short detail of a verdict for the pipeline's table. */
export function verdictDetail(v: BootVerdict, budget: BootBudgetConfig): string {
  const prev = v.previous
    ? `prev ${s3(v.previous.judgedSeconds)}${v.ratio === null ? "" : ` (${v.ratio.toFixed(2)}x, max ${budget.max_ratio}x)`}`
    : "no previous";
  const slow = v.slowest ? `; slowest ${v.slowest.name} ${s3(v.slowest.seconds)}` : "";
  const prewarm = v.prewarm
    ? `; ${PREWARM_STEP} ${s3(v.prewarm.seconds)} (ceiling ${v.prewarm.ceiling} s)`
    : "";
  return `budget ${v.budgetSeconds} s${v.prewarmApart ? ` without ${PREWARM_STEP}` : ""}, ${prev}${slow}${prewarm}`;
}

/** The failure's message: every refused boot, both numbers and the slowest step. */
export function budgetFailureMessage(refused: BootVerdict[], budget: BootBudgetConfig): string {
  return [
    `The new version${refused.length === 1 ? " is" : "s are"} too slow to boot; \`stable\` was not moved:`,
    ...refused.map((v) => `  ${verdictLine(v, budget)}`),
  ].join("\n");
}

export function budgetFailureFix(refused: BootVerdict[]): string {
  const roles = [...new Set(refused.filter((v) => v.overBudget || v.slowerThanPrevious).map((v) => v.role))];
  const fixes = [
    "Find what the provisioning change added to that boot step (`imgtool launch --channel latest --json` shows " +
      "each instance's bootSteps; `imgtool status --version V` the recorded ones).",
  ];
  if (refused.some((v) => v.prewarm?.over)) {
    fixes.push(
      `A slow ${PREWARM_STEP} on aws is a fresh AMI's volume loading lazily from S3: \`aws.fast_snapshot_restore: true\` ` +
        "makes it load at once.",
    );
  }
  const keys = [
    ...roles.map((r) => `boot_budget.seconds.${r}`),
    ...(refused.some((v) => v.prewarm?.over) ? ["boot_budget.pre_warm.seconds"] : []),
  ];
  const ratio = roles.length ? " (or boot_budget.max_ratio)" : "";
  fixes.push(`If the new time is intended, raise ${keys.join(" or ")}${ratio} and run the pipeline again.`);
  return fixes.join(" ");
}
