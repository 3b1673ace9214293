/**
 * A local-target pipeline of a test's own: a state folder of its own (with a stack.json pointing at the real
 * engine and registry that scripts/setup started), a unique pipeline name, and the removal of the twin images
 * and volumes it made. The examples' state folder is never written.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { randomBytes } from "node:crypto";
import type Docker from "dockerode";
import { freePort } from "../../src/launch/local.js";
import { projectPath } from "../../src/paths.js";

/** A fresh state folder whose stack.json is the real one's, pointed at the new folder. */
export function tempStateDir(): string {
  const dir = path.join(mkdtempSync(path.join(tmpdir(), "imgtool-state-")), "state");
  mkdirSync(dir, { recursive: true });
  const stack = JSON.parse(readFileSync(projectPath(".imgtool", "stack.json"), "utf8")) as object;
  writeFileSync(path.join(dir, "stack.json"), JSON.stringify({ ...stack, stateDir: dir }, null, 2));
  return dir;
}

/** A pipeline name no other test run uses. */
export const uniquePipelineName = (prefix = "t"): string => `${prefix}${randomBytes(5).toString("hex")}`;

/**
 * Write a local pipeline's config to `file`: both roles from the examples' contexts with Ruby 3.1 and the
 * ruby-bench repository `repo` at `ref`, the orchestrator on a port the kernel chose, the state folder
 * `stateDir` (from {@link tempStateDir}), then `extra` lines. Resolves with `file`.
 */
export async function localPipelineConfig(o: {
  file: string;
  pipeline: string;
  repo: string;
  stateDir: string;
  ref?: string;
  extra?: string[];
}): Promise<string> {
  const role = (r: string) => [
    `  ${r}:`,
    '    ruby: { versions: ["3.1"] }',
    `    ruby_bench: { repository: ${o.repo}, ref: ${o.ref ?? "main"} }`,
    `    app: { context: ${projectPath("examples", r)} }`,
  ];
  writeFileSync(
    o.file,
    [
      `pipeline: ${o.pipeline}`,
      "roles:",
      ...role("task-runner"),
      ...role("orchestrator"),
      `launch: { orchestrator_port: ${await freePort()} }`,
      "local:",
      `  state_dir: ${o.stateDir}`,
      ...(o.extra ?? []),
    ].join("\n"),
  );
  return o.file;
}

/** Remove the twin images and the volumes (pre-load stores, instance stores) of `pipeline`. */
export async function removePipelineArtifacts(docker: Docker, pipeline: string): Promise<void> {
  for (const img of await docker.listImages({
    filters: JSON.stringify({ reference: [`imgtool-twin/${pipeline}-*`] }),
  })) {
    for (const t of img.RepoTags ?? [])
      await docker
        .getImage(t)
        .remove()
        .catch(() => undefined);
  }
  const vols = await docker.listVolumes({
    filters: JSON.stringify({ label: [`imgtool.pipeline=${pipeline}`] }),
  });
  for (const v of vols.Volumes ?? [])
    await docker
      .getVolume(v.Name)
      .remove()
      .catch(() => undefined);
}
