/**
 * Build contexts: the files of a folder after `.dockerignore` (Docker's own matching rules, through
 * @balena/dockerignore, the matcher dockerode uses), in a stable order, ready to hash and to stream as tar.
 */
import dockerignore from "@balena/dockerignore";
import { lstat, readFile, readdir, readlink } from "node:fs/promises";
import path from "node:path";
import type { TarEntry } from "./tar.js";

// The package is CommonJS with `factory.default = factory`: under NodeNext the default import is the module
// object, whose `default` is the factory.
const ignore = dockerignore.default;

export interface ContextFile {
  /** Path relative to the context folder, `/`-separated. */
  rel: string;
  abs: string;
  type: "file" | "dir" | "symlink";
  mode: number;
  size: number;
  linkname?: string;
}

/** The patterns of `<dir>/.dockerignore` (comments and blank lines dropped), or [] without one. */
export async function readDockerignore(dir: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path.join(dir, ".dockerignore"), "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
}

/**
 * Every file, folder and symlink under `dir` that `.dockerignore` keeps (unless `dockerignore: false`), sorted
 * by path. An ignored folder is still walked when an exception (`!pattern`) could match inside it, as Docker
 * does.
 */
export async function listContext(
  dir: string,
  opts: { dockerignore?: boolean } = {},
): Promise<ContextFile[]> {
  const patterns = opts.dockerignore === false ? [] : await readDockerignore(dir);
  const ig = ignore({ ignorecase: false }).add(patterns);
  const hasExceptions = patterns.some((p) => p.startsWith("!"));
  const out: ContextFile[] = [];
  const walk = async (relDir: string): Promise<void> => {
    const names = (await readdir(path.join(dir, relDir))).sort();
    for (const name of names) {
      const rel = relDir ? `${relDir}/${name}` : name;
      const abs = path.join(dir, rel);
      const st = await lstat(abs);
      const ignored = ig.ignores(rel);
      if (st.isDirectory()) {
        if (!ignored) out.push({ rel, abs, type: "dir", mode: st.mode & 0o7777, size: 0 });
        if (!ignored || hasExceptions) await walk(rel);
        continue;
      }
      if (ignored) continue;
      if (st.isSymbolicLink()) {
        out.push({ rel, abs, type: "symlink", mode: 0o777, size: 0, linkname: await readlink(abs) });
      } else if (st.isFile()) {
        out.push({ rel, abs, type: "file", mode: st.mode & 0o7777, size: st.size });
      }
      // Sockets, FIFOs and devices are left out, as `docker build` does.
    }
  };
  await walk("");
  return out;
}

/** Tar entries for context files, placed under `prefix` (e.g. "app/") inside the archive. */
export function contextEntries(files: ContextFile[], prefix = ""): TarEntry[] {
  return files.map((f) => ({
    path: `${prefix}${f.rel}`,
    type: f.type,
    mode: f.mode,
    ...(f.type === "file" ? { content: () => readFile(f.abs) } : {}),
    ...(f.linkname !== undefined ? { linkname: f.linkname } : {}),
  }));
}
