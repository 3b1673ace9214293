/** Run the real, compiled imgtool CLI (bin/imgtool -> dist/) as a child process. */
import { spawn } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import path from "node:path";
import { projectPath } from "../../src/paths.js";

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(
  args: string[],
  /** root: the project whose bin/imgtool runs (default: this one; a copy from test/support/project-copy.ts). */
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; root?: string } = {},
): Promise<CliResult> {
  try {
    return startCli(args, { ...opts, timeoutMs: opts.timeoutMs ?? 60_000 }).done;
  } catch (e) {
    return Promise.reject(e as Error);
  }
}

/**
 * Start the real CLI and watch its output: `waitFor` resolves on the first stderr line that matches (fault
 * tests send their signal on an observed event, never after a fixed sleep); `done` resolves with the result.
 */
export function startCli(
  args: string[],
  /** root: the project whose bin/imgtool runs (default: this one; a copy from test/support/project-copy.ts). */
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; root?: string } = {},
): {
  pid: number;
  waitFor(re: RegExp): Promise<RegExpExecArray>;
  done: Promise<CliResult>;
} {
  const root = opts.root ?? projectPath();
  if (root === projectPath()) assertBuildCurrent(root);
  const child = spawn(process.execPath, [path.join(root, "bin", "imgtool"), ...args], {
    cwd: opts.cwd ?? root,
    env: { ...process.env, AWS_EC2_METADATA_DISABLED: "true", ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  const waiters: { re: RegExp; resolve: (m: RegExpExecArray) => void; reject: (e: Error) => void }[] = [];
  child.stdout.on("data", (c) => (stdout += c));
  child.stderr.on("data", (c) => {
    stderr += c;
    for (const w of [...waiters]) {
      const m = w.re.exec(stderr);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  });
  const done = new Promise<CliResult>((resolve, reject) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 600_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      for (const w of waiters) w.reject(new Error(`imgtool exited (${code}) before ${w.re}:\n${stderr}`));
      resolve({ code, stdout, stderr });
    });
  });
  return {
    pid: child.pid!,
    waitFor(re) {
      const m = re.exec(stderr);
      if (m) return Promise.resolve(m);
      return new Promise((resolve, reject) => waiters.push({ re, resolve, reject }));
    },
    done,
  };
}

let buildChecked = false;

/**
 * Throws when this project's dist/ is older than a file of src/: the CLI the test would run is not the code it
 * tests. Why: a stale dist/ looks like a bug of the new code (seen: a stack test failing after minutes with "web
 * is unhealthy", the launcher's half of a change missing from dist/ while the twin baked the scripts' half). No
 * dist/ at all is left to the spawn to report. Checked once per process.
 */
function assertBuildCurrent(root: string): void {
  if (buildChecked) return;
  let built: number;
  try {
    built = statSync(path.join(root, "dist", "cli", "bin.js")).mtimeMs;
  } catch {
    return;
  }
  const newer: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && statSync(p).mtimeMs > built) newer.push(path.relative(root, p));
    }
  };
  walk(path.join(root, "src"));
  if (newer.length)
    throw new Error(
      `dist/ is older than ${newer.slice(0, 3).join(", ")}${newer.length > 3 ? ` and ${newer.length - 3} more` : ""}: run \`npm run build\` before the tests that run the CLI.`,
    );
  buildChecked = true;
}

/**
 * Run the CLI in this process (src/cli/main.ts from source, no build needed): for the unit layer, which must
 * test the code as it is now, not a dist/ built earlier. Same result shape as runCli.
 */
export async function runMain(args: string[]): Promise<CliResult> {
  const { PassThrough } = await import("node:stream");
  const { main } = await import("../../src/cli/main.js");
  const collect = () => {
    const s = new PassThrough();
    const chunks: Buffer[] = [];
    s.on("data", (c: Buffer) => chunks.push(c));
    return { stream: s, text: () => Buffer.concat(chunks).toString("utf8") };
  };
  const stdout = collect();
  const stderr = collect();
  const code = await main(args, { stdout: stdout.stream, stderr: stderr.stream });
  await new Promise((resolve) => setImmediate(resolve)); // let the streams hand over what was written
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}
