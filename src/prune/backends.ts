/** Prune backends: what a version consists of, and how to delete it, on aws (EC2) and local (Docker). */
import type Docker from "dockerode";
import type { Ec2Images } from "../aws/ec2.js";
import { snapshotIds } from "../aws/ec2.js";
import { CHANNELS, type Catalog } from "../catalog/catalog.js";
import { Releases } from "../catalog/release.js";
import type { Config } from "../config/load.js";
import { ARCHES, type Role } from "../config/schema.js";
import { errorName } from "../errors.js";
import type { EventSink } from "../events.js";
import type { PruneBackend, PrunableVersion, PruneResource } from "./prune.js";
import { DOCKER_LABEL, IMAGE_LABEL, SHARED_BASE_REPO, TAG, runRecordsRoot } from "../config/tags.js";
import type { ReadyRecordStore } from "../aws/ready-records.js";

/**
 * Versions that a channel (latest, stable) points at, for a role's AMIs: the channel labels in the catalog,
 * and the AMIs of the releases the channels point at (src/catalog/release.ts).
 */
async function labelledVersions(catalog: Catalog, role: Role): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  const releases = new Releases(catalog);
  for (const channel of CHANNELS) {
    const release = await releases.read(channel);
    for (const a of Object.values(release?.roles[role]?.ami ?? {}))
      out.set(a.version, [...new Set([...(out.get(a.version) ?? []), `release ${channel}`])]);
  }
  for (const arch of ARCHES) {
    for (const h of await catalog.history({ role, kind: "ami", arch })) {
      const channels = h.labels.filter((l) => (CHANNELS as readonly string[]).includes(l));
      if (h.version && channels.length)
        out.set(h.version, [...new Set([...(out.get(h.version) ?? []), ...channels])]);
    }
  }
  return out;
}

const GONE = new Set(["InvalidAMIID.NotFound", "InvalidAMIID.Unavailable", "InvalidSnapshot.NotFound"]);

async function ignoreGone(p: Promise<unknown>): Promise<boolean> {
  try {
    await p;
    return true;
  } catch (e) {
    if (GONE.has(errorName(e) ?? "")) return false;
    throw e;
  }
}

/** How prune waits for a snapshot's Fast Snapshot Restore to be disabled before it deletes the snapshot. */
export interface FastRestoreWait {
  /** @default 5000 */
  intervalMs?: number;
  /** Reads after the disable, @default 60 (5 minutes): then the snapshot is left for the next prune (its version's tag finds it). */
  reads?: number;
  /**
   * DeleteSnapshot attempts while EC2 still says InvalidSnapshot.InUse after its AMI was deregistered (EC2 releases
   * the snapshots a little later), @default 6 (30 s): then it is left for the next prune.
   */
  inUseReads?: number;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * A snapshot's EBS Fast Snapshot Restore (aws.fast_snapshot_restore), disabled in every zone where it is not yet,
 * then waited for until no zone has it (EC2 refuses to delete a snapshot it is enabled for). Whatever the config
 * says now: a version baked with it on is billed until it is off. True when the snapshot can be deleted.
 */
async function fastRestoreOff(
  ec2: Ec2Images,
  snapshotId: string,
  wait: FastRestoreWait,
  events: EventSink,
): Promise<boolean> {
  let on = await ec2.fastRestores(snapshotId);
  if (!on.length) return true;
  const zones = on.filter((f) => f.state !== "disabling").map((f) => f.zone);
  events({
    type: "progress",
    message: `disabling Fast Snapshot Restore for ${snapshotId} in ${on.map((f) => f.zone).join(", ")} (${ec2.region})`,
  });
  if (zones.length) await ec2.disableFastRestores(snapshotId, zones);
  const interval = wait.intervalMs ?? 5_000;
  const reads = wait.reads ?? 60;
  const sleep = wait.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  for (let n = 1; ; n++) {
    on = await ec2.fastRestores(snapshotId);
    if (!on.length) return true;
    if (n >= reads) {
      events({
        type: "warn",
        message: `${snapshotId} (${ec2.region}) is kept for the next prune: its Fast Snapshot Restore is still ${on.map((f) => `${f.state} in ${f.zone}`).join(", ")}`,
      });
      return false;
    }
    await sleep(interval);
  }
}

/**
 * Delete a snapshot whose AMI this prune just deregistered: EC2 may answer InvalidSnapshot.InUse for a while after
 * the deregistration (boto/boto#3019), so try again every interval; true when deleted, false when it was gone or is
 * left for the next prune (said so).
 */
async function deleteReleased(
  ec2: Ec2Images,
  snapshotId: string,
  wait: FastRestoreWait,
  events: EventSink,
): Promise<boolean> {
  const interval = wait.intervalMs ?? 5_000;
  const attempts = wait.inUseReads ?? 6;
  const sleep = wait.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  for (let n = 1; ; n++) {
    try {
      return await ignoreGone(ec2.deleteSnapshot(snapshotId));
    } catch (e) {
      if (errorName(e) !== "InvalidSnapshot.InUse") throw e;
      if (n >= attempts) {
        events({
          type: "warn",
          message: `${snapshotId} (${ec2.region}) is kept for the next prune: EC2 still says it is in use (${(e as Error).message})`,
        });
        return false;
      }
    }
    await sleep(interval);
  }
}

export function awsPruneBackend(opts: {
  config: Config;
  ec2: (region: string) => Promise<Ec2Images>;
  catalog: Catalog;
  now?: () => Date;
  events?: EventSink;
  fastRestoreWait?: FastRestoreWait;
  /** A region's readiness records and the run ids of the pipeline's instances that are not terminated. */
  runs?: (region: string) => Promise<{ store: ReadyRecordStore; liveRunIds(): Promise<Set<string>> }>;
}): PruneBackend {
  const { config } = opts;
  const tagsOf = (role: Role) => ({ [TAG.pipeline]: config.pipeline, [TAG.role]: role });
  type Tagged = { Key?: string; Value?: string }[] | undefined;
  const tag = (tags: Tagged, key: string) => tags?.find((t) => t.Key === key)?.Value;
  /** The role's versions (stage "role": no stage tag) or its base versions (stage tag "base"). */
  const versionsOf = async (role: Role, stage: "role" | "base") => {
    const byVersion = new Map<string, PrunableVersion>();
    const add = (version: string, created: Date, r: PruneResource, base: string | undefined) => {
      const v = byVersion.get(version) ?? { version, createdAt: created, images: [] };
      if (created < v.createdAt) v.createdAt = created;
      v.images.push(r);
      if (base) v.base = base;
      byVersion.set(version, v);
    };
    const ours = (tags: Tagged) => (tag(tags, TAG.stage) === "base") === (stage === "base");
    for (const region of config.aws.regions) {
      const ec2 = await opts.ec2(region);
      for (const img of await ec2.byTags(tagsOf(role))) {
        const version = tag(img.Tags, TAG.version);
        if (version && img.ImageId && ours(img.Tags))
          add(
            version,
            new Date(img.CreationDate ?? 0),
            { kind: "ami", id: img.ImageId, region },
            tag(img.Tags, TAG.baseVersion),
          );
      }
      // Snapshots whose AMI is already gone (a prune that crashed midway) still belong to their version.
      for (const snap of await ec2.snapshotsByTags(tagsOf(role))) {
        const version = tag(snap.Tags, TAG.version);
        if (version && snap.SnapshotId && ours(snap.Tags))
          add(
            version,
            snap.StartTime ?? new Date(0),
            { kind: "snapshot", id: snap.SnapshotId, region },
            tag(snap.Tags, TAG.baseVersion),
          );
      }
    }
    return [...byVersion.values()];
  };
  return {
    versions: (role) => versionsOf(role, "role"),
    baseVersions: (role) => versionsOf(role, "base"),
    async inUse() {
      const used = new Set<string>();
      for (const region of config.aws.regions)
        for (const id of await (await opts.ec2(region)).imagesInUse()) used.add(id);
      return used;
    },
    labelled: (role) => labelledVersions(opts.catalog, role),
    async remove(v) {
      const deleted: PruneResource[] = [];
      const snapshots = new Map<string, PruneResource>();
      for (const r of v.images.filter((x) => x.kind === "snapshot")) snapshots.set(r.id, r);
      for (const ami of v.images.filter((x) => x.kind === "ami")) {
        const ec2 = await opts.ec2(ami.region);
        const image = await ec2.describe(ami.id);
        for (const s of image ? snapshotIds(image) : [])
          snapshots.set(s, { kind: "snapshot", id: s, region: ami.region });
        if (await ignoreGone(ec2.deregister(ami.id))) deleted.push(ami);
      }
      for (const snap of snapshots.values()) {
        const ec2 = await opts.ec2(snap.region);
        // A snapshot goes only when no remaining AMI uses it, and once its Fast Snapshot Restore is off.
        if ((await ec2.snapshotsInUse()).has(snap.id)) continue;
        if (
          !(await fastRestoreOff(ec2, snap.id, opts.fastRestoreWait ?? {}, opts.events ?? (() => undefined)))
        )
          continue;
        if (await deleteReleased(ec2, snap.id, opts.fastRestoreWait ?? {}, opts.events ?? (() => undefined)))
          deleted.push(snap);
      }
      return deleted;
    },
    ...(opts.runs
      ? {
          async staleRunRecords(dryRun: boolean) {
            const out: { region: string; name: string }[] = [];
            const root = runRecordsRoot(config.aws.ssm_prefix);
            for (const region of config.aws.regions) {
              const { store, liveRunIds } = await opts.runs!(region);
              const records = await store.listAll(root);
              if (!records.length) continue;
              const live = await liveRunIds();
              // <root>/<run id>/<instance id>
              const stale = records.filter(
                (r) => !live.has(r.name.slice(root.length + 1).split("/")[0] ?? ""),
              );
              if (!dryRun && stale.length) await store.remove(stale.map((r) => r.name));
              out.push(...stale.map((r) => ({ region, name: r.name })));
            }
            return out;
          },
        }
      : {}),
    async deprecate(image) {
      if (image.kind !== "ami") return;
      // Set once, from the AMI's build time: a later prune must not push the deprecation forward.
      const ec2 = await opts.ec2(image.region);
      const current = await ec2.describe(image.id);
      if (!current || current.DeprecationTime) return;
      const now = (opts.now?.() ?? new Date()).getTime();
      const built = new Date(current.CreationDate ?? now).getTime();
      // EC2 refuses a time in the past: an AMI built long ago is deprecated a minute from now.
      const at = new Date(Math.max(built + DEPRECATE_AFTER_MS, now + 60_000));
      await ignoreGone(ec2.deprecate(image.id, at));
    },
  };
}

/** A superseded AMI is deprecated this long after it was built. */
export const DEPRECATE_AFTER_MS = 24 * 3600_000;

export function localPruneBackend(opts: { config: Config; docker: Docker; catalog: Catalog }): PruneBackend {
  const { config, docker } = opts;
  const repo = (role: Role) => `imgtool-twin/${config.pipeline}-${role}`;
  const notFound = (e: unknown) => (e as { statusCode?: number }).statusCode === 404;
  /** The twins tagged in `repository`, one version per tag (a role twin names its base in a label). */
  const twins = async (repository: string): Promise<PrunableVersion[]> => {
    const out: PrunableVersion[] = [];
    for (const img of await docker.listImages({ filters: JSON.stringify({ reference: [repository] }) })) {
      const base = img.Labels?.[IMAGE_LABEL.baseVersion];
      for (const t of img.RepoTags ?? []) {
        out.push({
          version: t.slice(t.lastIndexOf(":") + 1),
          createdAt: new Date(img.Created * 1000),
          images: [{ kind: "twin-image", id: t, region: "local" }],
          ...(base ? { base } : {}),
        });
      }
    }
    return out;
  };
  /**
   * A base twin whose last pipeline tag went: its engine-wide tag (src/bake/twin-ops.ts sharedBaseTag) goes too,
   * so nothing keeps it. One another pipeline still tags is kept.
   */
  const dropSharedBaseTags = async (id: string) => {
    let tags: string[];
    try {
      tags = (await docker.getImage(id).inspect()).RepoTags ?? [];
    } catch (e) {
      if (notFound(e)) return;
      throw e;
    }
    if (!tags.length || !tags.every((t) => t.startsWith(SHARED_BASE_REPO))) return;
    for (const t of tags) await docker.getImage(t).remove();
  };
  return {
    async versions(role) {
      const byVersion = new Map<string, PrunableVersion>();
      for (const v of await twins(repo(role))) byVersion.set(v.version, v);
      const vols = await docker.listVolumes({
        filters: JSON.stringify({
          label: [`${DOCKER_LABEL.pipeline}=${config.pipeline}`, `${DOCKER_LABEL.role}=${role}`],
        }),
      });
      for (const vol of vols.Volumes ?? []) {
        const version = vol.Labels?.[DOCKER_LABEL.version];
        if (!version) continue;
        const v = byVersion.get(version) ?? { version, createdAt: new Date(0), images: [] };
        v.images.push({ kind: "volume", id: vol.Name, region: "local" });
        byVersion.set(version, v);
      }
      return [...byVersion.values()];
    },
    // A staged bake's base twins: their own repository, no volumes.
    baseVersions: (role) => twins(`${repo(role)}-base`),
    async inUse() {
      const used = new Set<string>();
      for (const c of await docker.listContainers({ all: true })) {
        used.add(c.Image);
        used.add(c.ImageID);
        for (const m of c.Mounts ?? []) if (m.Name) used.add(m.Name);
      }
      // Tags resolve to ids: a container started from an id uses every tag of that image.
      for (const img of await docker.listImages({
        filters: JSON.stringify({ reference: ["imgtool-twin/*"] }),
      })) {
        if (used.has(img.Id)) for (const t of img.RepoTags ?? []) used.add(t);
      }
      return used;
    },
    labelled: (role) => labelledVersions(opts.catalog, role),
    async remove(v) {
      const deleted: PruneResource[] = [];
      for (const r of v.images) {
        try {
          if (r.kind === "volume") await docker.getVolume(r.id).remove();
          else {
            const id = (await docker.getImage(r.id).inspect()).Id;
            await docker.getImage(r.id).remove();
            await dropSharedBaseTags(id);
          }
          deleted.push(r);
        } catch (e) {
          if (!notFound(e)) throw e;
        }
      }
      return deleted;
    },
  };
}
