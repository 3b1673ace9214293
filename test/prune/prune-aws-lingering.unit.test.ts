// prune on aws meets what EC2 really does after DeregisterImage: the AMI lingers in DescribeImages as
// `deregistered` for a while (the stand-in: for its next reads). A lingering AMI is no version to keep (it must
// not push a real one out of the newest N) and holds no snapshot: the prune that deregistered it deletes its
// snapshots in the same run, and a re-run does not stumble over it.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { makeAwsClients } from "../../src/aws/clients.js";
import { Ec2Images } from "../../src/aws/ec2.js";
import { Catalog } from "../../src/catalog/catalog.js";
import { SsmStore } from "../../src/catalog/ssm-store.js";
import { parseConfig } from "../../src/config/load.js";
import { recordingSink } from "../../src/events.js";
import { awsPruneBackend } from "../../src/prune/backends.js";
import { prune } from "../../src/prune/prune.js";
import { startAwsStandin, type AwsStandin } from "../support/aws-standin/index.js";
import { actorCredentials, actorPolicies, SETUP_KEY } from "../support/iam-referee.js";

const REGION = "us-east-1";
const config = parseConfig("pipeline: bench\n", { baseDir: "/p" }).config!;
const tags = (version: string) => ({
  "imgtool:pipeline": "bench",
  "imgtool:role": "orchestrator",
  "imgtool:version": version,
});

describe("prune on aws with AMIs that linger as deregistered (AWS stand-in)", () => {
  let standin: AwsStandin;
  before(async () => {
    // Lingering for many reads: every read of the prune sees the deregistered AMIs.
    standin = await startAwsStandin({
      deregisteredReads: 1000,
      iam: { policies: actorPolicies(config), setupKey: SETUP_KEY },
    });
  });
  after(async () => {
    await standin.close();
  });
  const clients = () =>
    makeAwsClients({
      region: REGION,
      endpoint: standin.endpoint,
      credentials: actorCredentials("prune"),
      retryBaseDelayMs: 5,
      maxAttempts: 2,
    });
  const backend = () => {
    const c = clients();
    return awsPruneBackend({
      config,
      ec2: async (r) => new Ec2Images(c.ec2, r),
      catalog: new Catalog({ store: new SsmStore(c.ssm), prefix: "/imgtool/bench" }),
    });
  };
  const snapshots = () => standin.state.region(REGION).ec2.snapshots;
  /** An AMI and its snapshot, tagged as a bake tags them. */
  const seed = (version: string, day: number) => {
    const seeded = standin.addImage(REGION, {
      name: `imgtool-bench-orchestrator-x86_64-${version}`,
      creationDate: new Date(Date.UTC(2026, 10, day)).toISOString(),
      tags: tags(version),
    });
    for (const id of seeded.snapshotIds) snapshots().get(id)!.tags = tags(version);
    return seeded;
  };
  const imageState = (id: string) => standin.state.region(REGION).ec2.images.get(id)?.state;

  test("the prune that deregisters an AMI deletes its snapshots in the same run; a re-run finds nothing to do", async () => {
    standin.reset();
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
    standin.reset();
    seed("v20261101-000000-aaaaaaaaaaaa", 1);
    seed("v20261102-000000-bbbbbbbbbbbb", 2);
    const v3 = seed("v20261103-000000-cccccccccccc", 3);
    // v3 was deregistered a moment ago with its snapshots (a failed bake's cleanup, the console): it lingers.
    const img = standin.state.region(REGION).ec2.images.get(v3.imageId)!;
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
