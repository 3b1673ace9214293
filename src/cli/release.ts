/** After `push image` and `bake ami`: the release of what is published now (src/catalog/release.ts). */
import type { ArtifactKind } from "../catalog/catalog.js";
import { ROLES, type Role } from "../config/schema.js";
import type { Context } from "./context.js";

/** Record the release over every role and region; `roles`' artefacts of `kind` must be published. */
export async function recordPublished(ctx: Context, roles: Role[], kind: ArtifactKind) {
  const { recordRelease } = await import("../catalog/release.js");
  const p = ctx.deps.pipeline({ force: false });
  return recordRelease(
    await p.catalogs(),
    ROLES.flatMap((r) => p.keys(r)),
    roles.flatMap((r) => p.keys(r)).filter((k) => k.kind === kind),
    ctx.out.event,
  );
}
