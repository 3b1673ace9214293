// Two pipelines on one prefix at once: the whole run holds `<prefix>/leases/pipeline` (SSM through the real
// SDK to the AWS stand-in, every call judged with the nightly workflow role's policies), so the second one
// fails at once naming the first (or waits for it with --wait-lease), and their stages never interleave.
// The stages are stand-ins that publish into the same SSM catalog.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { makeAwsClients } from "../../src/aws/clients.js";
import type { BakeResult } from "../../src/bake/bake.js";
import { Catalog, versionName } from "../../src/catalog/catalog.js";
import { LeaseHeldError, Leases } from "../../src/catalog/lease.js";
import { SsmStore } from "../../src/catalog/ssm-store.js";
import { parseConfig } from "../../src/config/load.js";
import { runPipeline, type PipelineDeps } from "../../src/pipeline/pipeline.js";
import { startAwsStandin, type AwsStandin } from "../support/aws-standin/index.js";
import { actorPolicies, PIPELINE_KEY } from "../support/iam-referee.js";

const REGION = "us-east-1";
const config = parseConfig("pipeline: nightly\naws:\n  ssm_prefix: /teams/nightly\n", {
  baseDir: "/",
}).config!;
const PREFIX = config.aws.ssm_prefix;
const KEY = { role: "task-runner", kind: "ami" as const, arch: "x86_64" };

let standin: AwsStandin;
before(async () => {
  standin = await startAwsStandin({ iam: { policies: actorPolicies(config) } });
});
after(async () => {
  await standin.close();
});

let published = 0;

/** One pipeline run `who`, as its own process would make it: its own clients, catalog and leases. */
function pipeline(who: string, order: string[], opts: { gate?: Promise<void>; wait?: number } = {}) {
  const store = new SsmStore(
    makeAwsClients({
      region: REGION,
      endpoint: standin.endpoint,
      credentials: async () => ({ accessKeyId: PIPELINE_KEY, secretAccessKey: "secret" }),
      retryBaseDelayMs: 5,
    }).ssm,
  );
  const cat = new Catalog({ store, prefix: PREFIX, readBack: { attempts: 3, delayMs: 5 } });
  let entered!: () => void;
  const inPush = new Promise<void>((r) => (entered = r));
  const deps: PipelineDeps = {
    resolveRubyBench: async () => "a".repeat(40),
    async push(roles) {
      order.push(`${who}:push`);
      entered();
      await opts.gate;
      return roles.map((role) => ({ role, status: "up-to-date", version: null, reference: "r@sha256:x" }));
    },
    async bake(roles) {
      order.push(`${who}:bake`);
      const out: BakeResult[] = [];
      for (const role of roles) {
        const n = ++published;
        const version = versionName(new Date(Date.UTC(2026, 11, 3, 0, 0, n)), `${n}`.repeat(12));
        await cat.publish({ ...KEY, role }, `twin-${n}`, { version, inputsHash: `${n}`, builtAt: "" });
        out.push({
          role,
          target: "aws",
          status: "built",
          version,
          inputsHash: "",
          renderedHash: "",
          artifacts: [],
          packerRuns: 1,
          seconds: 0,
          preloadedImage: null,
        });
      }
      return out;
    },
    async smoke() {
      order.push(`${who}:smoke`);
      return { passed: true, bootToReadySeconds: {}, detail: "ok" };
    },
    catalogs: async () => [cat],
    keys: (role) => [{ ...KEY, role }],
    events: () => {},
    lease: new Leases({
      store,
      prefix: PREFIX,
      identity: {
        host: "runner-1",
        pid: 7000 + who.length,
        run: `run-${who}`,
        command: `imgtool pipeline (${who})`,
      },
      waitSeconds: opts.wait ?? 0,
      sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 20))),
    }),
  };
  return { deps, cat, inPush, store };
}

const stable = async (cat: Catalog) =>
  (await cat.resolve([KEY], { label: "stable", meta: true })).found[0]?.meta?.version;

describe("two pipelines on one prefix (SSM stand-in)", () => {
  test("the second fails at once naming the first; nothing of it runs; after the first ends it runs whole", async () => {
    standin.reset();
    const order: string[] = [];
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const a = pipeline("a", order, { gate });
    const first = runPipeline(["task-runner"], a.deps, { smoke: true });
    await a.inPush;
    const b = pipeline("b", order);
    await assert.rejects(
      runPipeline(["task-runner"], b.deps, { smoke: true }),
      (e: unknown) =>
        e instanceof LeaseHeldError &&
        e.lease === `${PREFIX}/leases/pipeline` &&
        e.message.includes("held by `imgtool pipeline (a)` (run run-a, pid 7001 on runner-1") &&
        /it expires at /.test(e.message),
    );
    assert.deepEqual(order, ["a:push"], "the second pipeline ran no stage");
    open();
    const report = await first;
    assert.equal(report.promoted, true);
    const aVersion = await stable(a.cat);
    assert.ok(aVersion);
    assert.deepEqual(order, ["a:push", "a:bake", "a:smoke"]);
    // The lease is released: the second pipeline now runs, all of it after the first.
    const second = await runPipeline(["task-runner"], b.deps, { smoke: true });
    assert.equal(second.promoted, true);
    assert.deepEqual(order, ["a:push", "a:bake", "a:smoke", "b:push", "b:bake", "b:smoke"]);
    assert.notEqual(await stable(b.cat), aVersion);
    assert.equal(
      await new Leases({ store: b.store, prefix: PREFIX, identity: { run: "x", command: "x" } }).holder(
        "pipeline",
      ),
      undefined,
    );
  });

  test("started together with --wait-lease: one runs whole, then the other; stable is the last one's", async () => {
    standin.reset();
    const order: string[] = [];
    const runs = ["a", "b"].map((who) => pipeline(who, order, { wait: 600 }));
    const reports = await Promise.all(runs.map((r) => runPipeline(["task-runner"], r.deps, { smoke: true })));
    assert.ok(reports.every((r) => r.promoted));
    const whos = order.map((o) => o.split(":")[0]);
    assert.equal(order.length, 6);
    assert.deepEqual(whos.slice(0, 3), [whos[0], whos[0], whos[0]], `interleaved: ${order.join(", ")}`);
    assert.deepEqual(whos.slice(3), [whos[3], whos[3], whos[3]], `interleaved: ${order.join(", ")}`);
    assert.notEqual(whos[0], whos[3]);
    const h = await runs[0]!.cat.history(KEY);
    assert.equal(h.length, 2);
    assert.ok(h.at(-1)!.labels.includes("stable"), "stable is the version the last pipeline tested");
  });
});
