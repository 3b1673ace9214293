/**
 * `imgtool pipeline --out DIR`: the run's report as files: summary.md, and under versions/ the version manifest
 * of each artefact that `latest` points to (one file per role, kind, architecture and region).
 */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Role } from "../config/schema.js";
import { summaryMarkdown, type PipelineDeps, type PipelineReport } from "./pipeline.js";

export async function writeReportFiles(
  dir: string,
  report: PipelineReport,
  opts: { target: string; roles: Role[]; deps: Pick<PipelineDeps, "catalogs" | "keys"> },
): Promise<void> {
  const { deps } = opts;
  await mkdir(path.join(dir, "versions"), { recursive: true });
  await writeFile(path.join(dir, "summary.md"), summaryMarkdown(report, opts.target));
  for (const cat of await deps.catalogs()) {
    const { found } = await cat.resolve(
      opts.roles.flatMap((r) => deps.keys(r)),
      { meta: true },
    );
    for (const a of found) {
      const region =
        typeof a.meta?.region === "string" && a.meta.region !== "local" ? `-${a.meta.region}` : "";
      const file = `${a.key.role}-${a.key.kind}${a.key.arch ? `-${a.key.arch}` : ""}${region}.json`;
      await writeFile(
        path.join(dir, "versions", file),
        `${JSON.stringify({ name: a.name, value: a.value, meta: a.meta ?? null }, null, 2)}\n`,
      );
    }
  }
}
