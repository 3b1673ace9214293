/**
 * What the catalog holds under one version (`imgtool status --version V`), and its records for
 * `imgtool diff`.
 */
import type { Catalog } from "../catalog/catalog.js";
import { UsageError } from "../errors.js";
import type { Context } from "./context.js";

export async function versionRecord(catalog: Catalog, version: string) {
  const found = await catalog.findVersion(version);
  if (found.length === 0) {
    throw new UsageError(`No artefact in the catalog has version ${version}.`, {
      fix: "`imgtool status` lists the current and previous versions of each role and kind.",
    });
  }
  return found.map((f) => ({
    name: f.name,
    role: f.key.role,
    kind: f.key.kind,
    arch: f.key.arch ?? null,
    value: f.value,
    labels: f.labels.filter((l) => l !== version),
    inputsHash: f.meta?.inputsHash ?? null,
    base: f.meta?.base ?? null,
    gitRevision: f.meta?.gitRevision ?? null,
    builtAt: f.meta?.builtAt ?? null,
    manifest: (f.meta?.manifest as Record<string, unknown> | null | undefined) ?? null,
  }));
}

export async function showVersion(ctx: Context, version: string): Promise<number> {
  const catalog = await ctx.deps.catalog();
  const records = await versionRecord(catalog, version);
  const { calibrationsOf } = await import("../calibrate/records.js");
  const calibrations = await calibrationsOf(catalog, version);
  const { bootRecordsOf } = await import("../pipeline/boot-records.js");
  const boots = await bootRecordsOf(catalog, version);
  ctx.out.result({ version, artifacts: records, calibrations, boots }, () =>
    [
      ...records.map((r) =>
        [
          `${r.name} (${version})`,
          `  value:       ${r.value}`,
          `  labels:      ${r.labels.join(", ") || "-"}`,
          `  inputs hash: ${r.inputsHash ?? "-"}`,
          `  parent base: ${r.base ?? "-"}`,
          `  git:         ${r.gitRevision ?? "-"}   built: ${r.builtAt ?? "-"}`,
          `  manifest:    ${r.manifest ? JSON.stringify(r.manifest, null, 2).replace(/\n/g, "\n  ") : "-"}`,
        ].join("\n"),
      ),
      ...calibrations.map(
        (c) =>
          `calibration ${c.instanceType} (${c.target}, ${c.calibratedAt}): ${c.recommendedWorkers} worker(s) per instance; ` +
          `within max slowdown ${c.thresholds.maxSlowdown}x and max CV ${c.thresholds.maxCv}: ${c.within.join(", ") || "none"}`,
      ),
      ...boots.map(
        (b) =>
          `boot ${b.role} ${b.arch} (${b.target}, ${b.measuredAt}, ${b.instanceId}): ${b.seconds.toFixed(3)} s to ready; ` +
          (Object.entries(b.steps)
            .map(([name, s]) => `${name} ${s.toFixed(3)} s`)
            .join(", ") || "steps not timed"),
      ),
    ].join("\n\n"),
  );
  return 0;
}
