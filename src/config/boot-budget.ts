/**
 * The boot budget (issue 12, section 1): how long a new version may take from the first line of its user-data to
 * ready, per role, and how much slower than the previous version it may be. The pipeline's smoke launch measures
 * it; over either bound, `stable` does not move (src/pipeline/boot-budget.ts). The task runner's `pre-warm` step
 * is judged apart by default (`pre_warm`): on aws it reads a fresh AMI's volume, which loads lazily from S3, so it
 * can take minutes on a version whose boot is otherwise a second.
 */
import { z } from "zod";

const msg = (error: string) => ({ error });

/** A number of seconds above 0, at most an hour. */
const secondsKey = (d: number, description: string) =>
  z
    .number()
    .positive(msg("must be a number of seconds above 0"))
    .max(3600, msg("must be at most 3600 seconds"))
    .default(d)
    .describe(description);

const seconds = (role: string, d: number) =>
  secondsKey(
    d,
    `Most seconds the ${role} of a new version may take from the first line of its user-data to ready` +
      (role === "task-runner"
        ? " (without its `pre-warm` step unless `boot_budget.pre_warm.in_budget`)."
        : "."),
  );

/** Defaults: generous against a boot that installs nothing (about a second here), tight against one that does. */
export const BOOT_BUDGET_DEFAULTS = {
  seconds: { "task-runner": 60, orchestrator: 120 },
  max_ratio: 1.5,
  min_slowdown_seconds: 1,
  pre_warm: { seconds: 900, in_budget: false },
};

export const BootBudgetSchema = z
  .strictObject({
    seconds: z
      .strictObject({
        "task-runner": seconds("task-runner", BOOT_BUDGET_DEFAULTS.seconds["task-runner"]),
        orchestrator: seconds("orchestrator", BOOT_BUDGET_DEFAULTS.seconds.orchestrator),
      })
      .default(BOOT_BUDGET_DEFAULTS.seconds)
      .describe(
        "Boot-to-ready budget per role (the orchestrator's is larger: a stack starts a database). 60 s against " +
          "`dnf update` at boot (minutes), far above the second a baked boot takes.",
      ),
    max_ratio: z
      .number()
      .min(1, msg("must be at least 1 (1 = no slower than the previous version)"))
      .default(BOOT_BUDGET_DEFAULTS.max_ratio)
      .describe(
        "Most times slower than the previous version's boot-to-ready (the version stable pointed at) a new version may be.",
      ),
    min_slowdown_seconds: z
      .number()
      .min(0, msg("must be 0 or more"))
      .default(BOOT_BUDGET_DEFAULTS.min_slowdown_seconds)
      .describe(
        "A boot slower than max_ratio by fewer seconds than this still passes: sub-second boots vary by more " +
          "than half on a busy machine.",
      ),
    pre_warm: z
      .strictObject({
        seconds: secondsKey(
          BOOT_BUDGET_DEFAULTS.pre_warm.seconds,
          "Most seconds a new version's `pre-warm` boot step (a task runner reading its image's layers, the " +
            "ruby-bench cache and the Rubies) may take. On aws a fresh AMI's volume loads lazily from S3, so " +
            "it can take minutes without `aws.fast_snapshot_restore`. It is also the step's limit on the instance (what is " +
            "not read by then loads on first read) and launch waits that much longer for a task runner.",
        ),
        in_budget: z
          .boolean()
          .default(BOOT_BUDGET_DEFAULTS.pre_warm.in_budget)
          .describe(
            "Count the `pre-warm` step in the boot-to-ready that `boot_budget.seconds` and `max_ratio` judge. " +
              "Off: they judge the boot without it, and `pre_warm.seconds` judges the step alone.",
          ),
      })
      .default(BOOT_BUDGET_DEFAULTS.pre_warm)
      .describe("The task runner's `pre-warm` boot step, judged apart from the rest of the boot by default."),
  })
  .default(BOOT_BUDGET_DEFAULTS)
  .describe(
    "The boot budget every new version must meet in the pipeline's smoke launch before `stable` moves to it.",
  );

export type BootBudgetConfig = z.output<typeof BootBudgetSchema>;
