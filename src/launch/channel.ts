/**
 * The channel a launch uses when none is given: `stable` (the release a passing pipeline promoted), or `latest`
 * with a warning while nothing is stable yet (right after a first push and bake by hand).
 */
import type { Catalog } from "../catalog/catalog.js";
import { Releases } from "../catalog/release.js";
import { ROLES } from "../config/schema.js";

export async function defaultLabel(
  catalog: Catalog,
  warn: (message: string) => void,
  releaseCatalog: Catalog = catalog,
): Promise<string> {
  const releases = new Releases(releaseCatalog);
  if (await releases.read("stable")) return "stable";
  // A catalog from before releases: stable as each artefact's own label.
  const { missing } = await catalog.resolve(
    ROLES.map((role) => ({ role, kind: "image" as const })),
    { label: "stable" },
  );
  if (missing.length === 0) return "stable";
  warn(
    "no release is promoted to stable yet (`imgtool pipeline` does that after a smoke launch): launching latest",
  );
  return "latest";
}
