/**
 * Every child process goes through here: an argv array (never a shell string), output captured or streamed
 * line by line, and dry-run decided at this one boundary. Each child is registered in src/process-group.ts while it
 * runs, so an interrupt sent to imgtool reaches it.
 */
import { spawn } from "node:child_process";
import { registerChild } from "./process-group.js";

export interface ExecOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Called with each complete line of stdout/stderr as it arrives. */
  onLine?: (line: string, stream: "stdout" | "stderr") => void;
  /** Kill the process (SIGTERM) after this long. */
  timeoutMs?: number;
  /** Do not run: report what would run and answer with exit code 0. */
  dryRun?: boolean;
  signal?: AbortSignal;
}

export interface ExecResult {
  argv: string[];
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The program is not installed (spawn ENOENT). */
  notFound: boolean;
  dryRun: boolean;
}

export type Exec = (argv: string[], opts?: ExecOptions) => Promise<ExecResult>;

export const exec: Exec = (argv, opts = {}) => {
  const [cmd, ...args] = argv;
  if (!cmd) throw new Error("exec: empty argv");
  if (opts.dryRun) {
    return Promise.resolve({
      argv,
      exitCode: 0,
      signal: null,
      stdout: "",
      stderr: "",
      notFound: false,
      dryRun: true,
    });
  }
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ["ignore", "pipe", "pipe"],
      signal: opts.signal,
    });
    // An interrupt sent to imgtool alone reaches the child through src/process-group.ts.
    registerChild(child, argv.slice(0, 2).join(" "));
    let stdout = "";
    let stderr = "";
    const partial = { stdout: "", stderr: "" };
    const feed = (stream: "stdout" | "stderr", chunk: string) => {
      if (stream === "stdout") stdout += chunk;
      else stderr += chunk;
      if (!opts.onLine) return;
      const text = partial[stream] + chunk;
      const lines = text.split("\n");
      partial[stream] = lines.pop() ?? "";
      for (const l of lines) opts.onLine(l, stream);
    };
    child.stdout.setEncoding("utf8").on("data", (c: string) => feed("stdout", c));
    child.stderr.setEncoding("utf8").on("data", (c: string) => feed("stderr", c));
    const timer = opts.timeoutMs ? setTimeout(() => child.kill("SIGTERM"), opts.timeoutMs) : undefined;
    child.on("error", (e: NodeJS.ErrnoException) => {
      if (timer) clearTimeout(timer);
      if (e.code === "ENOENT") {
        resolve({ argv, exitCode: null, signal: null, stdout, stderr, notFound: true, dryRun: false });
      } else if (e.name !== "AbortError") reject(e);
    });
    child.on("close", (exitCode, signal) => {
      if (timer) clearTimeout(timer);
      for (const s of ["stdout", "stderr"] as const)
        if (opts.onLine && partial[s]) opts.onLine(partial[s], s);
      resolve({ argv, exitCode, signal, stdout, stderr, notFound: false, dryRun: false });
    });
  });
};
