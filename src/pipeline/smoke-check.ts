/**
 * The user's smoke check (config smoke.script) wired for a target: the script read and checked before the
 * pipeline does any work, and the task that runs it on the smoke launch's orchestrator.
 */
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import type { RunOnInstance } from "../aws/run-command.js";
import { RUN_COMMAND_PARAMETERS_MAX_BYTES, runShellCommandBytes } from "../aws/run-command-limits.js";
import type { Config } from "../config/load.js";
import type { Target } from "../config/schema.js";
import { UsageError } from "../errors.js";
import { localSecretMount } from "../launch/secret-files.js";
import { onInstance } from "../render/remote-checks.js";
import { smokeCheckLines } from "../render/smoke-check.js";
import { SMOKE_RUN_EXTRA_SECONDS, scriptSmokeTask, type SmokeTask } from "./smoke.js";

/**
 * What the Run Command's parameters keep for the smoke runner, the unpacking lines and the env (the runner is
 * about 2.5 KB before base64); the script gets the rest.
 */
const SMOKE_RUNNER_ALLOWANCE_BYTES = 12 * 1024;
/**
 * The most script the smoke check carries: it travels base64 in the Run Command's parameters on aws, 57 bytes a
 * line of 76 characters, each line a JSON string (quotes and comma: 79 bytes), within
 * {@link RUN_COMMAND_PARAMETERS_MAX_BYTES} less the runner's allowance. {@link readSmokeScript} also measures the
 * whole command when it knows the config.
 */
export const SMOKE_SCRIPT_MAX_BYTES =
  Math.floor((RUN_COMMAND_PARAMETERS_MAX_BYTES - SMOKE_RUNNER_ALLOWANCE_BYTES) / 79) * 57;

/** The longest values the smoke command is rendered with when it is measured before the launch. */
const LONGEST = {
  url: "http://127.0.0.1:65535/",
  instanceId: "i-0123456789abcdef0",
  runId: "r".repeat(32),
};

/**
 * The smoke script's bytes; a usage error naming smoke.script when it is missing, a folder or too large. With
 * `command`, the whole Run Command that would carry it (runner, env and script) is measured as well, rendered
 * with the longest values the launch can give it, so a script that fits here fits at the smoke launch.
 */
export async function readSmokeScript(
  file: string,
  command?: { config: Config; target: Target; region: string },
): Promise<Buffer> {
  const info = await stat(file).catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT" || e.code === "ENOTDIR") return undefined;
    throw e;
  });
  if (!info || !info.isFile()) {
    throw new UsageError(`smoke.script: ${file} ${info ? "is not a file" : "does not exist"}.`, {
      fix: "Give the path of your smoke script, relative to the config file (for example examples/smoke/fib-task.sh), or leave smoke.script out for the built-in example task.",
    });
  }
  const fix = "Keep the script small: bake what it needs into the orchestrator's image and call that.";
  if (info.size > SMOKE_SCRIPT_MAX_BYTES) {
    throw new UsageError(
      `smoke.script: ${file} has ${info.size} bytes; a smoke script may have at most ${SMOKE_SCRIPT_MAX_BYTES} (it travels base64 in the SSM Run Command on aws, whose document may have at most 64 KB).`,
      { fix },
    );
  }
  const script = await readFile(file);
  if (command) {
    const { config, target, region } = command;
    const lines = smokeLines(config, target, region, script, LONGEST);
    const bytes = runShellCommandBytes(lines, config.smoke.timeout_seconds + SMOKE_RUN_EXTRA_SECONDS);
    if (bytes > RUN_COMMAND_PARAMETERS_MAX_BYTES) {
      throw new UsageError(
        `smoke.script: ${file} (${script.length} bytes) with its runner and smoke.env makes a Run Command of ${bytes} bytes; SSM Run Command takes at most ${RUN_COMMAND_PARAMETERS_MAX_BYTES} (its documents have at most 64 KB).`,
        { fix: `${fix} Shorten long smoke.env values.` },
      );
    }
  }
  return script;
}

/** The lines that run the user's smoke script on the orchestrator instance `at`. */
function smokeLines(
  config: Config,
  target: Target,
  region: string,
  script: Buffer,
  { url, instanceId, runId }: { url: string; instanceId: string; runId: string },
): string[] {
  const smoke = config.smoke;
  const secretLocations = Object.fromEntries(
    Object.entries(config.secrets).map(([name, s]) => [
      name,
      target === "aws" ? s.aws_parameter : localSecretMount(name),
    ]),
  );
  const own = onInstance(url).replace(/\/$/, "");
  return smokeCheckLines({
    script,
    env: smoke.env,
    secretLocations,
    secretSource: target === "aws" ? "ssm" : "file",
    values: {
      orchestrator_url: own,
      run_id: runId,
      pipeline: config.pipeline,
      target,
      provider: target,
      region,
      instance_id: instanceId,
      port: new URL(own).port || "80",
    },
    imgtoolEnv: {
      IMGTOOL_ORCHESTRATOR_URL: own,
      IMGTOOL_RUN_ID: runId,
      IMGTOOL_PIPELINE: config.pipeline,
      IMGTOOL_TARGET: target,
      // The smoke launch starts one task runner with one worker.
      IMGTOOL_WORKERS: "1",
    },
    timeoutSeconds: smoke.timeout_seconds,
  });
}

/** The task that runs the user's smoke script on the orchestrator instance through `run`. */
export function userSmokeTask(
  config: Config,
  target: Target,
  region: string,
  run: RunOnInstance,
  script: Buffer,
): SmokeTask {
  return scriptSmokeTask(run, {
    name: path.basename(config.smoke.script ?? "smoke"),
    timeoutSeconds: config.smoke.timeout_seconds,
    lines: (at) => smokeLines(config, target, region, script, at),
  });
}
