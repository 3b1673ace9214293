/**
 * Run Command's local twin: a script run inside a local instance (`sh -c` through the engine's exec), answered
 * in Run Command's terms, so that checks made on an instance (the user's smoke script) take one path on both
 * targets.
 */
import type Docker from "dockerode";
import type { RunOnInstance } from "../aws/run-command.js";
import { execIn } from "./local.js";

export function localRunOnInstance(docker: Docker): RunOnInstance {
  return async (instanceId, script, { timeoutSeconds }) => {
    try {
      const r = await execIn(docker.getContainer(instanceId), script.join("\n"), timeoutSeconds * 1000);
      return {
        status: r.exitCode === 0 ? "Success" : "Failed",
        exitCode: r.exitCode,
        stdout: r.output,
        stderr: "",
      };
    } catch (e) {
      const code = (e as { statusCode?: number }).statusCode;
      // Gone or stopped: what Run Command calls an instance it cannot reach.
      if (code === 404 || code === 409) {
        return { status: "Unreachable", exitCode: -1, stdout: "", stderr: (e as Error).message };
      }
      if (/timed out/.test((e as Error).message)) {
        return { status: "TimedOut", exitCode: -1, stdout: "", stderr: (e as Error).message };
      }
      throw e;
    }
  };
}
