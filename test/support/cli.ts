/** Run the real, compiled imgtool CLI (bin/imgtool -> dist/) as a child process. */
import { spawn } from "node:child_process";
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
  return new Promise((resolve, reject) => {
    const root = opts.root ?? projectPath();
    const child = spawn(process.execPath, [path.join(root, "bin", "imgtool"), ...args], {
      cwd: opts.cwd ?? root,
      env: { ...process.env, AWS_EC2_METADATA_DISABLED: "true", ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 60_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
