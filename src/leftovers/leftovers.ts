/**
 * Leftovers: what a dead run (src/leftovers/runs.ts) left behind. Its containers and volumes carry the label
 * `DOCKER_LABEL.owner` = its run id; its temp files are in its run folder. `imgtool doctor` reports them,
 * `imgtool prune --leftovers` removes them. Only runs recorded in this state folder count: a label whose run
 * has no record here belongs to a run that ended cleanly, or to another state folder.
 */
import { rm } from "node:fs/promises";
import { DOCKER_LABEL } from "../config/tags.js";
import type { DockerEngine, LabelledResource } from "../docker/engine.js";
import type { EventSink } from "../events.js";
import { deadRuns, pidAlive, type DeadRun, type PidCheck } from "./runs.js";

/** The command that removes leftovers (doctor's fix, the run-start warning). */
export const PRUNE_LEFTOVERS = "imgtool prune --leftovers";

export interface RunLeftovers {
  run: DeadRun;
  containers: LabelledResource[];
  volumes: LabelledResource[];
  /** The run's folder (its record and temp files). */
  dir: string;
}

export type LeftoverEngine = Pick<DockerEngine, "listLabelled" | "removeLabelled">;

/** The dead runs of this state folder and what each left on the engine (none listed when engine is undefined). */
export async function findLeftovers(opts: {
  stateDir: string;
  engine: LeftoverEngine | undefined;
  alive?: PidCheck;
}): Promise<RunLeftovers[]> {
  const dead = deadRuns(opts.stateDir, opts.alive ?? pidAlive);
  if (dead.length === 0) return [];
  const owned = opts.engine ? await opts.engine.listLabelled(DOCKER_LABEL.owner) : [];
  return dead.map((run) => {
    const mine = owned.filter((r) => r.labels[DOCKER_LABEL.owner] === run.id);
    return {
      run,
      containers: mine.filter((r) => r.kind === "container"),
      volumes: mine.filter((r) => r.kind === "volume"),
      dir: run.dir,
    };
  });
}

/** One line per dead run: what it was and what it left. */
export function describeLeftovers(l: RunLeftovers): string {
  const what = l.run.record
    ? `run ${l.run.id} (pid ${l.run.record.pid}, \`${l.run.record.command}\`, started ${l.run.record.started})`
    : `run ${l.run.id} (no readable record)`;
  const parts = [
    ...l.containers.map((c) => `container ${c.name}`),
    ...l.volumes.map((v) => `volume ${v.name}`),
    `folder ${l.dir}`,
  ];
  return `${what} left ${parts.join(", ")}`;
}

/**
 * Remove what dead runs left: containers first (a volume in use cannot go), then volumes, then the run's
 * folder (its record last, so an interrupted prune is finished by the next one). With dryRun, say what
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
    for (const r of [...l.containers, ...l.volumes]) {
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
