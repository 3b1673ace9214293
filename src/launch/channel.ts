/**
 * The catalog label a launch uses when none is given: `stable` (what a passing pipeline promoted), or `latest`
 * with a warning while nothing is stable yet (right after a first push and bake by hand).
 */
import type { Catalog } from "../catalog/catalog.js";
import { ROLES } from "../config/schema.js";

export async function defaultLabel(catalog: Catalog, warn: (message: string) => void): Promise<string> {
  const { missing } = await catalog.resolve(
    ROLES.map((role) => ({ role, kind: "image" as const })),
    { label: "stable" },
  );
  if (missing.length === 0) return "stable";
  warn(
    `nothing is promoted to stable for ${missing.map((k) => k.role).join(", ")} yet (\`imgtool pipeline\` does that after a smoke launch): launching latest`,
  );
  return "latest";
}
