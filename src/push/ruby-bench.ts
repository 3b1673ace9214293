/**
 * The ruby-bench checkout baked into the task-runner image: the configured repository (a URL or a local
 * path) and ref, resolved on the host to a commit, and checked out (shallow, origin = the configured
 * repository) into a cache under the state folder. The commit is part of the image's content tag, so a
 * moved branch gives a new image and an unchanged one gives none.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Role } from "../config/schema.js";
import { FailureError } from "../errors.js";
import type { Exec } from "../exec.js";
import { cannotFetch, gitRunner, resolveRubyBenchRef, type RubyBenchRepo } from "../git.js";

export interface RubyBenchSource {
  /** The commit the role's ruby-bench ref points at now (src/git.ts resolves it; this source's mirror verifies commit ids). */
  resolve(role: Role, src: RubyBenchRepo): Promise<string>;
  /** A folder holding a checkout of `commit` (cached): a shallow git repository whose origin is `repository`. */
  checkout(repository: string, commit: string): Promise<string>;
}

const COMPLETE_MARK = ".imgtool-checkout-complete";

export interface GitRubyBenchOptions {
  /** Cache folder, e.g. <state_dir>/cache/ruby-bench. */
  cacheDir: string;
  exec: Exec;
  /** Config path named in errors. @default "roles.task-runner.ruby_bench" */
  configPath?: string;
}

/** {@link RubyBenchSource} over the git CLI (through src/exec.ts). */
export function gitRubyBench(opts: GitRubyBenchOptions): RubyBenchSource {
  const at = opts.configPath ?? "roles.task-runner.ruby_bench";
  const git = gitRunner(opts.exec);
  const mirrorOf = (repository: string) =>
    path.join(opts.cacheDir, `${createHash("sha256").update(repository).digest("hex").slice(0, 16)}.git`);

  /** The bare mirror of `repository`, created or fetched (all branches and tags). */
  const fetchMirror = async (repository: string, where = at): Promise<string> => {
    const mirror = mirrorOf(repository);
    const r = existsSync(mirror)
      ? await git(["-C", mirror, "fetch", "--quiet", "--prune", "--tags", "origin"])
      : await (async () => {
          await mkdir(opts.cacheDir, { recursive: true });
          const tmp = `${mirror}.tmp-${process.pid}-${Date.now()}`;
          const c = await git(["clone", "--quiet", "--mirror", "--", repository, tmp]);
          if (c.exitCode === 0)
            await rename(tmp, mirror).catch(() => rm(tmp, { recursive: true, force: true }));
          else await rm(tmp, { recursive: true, force: true });
          return c;
        })();
    if (r.exitCode !== 0) throw cannotFetch(where, repository, r.stderr);
    return mirror;
  };

  const revParse = async (mirror: string, spec: string) => {
    if (!existsSync(mirror)) return undefined;
    const r = await git(["-C", mirror, "rev-parse", "--verify", "--quiet", `${spec}^{commit}`]);
    return r.exitCode === 0 ? r.stdout.trim() : undefined;
  };
  const hasCommit = async (mirror: string, commit: string) => (await revParse(mirror, commit)) === commit;

  return {
    resolve(role, src) {
      // Commit ids are looked up in the cached mirror (fetched when it does not know them yet).
      const lookup = async (spec: string) =>
        (await revParse(mirrorOf(src.repository), spec)) ??
        revParse(await fetchMirror(src.repository, `roles.${role}.ruby_bench`), spec);
      return resolveRubyBenchRef(role, src, { exec: opts.exec, lookup });
    },

    async checkout(repository, commit) {
      const dir = path.join(opts.cacheDir, "checkouts", commit);
      if (existsSync(path.join(dir, ".git", COMPLETE_MARK))) return dir;
      let mirror = mirrorOf(repository);
      if (!(await hasCommit(mirror, commit))) mirror = await fetchMirror(repository);
      const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
      await rm(tmp, { recursive: true, force: true });
      await mkdir(tmp, { recursive: true });
      const steps: string[][] = [
        ["init", "--quiet"],
        ["fetch", "--quiet", "--depth", "1", `file://${mirror}`, commit],
        ["checkout", "--quiet", "--detach", "FETCH_HEAD"],
        ["remote", "add", "origin", repository],
      ];
      for (const args of steps) {
        const r = await git(args, tmp);
        if (r.exitCode !== 0) {
          await rm(tmp, { recursive: true, force: true });
          throw new FailureError(
            `checking out ruby-bench ${commit} from ${repository} failed: git ${args[0]}: ${r.stderr.trim()}`,
          );
        }
      }
      // Drop what differs between two checkouts of the same commit, so the image layer stays cached.
      await rm(path.join(tmp, ".git", "FETCH_HEAD"), { force: true });
      await rm(path.join(tmp, ".git", "logs"), { recursive: true, force: true });
      await writeFile(path.join(tmp, ".git", COMPLETE_MARK), `${commit}\n`);
      await mkdir(path.dirname(dir), { recursive: true });
      try {
        await rename(tmp, dir);
      } catch (e) {
        // Another run made the same checkout first: use theirs.
        await rm(tmp, { recursive: true, force: true });
        if (!existsSync(path.join(dir, ".git", COMPLETE_MARK))) throw e;
      }
      return dir;
    },
  };
}
