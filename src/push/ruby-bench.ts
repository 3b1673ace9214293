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
import { FailureError, UsageError } from "../errors.js";
import type { Exec } from "../exec.js";

export interface RubyBenchSource {
  /** The commit `ref` (branch, tag or commit) of `repository` points at now. */
  resolve(repository: string, ref: string): Promise<string>;
  /** A folder holding a checkout of `commit` (cached): a shallow git repository whose origin is `repository`. */
  checkout(repository: string, commit: string): Promise<string>;
}

const FULL_SHA_RE = /^[0-9a-f]{40}$/;
const COMPLETE_MARK = ".imgtool-checkout-complete";

/** URL-like (scheme://, or scp-style user@host:path) repositories stay as they are; paths become absolute. */
export function normaliseRepository(repository: string, baseDir: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(repository) || /^[^/\s]+@[^/\s]+:/.test(repository)) return repository;
  return path.resolve(baseDir, repository);
}

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
  const env = { ...process.env, GIT_TERMINAL_PROMPT: "0", GIT_ASKPASS: "true", LC_ALL: "C" };
  const git = async (args: string[], cwd?: string) => {
    const r = await opts.exec(["git", ...args], { ...(cwd ? { cwd } : {}), env, timeoutMs: 300_000 });
    if (r.notFound) {
      throw new UsageError("git is not installed, and the task-runner image needs a ruby-bench checkout.", {
        fix: "Install git (scripts/setup does).",
      });
    }
    return r;
  };
  const mirrorOf = (repository: string) =>
    path.join(opts.cacheDir, `${createHash("sha256").update(repository).digest("hex").slice(0, 16)}.git`);

  /** The bare mirror of `repository`, created or fetched (all branches and tags). */
  const fetchMirror = async (repository: string): Promise<string> => {
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
    if (r.exitCode !== 0) {
      throw new UsageError(
        `${at}.repository: cannot fetch ${JSON.stringify(repository)}: ${r.stderr.trim().split("\n").at(-1) ?? ""}`,
        { fix: "Give a reachable git URL or the path of a local git repository." },
      );
    }
    return mirror;
  };

  const hasCommit = async (mirror: string, commit: string) =>
    existsSync(mirror) && (await git(["-C", mirror, "cat-file", "-e", `${commit}^{commit}`])).exitCode === 0;

  return {
    async resolve(repository, ref) {
      if (FULL_SHA_RE.test(ref)) {
        const mirror = mirrorOf(repository);
        if (!(await hasCommit(mirror, ref)) && !(await hasCommit(await fetchMirror(repository), ref))) {
          throw new UsageError(`${at}.ref: commit ${ref} is not in ${repository}.`, {
            fix: "Give a commit, branch or tag that exists in the repository.",
          });
        }
        return ref;
      }
      // Branches and tags: ask the repository where the ref points now (cheap, no fetch).
      const ls = await git(["ls-remote", "--", repository, ref, `refs/tags/${ref}^{}`]);
      if (ls.exitCode !== 0) {
        throw new UsageError(
          `${at}.repository: cannot read ${JSON.stringify(repository)}: ${ls.stderr.trim().split("\n").at(-1) ?? ""}`,
          { fix: "Give a reachable git URL or the path of a local git repository." },
        );
      }
      const refs = new Map<string, string>();
      for (const line of ls.stdout.split("\n")) {
        const [sha, name] = line.split("\t");
        if (sha && name) refs.set(name, sha);
      }
      const found =
        refs.get(`refs/heads/${ref}`) ??
        refs.get(`refs/tags/${ref}^{}`) ??
        refs.get(`refs/tags/${ref}`) ??
        refs.get(ref);
      if (found) return found;
      // A short commit id: only the history can tell.
      if (/^[0-9a-f]{4,39}$/.test(ref)) {
        const mirror = await fetchMirror(repository);
        const r = await git(["-C", mirror, "rev-parse", "--verify", "--quiet", `${ref}^{commit}`]);
        if (r.exitCode === 0) return r.stdout.trim();
      }
      throw new UsageError(
        `${at}.ref: ${JSON.stringify(ref)} is not a branch, tag or commit of ${repository}.`,
        {
          fix: "Give a branch, tag or commit that exists in the repository.",
        },
      );
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
