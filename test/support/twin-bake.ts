/**
 * What the tests that bake a local twin through the CLI share: the one-role project (a config with a ruby-bench
 * fixture), a state folder of their own that knows the real stack, the docker CLI against that stack's engine,
 * and the processes that run in a folder (Packer runs in the bake's folder).
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, readdirSync, readlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { projectPath } from "../../src/paths.js";
import { makeRubyBenchRepo } from "./fixtures/ruby-bench.js";

/** A state folder under `parent` whose stack.json is the real stack's (scripts/setup's), and nothing else. */
export function ownStateDir(parent: string): string {
  const stateDir = path.join(parent, "state");
  mkdirSync(stateDir, { recursive: true });
  copyFileSync(projectPath(".imgtool", "stack.json"), path.join(stateDir, "stack.json"));
  return stateDir;
}

/** A config for one role's twin bake (Ruby 3.1, a ruby-bench fixture repository) under `parent`. */
export function twinBakeProject(opts: {
  parent: string;
  pipeline: string;
  stateDir: string;
  role?: "task-runner" | "orchestrator";
}): { config: string; rubyBench: { path: string; commit: string } } {
  const rubyBench = makeRubyBenchRepo({ parent: opts.parent });
  const config = path.join(opts.parent, "imgtool.config.yaml");
  writeFileSync(
    config,
    [
      `pipeline: ${opts.pipeline}`,
      "roles:",
      `  ${opts.role ?? "task-runner"}:`,
      '    ruby: { versions: ["3.1"] }',
      `    ruby_bench: { repository: ${rubyBench.path}, ref: main }`,
      "local:",
      `  state_dir: ${opts.stateDir}`,
    ].join("\n"),
  );
  return { config, rubyBench };
}

/** The docker CLI against the engine in `env` (DOCKER_HOST): exit code and stdout (stderr when it failed). */
export function dockerCli(env: NodeJS.ProcessEnv) {
  return (args: string[]): { code: number; out: string } => {
    try {
      return {
        code: 0,
        out: execFileSync("docker", args, {
          env: { ...process.env, ...env },
          encoding: "utf8",
          stdio: ["ignore", "pipe", "pipe"],
        }),
      };
    } catch (e) {
      return {
        code: (e as { status?: number }).status ?? 1,
        out: String((e as { stderr?: string }).stderr ?? ""),
      };
    }
  };
}

/** Processes whose working directory is inside `dir` (Packer runs in the bake's folder). */
export function processesIn(dir: string): number[] {
  const found: number[] = [];
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (readlinkSync(`/proc/${p}/cwd`).startsWith(dir)) found.push(Number(p));
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}
