// `bake ami` on the aws path: the real SDK against the AWS stand-in, and a recording stand-in for Packer
// (test/bake/fixtures/recording-packer.mjs: there is no AWS to build on here; the set-up is
// test/bake/aws-bake-fixture.ts, shared with bake-aws-fsr). Waits for available through a
// flap, tags AMIs and snapshots, copies to a second region, publishes per region and architecture only after
// everything succeeded, and publishes nothing when Packer fails or is interrupted.
import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { bake, bakeRole, type BakeDeps, InterruptedError } from "../../src/bake/bake.js";
import { parseConfig } from "../../src/config/load.js";
import { FailureError } from "../../src/errors.js";
import { actorPolicies } from "../support/iam-referee.js";
import {
  HOME,
  OTHER,
  awsBakeConfigText,
  renderedHashes,
  startAwsBakeFixture,
  type AwsBakeFixture,
  type Amis,
} from "./aws-bake-fixture.js";

describe("bake ami on aws (AWS stand-in + recording Packer stand-in)", () => {
  let fx: AwsBakeFixture;
  let standin: AwsBakeFixture["standin"];
  const configText = awsBakeConfigText();
  const config = parseConfig(configText, { baseDir: "/p" }).config!;

  before(async () => {
    // Every call judged with `imgtool iam-policy --for bake`.
    fx = await startAwsBakeFixture(config, { iam: { policies: actorPolicies(config) } });
    standin = fx.standin;
  });
  after(async () => {
    await fx.close();
  });
  beforeEach(() => {
    standin.reset();
    fx.newBuildRoot();
  });

  const catalogs = { clear: () => fx.catalogs.clear() };
  const catalog = (region: string) => fx.catalog(region);
  const seedBases = (day: number) => fx.seedBases(day);
  const seedBuilt = (n: number) => fx.seedBuilt(n);
  /** The bake's dependencies; the availability wait wants 3 available reads in a row. */
  const deps = (built: Amis, extra: Partial<BakeDeps> = {}, sleep?: (ms: number) => Promise<void>) =>
    fx.deps(built, { consecutive: 3, ...(sleep ? { sleep } : {}), extra });
  const packerCalls = () => fx.packerCalls();

  test("waits through a flap, tags, copies, publishes per region and architecture; then up to date", async () => {
    catalogs.clear();
    const bases = seedBases(1);
    const built = seedBuilt(1);
    // The x86_64 AMI reads available, then pending (a flap), then available again. Both architectures'
    // waits share this sleep: the state goes pending at the first sleep and back at the fourth.
    const img = () => standin.state.region(HOME).ec2.images.get(built.x86_64)!;
    let sleeps = 0;
    const flap = async () => {
      sleeps++;
      if (sleeps === 1) Object.assign(img(), { state: "pending", pendingReads: 1000 });
      if (sleeps === 4) Object.assign(img(), { state: "available", pendingReads: 0 });
    };
    const [r] = await bake(["task-runner"], deps(built, {}, flap));
    assert.equal(r!.status, "built");
    assert.deepEqual(
      packerCalls().map((c) => JSON.parse(c)[0]),
      ["init", "build"],
    );
    assert.equal(r!.artifacts.length, 4, "2 architectures x 2 regions");

    const reads = standin.requests.filter(
      (q) => q.operation === "DescribeImages" && JSON.stringify(q.params).includes(built.x86_64),
    );
    assert.ok(reads.length >= 5, `the flap reset the streak: ${reads.length} reads`);

    // Tags on the AMI and its snapshots.
    const tagged = standin.state.region(HOME).ec2.images.get(built.arm64)!;
    assert.equal(tagged.tags["imgtool:version"], r!.version);
    assert.equal(tagged.tags["imgtool:inputs-hash"], r!.inputsHash);
    assert.equal(tagged.tags["imgtool:arch"], "arm64");
    const snap = tagged.blockDeviceMappings[0]!.snapshotId!;
    assert.equal(standin.state.region(HOME).ec2.snapshots.get(snap)!.tags["imgtool:version"], r!.version);

    // Copies in the other region: encrypted, tagged, available.
    const copies = r!.artifacts.filter((a) => a.region === OTHER);
    assert.equal(copies.length, 2);
    for (const c of copies) {
      const copy = standin.state.region(OTHER).ec2.images.get(c.id)!;
      assert.equal(copy.state, "available");
      assert.equal(copy.tags["imgtool:version"], r!.version);
      const copySnap = standin.state
        .region(OTHER)
        .ec2.snapshots.get(copy.blockDeviceMappings[0]!.snapshotId!)!;
      assert.equal(copySnap.encrypted, true);
    }

    // Published in each region's catalog, per architecture, with aws:ec2:image.
    for (const region of [HOME, OTHER]) {
      const { found } = await (
        await catalog(region)
      ).resolve(
        [
          { role: "task-runner", kind: "ami", arch: "x86_64" },
          { role: "task-runner", kind: "ami", arch: "arm64" },
        ],
        { meta: true },
      );
      assert.deepEqual(
        found.map((f) => f.value),
        r!.artifacts.filter((a) => a.region === region).map((a) => a.id),
      );
      assert.equal(found[0]!.meta?.version, r!.version);
    }
    const puts = standin.requests.filter(
      (q) =>
        q.operation === "PutParameter" && (q.params as { DataType?: string }).DataType === "aws:ec2:image",
    );
    assert.equal(puts.length, 4);
    // Publishing came last: no PutParameter before the last CopyImage answer.
    const lastCopy = standin.requests.findLastIndex((q) => q.operation === "CopyImage");
    const firstPut = standin.requests.findIndex((q) => q.operation === "PutParameter");
    assert.ok(firstPut > lastCopy);
    // Base AMIs were resolved, and are part of the bake's record.
    const meta = (
      await (
        await catalog(HOME)
      ).resolve([{ role: "task-runner", kind: "ami", arch: "arm64" }], { meta: true })
    ).found[0]!.meta!;
    assert.equal(meta.base, bases.arm64, "the resolved base AMI is recorded");

    // Unchanged inputs: no Packer run.
    const again = await bakeRole("task-runner", deps(built));
    assert.equal(again.status, "up-to-date");
    assert.equal(again.version, r!.version);
    assert.equal(again.packerRuns, 0);
    assert.equal(packerCalls().length, 2, "no second Packer run");

    // A newer base AMI is an input: it causes a rebake.
    seedBases(2);
    const built2 = seedBuilt(2);
    const rebake = await bakeRole("task-runner", deps(built2));
    assert.equal(rebake.status, "built");
    assert.notEqual(rebake.inputsHash, r!.inputsHash);
    assert.equal(packerCalls().filter((c) => JSON.parse(c)[0] === "build").length, 2);
  });

  test("the bake records the rendered-files hash that `imgtool render` prints for the same config", async () => {
    catalogs.clear();
    seedBases(5);
    const built = seedBuilt(5);
    const r = await bakeRole("task-runner", deps(built));
    assert.equal(r.status, "built");
    assert.match(r.renderedHash, /^[0-9a-f]{64}$/);
    const meta = (
      await (
        await catalog(HOME)
      ).resolve([{ role: "task-runner", kind: "ami", arch: "x86_64" }], { meta: true })
    ).found[0]!.meta!;
    assert.equal(meta.renderedHash, r.renderedHash, "the catalog records it beside the inputs hash");

    const dir = mkdtempSync(path.join(tmpdir(), "imgtool-bake-render-"));
    try {
      // A full bake (no stage) against `render --stage full`.
      assert.deepEqual(await renderedHashes(configText, dir, ["--stage", "full"]), [
        [undefined, r.renderedHash],
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("Packer fails: exit 1, nothing published", async () => {
    catalogs.clear();
    seedBases(1);
    const built = seedBuilt(3);
    const d = deps(built);
    d.packerEnv = { ...d.packerEnv, FAKE_PACKER_FAIL: "1" };
    await assert.rejects(
      bakeRole("task-runner", d),
      (e: unknown) =>
        e instanceof FailureError &&
        /Packer failed for task-runner/.test(e.message) &&
        /nothing was published/.test(e.message),
    );
    assert.equal(standin.count("PutParameter", "ssm"), 0);
    assert.equal(standin.count("CopyImage", "ec2"), 0);
  });

  test("interrupted (SIGINT forwarded): Packer cleans up, exit 130, nothing published", async () => {
    catalogs.clear();
    seedBases(1);
    const built = seedBuilt(4);
    const ac = new AbortController();
    const d = deps(built, { signal: ac.signal });
    d.packerEnv = { ...d.packerEnv, FAKE_PACKER_HANG: "1" };
    d.events = (e) => {
      if (e.type === "progress" && /waiting for SSH/.test(e.message)) ac.abort();
    };
    await assert.rejects(
      bakeRole("task-runner", d, { abortReason: () => "SIGINT" }),
      (e: unknown) => e instanceof InterruptedError && e.exitCode === 130,
    );
    assert.ok(packerCalls().includes('"cleaned-up"'), "Packer's cleanup ran before imgtool returned");
    assert.equal(standin.count("PutParameter", "ssm"), 0);
  });
});
