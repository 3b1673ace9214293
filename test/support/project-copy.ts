/**
 * A copy of the project (what the CLI reads at run time: bin, dist, packer, templates, docker, examples,
 * package.json; node_modules linked) in a temporary folder, for a test that must change one of those files:
 * it edits the copy and runs the copy's CLI (`runCli(args, { root: copy.root })`), never a tracked file.
 */
import { cpSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { projectPath } from "../../src/paths.js";

export interface ProjectCopy {
  root: string;
  /** A path inside the copy. */
  path: (...parts: string[]) => string;
  remove: () => void;
}

const RUNTIME = ["bin", "dist", "packer", "templates", "docker", "examples", "package.json"];

export function copyProject(): ProjectCopy {
  const root = mkdtempSync(path.join(tmpdir(), "imgtool-project-"));
  for (const entry of RUNTIME) cpSync(projectPath(entry), path.join(root, entry), { recursive: true });
  symlinkSync(projectPath("node_modules"), path.join(root, "node_modules"));
  return {
    root,
    path: (...parts) => path.join(root, ...parts),
    remove: () => rmSync(root, { recursive: true, force: true }),
  };
}
