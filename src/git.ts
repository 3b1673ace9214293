/**
 * Git facts imgtool records: the project's own revision, and the one resolver of a ruby-bench ref to the
 * commit it names (push and bake both pin what it answers; the pipeline asks it once per run).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Role } from "./config/schema.js";
import { exec as realExec, type Exec } from "./exec.js";
import { UsageError } from "./errors.js";
import { projectRoot } from "./paths.js";

/** The project's git revision (with "-dirty" when the work tree has changes), or "unknown" outside git. */
export async function projectRevision(cwd: string = projectRoot): Promise<string> {
  const head = await realExec(["git", "-C", cwd, "rev-parse", "HEAD"]);
  if (head.notFound || head.exitCode !== 0) return "unknown";
  const dirty = await realExec(["git", "-C", cwd, "status", "--porcelain", "--untracked-files=no"]);
  return `${head.stdout.trim()}${dirty.stdout.trim() ? "-dirty" : ""}`;
}

export const FULL_SHA_RE = /^[0-9a-f]{40}$/;

/** The environment of every git call here: never prompt, plain messages. */
export const GIT_ENV = { ...process.env, GIT_TERMINAL_PROMPT: "0", GIT_ASKPASS: "true", LC_ALL: "C" };

/** A git runner through src/exec.ts: a missing git is a usage error. */
export function gitRunner(exec: Exec = realExec) {
  return async (args: string[], cwd?: string) => {
    const r = await exec(["git", ...args], { ...(cwd ? { cwd } : {}), env: GIT_ENV, timeoutMs: 300_000 });
    if (r.notFound) {
      throw new UsageError("git is not installed, and imgtool needs it to pin the ruby-bench checkout.", {
        fix: "Install git (scripts/setup does).",
      });
    }
    return r;
  };
}

/**
 * `git rev-parse --verify <spec>^{commit}` in a repository that holds the history: the full commit id, or
 * undefined when there is no such commit. Used for commit ids, which a repository's refs do not list.
 */
export type CommitLookup = (spec: string) => Promise<string | undefined>;

/** The ruby-bench source of a role, as the config holds it (src/config/load.ts decides URL or path, once). */
export interface RubyBenchRepo {
  repository: string;
  ref: string;
  /** The repository as a folder on this machine; undefined when it is a remote URL. */
  localPath?: string;
}

export interface ResolveRefOptions {
  exec?: Exec;
  /** Where commit ids are looked up. @default the local repository itself, or a temporary mirror of a URL */
  lookup?: CommitLookup;
}

/**
 * The commit that `src.ref` names in `src.repository`: a branch first (refs/heads), then a tag (peeled), a
 * full commit id only when the repository has it, a short one through its history. Anything else is a usage
 * error naming `roles.<role>.ruby_bench.ref` and the value.
 */
export async function resolveRubyBenchRef(
  role: Role,
  src: RubyBenchRepo,
  opts: ResolveRefOptions = {},
): Promise<string> {
  const at = `roles.${role}.ruby_bench`;
  const { repository, ref } = src;
  const git = gitRunner(opts.exec);
  const lookup = opts.lookup ?? defaultLookup(at, src, git);
  const notFound = () =>
    new UsageError(`${at}.ref: ${JSON.stringify(ref)} is not a branch, tag or commit of ${repository}.`, {
      fix: `Set ${at}.ref to a branch, tag or commit that exists in ${at}.repository.`,
    });
  if (FULL_SHA_RE.test(ref)) {
    if ((await lookup(ref)) !== ref) throw notFound();
    return ref;
  }
  // Branches and tags: ask the repository where the ref points now (cheap, no fetch).
  const ls = await git(["ls-remote", "--", repository, ref, `refs/tags/${ref}^{}`]);
  if (ls.exitCode !== 0) throw cannotFetch(at, repository, ls.stderr);
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
    const commit = await lookup(ref);
    if (commit) return commit;
  }
  throw notFound();
}

/** Look commits up in the local repository, or in a temporary mirror of a remote one (removed after). */
function defaultLookup(at: string, src: RubyBenchRepo, git: ReturnType<typeof gitRunner>): CommitLookup {
  const revParse = async (dir: string, spec: string) => {
    const r = await git(["-C", dir, "rev-parse", "--verify", "--quiet", `${spec}^{commit}`]);
    return r.exitCode === 0 ? r.stdout.trim() : undefined;
  };
  if (src.localPath) return (spec) => revParse(src.localPath!, spec);
  return async (spec) => {
    const dir = await mkdtemp(path.join(tmpdir(), "imgtool-ruby-bench-"));
    try {
      const c = await git(["clone", "--quiet", "--mirror", "--", src.repository, dir]);
      if (c.exitCode !== 0) throw cannotFetch(at, src.repository, c.stderr);
      return await revParse(dir, spec);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };
}

/** The usage error of a repository git cannot read (`at` is `roles.<role>.ruby_bench`). */
export function cannotFetch(at: string, repository: string, stderr: string): UsageError {
  return new UsageError(
    `${at}.repository: cannot read ${JSON.stringify(repository)}: ${stderr.trim().split("\n").at(-1) ?? ""}`,
    { fix: "Give a reachable git URL or the path of a local git repository." },
  );
}
