/**
 * Calibrations in the catalog, next to the versions they measured: one parameter per role and instance type,
 * `<prefix>/calibration/<role>/<instance type>`, whose every version is one calibration labelled with the
 * task-runner version it measured (a recalibration of the same version moves the label) and `latest`. Outside
 * the artefact layout (role/kind[/arch]), so status, diff and prune do not take them for artefacts.
 */
import type { Catalog } from "../catalog/catalog.js";
import { parseRecord, type CalibrationRecord } from "./calibrate.js";

export const calibrationName = (catalog: Catalog, role: string, instanceType: string) =>
  `${catalog.prefix}/calibration/${role}/${instanceType}`;

/** Record a calibration; resolves with the parameter's name. */
export async function recordCalibration(catalog: Catalog, rec: CalibrationRecord): Promise<string> {
  const name = calibrationName(catalog, rec.role, rec.instanceType);
  const version = await catalog.store.put(name, JSON.stringify(rec), { dataType: "text" });
  const { invalid } = await catalog.store.label(name, version, [rec.version, "latest"]);
  if (invalid.length) throw new Error(`the catalog refused the label(s) ${invalid.join(", ")} on ${name}`);
  return name;
}

/** The calibration recorded for one version and instance type, if any. */
export async function calibrationFor(
  catalog: Catalog,
  version: string,
  instanceType: string,
  role = "task-runner",
): Promise<CalibrationRecord | undefined> {
  const { found } = await catalog.store.getMany([
    `${calibrationName(catalog, role, instanceType)}:${version}`,
  ]);
  return found[0] ? parseRecord(found[0].value) : undefined;
}

/** Every calibration recorded for a version (one per role and instance type). */
export async function calibrationsOf(catalog: Catalog, version: string): Promise<CalibrationRecord[]> {
  const names = await catalog.store.list(`${catalog.prefix}/calibration`);
  const out: CalibrationRecord[] = [];
  for (const name of names) {
    const hit = (await catalog.store.history(name)).find((h) => h.labels.includes(version));
    const rec = hit ? parseRecord(hit.value) : undefined;
    if (rec) out.push(rec);
  }
  return out;
}
