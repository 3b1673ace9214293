// `bake ami` on the aws path: the real SDK against the AWS stand-in, and a recording stand-in for Packer
// (test/bake/fixtures/recording-packer.mjs: there is no AWS to build on here). Waits for available through a
// flap, tags AMIs and snapshots, copies to a second region, publishes per region and architecture only after
// everything succeeded, and publishes nothing when Packer fails or is interrupted.
import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { makeAwsClients } from "../../src/aws/clients.js";
import { Ec2Images } from "../../src/aws/ec2.js";
import { bake, bakeRole, type BakeDeps, InterruptedError } from "../../src/bake/bake.js";
import { makeAwsBakeOps } from "../../src/bake/aws-ops.js";
import { Catalog } from "../../src/catalog/catalog.js";
import { SsmStore } from "../../src/catalog/ssm-store.js";
import { parseConfig } from "../../src/config/load.js";
import { FailureError } from "../../src/errors.js";
import { recordingSink } from "../../src/events.js";
import { makePackerRunner } from "../../src/packer/runner.js";
import { renderBake, writeRendered } from "../../src/render/packer.js";
import { startAwsStandin, type AwsStandin } from "../support/aws-standin/index.js";
import { runMain } from "../support/cli.js";
import { actorCredentials, actorPolicies } from "../support/iam-referee.js";

const HOME = "us-east-1";
const OTHER = "eu-west-1";
const ACCOUNT = "123456789012";
const FAKE_PACKER = new URL("./fixtures/recording-packer.mjs", import.meta.url).pathname;

describe("bake ami on aws (AWS stand-in + recording Packer stand-in)", () => {
  let standin: AwsStandin;
  let tmp: string;
  let log: string;
  const configText = [
    "pipeline: bench",
    "roles:",
    "  task-runner:",
    "    instance_types: [c7i.large, c7g.large]",
    "    ruby_bench: { repository: https://example.invalid/ruby-bench.git, ref: main }",
    "    base:",
    `      aws: { owner: "${ACCOUNT}", name: { x86_64: "al2023-ami-*-x86_64", arm64: "al2023-ami-*-arm64" } }`,
    "aws:",
    `  regions: [${HOME}, ${OTHER}]`,
  ].join("\n");
  const config = parseConfig(configText, { baseDir: "/p" }).config!;

  before(async () => {
    // Every call judged with `imgtool iam-policy --for bake`.
    standin = await startAwsStandin({ iam: { policies: actorPolicies(config) } });
  });
  after(async () => {
    await standin.close();
  });
  beforeEach(() => {
    standin.reset();
    tmp = mkdtempSync(path.join(tmpdir(), "imgtool-bake-aws-"));
    log = path.join(tmp, "packer.log");
    writeFileSync(log, "");
  });

  const clients = (region: string) =>
    makeAwsClients({
      region,
      endpoint: standin.endpoint,
      credentials: actorCredentials("bake"),
      retryBaseDelayMs: 5,
    });
  const catalogs = new Map<string, Catalog>();
  const catalog = async (region: string) => {
    if (!catalogs.has(region)) {
      catalogs.set(
        region,
        new Catalog({
          store: new SsmStore(clients(region).ssm),
          prefix: "/imgtool/bench",
          readBack: { attempts: 3, delayMs: 5 },
        }),
      );
    }
    return catalogs.get(region)!;
  };

  function seedBases(day: number) {
    return {
      x86_64: standin.addImage(HOME, {
        name: `al2023-ami-2026.${day}-x86_64`,
        architecture: "x86_64",
        creationDate: new Date(Date.UTC(2026, 10, day)).toISOString(),
      }).imageId,
      arm64: standin.addImage(HOME, {
        name: `al2023-ami-2026.${day}-arm64`,
        architecture: "arm64",
        creationDate: new Date(Date.UTC(2026, 10, day)).toISOString(),
      }).imageId,
    };
  }
  function seedBuilt(n: number) {
    return {
      x86_64: standin.addImage(HOME, { name: `built-${n}-x86_64`, architecture: "x86_64" }).imageId,
      arm64: standin.addImage(HOME, { name: `built-${n}-arm64`, architecture: "arm64" }).imageId,
    };
  }

  function deps(
    built: Record<string, string>,
    extra: Partial<BakeDeps> = {},
    sleep?: (ms: number) => Promise<void>,
  ): BakeDeps {
    const events = recordingSink();
    return {
      config,
      events,
      packer: makePackerRunner(FAKE_PACKER),
      packerVersion: "Packer v1.11.2",
      render: renderBake,
      writeRendered,
      catalog,
      resolveCommit: async () => "c".repeat(40),
      gitRevision: async () => "0123456789abcdef",
      ops: makeAwsBakeOps({
        config,
        events,
        ec2: async (r) => new Ec2Images(clients(r).ec2, r),
        wait: { consecutive: 3, intervalMs: 1, ...(sleep ? { sleep } : { sleep: async () => {} }) },
      }),
      buildRoot: tmp,
      packerEnv: {
        FAKE_PACKER_LOG: log,
        FAKE_PACKER_AMIS: `x86_64=${built.x86_64},arm64=${built.arm64}`,
        AWS_REGION: HOME,
      },
      ...extra,
    };
  }

  const packerCalls = () => readFileSync(log, "utf8").split("\n").filter(Boolean);

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
      const file = path.join(dir, "imgtool.config.yaml");
      writeFileSync(file, configText);
      const cli = await runMain([
        "render",
        "--target",
        "aws",
        "--role",
        "task-runner",
        "--packer-version",
        "Packer v1.11.2",
        "--dry-run",
        "--json",
        "--out",
        path.join(dir, "out"),
        "--config",
        file,
      ]);
      assert.equal(cli.code, 0, cli.stderr);
      const doc = JSON.parse(cli.stdout) as { results: { role: string; renderedHash: string }[] };
      assert.deepEqual(
        doc.results.map((x) => [x.role, x.renderedHash]),
        [["task-runner", r.renderedHash]],
      );
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
