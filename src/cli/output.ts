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

  /** On a terminal: the last progress line per role, redrawn in place (a live status display). */
  private readonly live = new Map<string, string>();
  private liveLines = 0;

  private get tty(): boolean {
    return Boolean((this.err as NodeJS.WriteStream).isTTY) && !process.env.CI;
  }

  private clearLive(): void {
    if (this.liveLines === 0) return;
    this.err.write(`\x1b[${this.liveLines}A\x1b[J`);
    this.liveLines = 0;
  }

  private drawLive(): void {
    const width = Math.max(20, ((this.err as NodeJS.WriteStream).columns ?? 100) - 1);
    const lines = [...this.live.entries()].map(([role, l]) =>
      `  ${role ? `[${role}] ` : ""}${l}`.slice(0, width),
    );
    if (lines.length) this.err.write(`${lines.join("\n")}\n`);
    this.liveLines = lines.length;
  }

  /**
   * The event sink handed to the core. Progress (tool output such as Packer's or the daemon's) is printed
   * line by line with --verbose or when stderr is not a terminal (CI logs); on a terminal it is a live
   * status line per role instead.
   */
  readonly event = (e: ImgtoolEvent): void => {
    const level = EVENT_LEVEL[e.type];
    const prefix = e.role ? `[${e.role}] ` : "";
    if (e.type === "progress") {
      if (this.verbose || !this.tty) {
        this.clearLive();
        this.err.write(`${prefix}${e.message}\n`);
      } else if (e.message.trim()) {
        this.clearLive();
        this.live.set(e.role ?? "", e.message.trim());
        this.drawLive();
      }
      return;
    }
    if (level === "verbose" && !this.verbose) return;
    const tag = level === "warn" ? "warning: " : level === "error" ? "error: " : "";
    this.clearLive();
    if (e.type === "done" || e.type === "fail") this.live.delete(e.role ?? "");
    this.err.write(`${prefix}${tag}${e.message}\n`);
    this.drawLive();
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
    this.clearLive();
    this.live.clear();
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
          `${JSON.stringify({ error: { message: e.message, ...(e.fix ? { fix: e.fix } : {}), exitCode: e.exitCode } }, null, 2)}\n`,
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
