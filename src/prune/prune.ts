/**
 * `imgtool prune`: per role, beyond the newest N versions, delete what a bake made (aws: AMIs in every
 * region and the snapshots no remaining AMI uses; local: twin images and their pre-load volumes). Never
 * touches a version that a catalog label points to or that a running instance uses. Every step is
 * idempotent, and the plan is recomputed from what exists, so a re-run after a crash finishes the job.
 */
import type { Role } from "../config/schema.js";
import type { EventSink } from "../events.js";

/** One thing a version consists of (an AMI in a region, a snapshot, a twin image, a volume). */
export interface PruneResource {
  kind: "ami" | "snapshot" | "twin-image" | "volume";
  id: string;
  region: string;
}

export interface PrunableVersion {
  version: string;
  createdAt: Date;
  /** AMIs / twin images (the things instances run from). */
  images: PruneResource[];
  /** A staged bake's role version: the base version it was built from (its AMIs' / twin's own record). */
  base?: string;
}

export interface PruneBackend {
  /** Every version of a role that exists (from the resources themselves, not the catalog). */
  versions(role: Role): Promise<PrunableVersion[]>;
  /** Every base version (a staged bake's base stage) of a role that exists; none when absent. */
  baseVersions?(role: Role): Promise<PrunableVersion[]>;
  /** Ids of images (AMIs, twin images) that running instances use. */
  inUse(): Promise<Set<string>>;
  /** Version names that catalog labels (latest, stable) point to, for a role. */
  labelled(role: Role): Promise<Map<string, string[]>>;
  /** Delete one version's images and whatever only they used; idempotent. Returns what was deleted. */
  remove(version: PrunableVersion): Promise<PruneResource[]>;
  /** Mark a kept, superseded image as deprecated (aws), where supported. */
  deprecate?(image: PruneResource): Promise<void>;
  /**
   * aws: the readiness records of runs that have no instance left (ended without `imgtool terminate`, or whose
   * terminate failed midway), by region; removes them unless `dryRun`. Returns the parameter names.
   */
  staleRunRecords?(dryRun: boolean): Promise<{ region: string; name: string }[]>;
}

export interface PruneDecision {
  role: Role;
  /** "base": a staged bake's base version (kept while a kept role version was built from it). */
  stage?: "base";
  version: string;
  action: "delete" | "keep";
  reason: string;
  images: PruneResource[];
  deleted?: PruneResource[];
}

export async function prune(
  roles: Role[],
  backend: PruneBackend,
  opts: { keep: number; dryRun: boolean; events: EventSink },
): Promise<PruneDecision[]> {
  const decisions: PruneDecision[] = [];
  const superseded = new Set<PruneDecision>();
  const inUse = await backend.inUse();
  for (const role of roles) {
    // Newest first. imgtool's version names carry the build time, which outlives the resources' own
    // dates (a snapshot left by a crashed prune); other names fall back to the resources' creation time.
    const named = (v: string) => /^v\d{8}-\d{6}-/.test(v);
    const versions = (await backend.versions(role)).sort((a, b) =>
      named(a.version) && named(b.version)
        ? b.version.localeCompare(a.version)
        : b.createdAt.getTime() - a.createdAt.getTime() || b.version.localeCompare(a.version),
    );
    const labels = await backend.labelled(role);
    for (const [i, v] of versions.entries()) {
      const used = v.images.filter((img) => inUse.has(img.id));
      const l = labels.get(v.version);
      let d: PruneDecision;
      if (i < opts.keep)
        d = {
          role,
          version: v.version,
          action: "keep",
          reason: `among the newest ${opts.keep}`,
          images: v.images,
        };
      else if (l?.length)
        d = {
          role,
          version: v.version,
          action: "keep",
          reason: `catalog label ${l.join(", ")} points to it`,
          images: v.images,
        };
      else if (used.length)
        d = {
          role,
          version: v.version,
          action: "keep",
          reason: `in use by a running instance (${used.map((u) => u.id).join(", ")})`,
          images: v.images,
        };
      else
        d = {
          role,
          version: v.version,
          action: "delete",
          reason: `older than the newest ${opts.keep}, unlabelled, unused`,
          images: v.images,
        };
      decisions.push(d);
      // Deprecate only what is kept but no longer wanted: not the newest, not labelled, not running.
      if (d.action === "keep" && i > 0 && !l?.length && used.length === 0) superseded.add(d);
    }
    decisions.push(...(await baseDecisions(role, versions, decisions, backend, inUse)));
  }
  for (const d of decisions) {
    const verb = opts.dryRun ? "would delete" : "deleting";
    if (d.action === "keep") {
      opts.events({
        type: "skip",
        role: d.role,
        message: `keeping ${d.stage ? "base " : ""}${d.version}: ${d.reason}`,
      });
      if (superseded.has(d) && backend.deprecate && !opts.dryRun)
        for (const img of d.images) await backend.deprecate(img);
      continue;
    }
    opts.events({
      type: "start",
      role: d.role,
      message: `${verb} ${d.stage ? "base " : ""}${d.version} (${d.images.map((x) => `${x.region}/${x.id}`).join(", ")}): ${d.reason}`,
    });
    if (!opts.dryRun) {
      const v = { version: d.version, createdAt: new Date(0), images: d.images };
      d.deleted = await backend.remove(v);
    }
  }
  return decisions;
}

/**
 * A role's base versions (staged bakes): the newest is kept (the next role stage builds on it), and so is every
 * base that a kept role version was built from, or that a running instance uses; the others go.
 */
async function baseDecisions(
  role: Role,
  roleVersions: PrunableVersion[],
  roleDecisions: PruneDecision[],
  backend: PruneBackend,
  inUse: Set<string>,
): Promise<PruneDecision[]> {
  if (!backend.baseVersions) return [];
  const kept = new Map<string, string[]>();
  for (const d of roleDecisions) {
    if (d.role !== role || d.stage || d.action !== "keep") continue;
    const base = roleVersions.find((v) => v.version === d.version)?.base;
    if (base) kept.set(base, [...(kept.get(base) ?? []), d.version]);
  }
  const bases = (await backend.baseVersions(role)).sort(
    (a, b) => b.version.localeCompare(a.version) || b.createdAt.getTime() - a.createdAt.getTime(),
  );
  return bases.map((v, i): PruneDecision => {
    const usedBy = kept.get(v.version);
    const used = v.images.filter((img) => inUse.has(img.id));
    const keep = (reason: string): PruneDecision => ({
      role,
      stage: "base",
      version: v.version,
      action: "keep",
      reason,
      images: v.images,
    });
    if (i === 0) return keep("the newest base (the next role stage builds on it)");
    if (usedBy) return keep(`the base of kept role version(s) ${usedBy.join(", ")}`);
    if (used.length) return keep(`in use by a running instance (${used.map((u) => u.id).join(", ")})`);
    return {
      role,
      stage: "base",
      version: v.version,
      action: "delete",
      reason: "an older base that no kept role version was built from",
      images: v.images,
    };
  });
}

/** aws: remove the readiness records of runs that have no instance left; the names removed (or that would be). */
export async function pruneRunRecords(
  backend: PruneBackend,
  opts: { dryRun: boolean; events: EventSink },
): Promise<string[]> {
  if (!backend.staleRunRecords) return [];
  const stale = await backend.staleRunRecords(opts.dryRun);
  if (stale.length) {
    const runs = [...new Set(stale.map((r) => r.name.split("/").slice(-2, -1)[0]))];
    opts.events({
      type: opts.dryRun ? "skip" : "done",
      message: `${opts.dryRun ? "would remove" : "removed"} ${stale.length} readiness record(s) of ${runs.length} ended run(s): ${runs.join(", ")}`,
    });
  }
  return stale.map((r) => `${r.region}:${r.name}`);
}
