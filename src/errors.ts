/**
 * Errors that imgtool expects and explains. Anything else is an internal error: it keeps its stack.
 *
 * - {@link UsageError}: the user's input (flags, config, environment) is wrong. Exit code 2, no stack.
 * - {@link FailureError}: the input was fine but the work failed (a build, a registry, AWS). Exit code 1, no stack.
 * - {@link InterruptedError}: the user (or a supervisor) stopped the run. Exit code 130 (SIGINT) or 143 (SIGTERM).
 */
export class ImgtoolError extends Error {
  /** Process exit code the CLI uses for this error. */
  readonly exitCode: number;
  /** What the user can do about it, printed after the message. */
  readonly fix: string | undefined;
  constructor(message: string, opts: { exitCode: number; fix?: string; cause?: unknown }) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.exitCode = opts.exitCode;
    this.fix = opts.fix;
  }
}

/** Bad flags, config or environment: exit 2. */
export class UsageError extends ImgtoolError {
  constructor(message: string, opts: { fix?: string; cause?: unknown } = {}) {
    super(message, { ...opts, exitCode: 2 });
  }
}

/** The config file failed to parse or validate: exit 2, every problem listed. */
export class ConfigError extends UsageError {
  readonly problems: readonly string[];
  constructor(source: string, problems: readonly string[]) {
    super(`${source} is not a valid imgtool config:\n` + problems.map((p) => `  - ${p}`).join("\n"), {
      fix: "Fix the keys named above; `imgtool config schema` prints the schema, imgtool.config.example.yaml documents every key.",
    });
    this.problems = problems;
  }
}

/** Work failed: exit 1. */
export class FailureError extends ImgtoolError {
  constructor(message: string, opts: { fix?: string; cause?: unknown } = {}) {
    super(message, { ...opts, exitCode: 1 });
  }
}

/** The signals imgtool stops on (src/cli/context.ts aborts the run's AbortSignal with one of them). */
export type StopSignal = "SIGINT" | "SIGTERM";

/** Which signal aborted `signal` (its abort reason); SIGINT when the reason is anything else. */
export function stopSignalOf(signal: AbortSignal | undefined): StopSignal {
  return signal?.reason === "SIGTERM" ? "SIGTERM" : "SIGINT";
}

/**
 * The run was stopped by SIGINT (exit 130) or SIGTERM (exit 143), the shell's 128 + signal number. The message
 * is one line that says what was stopped and, truthfully, what was cleaned up and what may be left.
 */
export class InterruptedError extends ImgtoolError {
  readonly signal: StopSignal;
  constructor(message: string, signal: StopSignal, opts: { fix?: string } = {}) {
    super(message, { ...opts, exitCode: signal === "SIGTERM" ? 143 : 130 });
    this.signal = signal;
  }
}

export function isImgtoolError(e: unknown): e is ImgtoolError {
  return e instanceof ImgtoolError;
}

/** The `name` of an error thrown by the AWS SDK or Node, if any. */
export function errorName(e: unknown): string | undefined {
  return typeof e === "object" && e !== null && "name" in e && typeof e.name === "string"
    ? e.name
    : undefined;
}

/** A clause ("the aws bake needs Packer 1.7.0 or later; found 1.6.6") as a sentence: capitalised, with its stop. */
export function sentence(clause: string): string {
  return `${clause.charAt(0).toUpperCase()}${clause.slice(1)}.`;
}
