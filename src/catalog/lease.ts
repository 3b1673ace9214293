/**
 * Publish leases: two runs that publish the same artefacts (one pipeline and role) never interleave. A lease
 * is one parameter in the catalog's store, `<prefix>/leases/<name>`, created only when absent (SSM:
 * `PutParameter` with `Overwrite=false`; local: an insert in one SQLite transaction), so of two runs exactly one
 * gets it. Its value names the holder (host, pid, run id, command, start time) and when the lease expires.
 * The holder removes it when its work ends, also when the work fails ({@link Leases.hold}); a crashed holder's
 * lease expires, and one whose process is gone from this host is taken over at once.
 *
 * Taking over a stale lease without a conditional write (SSM has none): the taker first creates a marker
 * `<lease>/takeover-<token of the stale lease>`, again only when absent, so of several takers exactly one
 * proceeds; it then checks that the lease still holds that token and overwrites it with its own (not a delete and a
 * create: SSM asks for 30 s between the two). A marker is
 * removed only once the lease no longer holds its token (tokens are never reused), so a late taker that
 * creates it again finds a different lease and backs off.
 *
 * Clocks: a lease counts as expired for others only `graceSeconds` after its expiry, and its holder no longer
 * removes it once it has expired, so hosts whose clocks differ by less than the grace never remove each
 * other's lease.
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { FailureError, InterruptedError, errorName, stopSignalOf } from "../errors.js";
import { ignoreEvents, type EventSink } from "../events.js";
import { ALREADY_EXISTS_ERROR, type ParameterStore } from "./store.js";

/** Who holds a lease, and until when: the lease parameter's value (JSON). */
export interface LeaseHolder {
  /** Unique per acquisition. */
  token: string;
  host: string;
  pid: number;
  /** Which process had the pid (src/leftovers/runs.ts `processStart`), when known. */
  pidStart?: string;
  /** The run id of the holder's command (src/leftovers/runs.ts). */
  run: string;
  /** The command line, e.g. `imgtool push image --target aws`. */
  command: string;
  /** ISO times. */
  started: string;
  expires: string;
}

/** The process that takes leases: the holder fields that do not change per lease. */
export interface LeaseIdentity {
  host?: string;
  pid?: number;
  pidStart?: string;
  run: string;
  command: string;
}

/** What the flows see: run work while holding a lease. */
export interface LeaseKeeper {
  /** Take `name`, run `work`, release `name` (also when `work` throws). Throws {@link LeaseHeldError}. */
  hold<T>(name: string, work: () => Promise<T>): Promise<T>;
}

export interface LeasesDeps {
  /** The catalog's store (aws: SSM in the home region; local: the catalog database). */
  store: ParameterStore | (() => Promise<ParameterStore>);
  /** The catalog's prefix, e.g. /imgtool/bench: leases live under `<prefix>/leases/`. */
  prefix: string;
  identity: LeaseIdentity;
  /**
   * How long a lease lasts unless released (a crashed holder on another host blocks this long).
   * @default 4 hours
   */
  ttlSeconds?: number;
  /** How long to wait for a held lease before failing. @default 0 (fail at once, naming the holder) */
  waitSeconds?: number;
  /** How long after its expiry a lease counts as expired for others (clock differences). @default 60 */
  graceSeconds?: number;
  /** Whether a process of this host is alive (src/leftovers/runs.ts `pidAlive`). @default never dead */
  alive?: (pid: number, pidStart?: string) => boolean;
  events?: EventSink;
  now?: () => Date;
  sleep?: (ms: number) => Promise<void>;
  /** A new lease token. @default 16 random hex digits */
  token?: () => string;
  /** The run's interrupt: waiting for a lease stops at once. */
  signal?: AbortSignal;
}

/** The lease is held by another run: exit 1, naming the holder, when it expires, and what to do. */
export class LeaseHeldError extends FailureError {
  readonly lease: string;
  readonly holder: LeaseHolder;
  constructor(
    lease: string,
    holder: LeaseHolder,
    opts: { store: ParameterStore["kind"]; waited: number; marker?: string },
  ) {
    const expires = opts.marker
      ? `it expired at ${holder.expires} and another run is taking it over (${opts.marker})`
      : `it expires at ${holder.expires}`;
    super(
      `Another run is publishing: the lease ${lease} is held by \`${holder.command}\` (run ${holder.run}, pid ${holder.pid} on ${holder.host}, since ${holder.started}); ${expires}.` +
        (opts.waited > 0 ? ` Waited ${opts.waited} s for it.` : ""),
      {
        fix:
          "Let that run finish and run again (a re-run reuses what it published), or pass --wait-lease SECONDS to wait for it. " +
          `If that run is dead, its lease is taken over once it expires (at once when its process on ${holder.host} is gone and this run is on the same host)` +
          (opts.store === "ssm"
            ? `; to free it sooner: \`aws ssm delete-parameter --name ${lease}\`${opts.marker ? ` (and ${opts.marker}, if no run is taking it over)` : ""}.`
            : "."),
      },
    );
    this.lease = lease;
    this.holder = holder;
  }
}

/** A lease that is not ours and cannot be read as one: a foreign or damaged value. */
function foreignLease(lease: string, value: string): FailureError {
  return new FailureError(
    `The lease ${lease} holds a value imgtool cannot read as a lease (${JSON.stringify(value.slice(0, 80))}).`,
    {
      fix: `Nothing else should write under the leases path. If no imgtool run is publishing, delete that parameter (aws: \`aws ssm delete-parameter --name ${lease}\`) and run again.`,
    },
  );
}

function parseHolder(lease: string, value: string): LeaseHolder {
  let h: Partial<LeaseHolder>;
  try {
    h = JSON.parse(value) as Partial<LeaseHolder>;
  } catch {
    throw foreignLease(lease, value);
  }
  if (
    typeof h !== "object" ||
    h === null ||
    typeof h.token !== "string" ||
    !/^[A-Za-z0-9_.-]+$/.test(h.token) ||
    typeof h.expires !== "string" ||
    Number.isNaN(Date.parse(h.expires))
  ) {
    throw foreignLease(lease, value);
  }
  return h as LeaseHolder;
}

/** Leases of one catalog (one pipeline). */
export class Leases implements LeaseKeeper {
  private readonly prefix: string;
  private readonly ttlMs: number;
  private readonly waitMs: number;
  private readonly graceMs: number;
  private readonly events: EventSink;
  private readonly now: () => Date;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly newToken: () => string;
  private storeP: Promise<ParameterStore> | undefined;
  /** Tokens of stale leases whose takeover marker another run holds (for the error's words). */
  private readonly marker = new Set<string>();

  constructor(private readonly deps: LeasesDeps) {
    this.prefix = deps.prefix.replace(/\/+$/, "");
    this.ttlMs = (deps.ttlSeconds ?? 4 * 3600) * 1000;
    this.waitMs = (deps.waitSeconds ?? 0) * 1000;
    this.graceMs = (deps.graceSeconds ?? 60) * 1000;
    this.events = deps.events ?? ignoreEvents;
    this.now = deps.now ?? (() => new Date());
    this.sleep = deps.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.newToken = deps.token ?? (() => randomBytes(8).toString("hex"));
  }

  private store(): Promise<ParameterStore> {
    const s = this.deps.store;
    this.storeP ??= typeof s === "function" ? s() : Promise.resolve(s);
    return this.storeP;
  }

  /** The parameter of a lease: `<prefix>/leases/<name>`. */
  name(lease: string): string {
    return `${this.prefix}/leases/${lease}`;
  }

  async hold<T>(lease: string, work: () => Promise<T>): Promise<T> {
    const held = await this.acquire(lease);
    try {
      return await work();
    } finally {
      // A lease that cannot be removed now expires: say so, and let the work's own outcome stand.
      await this.release(lease, held).catch((e: unknown) =>
        this.events({
          type: "warn",
          message: `could not release the lease ${this.name(lease)} (${errorName(e) ?? "Error"}: ${(e as Error)?.message ?? String(e)}): it expires at ${held.expires}`,
        }),
      );
    }
  }

  /** The current holder of a lease, or undefined when it is free. */
  async holder(lease: string): Promise<LeaseHolder | undefined> {
    const name = this.name(lease);
    const { found } = await (await this.store()).getMany([name]);
    return found[0] ? parseHolder(name, found[0].value) : undefined;
  }

  /** Whether others may take this lease over: expired (plus the grace), or its process gone from this host. */
  private stale(h: LeaseHolder): boolean {
    if (this.now().getTime() > Date.parse(h.expires) + this.graceMs) return true;
    const id = this.deps.identity;
    const alive = this.deps.alive;
    return alive !== undefined && h.host === (id.host ?? hostname()) && !alive(h.pid, h.pidStart);
  }

  private mine(): LeaseHolder {
    const id = this.deps.identity;
    const now = this.now();
    return {
      token: this.newToken(),
      host: id.host ?? hostname(),
      pid: id.pid ?? process.pid,
      ...(id.pidStart ? { pidStart: id.pidStart } : {}),
      run: id.run,
      // A lease's value stays small (SSM's standard tier: 4 KB).
      command: id.command.slice(0, 512),
      started: now.toISOString(),
      expires: new Date(now.getTime() + this.ttlMs).toISOString(),
    };
  }

  /** Create `name` with `value` unless it exists: true when created. */
  private async create(name: string, value: string): Promise<boolean> {
    try {
      await (await this.store()).create(name, value);
      return true;
    } catch (e) {
      if (errorName(e) === ALREADY_EXISTS_ERROR) return false;
      throw e;
    }
  }

  private async remove(name: string): Promise<void> {
    try {
      await (await this.store()).delete(name);
    } catch (e) {
      if (errorName(e) !== "ParameterNotFound") throw e;
    }
  }

  /** Take the lease, waiting up to `waitSeconds` for its holder; throws {@link LeaseHeldError}. */
  async acquire(lease: string): Promise<LeaseHolder> {
    const name = this.name(lease);
    const started = this.now().getTime();
    let delay = 500;
    let announced = false;
    let freed = 0;
    for (;;) {
      const me = this.mine();
      const got = await this.tryAcquire(name, me);
      if (got === true) {
        this.events({
          type: "check",
          message: `took the lease ${name} (expires ${me.expires})`,
          data: { lease: name, expires: me.expires },
        });
        return me;
      }
      // Free again by now (released between our create and our read), or not readable yet (a read may not see a
      // parameter just created): try again at once, then after a growing pause.
      if (got === undefined) {
        if (++freed < 10) {
          if (freed > 1) await this.sleep(250 * (freed - 1));
          this.throwIfInterrupted(name);
          continue;
        }
        throw new FailureError(`The lease ${name} came and went ${freed} times in a row.`, {
          fix: "Many runs are taking this lease at once: run again.",
        });
      }
      freed = 0;
      const waited = this.now().getTime() - started;
      if (waited >= this.waitMs) {
        throw new LeaseHeldError(name, got, {
          store: (await this.store()).kind,
          waited: Math.round(waited / 1000),
          ...(this.marker.has(got.token) ? { marker: `${name}/takeover-${got.token}` } : {}),
        });
      }
      if (!announced) {
        announced = true;
        this.events({
          type: "check",
          message: `waiting for the lease ${name}, held by \`${got.command}\` (run ${got.run}, pid ${got.pid} on ${got.host}) until ${got.expires} at the latest`,
          data: { lease: name, holder: got },
        });
      }
      await this.sleep(Math.min(delay, this.waitMs - waited));
      delay = Math.min(delay * 2, 10_000);
      this.throwIfInterrupted(name, got);
    }
  }

  private throwIfInterrupted(name: string, holder?: LeaseHolder): void {
    if (!this.deps.signal?.aborted) return;
    const sig = stopSignalOf(this.deps.signal);
    throw new InterruptedError(
      `Interrupted (${sig}) while waiting for the lease ${name}${holder ? ` (held by run ${holder.run})` : ""}: nothing was done.`,
      sig,
    );
  }

  /** One attempt: true when taken, the holder when held, undefined when it was freed meanwhile. */
  private async tryAcquire(name: string, me: LeaseHolder): Promise<true | LeaseHolder | undefined> {
    if (await this.create(name, JSON.stringify(me))) return true;
    const { found } = await (await this.store()).getMany([name]);
    if (!found[0]) return undefined;
    const current = parseHolder(name, found[0].value);
    if (!this.stale(current)) return current;

    // Take over: first the marker (one taker only), then check and overwrite.
    const marker = `${name}/takeover-${current.token}`;
    if (!(await this.create(marker, JSON.stringify(me)))) {
      this.marker.add(current.token);
      return current;
    }
    try {
      const again = (await (await this.store()).getMany([name])).found[0];
      if (!again) return undefined;
      const still = parseHolder(name, again.value);
      if (still.token !== current.token) return still;
      // Overwritten, not deleted and created again: SSM asks for 30 s between deleting a parameter and creating
      // one of the same name (DeleteParameter's reference). The marker makes this taker the only one (while reads
      // see the latest write), and a stale holder no longer removes it.
      await (await this.store()).put(name, JSON.stringify(me), { dataType: "text" });
      this.events({
        type: "warn",
        message: `took over the lease ${name} from \`${current.command}\` (run ${current.run}, pid ${current.pid} on ${current.host}): ${this.now().getTime() > Date.parse(current.expires) ? `it expired at ${current.expires}` : "its process is gone"}`,
        data: { lease: name, previous: current },
      });
      return true;
    } finally {
      // The lease no longer holds the stale token (we replaced it, or someone else did): the marker may go.
      await this.remove(marker);
    }
  }

  /**
   * Remove the lease if it is still ours and has not expired (after its expiry another run may have taken it
   * over: never remove theirs).
   */
  async release(lease: string, held: LeaseHolder): Promise<void> {
    const name = this.name(lease);
    const current = await this.holder(lease).catch((e: unknown) => {
      if (e instanceof FailureError) return undefined;
      throw e;
    });
    if (current?.token !== held.token) {
      this.events({
        type: "warn",
        message: `the lease ${name} was no longer this run's when it ended${current ? ` (held by run ${current.run})` : ""}: it had expired at ${held.expires}`,
        data: { lease: name },
      });
      return;
    }
    if (this.now().getTime() >= Date.parse(held.expires)) {
      this.events({
        type: "warn",
        message: `the lease ${name} expired at ${held.expires} before this run ended: left for the next run to take over`,
        data: { lease: name },
      });
      return;
    }
    await this.remove(name);
  }
}

/** Run `work` holding the lease `name` when there is a keeper (flows whose tests hand in none run it bare). */
export function holding<T>(
  keeper: LeaseKeeper | undefined,
  name: string,
  work: () => Promise<T>,
): Promise<T> {
  return keeper ? keeper.hold(name, work) : work();
}
