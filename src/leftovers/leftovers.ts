/**
 * Leftovers: what a dead run (src/leftovers/runs.ts) left behind. Its containers, images (the twin Packer
 * committed from its labelled container) and volumes (pre-load stores, instance volumes) carry the label
 * `DOCKER_LABEL.owner` = its run id; its temp files are in its run folder. A twin image or pre-load volume that
 * the catalog points at was published before the run died: it is kept (and named), never removed here. `imgtool doctor` reports them,
 * `imgtool prune --leftovers` removes them. Only runs recorded in this state folder count: a label whose run
 * has no record here belongs to a run that ended cleanly, or to another state folder.
 */
import { rm } from "node:fs/promises";
import { ARCHES, ROLES, type Role } from "../config/schema.js";
import { DOCKER_LABEL, IMAGE_LABEL, SHARED_BASE_REPO } from "../config/tags.js";
import type { DockerEngine, LabelledResource } from "../docker/engine.js";
import type { EventSink } from "../events.js";
import { deadRuns, pidAlive, type DeadRun, type PidCheck } from "./runs.js";

/** The command that removes leftovers (doctor's fix, the run-start warning). */
export const PRUNE_LEFTOVERS = "imgtool prune --leftovers";

export interface RunLeftovers {
  run: DeadRun;
  containers: LabelledResource[];
  /** Unpublished twin images. */
  images: LabelledResource[];
  volumes: LabelledResource[];
  /** Images and volumes of the run that the catalog points at: published, so kept. */
  kept: LabelledResource[];
  /** The run's folder (its record and temp files). */
  dir: string;
}

export type LeftoverEngine = Pick<DockerEngine, "listLabelled" | "removeLabelled">;

/** The dead runs of this state folder and what each left on the engine (none listed when engine is undefined). */
export async function findLeftovers(opts: {
  stateDir: string;
  engine: LeftoverEngine | undefined;
  alive?: PidCheck;
  /** Whether the catalog points at an image or volume (then it is kept). @default nothing is published */
  published?: Published;
}): Promise<RunLeftovers[]> {
  const dead = deadRuns(opts.stateDir, opts.alive ?? pidAlive);
  if (dead.length === 0) return [];
  const owned = opts.engine ? await opts.engine.listLabelled(DOCKER_LABEL.owner) : [];
  const out: RunLeftovers[] = [];
  for (const run of dead) {
    const mine = owned.filter((r) => r.labels[DOCKER_LABEL.owner] === run.id);
    const kept: LabelledResource[] = [];
    const loose = async (kind: LabelledResource["kind"]) => {
      const found: LabelledResource[] = [];
      for (const r of mine.filter((x) => x.kind === kind)) {
        if (opts.published && (await opts.published(r))) kept.push(r);
        else found.push(r);
      }
      return found;
    };
    out.push({
      run,
      containers: mine.filter((r) => r.kind === "container"),
      images: await loose("image"),
      volumes: await loose("volume"),
      kept,
      dir: run.dir,
    });
  }
  return out;
}

/** The part of the catalog that {@link publishedIn} reads. */
export interface CatalogHistory {
  history(key: {
    role: Role;
    /** base: a staged bake's base twin, published like a role's twin. */
    kind: "ami" | "base";
    arch: (typeof ARCHES)[number];
  }): Promise<{ version: string | undefined; value: string }[]>;
}

/** Whether the catalog points at an image or volume (a published twin or pre-load store). */
export type Published = (r: LabelledResource) => Promise<boolean>;

/**
 * {@link Published} over the local catalog of `pipeline`: a twin image is published when an AMI entry's value
 * is its id, a pre-load volume when an AMI entry has its version. What belongs to another pipeline (or whose
 * role is unknown) counts as published: it is kept, because this catalog cannot tell. Instance volumes and
 * containers are never published.
 */
export function publishedIn(
  /** Opened only when a dead run left an image or volume to judge; one that cannot be read keeps everything. */
  catalog: () => Promise<CatalogHistory>,
  pipeline: string,
): Published {
  let opened: Promise<CatalogHistory> | undefined;
  return async (r) => {
    if (r.kind === "container") return false;
    if (r.kind === "volume" && (r.labels[DOCKER_LABEL.image] === undefined || r.labels[DOCKER_LABEL.launch]))
      return false;
    const p = r.labels[DOCKER_LABEL.pipeline] ?? r.labels[IMAGE_LABEL.pipeline];
    const role = r.labels[DOCKER_LABEL.role] ?? r.labels[IMAGE_LABEL.role];
    if (!(ROLES as readonly string[]).includes(role ?? "")) return true;
    if (r.kind === "image" && p === undefined && r.labels[IMAGE_LABEL.stage] === "base") {
      // A base twin names no pipeline (src/render/packer.ts: every pipeline on the engine with its inputs may
      // use it). The dead run of this state folder that built it is this pipeline's: it is judged by this
      // catalog, unless another pipeline has tagged it (adopted it: src/bake/twin-ops.ts adoptBase).
      const own = `imgtool-twin/${pipeline}-${role}-base:`;
      if ((r.tags ?? []).some((t) => !t.startsWith(own) && !t.startsWith(SHARED_BASE_REPO))) return true;
    } else if (p !== pipeline) return true;
    const version = r.labels[DOCKER_LABEL.version];
    let history: CatalogHistory;
    try {
      history = await (opened ??= catalog());
    } catch {
      return true; // a catalog that cannot be read cannot say it is unpublished: keep it
    }
    for (const kind of ["ami", "base"] as const) {
      for (const arch of ARCHES) {
        for (const h of await history.history({ role: role as Role, kind, arch })) {
          if (r.kind === "image" ? h.value === r.id : h.version !== undefined && h.version === version)
            return true;
        }
      }
    }
    return false;
  };
}

/** One line per dead run: what it was and what it left. */
export function describeLeftovers(l: RunLeftovers): string {
  const what = l.run.record
    ? `run ${l.run.id} (pid ${l.run.record.pid}, \`${l.run.record.command}\`, started ${l.run.record.started})`
    : `run ${l.run.id} (no readable record)`;
  const parts = [
    ...l.containers.map((c) => `container ${c.name}`),
    ...l.images.map((i) => `image ${i.name}`),
    ...l.volumes.map((v) => `volume ${v.name}`),
    `folder ${l.dir}`,
  ];
  const kept = l.kept.length
    ? `; kept ${l.kept.map((k) => `${k.kind} ${k.name}`).join(", ")} (published in the catalog)`
    : "";
  return `${what} left ${parts.join(", ")}${kept}`;
}

/**
 * Remove what dead runs left: containers first (a volume or image in use cannot go), then images, then
 * volumes, then the run's folder (its record last, so an interrupted prune is finished by the next one). With dryRun, say what
 * would go and change nothing. Returns the names of what was removed (or would be).
 */
export async function removeLeftovers(
  leftovers: RunLeftovers[],
  /** Undefined: no engine was asked (then no container or volume was found either). */
  engine: LeftoverEngine | undefined,
  opts: { dryRun: boolean; events: EventSink },
): Promise<{ run: string; removed: string[] }[]> {
  const out: { run: string; removed: string[] }[] = [];
  for (const l of leftovers) {
    const removed: string[] = [];
    for (const r of [...l.containers, ...l.images, ...l.volumes]) {
      const name = `${r.kind} ${r.name}`;
      if (!engine) throw new Error(`removeLeftovers: ${name} of run ${l.run.id} but no engine`);
      if (opts.dryRun || (await engine.removeLabelled(r))) removed.push(name);
    }
    if (!opts.dryRun) await rm(l.dir, { recursive: true, force: true });
    removed.push(`folder ${l.dir}`);
    opts.events({
      type: opts.dryRun ? "skip" : "done",
      message: `${opts.dryRun ? "would remove" : "removed"} what dead run ${l.run.id} left: ${removed.join(", ")}`,
      data: { runId: l.run.id, removed },
    });
    out.push({ run: l.run.id, removed });
  }
  return out;
}

/** The warning a new run gives when dead runs of this state folder left things (records only: no engine call). */
export function deadRunsWarning(stateDir: string, alive: PidCheck = pidAlive): string | undefined {
  const dead = deadRuns(stateDir, alive);
  if (dead.length === 0) return undefined;
  return (
    `${dead.length} earlier run(s) died without cleaning up (${dead.map((d) => d.id).join(", ")}): ` +
    `\`imgtool doctor\` lists what they left, \`${PRUNE_LEFTOVERS}\` removes it`
  );
}
