/**
 * What the Docker adapter throws. The flows catch these by class (never by message text) and turn them
 * into errors that name the role, the step and the fix.
 */

/** An `errorDetail` inside a daemon stream, or a stream that broke off before its result. */
export class DaemonStreamError extends Error {
  constructor(
    message: string,
    readonly code?: number,
  ) {
    super(message);
    this.name = "DaemonStreamError";
  }
}

/** The daemon refused the Dockerfile before building (HTTP 400 "dockerfile parse error line N: ..."). */
export class DockerfileParseError extends Error {
  constructor(
    message: string,
    /** 1-based line in the Dockerfile, when the daemon named one. */
    readonly line: number | undefined,
  ) {
    super(message);
    this.name = "DockerfileParseError";
  }
}

/** A build that failed inside the stream: which step, and what the daemon said. */
export class BuildFailedError extends Error {
  constructor(
    message: string,
    readonly step: { step: number; total: number; instruction: string } | undefined,
    readonly exitCode: number | undefined,
    /** The last lines of build output. */
    readonly output: string[],
  ) {
    super(message);
    this.name = "BuildFailedError";
  }
}

/** A push that failed inside the stream. `unauthorized` marks a registry that refused the credentials. */
export class PushFailedError extends Error {
  constructor(
    message: string,
    readonly unauthorized: boolean,
  ) {
    super(message);
    this.name = "PushFailedError";
  }
}

const UNAUTHORIZED_RE =
  /unauthorized|authentication required|no basic auth credentials|denied: |authorization token has expired/i;

/** Whether a daemon push/pull error means "log in again". */
export function isUnauthorizedMessage(message: string): boolean {
  return UNAUTHORIZED_RE.test(message);
}

/** Whether an error means the Docker engine itself did not answer (no socket, refused, not allowed). */
export function isEngineUnreachable(e: unknown): e is NodeJS.ErrnoException {
  const err = e as NodeJS.ErrnoException | undefined;
  return (
    err?.syscall === "connect" &&
    (err.code === "ENOENT" || err.code === "ECONNREFUSED" || err.code === "EACCES")
  );
}
