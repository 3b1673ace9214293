/**
 * `npm run test:unit` runs the unit test files (test/**\/*.unit.test.ts) in a few processes, not one each: most
 * of a unit file's time was the start-up of its process (tsx, the AWS SDK, dockerode), paid 61 times. Each shard
 * entry (test/shards/unit-<n>.shard.ts) imports its share of the files, balanced by their measured time.
 *
 * Inside a shard every file stays on its own, as if it had its own process:
 * - its root-level tests and hooks are put in a suite named by its path, so a failure names its file and a
 *   root-level `beforeEach`/`after` applies to its own tests only;
 * - the files run one after another (the shards run side by side);
 * - what a file does to `process.env` when imported holds during its own tests only, and a file that leaves
 *   the environment or the working folder changed after its tests fails, naming itself;
 * - a shared helper module that registers hooks or tests when it is imported (it would do so for the first
 *   file that imports it only) fails the shard naming the module: export a function each test file calls.
 * `npm test` still runs every test file in a process of its own; the shard entries are no *.test.ts files.
 */
import { createRequire, syncBuiltinESMExports } from "node:module";
import { readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { projectPath } from "../../src/paths.js";

/**
 * What a file costs inside a shard, in seconds, for the balance (only the ratios matter): the time its tests
 * took in its shard (node:test's duration_ms of the file's suite in `npm run test:unit`), as the files of a
 * shard run one after another, waits included. Its import (the shard imports every file first) is not in it. A file not
 * listed counts DEFAULT_SECONDS. Re-measure when a file grows a lot. Last measured 2026-12-04 during a CI run
 * (load ~4.7, so every figure is high by about the same factor); tags.unit after its two spawns went side by
 * side (4.5 -> about 1 s).
 */
const MEASURED_SECONDS: Record<string, number> = {
  "test/launch/aws.unit.test.ts": 11.0,
  "test/render/user-data.unit.test.ts": 9.8,
  "test/bake/bake-staged-aws.unit.test.ts": 8.7,
  "test/bake/bake-aws-fsr.unit.test.ts": 6.2,
  "test/bake/bake-aws.unit.test.ts": 4.0,
  "test/launch/aws-readiness.unit.test.ts": 3.6,
  "test/bake/bake-aws-preload.unit.test.ts": 2.7,
  "test/catalog/catalog.unit.test.ts": 1.8,
  "test/aws/run-command.unit.test.ts": 1.8,
  "test/catalog/release.unit.test.ts": 1.5,
  "test/catalog/lease.unit.test.ts": 1.5,
  "test/pipeline/smoke-check.unit.test.ts": 1.5,
  "test/support/aws-standin/faults.unit.test.ts": 1.4,
  "test/launch/aws-limits.unit.test.ts": 1.3,
  "test/config/tags.unit.test.ts": 1.0,
  "test/push/units.unit.test.ts": 1.0,
  "test/launch/aws-kms.unit.test.ts": 0.9,
  "test/git.unit.test.ts": 0.9,
  "test/examples/seed-fleet-smoke.unit.test.ts": 0.9,
  "test/launch/aws-image-check.unit.test.ts": 0.9,
  "test/pipeline/pipeline-resume.unit.test.ts": 0.9,
  "test/packer/cpu-setup.unit.test.ts": 0.8,
  "test/support/aws-standin/ssm.unit.test.ts": 0.8,
  "test/packer/scripts.unit.test.ts": 0.8,
  "test/calibrate/calibrate-aws.unit.test.ts": 0.7,
  "test/iam/referee.unit.test.ts": 0.7,
};
const DEFAULT_SECONDS = 0.5;

export const SHARD_DIR = projectPath("test", "shards");
const SHARD_FILE = /^unit-(\d+)\.shard\.ts$/;

/** Every unit test file, as a path relative to the project (test/...), sorted. */
export function unitTestFiles(): string[] {
  return (readdirSync(projectPath("test"), { recursive: true }) as string[])
    .filter((f) => f.endsWith(".unit.test.ts"))
    .map((f) => path.posix.join("test", f.split(path.sep).join("/")))
    .sort();
}

/** The shard entries' numbers (1..n), from the files in test/shards/. */
export function shardNumbers(): number[] {
  return readdirSync(SHARD_DIR)
    .flatMap((f) => {
      const m = SHARD_FILE.exec(f);
      return m ? [Number(m[1])] : [];
    })
    .sort((a, b) => a - b);
}

/** The files of each shard: longest first, each to the shard with the least time so far. */
export function partition(files: string[], shards: number): string[][] {
  const out = Array.from({ length: shards }, () => ({ files: [] as string[], seconds: 0 }));
  const cost = (f: string) => MEASURED_SECONDS[f] ?? DEFAULT_SECONDS;
  for (const f of [...files].sort((a, b) => cost(b) - cost(a) || a.localeCompare(b))) {
    const least = out.reduce((best, s) => (s.seconds < best.seconds ? s : best));
    least.files.push(f);
    least.seconds += cost(f);
  }
  return out.map((s) => s.files.sort());
}

type Fn = (...args: unknown[]) => unknown;
const API = ["test", "it", "describe", "suite", "before", "after", "beforeEach", "afterEach"] as const;

/** Run the shard whose entry is `entryUrl` (its import.meta.url). */
export async function runUnitShard(entryUrl: string): Promise<void> {
  const entry = path.basename(fileURLToPath(entryUrl));
  const numbers = shardNumbers();
  const n = Number(SHARD_FILE.exec(entry)?.[1]);
  if (numbers.join() !== numbers.map((_, i) => i + 1).join() || !numbers.includes(n)) {
    throw new Error(`test/shards/: the entries must be unit-1.shard.ts .. unit-N.shard.ts (found ${entry})`);
  }
  const files = partition(unitTestFiles(), numbers.length)[n - 1]!;

  // node:test's functions, as every test file imports them, replaced by ones that record root-level calls while
  // a file is imported (syncBuiltinESMExports carries the replacement to `import { test } from "node:test"`).
  const nodeTest = createRequire(import.meta.url)("node:test") as Record<string, Fn & Record<string, Fn>>;
  const original = Object.fromEntries(API.map((k) => [k, nodeTest[k]!]));
  let recording: { file: string; calls: [Fn, unknown[]][] } | undefined;
  const through = (fn: Fn) =>
    function (this: unknown, ...args: unknown[]) {
      if (!recording) return fn.apply(this, args);
      const limit = Error.stackTraceLimit;
      Error.stackTraceLimit = 100;
      const stack = new Error().stack ?? "";
      Error.stackTraceLimit = limit;
      if (!stack.includes(recording.file)) {
        const helper = /\((?:file:\/\/)?(\/[^:)]+):\d+:\d+\)/.exec(stack.split("\n")[2] ?? "")?.[1];
        throw new Error(
          `${helper ?? "a helper module"} registers node:test tests or hooks when it is imported, which would ` +
            `serve only the first test file that imports it: export a function that each test file calls`,
        );
      }
      recording.calls.push([fn, args]);
      return Promise.resolve();
    };
  for (const k of API) {
    const wrapped = through(original[k]!) as Fn & Record<string, Fn>;
    for (const v of ["skip", "todo", "only"]) if (original[k]![v]) wrapped[v] = through(original[k]![v]!);
    nodeTest[k] = wrapped;
  }
  syncBuiltinESMExports();

  const cwd = process.cwd();
  const baseEnv = { ...process.env };
  const loaded: { file: string; calls: [Fn, unknown[]][]; env: NodeJS.ProcessEnv; error?: unknown }[] = [];
  for (const file of files) {
    const abs = projectPath(file);
    recording = { file: abs, calls: [] };
    let error: unknown;
    try {
      await import(pathToFileURL(abs).href);
    } catch (e) {
      error = e;
    }
    loaded.push({ file, calls: recording.calls, env: { ...process.env }, error });
    recording = undefined;
    setEnv(baseEnv);
    if (process.cwd() !== cwd) error ??= new Error(`${file} changed the working folder when imported`);
  }

  for (const { file, calls, env, error } of loaded) {
    original.describe!(file, () => {
      if (error !== undefined) {
        original.test!("imports", () => {
          throw error;
        });
        return;
      }
      original.before!(() => setEnv(env));
      for (const [fn, args] of calls) fn(...args);
      original.after!(() => {
        const changed = diffEnv(env);
        setEnv(baseEnv);
        if (process.cwd() !== cwd) {
          process.chdir(cwd);
          throw new Error(`${file} changed the working folder and left it changed`);
        }
        if (changed.length) throw new Error(`${file} left process.env changed: ${changed.join(", ")}`);
      });
    });
  }
}

function setEnv(env: NodeJS.ProcessEnv): void {
  for (const k of Object.keys(process.env)) if (!(k in env)) delete process.env[k];
  Object.assign(process.env, env);
}

function diffEnv(env: NodeJS.ProcessEnv): string[] {
  const keys = new Set([...Object.keys(env), ...Object.keys(process.env)]);
  return [...keys].filter((k) => env[k] !== process.env[k]).sort();
}
