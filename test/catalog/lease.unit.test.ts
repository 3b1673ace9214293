// Publish leases on both stores (the local SQLite catalog, and SSM through the real SDK to the AWS stand-in,
// which refuses PutParameter with Overwrite=false on an existing name as SSM does): one holder at a time, an
// error that names the holder, release in finally, expiry and takeover by exactly one of several takers, a dead
// holder on this host taken over at once, waiting, and one value per version name in the catalog.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Catalog } from "../../src/catalog/catalog.js";
import { LeaseHeldError, Leases, type LeasesDeps } from "../../src/catalog/lease.js";
import type { ParameterStore } from "../../src/catalog/store.js";
import { FailureError } from "../../src/errors.js";
import { recordingSink } from "../../src/events.js";
import { backends, meta, newCatalog, useBackends } from "./backends.js";

useBackends();

let prefixes = 0;

/** A small deterministic random sequence (so a failure reproduces). */
function seeded(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x / 2147483648;
  };
}

/** The store, each call of which starts 0-4 ms later (a setTimeout, not a busy wait). */
function jittery(store: ParameterStore, random: () => number): ParameterStore {
  const wait = () => new Promise((r) => setTimeout(r, Math.floor(random() * 5)));
  const j = Object.create(store) as ParameterStore;
  j.create = async (n, v) => (await wait(), store.create(n, v));
  j.getMany = async (s) => (await wait(), store.getMany(s));
  j.delete = async (n) => (await wait(), store.delete(n));
  j.put = async (n, v, o) => (await wait(), store.put(n, v, o));
  return j;
}

/** A clock the test moves. */
function clock(start = Date.UTC(2026, 11, 3, 10, 0, 0)) {
  let t = start;
  return { now: () => new Date(t), advance: (s: number) => (t += s * 1000) };
}

function leases(store: ParameterStore, prefix: string, who: string, extra: Partial<LeasesDeps> = {}) {
  return new Leases({
    store,
    prefix,
    identity: {
      host: `host-${who}`,
      pid: 1000 + who.length,
      run: `run-${who}`,
      command: `imgtool push image (${who})`,
    },
    ttlSeconds: 600,
    sleep: async () => {},
    ...extra,
  });
}

for (const backend of backends) {
  describe(`publish leases (${backend.name})`, () => {
    const fresh = () => ({ store: backend.store(), prefix: `/imgtool/lease${++prefixes}` });

    test("one holder at a time; the other fails naming the holder, its expiry and the fix; free after release", async () => {
      const { store, prefix } = fresh();
      const c = clock();
      const a = leases(store, prefix, "a", { now: c.now });
      const b = leases(store, prefix, "b", { now: c.now });
      const held = await a.acquire("task-runner-image");
      const err = await b.acquire("task-runner-image").then(
        () => assert.fail("b took a held lease"),
        (e: unknown) => e,
      );
      assert.ok(err instanceof LeaseHeldError, String(err));
      assert.equal(err.exitCode, 1);
      assert.equal(err.holder.token, held.token);
      const name = `${prefix}/leases/task-runner-image`;
      assert.equal(err.lease, name);
      for (const part of [
        name,
        "`imgtool push image (a)`",
        "run run-a",
        "pid 1001 on host-a",
        "2026-12-03T10:10:00.000Z",
      ])
        assert.ok(err.message.includes(part), `${part} in: ${err.message}`);
      assert.match(err.fix ?? "", /--wait-lease SECONDS/);
      if (store.kind === "ssm")
        assert.match(err.fix ?? "", new RegExp(`aws ssm delete-parameter --name ${name}`));

      // Another lease of the same pipeline is independent.
      await b.release("orchestrator-image", await b.acquire("orchestrator-image"));
      await a.release("task-runner-image", held);
      assert.equal(await a.holder("task-runner-image"), undefined);
      const again = await b.acquire("task-runner-image");
      assert.equal((await a.holder("task-runner-image"))?.run, "run-b");
      await b.release("task-runner-image", again);
    });

    test("hold releases the lease when the work fails, and the work's error stands", async () => {
      const { store, prefix } = fresh();
      const a = leases(store, prefix, "a");
      await assert.rejects(
        a.hold("pipeline", async () => {
          assert.equal((await a.holder("pipeline"))?.run, "run-a");
          throw new FailureError("the bake failed");
        }),
        /the bake failed/,
      );
      assert.equal(await a.holder("pipeline"), undefined);
      assert.equal(await a.hold("pipeline", async () => 42), 42);
      assert.equal(await a.holder("pipeline"), undefined);
    });

    test("an expired lease is taken over (after the grace) by overwriting it, never deleting it; its old holder's release leaves the new one", async () => {
      const { store: real, prefix } = fresh();
      // The takeover must not delete the lease: SSM asks for 30 s before a deleted name is created again.
      const deleted: string[] = [];
      const store = Object.create(real) as ParameterStore;
      store.delete = async (n) => (deleted.push(n), real.delete(n));
      const c = clock();
      const events = recordingSink();
      const a = leases(store, prefix, "a", { now: c.now, events });
      const b = leases(store, prefix, "b", { now: c.now, events, graceSeconds: 60 });
      const old = await a.acquire("pipeline");
      c.advance(600 + 30); // expired, but within the grace: still held
      await assert.rejects(b.acquire("pipeline"), LeaseHeldError);
      c.advance(31);
      const taken = await b.acquire("pipeline");
      assert.equal((await b.holder("pipeline"))?.token, taken.token);
      assert.deepEqual(
        deleted.filter((n) => !n.includes("takeover")),
        [],
        "only the takeover marker was deleted",
      );
      assert.ok(
        events.events.some(
          (e) => e.type === "warn" && /took over the lease .* it expired at/.test(e.message),
        ),
      );
      await a.release("pipeline", old);
      assert.equal((await b.holder("pipeline"))?.token, taken.token, "the old holder removed the new lease");
      assert.ok(events.events.some((e) => e.type === "warn" && /no longer this run's/.test(e.message)));
      // No takeover marker is left behind.
      assert.deepEqual(
        (await store.list(`${prefix}/leases`)).filter((n) => n.includes("takeover")),
        [],
      );
      await b.release("pipeline", taken);
    });

    test("of several runs taking over one expired lease at once, exactly one gets it", async () => {
      const { store, prefix } = fresh();
      const c = clock();
      const random = seeded(7);
      // Each taker's store calls start after a small random delay, so that their steps interleave in many
      // orders (a takeover that overwrites, or deletes and creates, without the marker lets two of them win).
      for (let round = 0; round < 8; round++) {
        const lease = `task-runner-ami-${round}`;
        await leases(store, prefix, "dead", { now: c.now }).acquire(lease);
        c.advance(3600);
        const takers = ["b", "cc", "ddd", "eeee", "fffff", "gggggg"].map((w) =>
          leases(jittery(store, random), prefix, w, { now: c.now }),
        );
        const settled = await Promise.allSettled(takers.map((t) => t.acquire(lease)));
        const won = settled.filter((s) => s.status === "fulfilled");
        assert.equal(won.length, 1, `round ${round}: ${JSON.stringify(settled.map((s) => s.status))}`);
        for (const s of settled)
          if (s.status === "rejected") assert.ok(s.reason instanceof LeaseHeldError, String(s.reason));
        const holder = await takers[0]!.holder(lease);
        assert.equal(holder?.token, (won[0] as PromiseFulfilledResult<{ token: string }>).value.token);
      }
      assert.deepEqual(
        (await store.list(`${prefix}/leases`)).filter((n) => n.includes("takeover")),
        [],
      );
    });

    test("a holder whose process is gone from this host is taken over at once; one on another host is not", async () => {
      const { store, prefix } = fresh();
      const dead = new Set([1004]);
      const alive = (pid: number) => !dead.has(pid);
      const here = (who: string) =>
        leases(store, prefix, who, {
          identity: { host: "ci-1", pid: 1000 + who.length, run: `run-${who}`, command: who },
          alive,
        });
      await here("gone").acquire("orchestrator-ami");
      const taken = await here("next").acquire("orchestrator-ami");
      assert.equal((await here("x").holder("orchestrator-ami"))?.token, taken.token);
      // The same dead pid, but on another host: not ours to judge.
      const other = leases(store, prefix, "gone", {
        identity: { host: "ci-2", pid: 1004, run: "r", command: "c" },
      });
      await other.acquire("task-runner-ami");
      await assert.rejects(here("next").acquire("task-runner-ami"), LeaseHeldError);
    });

    test("--wait-lease: waits for the holder to finish, then takes the lease", async () => {
      const { store, prefix } = fresh();
      const c = clock();
      const events = recordingSink();
      const a = leases(store, prefix, "a", { now: c.now });
      const held = await a.acquire("pipeline");
      let sleeps = 0;
      const b = leases(store, prefix, "b", {
        now: c.now,
        events,
        waitSeconds: 120,
        sleep: async (ms) => {
          sleeps++;
          c.advance(ms / 1000);
          if (sleeps === 3) await a.release("pipeline", held);
        },
      });
      const got = await b.acquire("pipeline");
      assert.equal(sleeps, 3);
      assert.equal((await b.holder("pipeline"))?.token, got.token);
      assert.ok(
        events.events.some((e) =>
          /waiting for the lease .* held by `imgtool push image \(a\)`/.test(e.message),
        ),
      );
      // A wait that runs out fails naming the holder and how long it waited.
      const d = leases(store, prefix, "d", {
        now: c.now,
        waitSeconds: 5,
        sleep: async (ms) => void c.advance(ms / 1000),
      });
      await assert.rejects(
        d.acquire("pipeline"),
        (e: unknown) => e instanceof LeaseHeldError && /Waited 5 s/.test(e.message),
      );
    });

    test("a takeover in progress (its marker exists) is not taken over twice; the error names the marker", async () => {
      const { store, prefix } = fresh();
      const c = clock();
      const old = await leases(store, prefix, "a", { now: c.now }).acquire("pipeline");
      c.advance(3600);
      // Another run's marker for this stale lease (it is taking over now, or was killed while doing it).
      const marker = `${prefix}/leases/pipeline/takeover-${old.token}`;
      await store.create(marker, "{}");
      const err = await leases(store, prefix, "b", { now: c.now })
        .acquire("pipeline")
        .then(
          () => assert.fail("taken over twice"),
          (e: unknown) => e,
        );
      assert.ok(err instanceof LeaseHeldError, String(err));
      assert.ok(err.message.includes(`another run is taking it over (${marker})`), err.message);
      if (store.kind === "ssm")
        assert.ok((err.fix ?? "").includes(`(and ${marker}, if no run is taking it over)`));
      assert.equal((await leases(store, prefix, "x").holder("pipeline"))?.token, old.token);
    });

    test("a value that is not a lease is a clear error naming the parameter, never taken over", async () => {
      const { store, prefix } = fresh();
      await store.create(`${prefix}/leases/pipeline`, "not json");
      await assert.rejects(
        leases(store, prefix, "a").acquire("pipeline"),
        (e: unknown) =>
          e instanceof FailureError &&
          e.message.includes(`The lease ${prefix}/leases/pipeline holds a value imgtool cannot read`) &&
          /delete that parameter/.test(e.fix ?? ""),
      );
    });

    test("the store's create refuses an existing name with SSM's error name", async () => {
      const { store, prefix } = fresh();
      await store.create(`${prefix}/x`, "1");
      await assert.rejects(
        store.create(`${prefix}/x`, "2"),
        (e: unknown) => (e as Error).name === "ParameterAlreadyExists",
      );
      const { found } = await store.getMany([`${prefix}/x`]);
      assert.equal(found[0]?.value, "1");
    });

    test("catalog: one version name, one value; the same value again is fine", async () => {
      const cat: Catalog = newCatalog(backend.store());
      const key = { role: "task-runner", kind: "ami" as const, arch: "x86_64" };
      const m = meta(1);
      const first = backend.ami(1);
      await cat.publish(key, first, m);
      await cat.publish(key, first, m);
      const second = backend.ami(2);
      await assert.rejects(
        cat.publish(key, second, m),
        (e: unknown) =>
          e instanceof FailureError &&
          e.message.includes(
            `version ${m.version} is already published as ${first}; refusing to publish ${second}`,
          ),
      );
      const { found } = await cat.resolve([key]);
      assert.equal(found[0]?.value, first);
      assert.equal((await cat.history(key)).filter((h) => h.value === second).length, 0);
    });
  });
}
