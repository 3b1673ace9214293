/**
 * Claims on the local orchestrator's port, so that two launches on this machine at the same moment never both pick
 * the same one.
 *
 * Why: every local instance shares this machine's network namespace, and a launch picks the orchestrator's port
 * (launch.orchestrator_port, or a free one when it is taken) seconds before the instance binds it. Two launches in
 * that window both saw 8080 free; the second instance's `docker-proxy` then failed with "address already in use"
 * (seen with two `imgtool launch` of one fleet started together).
 *
 * How: a claim is a file `<dir>/<port>.<run id>` holding the launching process's pid and the time. A launch writes
 * its own claim, then lists the port's folder: any other live claim and it withdraws its own (so of two launches
 * at once, never both keep the port: the later writer always sees the earlier one; at worst both withdraw). A claim
 * is live while its process runs, or for {@link CLAIM_TTL_MS} after it was made (a launch with --no-wait exits
 * before its instance binds the port). `imgtool terminate` of the run removes its claims; a bound port is seen
 * as taken anyway.
 */
import { mkdir, readFile, readdir, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";

/** Long enough for a local instance to boot and bind the port after its launch has exited. */
export const CLAIM_TTL_MS = 5 * 60_000;

export interface PortClaim {
  port: number;
  runId: string;
  pid: number;
  /** When it was made (ms since the epoch). */
  at: number;
}

export interface PortClaimsOptions {
  now?: () => number;
  /** Whether a process runs. Default: signal 0 (EPERM counts as running). */
  alive?: (pid: number) => boolean;
  pid?: number;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

const isMissing = (e: unknown) => (e as NodeJS.ErrnoException).code === "ENOENT";

export function portClaims(dir: string, opts: PortClaimsOptions = {}) {
  const now = opts.now ?? Date.now;
  const alive = opts.alive ?? processAlive;
  const pid = opts.pid ?? process.pid;
  const fileOf = (port: number, runId: string) => path.join(dir, `${port}.${runId}`);
  /** Every claim file's name (none before the first claim). */
  const names = async (): Promise<string[]> => {
    try {
      return await readdir(dir);
    } catch (e) {
      if (isMissing(e)) return [];
      throw e;
    }
  };

  /** The live claims of other runs on this port (a claim file that is unreadable or garbled does not count). */
  async function others(port: number, runId: string): Promise<PortClaim[]> {
    const live: PortClaim[] = [];
    const prefix = `${port}.`;
    for (const file of await names()) {
      const name = file.slice(prefix.length);
      if (!file.startsWith(prefix) || name === runId) continue;
      let text: string;
      try {
        text = await readFile(path.join(dir, file), "utf8");
      } catch (e) {
        if (isMissing(e)) continue;
        throw e;
      }
      const m = /^(\d+) (\d+)$/.exec(text.trim());
      if (!m) continue;
      const claim = { port, runId: name, pid: Number(m[1]), at: Number(m[2]) };
      if (alive(claim.pid) || now() - claim.at < CLAIM_TTL_MS) live.push(claim);
    }
    return live;
  }

  return {
    /** Another run's live claim on this port, if any (reads only). */
    async heldBy(port: number, runId: string): Promise<PortClaim | undefined> {
      return (await others(port, runId))[0];
    },

    /**
     * Claim the port for this run: undefined when it is this run's now, else the other run's claim that holds it
     * (this run's claim is withdrawn again).
     */
    async claim(port: number, runId: string): Promise<PortClaim | undefined> {
      await mkdir(dir, { recursive: true });
      // Whole or not at all (rename): a reader never sees half a claim.
      const tmp = path.join(dir, `.${port}.${runId}.${pid}`);
      await writeFile(tmp, `${pid} ${now()}\n`);
      await rename(tmp, fileOf(port, runId));
      const held = (await others(port, runId))[0];
      if (held) await rm(fileOf(port, runId), { force: true });
      return held;
    },

    /** Remove every claim of this run. */
    async release(runId: string): Promise<void> {
      for (const file of await names()) {
        if (file.endsWith(`.${runId}`)) await rm(path.join(dir, file), { force: true });
      }
    },
  };
}
