/**
 * A role's `run` config as bash for its user-data (issue 9): every literal a single-quoted word, every
 * placeholder a quoted reference to a variable the user-data sets, every secret a variable read at boot. The
 * words are never joined into a command line for a shell: they become `docker run` arguments one by one, and
 * env values that hold a secret reach the container as `--env NAME` from the environment, never on argv.
 */
import type { Role } from "../config/schema.js";
import { parseWord, secretsUsed, type Placeholder, type RunConfig } from "../config/workload.js";
import { shellWord } from "./escape.js";

/** The baked ruby-bench cache on the instance (packer/scripts/install-ruby-bench.sh). */
export const RUBY_BENCH_DIR = "/opt/ruby-bench";

/** The user-data variable each placeholder reads. */
const VARS: Record<Placeholder, string> = {
  orchestrator_url: "ORCHESTRATOR_URL",
  run_id: "RUN_ID",
  pipeline: "PIPELINE",
  target: "TARGET",
  provider: "TARGET",
  region: "AWS_REGION_NAME",
  instance_type: "INSTANCE_TYPE",
  instance_id: "INSTANCE_ID",
  worker_index: "WORKER_INDEX",
  worker_cpus: "WORKER_CPU",
  runner_id: "RUNNER_ID",
  image_version: "VERSION",
  port: "ORCHESTRATOR_PORT",
};

export interface WorkloadShellInput {
  role: Role;
  run: RunConfig;
  target: "aws" | "local";
  instanceType: string;
  orchestratorPort: number;
  healthWaitSeconds: number;
  /** Where each secret the role uses is read at boot: an SSM name (aws) or a file in the instance (local). */
  secretLocation: (name: string) => string;
}

/** One word as a bash expression: 'literal'"$VAR"'literal'. */
function bashWord(word: string, secretVar: (name: string) => string): string {
  const parts = parseWord(word);
  if (parts.length === 0) return "''";
  return parts
    .map((p) =>
      "text" in p ? shellWord(p.text) : `"$\{${"secret" in p ? secretVar(p.secret) : VARS[p.placeholder]}}"`,
    )
    .join("");
}

const usesPlaceholder = (run: RunConfig, name: Placeholder) =>
  [...(run.command ?? []), ...run.args, ...Object.values(run.env ?? {})].some((w) =>
    parseWord(w).some((p) => "placeholder" in p && p.placeholder === name),
  );

const hasSecret = (word: string) => parseWord(word).some((p) => "secret" in p);

/** The bash block a role's user-data template includes before the shared steps. */
export function renderWorkloadShell(v: WorkloadShellInput): string {
  const { run } = v;
  const secrets = secretsUsed(run);
  const secretVar = (name: string) => `IMGTOOL_SECRET_${secrets.indexOf(name) + 1}`;
  const opts: string[] = [];
  for (const vol of run.volumes) {
    const ro = vol.type === "ruby-bench" || vol.read_only ? ",readonly" : "";
    opts.push(
      "--mount",
      vol.type === "ruby-bench"
        ? `type=bind,source=${RUBY_BENCH_DIR},target=${vol.target}${ro}`
        : `type=volume,source=${vol.source!},target=${vol.target}${ro}`,
    );
  }
  const dh = run.health.docker;
  if (dh) {
    opts.push(
      "--health-cmd",
      dh.test.map(shellWord).join(" "),
      "--health-interval",
      `${dh.interval_seconds}s`,
      "--health-timeout",
      `${dh.timeout_seconds}s`,
      "--health-retries",
      String(dh.retries),
      "--health-start-period",
      `${dh.start_period_seconds}s`,
    );
  }
  const env: string[] = [];
  const exports: string[] = [];
  for (const [name, word] of Object.entries(run.env ?? {})) {
    if (hasSecret(word)) {
      exports.push(`  export ${name}=${bashWord(word, secretVar)}`);
      env.push(`--env ${name}`);
    } else {
      env.push(`--env ${bashWord(`${name}=`, secretVar)}${bashWord(word, secretVar).replace(/^''$/, "")}`);
    }
  }
  const command = run.command ?? [];
  const entry = command.length ? `--entrypoint ${bashWord(command[0]!, secretVar)}` : "";
  const args = [...command.slice(1), ...run.args].map((w) => bashWord(w, secretVar));
  const lines = [
    "# What the role runs (config roles.<role>.run), rendered by imgtool: literal words quoted, placeholders and",
    "# secrets expanded per worker from variables set at boot; nothing here is evaluated by a shell a second time.",
    `TARGET=${shellWord(v.target)}`,
    "# shellcheck disable=SC2034 # read by worker_words when a word uses {instance_type}",
    `INSTANCE_TYPE=${shellWord(v.instanceType)}`,
    "# shellcheck disable=SC2034 # read by worker_words when a word uses {port}",
    `ORCHESTRATOR_PORT=${shellWord(String(v.orchestratorPort))}`,
    `SETTLE_SECONDS=${shellWord(String(run.settle_seconds))}`,
    `SETTLE_MS=${Math.round(run.settle_seconds * 1000)}`,
    `HEALTH_WAIT_SECONDS=${shellWord(String(v.healthWaitSeconds))}`,
    `HEALTHCHECK=${dh ? "true" : "false"}`,
    `NEEDS_INSTANCE_ID=${usesPlaceholder(run, "instance_id") ? "true" : "false"}`,
    `SECRET_NAMES=(${secrets.map(shellWord).join(" ")})`,
    `SECRET_LOCATIONS=(${secrets.map((s) => shellWord(v.secretLocation(s))).join(" ")})`,
    `SECRET_VARS=(${secrets.map(secretVar).join(" ")})`,
    `RUN_OPTS=(${opts.map(shellWord).join(" ")})`,
    "# worker_words: the words of one worker (WORKER_INDEX, WORKER_CPU and RUNNER_ID set); run in the worker's",
    "# own subshell, so that env values holding a secret are exported there only and passed as --env NAME.",
    "worker_words() {",
    ...exports,
    `  RUN_ENV=(${env.join(" ")})`,
    `  RUN_ENTRYPOINT=(${entry})`,
    `  RUN_ARGS=(${args.join(" ")})`,
    "}",
  ];
  return lines.join("\n");
}
