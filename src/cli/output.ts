/**
 * Everything imgtool prints goes through here. The core emits events; this table decides each event's level,
 * and the mode decides where it goes: human lines on stderr (results on stdout), or with --json one JSON
 * document on stdout and the log lines on stderr.
 */
import type { ImgtoolEvent, ImgtoolEventType } from "../events.js";
import { isImgtoolError } from "../errors.js";

type Level = "error" | "warn" | "info" | "verbose";

/** The one table that decides the level of each event. */
export const EVENT_LEVEL: Record<ImgtoolEventType, Level> = {
  start: "info",
  check: "verbose",
  found: "info",
  skip: "info",
  build: "info",
  progress: "verbose",
  push: "info",
  publish: "info",
  launch: "info",
  ready: "info",
  warn: "warn",
  fail: "error",
  debug: "verbose",
  done: "info",
};

export interface OutputOptions {
  json: boolean;
  verbose: boolean;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
}

export class Output {
  readonly json: boolean;
  readonly verbose: boolean;
  private readonly out: NodeJS.WritableStream;
  private readonly err: NodeJS.WritableStream;
  private resultWritten = false;

  constructor(opts: OutputOptions) {
    this.json = opts.json;
    this.verbose = opts.verbose;
    this.out = opts.stdout ?? process.stdout;
    this.err = opts.stderr ?? process.stderr;
  }

  /** The event sink handed to the core. */
  readonly event = (e: ImgtoolEvent): void => {
    const level = EVENT_LEVEL[e.type];
    if (level === "verbose" && !this.verbose) return;
    const prefix = e.role ? `[${e.role}] ` : "";
    const tag = level === "warn" ? "warning: " : level === "error" ? "error: " : "";
    this.err.write(`${prefix}${tag}${e.message}\n`);
  };

  /** A log line (stderr), shown in every mode. */
  log(message: string): void {
    this.err.write(`${message}\n`);
  }

  warn(message: string): void {
    this.err.write(`warning: ${message}\n`);
  }

  /**
   * The command's result: `data` as one JSON document with --json, otherwise `human()` on stdout.
   */
  result(data: unknown, human: () => string): void {
    this.resultWritten = true;
    if (this.json) this.out.write(`${JSON.stringify(data, null, 2)}\n`);
    else {
      const text = human();
      if (text) this.out.write(text.endsWith("\n") ? text : `${text}\n`);
    }
  }

  /** Report an error; returns the exit code. User errors get no stack trace, internal errors keep theirs. */
  error(e: unknown): number {
    if (isImgtoolError(e)) {
      this.err.write(`imgtool: ${e.message}\n`);
      if (e.fix) this.err.write(`  fix: ${e.fix}\n`);
      if (this.verbose && e.cause)
        this.err.write(`  cause: ${String((e.cause as Error)?.stack ?? e.cause)}\n`);
      if (this.json && !this.resultWritten) {
        this.out.write(
          `${JSON.stringify({ error: { message: e.message, fix: e.fix ?? null, exitCode: e.exitCode } }, null, 2)}\n`,
        );
      }
      return e.exitCode;
    }
    const err = e as Error;
    this.err.write(`imgtool: internal error: ${err?.stack ?? String(e)}\n`);
    this.err.write("  This is a bug in imgtool; please report it with the command you ran.\n");
    if (this.json && !this.resultWritten) {
      this.out.write(
        `${JSON.stringify({ error: { message: String(err?.message ?? e), internal: true, exitCode: 1 } }, null, 2)}\n`,
      );
    }
    return 1;
  }
}

/** Render rows as an aligned text table. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(headers), ...rows.map(line)].join("\n");
}
