/**
 * Run records: every command that makes containers, volumes or temp files writes
 * `<state>/runs/<id>/run.json` (pid, command, start time) when it starts and removes the whole run folder when
 * it ends, cleanly or with a handled error. The run's temp files (Packer's PACKER_TMP_DIR, pre-load secrets)
 * live in that folder, and what it makes on the engine carries the label `DOCKER_LABEL.owner` = the run id. A
 * record whose process is gone belongs to a dead run (SIGKILL, a crash, a second Ctrl-C): what carries its id
 * is a leftover (src/leftovers/leftovers.ts).
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";

export interface RunRecord {
  id: string;
  pid: number;
  /** The command line, for people reading doctor's report. */
  command: string;
  /** ISO time. */
  started: string;
  /** Which process had the pid (boot id and start tick, Linux): a pid given to a later process is not this run. */
  pidStart?: string;
}

/** A run of this process: its id, its folder (for its temp files), and the end that removes its record. */
export interface ActiveRun {
  id: string;
  dir: string;
  /**
   * Remove the record, then the run's folder (the run ended and cleaned up after itself). Returns what could
   * not be removed (files a container made that this user may not delete), or undefined.
   */
  end(): string | undefined;
}

/** A run folder whose process is gone. `record` is undefined when run.json is missing or unreadable. */
export interface DeadRun {
  id: string;
  dir: string;
  record: RunRecord | undefined;
}

/**
 * Whether the run's process is alive: the one place that asks the OS (tests hand in their own). `pidStart`,
 * when the record has it, must match too.
 */
export type PidCheck = (pid: number, pidStart?: string) => boolean;

/** Which process has this pid: the boot id and its start tick (/proc), or undefined where there is no /proc. */
export function processStart(pid: number): string | undefined {
  let stat: string;
  let boot: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    boot = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  } catch (e) {
    if (["ENOENT", "ESRCH", "EACCES"].includes((e as NodeJS.ErrnoException).code ?? "")) return undefined;
    throw e;
  }
  // Field 22 (starttime); the command name (field 2) may hold spaces and parentheses, so count from its end.
  const start = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  return start ? `${boot}:${start}` : undefined;
}

export const pidAlive: PidCheck = (pid, pidStart) => {
  try {
    process.kill(pid, 0);
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    if ((e as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  if (pidStart === undefined) return true;
  const now = processStart(pid);
  return now === undefined || now === pidStart;
};

export const runsDir = (stateDir: string): string => path.join(stateDir, "runs");
const RECORD = "run.json";

/** A new run id: start time, pid and random hex, e.g. 20261203-041500-4242-3fa2 (a label value and a folder name). */
export function newRunId(now: Date, pid: number, random = () => randomBytes(2).toString("hex")): string {
  const iso = now.toISOString();
  return `${iso.slice(0, 10).replace(/-/g, "")}-${iso.slice(11, 19).replace(/:/g, "")}-${pid}-${random()}`;
}

export function startRun(
  stateDir: string,
  opts: { command: string; pid?: number; pidStart?: string; now?: Date; id?: string },
): ActiveRun {
  const pid = opts.pid ?? process.pid;
  const now = opts.now ?? new Date();
  const id = opts.id ?? newRunId(now, pid);
  const dir = path.join(runsDir(stateDir), id);
  const pidStart = opts.pidStart ?? (pid === process.pid ? processStart(pid) : undefined);
  const record: RunRecord = {
    id,
    pid,
    command: opts.command,
    started: now.toISOString(),
    ...(pidStart ? { pidStart } : {}),
  };
  // The folder appears whole, record inside, or not at all: a reader never sees a run without its record.
  const tmp = path.join(runsDir(stateDir), `.${id}.tmp`);
  mkdirSync(tmp, { recursive: true, mode: 0o700 });
  writeFileSync(path.join(tmp, RECORD), `${JSON.stringify(record, null, 2)}\n`);
  renameSync(tmp, dir);
  const end = () => {
    rmSync(path.join(dir, RECORD), { force: true });
    try {
      rmSync(dir, { recursive: true, force: true });
      return undefined;
    } catch (e) {
      if (!["EACCES", "EPERM", "EBUSY", "ENOTEMPTY"].includes((e as NodeJS.ErrnoException).code ?? ""))
        throw e;
      return `${dir}: ${(e as Error).message}`;
    }
  };
  return { id, dir, end };
}

function readRecord(dir: string): RunRecord | undefined {
  let text: string;
  try {
    text = readFileSync(path.join(dir, RECORD), "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
  try {
    const r = JSON.parse(text) as Partial<RunRecord>;
    if (typeof r.pid !== "number" || typeof r.id !== "string") return undefined;
    return {
      id: r.id,
      pid: r.pid,
      command: String(r.command ?? ""),
      started: String(r.started ?? ""),
      ...(typeof r.pidStart === "string" ? { pidStart: r.pidStart } : {}),
    };
  } catch (e) {
    if (e instanceof SyntaxError) return undefined;
    throw e;
  }
}

/**
 * The runs recorded in this state folder (and only this one) whose process is gone, oldest first. A folder
 * without a readable record counts as dead (its record was damaged); one still being created is skipped.
 */
export function deadRuns(stateDir: string, alive: PidCheck = pidAlive): DeadRun[] {
  let names: string[];
  try {
    names = readdirSync(runsDir(stateDir));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
  const dead: DeadRun[] = [];
  for (const id of names.sort()) {
    if (id.startsWith(".")) continue;
    const dir = path.join(runsDir(stateDir), id);
    const record = readRecord(dir);
    if (record && alive(record.pid, record.pidStart)) continue;
    dead.push({ id, dir, record });
  }
  return dead;
}
