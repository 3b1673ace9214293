// prune on aws meets what EC2 really does after DeregisterImage: the AMI lingers in DescribeImages as
// `deregistered` for a while (the stand-in: for its next reads). A lingering AMI is no version to keep (it must
// not push a real one out of the newest N) and holds no snapshot: the prune that deregistered it deletes its
// snapshots in the same run, and a re-run does not stumble over it. EC2 also releases a deregistered AMI's
// snapshots a little later (DeleteSnapshot: InvalidSnapshot.InUse, boto/boto#3019; the stand-in: for its next
// attempts): the prune tries again, and past its wait keeps the snapshot for the next prune, saying so.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { makeAwsClients } from "../../src/aws/clients.js";
import { Ec2Images } from "../../src/aws/ec2.js";
import { Catalog } from "../../src/catalog/catalog.js";
import { SsmStore } from "../../src/catalog/ssm-store.js";
import { parseConfig } from "../../src/config/load.js";
import { recordingSink, type EventSink } from "../../src/events.js";
import { awsPruneBackend } from "../../src/prune/backends.js";
import { prune } from "../../src/prune/prune.js";
import { startAwsStandin, type AwsStandin, type StandinOptions } from "../support/aws-standin/index.js";
import { actorCredentials, actorPolicies, SETUP_KEY } from "../support/iam-referee.js";

const REGION = "us-east-1";
const config = parseConfig("pipeline: bench\n", { baseDir: "/p" }).config!;
const tags = (version: string) => ({
  "imgtool:pipeline": "bench",
  "imgtool:role": "orchestrator",
  "imgtool:version": version,
});

/** A stand-in with `opts`, the prune's backend on it (FSR and in-use waits without sleeping), and seeding. */
function harness(opts: StandinOptions) {
  const h = {} as {
    standin: AwsStandin;
    backend: (events?: EventSink) => ReturnType<typeof awsPruneBackend>;
    snapshots: () => Map<string, unknown>;
    seed: (version: string, day: number) => { imageId: string; snapshotIds: string[] };
  };
  before(async () => {
    h.standin = await startAwsStandin({
      ...opts,
      iam: { policies: actorPolicies(config), setupKey: SETUP_KEY },
    });
  });
  after(async () => {
    await h.standin.close();
  });
  h.backend = (events) => {
    const c = makeAwsClients({
      region: REGION,
      endpoint: h.standin.endpoint,
      credentials: actorCredentials("prune"),
      retryBaseDelayMs: 5,
      maxAttempts: 2,
    });
    return awsPruneBackend({
      config,
      ec2: async (r) => new Ec2Images(c.ec2, r),
      catalog: new Catalog({ store: new SsmStore(c.ssm), prefix: "/imgtool/bench" }),
      fastRestoreWait: { intervalMs: 1, sleep: async () => {} },
      ...(events ? { events } : {}),
    });
  };
  h.snapshots = () => h.standin.state.region(REGION).ec2.snapshots;
  /** An AMI and its snapshot, tagged as a bake tags them. */
  h.seed = (version, day) => {
    const seeded = h.standin.addImage(REGION, {
      name: `imgtool-bench-orchestrator-x86_64-${version}`,
      creationDate: new Date(Date.UTC(2026, 10, day)).toISOString(),
      tags: tags(version),
    });
    for (const id of seeded.snapshotIds)
      h.standin.state.region(REGION).ec2.snapshots.get(id)!.tags = tags(version);
    return seeded;
  };
  return h;
}

describe("prune on aws with AMIs that linger as deregistered (AWS stand-in)", () => {
  // Lingering for many reads: every read of the prune sees the deregistered AMIs.
  const h = harness({ deregisteredReads: 1000 });
  const backend = () => h.backend();
  const snapshots = () => h.standin.state.region(REGION).ec2.snapshots;
  const seed = (version: string, day: number) => h.seed(version, day);
  const imageState = (id: string) => h.standin.state.region(REGION).ec2.images.get(id)?.state;

  test("the prune that deregisters an AMI deletes its snapshots in the same run; a re-run finds nothing to do", async () => {
    h.standin.reset();
    const v1 = seed("v20261101-000000-aaaaaaaaaaaa", 1);
    const v2 = seed("v20261102-000000-bbbbbbbbbbbb", 2);
    const first = await prune(["orchestrator"], backend(), {
      keep: 1,
      dryRun: false,
      events: recordingSink(),
    });
    const gone = first.find((d) => d.action === "delete");
    assert.equal(gone?.version, "v20261101-000000-aaaaaaaaaaaa");
    assert.deepEqual(gone?.deleted?.map((r) => r.kind).sort(), ["ami", "snapshot"]);
    assert.equal(imageState(v1.imageId), "deregistered", "the AMI lingers (EC2 still lists it)");
    assert.equal(snapshots().has(v1.snapshotIds[0]!), false, "its snapshot went in the same run");
    assert.ok(snapshots().has(v2.snapshotIds[0]!), "the kept version's snapshot stays");

    const again = await prune(["orchestrator"], backend(), {
      keep: 1,
      dryRun: false,
      events: recordingSink(),
    });
    assert.deepEqual(
      again.map((d) => [d.version, d.action]),
      [["v20261102-000000-bbbbbbbbbbbb", "keep"]],
      "the lingering AMI is no version any more",
    );
  });

  test("a newer AMI that was deregistered (and lingers) does not count among the newest N", async () => {
    h.standin.reset();
    seed("v20261101-000000-aaaaaaaaaaaa", 1);
    seed("v20261102-000000-bbbbbbbbbbbb", 2);
    const v3 = seed("v20261103-000000-cccccccccccc", 3);
    // v3 was deregistered a moment ago with its snapshots (a failed bake's cleanup, the console): it lingers.
    const img = h.standin.state.region(REGION).ec2.images.get(v3.imageId)!;
    img.state = "deregistered";
    img.pendingReads = 1000;
    for (const id of v3.snapshotIds) snapshots().delete(id);
    const plan = await prune(["orchestrator"], backend(), { keep: 1, dryRun: true, events: recordingSink() });
    assert.deepEqual(
      plan.map((d) => [d.version, d.action]),
      [
        ["v20261102-000000-bbbbbbbbbbbb", "keep"],
        ["v20261101-000000-aaaaaaaaaaaa", "delete"],
      ],
      "the newest registered version is kept; the lingering AMI is no version",
    );
  });
});

/** Two versions, the older deregistered by a prune that keeps 1: its snapshot, events and delete decision. */
async function pruneOlderOfTwo(h: ReturnType<typeof harness>) {
  h.standin.reset();
  const v1 = h.seed("v20261101-000000-aaaaaaaaaaaa", 1);
  h.seed("v20261102-000000-bbbbbbbbbbbb", 2);
  const events = recordingSink();
  const done = await prune(["orchestrator"], h.backend(events), { keep: 1, dryRun: false, events });
  return { v1, events, gone: done.find((d) => d.action === "delete") };
}

describe("prune on aws while EC2 still holds a just-deregistered AMI's snapshot (AWS stand-in: InvalidSnapshot.InUse twice)", () => {
  const h = harness({ snapshotInUseReads: 2 });
  test("the snapshot is deleted in the same run, after EC2 released it", async () => {
    const { v1, gone } = await pruneOlderOfTwo(h);
    assert.deepEqual(gone?.deleted?.map((r) => r.kind).sort(), ["ami", "snapshot"]);
    assert.equal(h.snapshots().has(v1.snapshotIds[0]!), false);
  });
});

describe("prune on aws while EC2 holds a just-deregistered AMI's snapshot longer than the prune waits (AWS stand-in)", () => {
  const h = harness({ snapshotInUseReads: 1000 });
  test("the snapshot is kept for the next prune, said so; the prune does not fail, and the next one deletes it", async () => {
    const { v1, events, gone } = await pruneOlderOfTwo(h);
    assert.deepEqual(
      gone?.deleted?.map((r) => r.kind),
      ["ami"],
    );
    const snap = v1.snapshotIds[0]!;
    assert.ok(h.snapshots().has(snap), "kept");
    assert.ok(
      events.events.some(
        (e) => e.type === "warn" && e.message.includes(`${snap} (${REGION}) is kept for the next prune`),
      ),
      JSON.stringify(events.events.map((e) => e.message)),
    );
    // EC2 lets go of it; the next prune finds it by its version's tag.
    (h.standin.state.region(REGION).ec2.snapshots.get(snap) as { releasing?: unknown }).releasing = undefined;
    await prune(["orchestrator"], h.backend(), { keep: 1, dryRun: false, events: recordingSink() });
    assert.equal(h.snapshots().has(snap), false, "deleted by the next prune");
  });
});
