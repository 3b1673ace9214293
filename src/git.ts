/** Git facts imgtool records: the project's own revision, and the commit a repository's ref points at. */
import { exec } from "./exec.js";
import { FailureError } from "./errors.js";
import { projectRoot } from "./paths.js";

/** The project's git revision (with "-dirty" when the work tree has changes), or "unknown" outside git. */
export async function projectRevision(cwd: string = projectRoot): Promise<string> {
  const head = await exec(["git", "-C", cwd, "rev-parse", "HEAD"]);
  if (head.notFound || head.exitCode !== 0) return "unknown";
  const dirty = await exec(["git", "-C", cwd, "status", "--porcelain", "--untracked-files=no"]);
  return `${head.stdout.trim()}${dirty.stdout.trim() ? "-dirty" : ""}`;
}

/**
 * The commit that `ref` names in `repository` (a URL or a local path). A full commit id is returned as is;
 * local repositories are read directly, remote ones with `git ls-remote`.
 */
export async function resolveCommit(repository: string, ref: string): Promise<string> {
  if (/^[0-9a-f]{40}$/.test(ref)) return ref;
  const isUrl = /^[a-z][a-z0-9+.-]*:\/\//i.test(repository) || /^[^/]+@[^:]+:/.test(repository);
  const r = isUrl
    ? await exec(["git", "ls-remote", "--", repository, ref, `refs/tags/${ref}^{}`], { timeoutMs: 60_000 })
    : await exec(["git", "-C", repository, "rev-parse", "--verify", "--quiet", `${ref}^{commit}`]);
  const out = r.stdout.trim();
  const commit = isUrl ? (out.split("\n").at(-1)?.split(/\s+/)[0] ?? "") : out;
  if (r.exitCode !== 0 || !/^[0-9a-f]{40}$/.test(commit)) {
    throw new FailureError(
      `Cannot resolve ref ${JSON.stringify(ref)} of the ruby-bench repository ${repository}.`,
      {
        fix: "Check roles.<role>.ruby_bench.repository and .ref (a branch, tag or commit that exists there).",
        cause: r.stderr.trim() || undefined,
      },
    );
  }
  return commit;
}
