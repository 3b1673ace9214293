/**
 * Claims on the local orchestrator's port, so that two launches of one checkout (one state folder) at the same
 * moment never both take the same port.
 *
 * Why: every local instance shares this machine's network namespace, and a launch picks the orchestrator's port
 * (launch.orchestrator_port, or a free one when it is taken) seconds before the instance binds it. Two launches in
 * that window both saw 8080 free; the second instance's `docker-proxy` then failed with "address already in use"
 * (seen with two `imgtool launch` of one fleet started together).
 *
 * How: a claim is a file `<dir>/<port>.<owner>` (owner: pipeline and run id) holding the launching process's pid
 * and the time. A launch writes its own claim (whole, by rename), then lists the port's claims: any other live
 * claim and it withdraws its own (of two launches at once, never both keep the port: the later writer always sees
 * the earlier one; at worst both withdraw). A claim is live for `ttlMs` after it was made (a launch with --no-wait
 * exits before its instance binds the port), and after that while its process runs, for a day at most (a pid
 * can be reused). Expired claims are removed as they are found. `imgtool terminate` of the run removes its
 * claims; a bound port is seen as taken anyway.
 */
import { mkdir, readFile, readdir, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { FailureError } from "../errors.js";
import { pidAlive } from "../leftovers/runs.js";

/** The shortest lifetime of a claim: a local instance boots and binds the port well within it. */
export const CLAIM_MIN_TTL_MS = 5 * 60_000;
/** However long its process runs, a claim older than this is dead (the pid may be another process's by now). */
export const CLAIM_MAX_AGE_MS = 24 * 3600_000;

export interface PortClaim {
  port: number;
  /** Whose: `<pipeline>.<run id>`. */
  owner: string;
  pid: number;
  /** When it was made (ms since the epoch). */
  at: number;
}

export interface PortClaimsOptions {
  now?: () => number;
  /** Whether a process runs. Default: src/leftovers/runs.ts `pidAlive`. */
  alive?: (pid: number) => boolean;
  pid?: number;
  /** How long a claim is live whether or not its process runs. Default (and at least) {@link CLAIM_MIN_TTL_MS}. */
  ttlMs?: number;
}

const isMissing = (e: unknown) => (e as NodeJS.ErrnoException).code === "ENOENT";

/** "run R (pipeline P)" for an owner `P.R`. */
export function describeOwner(owner: string): string {
  const dot = owner.indexOf(".");
  return dot < 0 ? `run ${owner}` : `run ${owner.slice(dot + 1)} (pipeline ${owner.slice(0, dot)})`;
}

export function portClaims(dir: string, opts: PortClaimsOptions = {}) {
  const now = opts.now ?? Date.now;
  const alive = opts.alive ?? ((p: number) => pidAlive(p));
  const pid = opts.pid ?? process.pid;
  const ttl = Math.max(CLAIM_MIN_TTL_MS, opts.ttlMs ?? 0);
  const fileOf = (port: number, owner: string) => path.join(dir, `${port}.${owner}`);
  /** A file-system error of the claims folder, as a failure that names it (not an internal error). */
  const failed = (what: string, e: unknown): never => {
    const code = (e as NodeJS.ErrnoException).code;
    if (!code) throw e;
    throw new FailureError(`Could not ${what} in ${dir} (${code}).`, {
      fix: "Make the folder writable (it is under local.state_dir), or free space on its disk, and launch again.",
      cause: e,
    });
  };
  /** Every claim file's name (none before the first claim). */
  const names = async (): Promise<string[]> => {
    try {
      return await readdir(dir);
    } catch (e) {
      if (isMissing(e)) return [];
      return failed("read the port claims", e);
    }
  };

  /** The live claims of other owners on this port; an expired one is removed, a garbled one skipped. */
  async function others(port: number, owner: string): Promise<PortClaim[]> {
    const live: PortClaim[] = [];
    const prefix = `${port}.`;
    for (const file of await names()) {
      const name = file.slice(prefix.length);
      if (!file.startsWith(prefix) || name === owner) continue;
      let text: string;
      try {
        text = await readFile(path.join(dir, file), "utf8");
      } catch (e) {
        if (isMissing(e)) continue;
        return failed("read a port claim", e);
      }
      const m = /^(\d+) (\d+)$/.exec(text.trim());
      if (!m) continue;
      const claim = { port, owner: name, pid: Number(m[1]), at: Number(m[2]) };
      const age = now() - claim.at;
      if (age < ttl || (age < CLAIM_MAX_AGE_MS && alive(claim.pid))) live.push(claim);
      else await rm(path.join(dir, file), { force: true }).catch(() => undefined); // best effort: expired
    }
    return live;
  }

  return {
    /** Another owner's live claim on this port, if any. */
    async heldBy(port: number, owner: string): Promise<PortClaim | undefined> {
      return (await others(port, owner))[0];
    },

    /**
     * Claim the port for this owner: undefined when it is this owner's now, else the other owner's claim that
     * holds it (this owner's claim is withdrawn again).
     */
    async claim(port: number, owner: string): Promise<PortClaim | undefined> {
      // Whole or not at all (rename): a reader never sees half a claim.
      const tmp = path.join(dir, `.${port}.${owner}.${pid}`);
      try {
        await mkdir(dir, { recursive: true });
        await writeFile(tmp, `${pid} ${now()}\n`);
        await rename(tmp, fileOf(port, owner));
      } catch (e) {
        await rm(tmp, { force: true }).catch(() => undefined);
        return failed(`claim port ${port}`, e);
      }
      const held = (await others(port, owner))[0];
      if (held) await rm(fileOf(port, owner), { force: true });
      return held;
    },

    /** Remove every claim of this owner. */
    async release(owner: string): Promise<void> {
      for (const file of await names()) {
        if (/^\d+\./.test(file) && file.slice(file.indexOf(".") + 1) === owner)
          await rm(path.join(dir, file), { force: true });
      }
    },
  };
}
