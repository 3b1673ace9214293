/**
 * Boot times in the catalog, next to the versions that booted: one parameter per role and architecture,
 * `<prefix>/boot/<role>/<arch>`, whose every version is one smoke launch's boot of an AMI (twin) version,
 * labelled with that version (a second measurement of the same version moves the label). Written in the home
 * region's catalog (where the smoke launch runs); outside the artefact layout (role/kind[/arch]), so status, diff
 * and prune do not take them for artefacts. `imgtool status --version V` shows them.
 */
import { catalogCall, type Catalog } from "../catalog/catalog.js";
import type { Role } from "../config/schema.js";
import { bootStepsOf } from "../launch/boot-steps.js";
import type { BootRecord } from "./boot-budget.js";

export const bootRecordName = (catalog: Catalog, role: string, arch: string) =>
  `${catalog.prefix}/boot/${role}/${arch}`;

/** Record one boot; resolves with the parameter's name. */
export async function recordBoot(catalog: Catalog, rec: BootRecord): Promise<string> {
  const name = bootRecordName(catalog, rec.role, rec.arch);
  await catalog.putRecord(name, JSON.stringify(rec), [rec.version], rec.role);
  return name;
}

/** A stored record, or undefined when the value is not one imgtool wrote. */
export function parseBootRecord(value: string): BootRecord | undefined {
  let doc: Partial<Record<keyof BootRecord, unknown>>;
  try {
    doc = JSON.parse(value) as typeof doc;
  } catch {
    return undefined;
  }
  if (
    doc?.schema !== 1 ||
    typeof doc.role !== "string" ||
    typeof doc.arch !== "string" ||
    typeof doc.version !== "string" ||
    typeof doc.seconds !== "number"
  ) {
    return undefined;
  }
  return {
    schema: 1,
    role: doc.role as Role,
    arch: doc.arch,
    version: doc.version,
    imageVersion: typeof doc.imageVersion === "string" ? doc.imageVersion : null,
    target: String(doc.target ?? ""),
    instanceId: String(doc.instanceId ?? ""),
    seconds: doc.seconds,
    steps: bootStepsOf(doc.steps) ?? {},
    measuredAt: String(doc.measuredAt ?? ""),
  };
}

/**
 * The boot recorded for one version of a role and architecture: the record, none (`undefined`), or the name of
 * a parameter whose value imgtool cannot have written (`{ unreadable }`).
 */
export async function bootRecordOf(
  catalog: Catalog,
  role: string,
  arch: string,
  version: string,
): Promise<BootRecord | { unreadable: string } | undefined> {
  const name = bootRecordName(catalog, role, arch);
  const { found } = await catalogCall(name, "reading", () => catalog.store.getMany([`${name}:${version}`]));
  if (!found[0]) return undefined;
  return parseBootRecord(found[0].value) ?? { unreadable: `${name}:${version}` };
}

/** Every boot recorded for a version (one per role and architecture that booted it). */
export async function bootRecordsOf(catalog: Catalog, version: string): Promise<BootRecord[]> {
  const names = await catalogCall(`${catalog.prefix}/boot`, "listing", () =>
    catalog.store.list(`${catalog.prefix}/boot`),
  );
  const out: BootRecord[] = [];
  for (const name of names) {
    const history = await catalogCall(name, "reading the history of", () => catalog.store.history(name));
    const hit = history.find((h) => h.labels.includes(version));
    const rec = hit ? parseBootRecord(hit.value) : undefined;
    if (rec) out.push(rec);
  }
  return out;
}
