/**
 * Long children (Packer) run in their own process group, so a signal sent to imgtool alone (what a supervisor or
 * CI runner sends) can still reach every process of the child, and a terminal's Ctrl-C reaches them only through
 * imgtool, which then waits for their cleanup. This module keeps the groups that are alive, so a second signal
 * can kill them all at once and say what may be left; and the other children imgtool spawns (git, through
 * src/exec.ts), so an interrupt reaches them too. (Docker builds, pushes, the pre-load and local instances are
 * no children of imgtool: they run in the engine and stop through the run's AbortSignal.)
 */
import type { ChildProcess } from "node:child_process";

export interface LiveGroup {
  pid: number;
  /** What it is, for messages ("Packer for task-runner"). */
  what: string;
  /** What may be left when it is killed without its cleanup. */
  mayLeave: string;
}

const live = new Map<number, LiveGroup>();

export function registerGroup(g: LiveGroup): () => void {
  live.set(g.pid, g);
  return () => live.delete(g.pid);
}

/** Send a signal to a whole process group; false when the group is already gone. */
export function signalGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw e;
  }
}

/** SIGKILL every live group (a second Ctrl-C); returns what each may have left behind. */
export function killAllGroups(): LiveGroup[] {
  const killed = [...live.values()].filter((g) => signalGroup(g.pid, "SIGKILL"));
  live.clear();
  return killed;
}

/**
 * Other children imgtool spawns (git and other short tools, through src/exec.ts): registered while they run, so
 * an interrupt sent to imgtool alone (not to its terminal's process group) reaches them too, and a second one
 * kills them.
 */
export interface LiveChild {
  pid: number;
  /** What it is, for messages ("git fetch"). */
  what: string;
  /** It leads its own process group (spawned detached): signals go to the whole group. */
  group: boolean;
}

const children = new Map<number, LiveChild>();

/** Track a spawned child until it exits; returns the function that stops tracking it. */
export function registerChild(child: ChildProcess, what: string, opts: { group?: boolean } = {}): () => void {
  const pid = child.pid;
  if (pid === undefined) return () => undefined;
  children.set(pid, { pid, what, group: opts.group ?? false });
  const forget = () => children.delete(pid);
  child.once("exit", forget);
  return forget;
}

function signalChild(c: LiveChild, signal: NodeJS.Signals): boolean {
  if (c.group) return signalGroup(c.pid, signal);
  try {
    process.kill(c.pid, signal);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw e;
  }
}

/** Ask every live child to stop (SIGTERM by default); returns the ones that were still there. */
export function interruptChildren(signal: NodeJS.Signals = "SIGTERM"): LiveChild[] {
  return [...children.values()].filter((c) => signalChild(c, signal));
}

/** Forward the run's interrupt to every child alive when `abort` fires (src/cli/context.ts wires the CLI's). */
export function interruptChildrenOn(abort: AbortSignal): void {
  if (abort.aborted) interruptChildren();
  else abort.addEventListener("abort", () => interruptChildren(), { once: true });
}

/** SIGKILL every live child (a second Ctrl-C); returns the ones killed. */
export function killAllChildren(): LiveChild[] {
  const killed = [...children.values()].filter((c) => signalChild(c, "SIGKILL"));
  children.clear();
  return killed;
}

/**
 * Work in the engine or a cloud that a second signal cannot stop (a pre-load container, a launch's instances):
 * registered while it runs, so the exit at once can say what may be left and how to remove it.
 */
export interface PendingWork {
  what: string;
  /** What may be left, with the command that removes it. */
  mayLeave: string;
}

const pending = new Set<PendingWork>();

export function registerPending(w: PendingWork): () => void {
  pending.add(w);
  return () => pending.delete(w);
}

/** The work still registered (for a second signal's message). */
export function pendingWork(): PendingWork[] {
  return [...pending];
}
