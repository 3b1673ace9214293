/**
 * The pipeline's smoke check as config (issue 9, section 4): a script of the user's, run on the orchestrator
 * instance of the smoke launch once every instance is ready, with the role's secrets in its environment and a
 * timeout; exit 0 means passed. Without a script the pipeline runs the built-in example task (queue one `fib`
 * task at the example orchestrator and wait until a worker reports it done).
 *
 * This file holds the schema piece (used by ./schema.ts) and the pure checks across keys (used by ./load.ts).
 */
import { z } from "zod";
import { checkWords, type Placeholder } from "./workload.js";

const msg = (error: string) => ({ error });
const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The placeholders a smoke env value may use: what is known on the orchestrator instance. */
export const SMOKE_PLACEHOLDERS: readonly Placeholder[] = [
  "orchestrator_url",
  "run_id",
  "pipeline",
  "target",
  "provider",
  "region",
  "instance_id",
  "port",
];

export const SmokeSchema = z
  .strictObject({
    script: z
      .string()
      .min(1, msg("must be a path to a script (relative to the config file)"))
      .optional()
      .describe(
        "A script of yours, relative to the config file, run on the orchestrator instance of the smoke launch " +
          "(local: inside the local instance; aws: through SSM Run Command) once every instance is ready; exit 0 " +
          "passes. It gets IMGTOOL_ORCHESTRATOR_URL, IMGTOOL_RUN_ID, IMGTOOL_WORKERS and `env`. Default: the " +
          "built-in example task (one fib task queued at the example orchestrator; examples/smoke/fib-task.sh " +
          "is the same check as a script).",
      ),
    env: z
      .record(z.string().regex(ENV_NAME_RE, msg("must be an environment variable name")), z.string())
      .default({})
      .describe(
        "Environment of the smoke script; values may use {secret:NAME} (read on the instance at run time, " +
          "never sent with the command) and {orchestrator_url}, {run_id}, {pipeline}, {target}, {provider}, " +
          "{region}, {instance_id}, {port}.",
      ),
    timeout_seconds: z
      .number()
      .int(msg("must be a whole number of seconds"))
      .min(10, msg("must be between 10 and 3600"))
      .max(3600, msg("must be between 10 and 3600"))
      .default(300)
      .describe("How long the smoke script (or the example task) may run before the smoke check fails."),
  })
  .default({ env: {}, timeout_seconds: 300 })
  .describe("The pipeline's smoke check, run on the smoke launch's orchestrator before `stable` moves.");

export type SmokeConfig = z.output<typeof SmokeSchema>;

/** Check the smoke env's words against the declared secrets and the known placeholders. Pushes path-named errors. */
export function checkSmoke(smoke: SmokeConfig, secrets: Record<string, unknown>, errors: string[]): void {
  const words = Object.entries(smoke.env).map(([name, word]): [string, string] => [
    `smoke.env.${name}`,
    word,
  ]);
  checkWords(words, secrets, errors, (where, p) => {
    if ("placeholder" in p && !SMOKE_PLACEHOLDERS.includes(p.placeholder)) {
      errors.push(
        `${where}: {${p.placeholder}} is not known to the smoke script (it runs once, on the orchestrator); ` +
          `use one of ${SMOKE_PLACEHOLDERS.map((x) => `{${x}}`).join(", ")}`,
      );
    }
  });
}
