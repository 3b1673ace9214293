/**
 * Long children (Packer, pre-load, docker builds) run in their own process group, so a signal sent to imgtool
 * alone (what a supervisor or CI runner sends) can still reach every process of the child, and a terminal's
 * Ctrl-C reaches them only through imgtool, which then waits for their cleanup. This module keeps the groups
 * that are alive, so a second signal can kill them all at once and say what may be left.
 */

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
