// aws.fast_snapshot_restore (issue 12, section 4): after an aws bake, EBS Fast Snapshot Restore is enabled for
// each new AMI's snapshots in the zones its region's instances launch in (the subnet's zone, else the default
// VPC's zones), and `prune` disables it before it deletes a version's snapshots. The real SDK against the AWS
// stand-in, every call judged with the generated policy of the actor that makes it (bake, prune); Packer is the
// recording stand-in (test/bake/fixtures/recording-packer.mjs; the set-up is test/bake/aws-bake-fixture.ts,
// shared with bake-aws). Off by default: no call at all.
import { after, afterEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Ec2Images } from "../../src/aws/ec2.js";
import { bakeRole } from "../../src/bake/bake.js";
import { Catalog } from "../../src/catalog/catalog.js";
import { SsmStore } from "../../src/catalog/ssm-store.js";
import { parseConfig, type Config } from "../../src/config/load.js";
import { recordingSink, type EventSink } from "../../src/events.js";
import { policyFor } from "../../src/iam/policies.js";
import { awsPruneBackend } from "../../src/prune/backends.js";
import { prune } from "../../src/prune/prune.js";
import { actorPolicies, policyProblems, SETUP_KEY } from "../support/iam-referee.js";
import { HOME, OTHER, awsBakeConfigText, startAwsBakeFixture } from "./aws-bake-fixture.js";

/** One region only, Fast Snapshot Restore on. */
function oneRegion(): Config {
  const c = configOf(["fast_snapshot_restore: true"]);
  return { ...c, aws: { ...c.aws, regions: [HOME] } };
}

function configOf(extra: string[]): Config {
  const parsed = parseConfig(awsBakeConfigText(extra), { baseDir: "/p" });
  assert.ok(parsed.config, parsed.errors.join("\n"));
  return parsed.config;
}

/** A stand-in judging every call with `config`'s policies, and a bake and a prune of its own. */
async function world(config: Config, fastRestoreReads?: number) {
  const fx = await startAwsBakeFixture(config, {
    iam: { policies: actorPolicies(config), setupKey: SETUP_KEY },
    ...(fastRestoreReads !== undefined ? { fastRestoreReads } : {}),
  });
  const { standin, clients } = fx;
  let day = 0;
  const start = Date.now();
  /** One bake of new inputs (a newer base AMI) that Packer "builds" into fresh AMIs. */
  const bakeNew = async (events: EventSink = recordingSink()) => {
    day++;
    fx.seedBases(day);
    // Each bake a second after the last: version names carry the build time to the second, and two bakes
    // in the same second would order by their hashes instead.
    const now = () => new Date(start + day * 1000);
    const r = await bakeRole("task-runner", fx.deps(fx.seedBuilt(day), { events, extra: { now } }));
    assert.equal(r.status, "built");
    return r;
  };
  const pruneOld = async (events: EventSink = recordingSink(), reads?: number) => {
    const backend = awsPruneBackend({
      config,
      ec2: async (r) => new Ec2Images(clients(r, "prune").ec2, r),
      catalog: new Catalog({ store: new SsmStore(clients(HOME, "prune").ssm), prefix: "/imgtool/bench" }),
      events,
      fastRestoreWait: { intervalMs: 1, sleep: async () => {}, ...(reads !== undefined ? { reads } : {}) },
    });
    return prune(["task-runner"], backend, { keep: 1, dryRun: false, events });
  };
  /** A region's Fast Snapshot Restores that are not disabled, as `snapshot zone state`. */
  const fastRestores = (region: string) =>
    [...standin.state.region(region).ec2.fastRestores.values()]
      .filter((f) => f.state !== "disabled")
      .map((f) => `${f.snapshotId} ${f.availabilityZone}`)
      .sort();
  /** `snapshot zone` for each snapshot of the AMIs, in each zone. */
  const expected = (region: string, amis: string[], zones: string[]) =>
    amis
      .flatMap((id) =>
        standin.state
          .region(region)
          .ec2.images.get(id)!
          .blockDeviceMappings.flatMap((m) => zones.map((z) => `${m.snapshotId!} ${z}`)),
      )
      .sort();
  return {
    standin,
    bakeNew,
    pruneOld,
    fastRestores,
    expected,
    close: fx.close,
  };
}

describe("aws.fast_snapshot_restore (AWS stand-in, calls judged by the generated policies)", () => {
  let w: Awaited<ReturnType<typeof world>> | undefined;
  afterEach(async () => {
    await w?.close();
    w = undefined;
  });
  after(async () => {
    await w?.close();
  });

  test("on, no subnet: each region's new snapshots in the default VPC's zones; prune disables it for the pruned version, then deletes its snapshots", async () => {
    w = await world(configOf(["fast_snapshot_restore: true"]));
    const v1 = await w.bakeNew();
    const ids = (v: typeof v1, region: string) =>
      v.artifacts.filter((a) => a.region === region).map((a) => a.id);
    for (const region of [HOME, OTHER]) {
      assert.deepEqual(
        w.fastRestores(region),
        w.expected(
          region,
          ids(v1, region),
          ["a", "b", "c"].map((l) => `${region}${l}`),
        ),
        region,
      );
    }
    const v2 = await w.bakeNew();
    const events = recordingSink();
    const decisions = await w.pruneOld(events);
    const gone = decisions.find((d) => d.action === "delete");
    assert.equal(gone?.version, v1.version);
    assert.equal(
      gone?.deleted?.filter((r) => r.kind === "snapshot").length,
      4,
      "2 architectures x 2 regions",
    );
    // The pruned version's Fast Snapshot Restore is off and its snapshots gone; the kept version's stays on.
    for (const region of [HOME, OTHER]) {
      assert.deepEqual(
        w.fastRestores(region),
        w.expected(
          region,
          ids(v2, region),
          ["a", "b", "c"].map((l) => `${region}${l}`),
        ),
        region,
      );
    }
    const disables = w.standin.requests.filter((q) => q.operation === "DisableFastSnapshotRestores");
    assert.equal(disables.length, 4, "one per pruned snapshot");
    assert.ok(disables.every((q) => q.status === 200));
    assert.ok(
      events.events.some((e) => /disabling Fast Snapshot Restore for snap-/.test(e.message ?? "")),
      "prune says what it disables",
    );
  });

  test("a snapshot still disabling when prune stops waiting is kept, named in a warning, and the next prune deletes it", async () => {
    // One region; disabling lasts 3 reads, and the first prune reads once.
    w = await world(oneRegion(), 3);
    const v1 = await w.bakeNew();
    await w.bakeNew();
    const snaps = v1.artifacts.map((a) => a.id);
    const events = recordingSink();
    const first = await w.pruneOld(events, 1);
    assert.deepEqual(
      first.find((d) => d.action === "delete")?.deleted?.map((r) => r.kind),
      ["ami", "ami"],
      "the AMIs went, their snapshots stayed",
    );
    assert.ok(
      events.events.some(
        (e) =>
          e.type === "warn" &&
          /is kept for the next prune: its Fast Snapshot Restore is still disabling/.test(e.message ?? ""),
      ),
    );
    const second = await w.pruneOld();
    assert.deepEqual(
      second.find((d) => d.action === "delete")?.deleted?.map((r) => r.kind),
      ["snapshot", "snapshot"],
      `the next prune deleted ${snaps.join(", ")}'s snapshots`,
    );
    assert.equal(
      w.standin.count("DisableFastSnapshotRestores"),
      2,
      "disabled once, not again while disabling",
    );
  });

  test("on, with aws.subnet_id: only the subnet's zone in the home region, none in the other region (nothing launches there)", async () => {
    // The stand-in seeds the subnet with the setup key; the bake asks DescribeSubnets for it.
    const subnet = "subnet-0fedcba9876543210";
    w = await world(configOf(["fast_snapshot_restore: true", `subnet_id: ${subnet}`]));
    w.standin.addSubnet(HOME, { availabilityZone: `${HOME}b`, subnetId: subnet });
    const events = recordingSink();
    const v1 = await w.bakeNew(events);
    const home = v1.artifacts.filter((a) => a.region === HOME).map((a) => a.id);
    assert.deepEqual(w.fastRestores(HOME), w.expected(HOME, home, [`${HOME}b`]));
    assert.deepEqual(w.fastRestores(OTHER), []);
    assert.ok(
      events.events.some(
        (e) => e.type === "skip" && /no Fast Snapshot Restore for ami-\S+ in eu-west-1/.test(e.message ?? ""),
      ),
    );
  });

  test("off by default: no DescribeSubnets, no EnableFastSnapshotRestores; only the flag puts the action in the bake's policy", async () => {
    const off = configOf([]);
    assert.equal(off.aws.fast_snapshot_restore, false);
    w = await world(off);
    await w.bakeNew();
    assert.equal(w.standin.count("EnableFastSnapshotRestores"), 0);
    assert.equal(w.standin.count("DescribeSubnets"), 0);
    assert.deepEqual(w.fastRestores(HOME), []);
    const actions = (c: Config, actor: "bake" | "prune") =>
      policyFor(actor, c).Statement.flatMap((s) => s.Action);
    const on = configOf(["fast_snapshot_restore: true"]);
    assert.deepEqual(
      actions(on, "bake").filter((a) => !actions(off, "bake").includes(a)),
      ["ec2:EnableFastSnapshotRestores"],
    );
    // The referee (AWS's own action and condition-key data) finds nothing wrong with the new statements.
    for (const actor of ["bake", "prune"] as const)
      assert.deepEqual(await policyProblems(policyFor(actor, on)), []);
    // prune disables whatever is on, whatever the config says now (a version baked with it on is billed).
    for (const c of [off, on])
      for (const a of ["ec2:DescribeFastSnapshotRestores", "ec2:DisableFastSnapshotRestores"])
        assert.ok(actions(c, "prune").includes(a), a);
  });
});
