/**
 * The publisher of the push flow: the one place where an image reaches the catalog. It publishes
 * `URI@sha256:...` with the image's metadata (version name, inputs hash, bases, ruby-bench commit) only after
 * the digest was read back from the registry, and publishes an image found up to date only when the catalog
 * has never known it (a rollback is respected). On aws the reference is published in the catalog of every
 * configured region (home first): the image stays in its home registry, and a launch in any region resolves it
 * from that region's own catalog (the instance logs in to the registry's region).
 */
import { versionName, type ArtifactMeta, type Catalog } from "../catalog/catalog.js";
import type { Role, Target } from "../config/schema.js";
import type { RoleInputs } from "./inputs.js";

export interface PublisherDeps {
  target: Target;
  /** aws: the home region, recorded in the catalog entry's meta. */
  region?: string;
  catalog: Catalog;
  /** aws: the catalogs of the other configured regions, published to after `catalog`. */
  otherCatalogs?: Catalog[];
  now: () => Date;
}

/** What publishing reads from, and writes to, the role's result. */
export interface Publishable {
  role: Role;
  /** `URI@sha256:...`, read back from the registry. */
  reference?: string;
  platforms: string[];
  published: boolean;
  version?: string;
}

export class Publisher {
  constructor(private readonly deps: PublisherDeps) {}

  private meta(
    i: RoleInputs,
    builtAt: Date,
    gitRevision: string | undefined,
    result: Publishable,
  ): ArtifactMeta {
    return {
      version: versionName(builtAt, i.inputsHash),
      inputsHash: i.inputsHash,
      builtAt: builtAt.toISOString(),
      ...(gitRevision ? { gitRevision } : {}),
      base: i.platforms
        .flatMap((p) =>
          p.bases.map((b) => (i.platforms.length > 1 ? `${p.platform.platform}=${b.id}` : b.id)),
        )
        .join(","),
      ...(this.deps.target === "aws" && this.deps.region ? { region: this.deps.region } : {}),
      target: this.deps.target,
      tag: i.tag,
      platforms: result.platforms,
      ...(i.rubyBench
        ? {
            rubyBench: {
              repository: i.rubyBench.repository,
              ref: i.rubyBench.ref,
              commit: i.rubyBench.commit,
            },
          }
        : {}),
    };
  }

  private get catalogs(): Catalog[] {
    return [this.deps.catalog, ...(this.deps.otherCatalogs ?? [])];
  }

  /** Publish the role's verified reference (in every region's catalog, home first). */
  async publish(i: RoleInputs, result: Publishable, builtAt: Date, gitRevision: string | undefined) {
    const meta = this.meta(i, builtAt, gitRevision, result);
    for (const cat of this.catalogs)
      await cat.publish({ role: i.role, kind: "image" }, result.reference!, meta);
    result.published = true;
    result.version = meta.version;
  }

  /**
   * An image that is in the registry but not in a catalog (its run stopped between push and publish, or
   * between two regions' publishes, or another catalog) is published there now. One that a catalog knows stays
   * as it is there: a rollback is respected.
   */
  async publishIfMissing(i: RoleInputs, result: Publishable) {
    const key = { role: i.role, kind: "image" as const };
    const builtAt = this.deps.now();
    const meta = this.meta(i, builtAt, undefined, result);
    for (const cat of this.catalogs) {
      const { found } = await cat.resolve([key]);
      if (found[0]?.value === result.reference) continue;
      const history = await cat.history(key);
      if (history.some((h) => h.value === result.reference)) continue;
      await cat.publish(key, result.reference!, meta);
      result.published = true;
      result.version = meta.version;
    }
  }
}
