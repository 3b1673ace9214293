/**
 * The user's smoke check (config smoke.script) wired for a target: the script read and checked before the
 * pipeline does any work, and the task that runs it on the smoke launch's orchestrator.
 */
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import type { RunOnInstance } from "../aws/run-command.js";
import type { Config } from "../config/load.js";
import type { Target } from "../config/schema.js";
import { SMOKE_SCRIPT_MAX_BYTES } from "../config/smoke.js";
import { UsageError } from "../errors.js";
import { localSecretMount } from "../launch/secret-files.js";
import { onInstance } from "../render/remote-checks.js";
import { smokeCheckLines } from "../render/smoke-check.js";
import { scriptSmokeTask, type SmokeTask } from "./smoke.js";

/** The smoke script's bytes; a usage error naming smoke.script when it is missing, a folder or too large. */
export async function readSmokeScript(file: string): Promise<Buffer> {
  const info = await stat(file).catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT" || e.code === "ENOTDIR") return undefined;
    throw e;
  });
  if (!info || !info.isFile()) {
    throw new UsageError(`smoke.script: ${file} ${info ? "is not a file" : "does not exist"}.`, {
      fix: "Give the path of your smoke script, relative to the config file (for example examples/smoke/fib-task.sh), or leave smoke.script out for the built-in example task.",
    });
  }
  if (info.size > SMOKE_SCRIPT_MAX_BYTES) {
    throw new UsageError(
      `smoke.script: ${file} has ${info.size} bytes; a smoke script may have at most ${SMOKE_SCRIPT_MAX_BYTES} (it travels with the Run Command on aws).`,
      { fix: "Keep the script small: bake what it needs into the orchestrator's image and call that." },
    );
  }
  return readFile(file);
}

/** The task that runs the user's smoke script on the orchestrator instance through `run`. */
export function userSmokeTask(
  config: Config,
  target: Target,
  region: string,
  run: RunOnInstance,
  script: Buffer,
): SmokeTask {
  const smoke = config.smoke;
  const secretLocations = Object.fromEntries(
    Object.entries(config.secrets).map(([name, s]) => [
      name,
      target === "aws" ? s.aws_parameter : localSecretMount(name),
    ]),
  );
  return scriptSmokeTask(run, {
    name: path.basename(smoke.script ?? "smoke"),
    timeoutSeconds: smoke.timeout_seconds,
    lines: ({ url, instanceId, runId }) => {
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
    },
  });
}
