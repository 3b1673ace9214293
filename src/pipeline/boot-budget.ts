/**
 * The boot budget's judgement (issue 12, section 1), pure: a new version's boot-to-ready, as its smoke launch
 * measured it, against the role's budget in config and against the previous version's (the one `stable` pointed
 * at), and the lines that say why a version was refused: both numbers and the slowest boot step.
 */
import type { BootBudgetConfig } from "../config/boot-budget.js";
import type { Arch, Role } from "../config/schema.js";
import { slowestStep, type BootSteps } from "../launch/boot-steps.js";

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
  seconds: number;
  steps: BootSteps;
  budgetSeconds: number;
  /** The previous version's record (null: none recorded, e.g. the first pipeline run). */
  previous: { version: string; seconds: number; steps: BootSteps } | null;
  /** seconds / previous seconds (null without a previous record). */
  ratio: number | null;
  overBudget: boolean;
  /** More than max_ratio slower than the previous version, and by at least min_slowdown_seconds. */
  slowerThanPrevious: boolean;
  slowest: { name: string; seconds: number } | null;
  /** The step that grew most against the previous version (null without a previous record or growth). */
  grewMost: { name: string; by: number } | null;
  ok: boolean;
}

const round3 = (n: number) => Math.round(n * 1000) / 1000;

/** Judge one boot against the budget and the previous version's record (when there is one). */
export function judgeBoot(
  m: Omit<BootMeasure, "arch"> & { arch: string; version: string },
  previous: Pick<BootRecord, "version" | "seconds" | "steps"> | undefined,
  budget: BootBudgetConfig,
): BootVerdict {
  const budgetSeconds = budget.seconds[m.role];
  const overBudget = m.seconds > budgetSeconds;
  const ratio = previous && previous.seconds > 0 ? round3(m.seconds / previous.seconds) : null;
  const slowerThanPrevious =
    previous !== undefined &&
    m.seconds > previous.seconds * budget.max_ratio &&
    m.seconds - previous.seconds >= budget.min_slowdown_seconds;
  let grewMost: BootVerdict["grewMost"] = null;
  if (previous) {
    for (const [name, s] of Object.entries(m.steps)) {
      const by = s - (previous.steps[name] ?? 0);
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
    budgetSeconds,
    previous: previous
      ? { version: previous.version, seconds: previous.seconds, steps: previous.steps }
      : null,
    ratio,
    overBudget,
    slowerThanPrevious,
    slowest: slowestStep(m.steps) ?? null,
    grewMost,
    ok: !overBudget && !slowerThanPrevious,
  };
}

const s3 = (n: number) => `${n.toFixed(3)} s`;

/** The slowest step, and (when another) the one that grew most since the previous version. */
export function stepsPhrase(v: BootVerdict): string {
  if (!v.slowest) return "the boot steps were not timed (an instance of an older user-data)";
  const grew = v.grewMost && v.previous ? ` (+${s3(v.grewMost.by)} since ${v.previous.version})` : "";
  const slowest = `slowest boot step: ${v.slowest.name} ${s3(v.slowest.seconds)}`;
  if (!v.grewMost || v.grewMost.name === v.slowest.name) return `${slowest}${grew}`;
  return `${slowest}; grew most: ${v.grewMost.name}${grew}`;
}

/** Against the previous version: its time and the ratio, or that there is none. */
function previousPhrase(v: BootVerdict, budget: BootBudgetConfig): string {
  if (!v.previous) return "no previous version's boot recorded";
  return (
    `previous version ${v.previous.version}: ${s3(v.previous.seconds)}` +
    (v.ratio === null ? "" : `, ${v.ratio.toFixed(2)}x (max ${budget.max_ratio}x)`)
  );
}

/** One line per verdict: "task-runner v... (instance): 2.713 s, over its budget of 2 s (...); previous ...; slowest ...". */
export function verdictLine(v: BootVerdict, budget: BootBudgetConfig): string {
  const why = [
    v.overBudget
      ? `over its budget of ${v.budgetSeconds} s (boot_budget.seconds.${v.role})`
      : `budget ${v.budgetSeconds} s`,
    v.slowerThanPrevious ? `more than ${budget.max_ratio}x slower than the previous version` : "",
  ].filter(Boolean);
  return (
    `${v.role} ${v.version} (${v.instanceId}): boot-to-ready ${s3(v.seconds)}, ${why.join(", ")}; ` +
    `${previousPhrase(v, budget)}; ${stepsPhrase(v)}`
  );
}

/** The short detail of a verdict for the pipeline's table. */
export function verdictDetail(v: BootVerdict, budget: BootBudgetConfig): string {
  const prev = v.previous
    ? `prev ${s3(v.previous.seconds)}${v.ratio === null ? "" : ` (${v.ratio.toFixed(2)}x, max ${budget.max_ratio}x)`}`
    : "no previous";
  const slow = v.slowest ? `; slowest ${v.slowest.name} ${s3(v.slowest.seconds)}` : "";
  return `budget ${v.budgetSeconds} s, ${prev}${slow}`;
}

/** The failure's message: every refused boot, both numbers and the slowest step. */
export function budgetFailureMessage(refused: BootVerdict[], budget: BootBudgetConfig): string {
  return [
    `The new version${refused.length === 1 ? " is" : "s are"} too slow to boot; \`stable\` was not moved:`,
    ...refused.map((v) => `  ${verdictLine(v, budget)}`),
  ].join("\n");
}

export function budgetFailureFix(refused: BootVerdict[]): string {
  const roles = [...new Set(refused.map((v) => v.role))];
  return (
    "Find what the provisioning change added to that boot step (`imgtool launch --channel latest --json` shows " +
    "each instance's bootSteps; `imgtool status --version V` the recorded ones). If the new time is intended, " +
    `raise ${roles.map((r) => `boot_budget.seconds.${r}`).join(" or ")} (or boot_budget.max_ratio) and run the pipeline again.`
  );
}
