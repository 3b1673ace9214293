/**
 * SSM Run Command: a shell script run on one instance by its SSM agent (`AWS-RunShellScript`), so that the
 * launcher needs no network path into the VPC, only the AWS API. SendCommand, then GetCommandInvocation polled
 * (bounded) until the invocation ends. Typed with the SDK's own shapes; the client comes from the one factory.
 */
import { GetCommandInvocationCommand, SendCommandCommand, type SSMClient } from "@aws-sdk/client-ssm";
import { errorName, UsageError } from "../errors.js";
import {
  RUN_COMMAND_PARAMETERS_MAX_BYTES,
  RUN_COMMAND_STDERR_MAX_CHARS,
  RUN_COMMAND_STDOUT_MAX_CHARS,
  runCommandParametersBytes,
  runShellParameters,
} from "./run-command-limits.js";
import { RUN_SHELL_DOCUMENT } from "./run-command-names.js";

type SsmLike = Pick<SSMClient, "send">;

export { RUN_SHELL_DOCUMENT };

/** How one run ended, as the agent reported it. */
export interface RunOutcome {
  /** Success, Failed, TimedOut, Cancelled (GetCommandInvocation's terminal states), or `Unreachable`. */
  status: string;
  /** The script's exit code (-1 when it did not run to an end). */
  exitCode: number;
  stdout: string;
  stderr: string;
  /**
   * Set when SSM may have cut an output (it keeps the first 24,000 characters of stdout, 8,000 of stderr): the
   * end of that output is then not here. Absent when nothing was cut.
   */
  truncated?: { stdout: boolean; stderr: boolean };
}

/**
 * Run `script` (lines of bash) on one instance and wait for its end. An instance the agent does not (yet) manage
 * (SendCommand's `InvalidInstanceId`: still booting, no instance profile, or stopped) is `Unreachable`, not an
 * error, so a caller can poll.
 */
export type RunOnInstance = (
  instanceId: string,
  script: string[],
  opts: { timeoutSeconds: number; comment?: string },
) => Promise<RunOutcome>;

const TERMINAL = new Set(["Success", "Failed", "TimedOut", "Cancelled"]);

export function ssmRunOnInstance(
  ssm: SsmLike,
  opts: { pollMs?: number; sleep?: (ms: number) => Promise<void>; now?: () => number } = {},
): RunOnInstance {
  const pollMs = opts.pollMs ?? 1_000;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const now = opts.now ?? Date.now;
  return async (instanceId, script, { timeoutSeconds, comment }) => {
    const parameters = runShellParameters(script, timeoutSeconds);
    const bytes = runCommandParametersBytes(parameters);
    if (bytes > RUN_COMMAND_PARAMETERS_MAX_BYTES) {
      // Checked here too (callers check their inputs first): SSM would refuse it with MaxDocumentSizeExceeded.
      throw new UsageError(
        `The Run Command ${comment ? `"${comment}" ` : ""}for ${instanceId} has ${bytes} bytes of parameters; SSM Run Command takes at most ${RUN_COMMAND_PARAMETERS_MAX_BYTES} (its documents have at most 64 KB).`,
        {
          fix: "Make what the command carries smaller (a smoke script: bake what it needs into the image and call that).",
        },
      );
    }
    let commandId: string | undefined;
    try {
      const sent = await ssm.send(
        new SendCommandCommand({
          DocumentName: RUN_SHELL_DOCUMENT,
          InstanceIds: [instanceId],
          Parameters: parameters,
          // How long the command may wait for delivery (SSM's minimum is 30 s).
          TimeoutSeconds: Math.max(30, timeoutSeconds),
          ...(comment ? { Comment: comment.slice(0, 100) } : {}),
        }),
      );
      commandId = sent.Command?.CommandId;
    } catch (e) {
      if (errorName(e) === "InvalidInstanceId") {
        return { status: "Unreachable", exitCode: -1, stdout: "", stderr: (e as Error).message };
      }
      throw e;
    }
    if (!commandId) throw new Error(`SendCommand to ${instanceId} answered without a command id`);
    // The agent's own limit plus the delivery wait bound the polling: no invocation outlives them.
    const deadline = now() + (Math.max(30, timeoutSeconds) + timeoutSeconds + 30) * 1000;
    for (;;) {
      try {
        const r = await ssm.send(
          new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: instanceId }),
        );
        const status = r.Status ?? "Pending";
        if (TERMINAL.has(status)) {
          const stdout = r.StandardOutputContent ?? "";
          const stderr = r.StandardErrorContent ?? "";
          const truncated = {
            stdout: stdout.length >= RUN_COMMAND_STDOUT_MAX_CHARS,
            stderr: stderr.length >= RUN_COMMAND_STDERR_MAX_CHARS,
          };
          return {
            status,
            exitCode: r.ResponseCode ?? -1,
            stdout,
            stderr,
            ...(truncated.stdout || truncated.stderr ? { truncated } : {}),
          };
        }
      } catch (e) {
        // Right after SendCommand the invocation may not exist yet: ask again.
        if (errorName(e) !== "InvocationDoesNotExist") throw e;
      }
      if (now() >= deadline) {
        return {
          status: "TimedOut",
          exitCode: -1,
          stdout: "",
          stderr: `no end of command ${commandId} in time`,
        };
      }
      await sleep(pollMs);
    }
  };
}
