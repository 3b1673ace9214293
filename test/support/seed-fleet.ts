/**
 * examples/seed-fleet copied into a folder of its own, as a user would run it, for the whole-pipeline test and
 * bench/stack.ts: only the pipeline name, the ruby-bench repository (the one scripts/setup made), the state
 * folder (a fresh one, see ./local-pipeline.ts) and the orchestrator's port (a free one) differ. Its secrets are
 * made anew on first use, in the copy.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort } from "../../src/launch/local.js";
import { projectPath } from "../../src/paths.js";
import { tempStateDir, uniquePipelineName } from "./local-pipeline.js";
import { stackRegistryEntry } from "./stack-registry.js";

export const SEED_FLEET = projectPath("examples", "seed-fleet");
export const SETUP_RUBY_BENCH = projectPath(".imgtool", "examples", "ruby-bench");
export const SEED_FLEET_SECRETS = ["api-key", "db-password", "app-secret"] as const;

export interface SeedFleetCopy {
  pipeline: string;
  /** The copy's folder (its config, compose.yaml, apps, secrets/). */
  dir: string;
  configFile: string;
  stateDir: string;
  port: number;
  /** Remove the copy and its state folder (not what the pipeline made in the engine or registry). */
  remove(): void;
}

export async function copySeedFleet(prefix = "sf"): Promise<SeedFleetCopy> {
  const pipeline = uniquePipelineName(prefix);
  const root = mkdtempSync(path.join(tmpdir(), "imgtool-seed-fleet-"));
  const dir = path.join(root, "seed-fleet");
  const stateDir = tempStateDir();
  const port = await freePort();
  cpSync(SEED_FLEET, dir, {
    recursive: true,
    filter: (src) => !src.includes(`${path.sep}secrets${path.sep}`),
  });
  const configFile = path.join(dir, "imgtool.config.yaml");
  const original = readFileSync(configFile, "utf8");
  const changed = original
    .replace(/^pipeline: seed$/m, `pipeline: ${pipeline}`)
    .replaceAll("../../.imgtool/examples/ruby-bench", SETUP_RUBY_BENCH)
    .replace(/^ {2}state_dir: .*$/m, `  state_dir: ${stateDir}`)
    .replace(/^launch:$/m, `launch:\n  orchestrator_port: ${port}`)
    .replace(/^( {4}stack: \{.*)( \})$/m, `$1${stackRegistryEntry()}$2`);
  if (changed.split("\n").length !== original.split("\n").length + 1 || !changed.includes(stateDir)) {
    throw new Error(`${configFile}: the copy's edits did not all find their lines`);
  }
  writeFileSync(configFile, changed);
  return {
    pipeline,
    dir,
    configFile,
    stateDir,
    port,
    remove() {
      rmSync(root, { recursive: true, force: true });
      rmSync(path.dirname(stateDir), { recursive: true, force: true });
    },
  };
}
