// imgtool prune: on aws through the real SDK against the AWS stand-in (two regions, shared snapshots, a
// running instance, catalog labels, a crash midway), and on local through the CLI against the real engine.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { RunInstancesCommand } from "@aws-sdk/client-ec2";
import { makeAwsClients } from "../../src/aws/clients.js";
import { Ec2Images } from "../../src/aws/ec2.js";
import { Catalog, versionName } from "../../src/catalog/catalog.js";
import { SsmStore } from "../../src/catalog/ssm-store.js";
import { SqliteStore } from "../../src/catalog/sqlite-store.js";
import { parseConfig } from "../../src/config/load.js";
import { recordingSink } from "../../src/events.js";
import { awsPruneBackend } from "../../src/prune/backends.js";
import { prune } from "../../src/prune/prune.js";
import { connectDocker } from "../../src/docker/engine.js";
import { dockerHost, requireStack } from "../../src/local/stack.js";
import { projectPath } from "../../src/paths.js";
import { startAwsStandin, type AwsStandin } from "../support/aws-standin/index.js";
import { actorCredentials, actorPolicies, SETUP_KEY } from "../support/iam-referee.js";
import { runCli } from "../support/cli.js";

const HOME = "us-east-1";
const OTHER = "eu-west-1";

describe("prune on aws (AWS stand-in over HTTP)", () => {
  let standin: AwsStandin;
  before(async () => {
    // Every call of the prune judged with `imgtool iam-policy --for prune`; seeding uses the setup key.
    standin = await startAwsStandin({ iam: { policies: actorPolicies(config), setupKey: SETUP_KEY } });
  });
  after(async () => {
    await standin.close();
  });

  const clients = (region: string, actor: "prune" | "setup" = "prune") =>
    makeAwsClients({
      region,
      endpoint: standin.endpoint,
      credentials: actorCredentials(actor),
      retryBaseDelayMs: 5,
      maxAttempts: 2,
    });
  const ec2 = async (region: string) => new Ec2Images(clients(region).ec2, region);
  /** Deregistered: gone, or still listed (EC2 shows a recently deregistered AMI for a while). */
  const isDeregistered = (image: { State?: string } | undefined) =>
    image === undefined || image.State === "deregistered";
  const seedEc2 = async (region: string) => new Ec2Images(clients(region, "setup").ec2, region);
  const seeding = () =>
    new Catalog({
      store: new SsmStore(clients(HOME, "setup").ssm),
      prefix: "/imgtool/bench",
      readBack: { attempts: 2, delayMs: 5 },
    });
  const config = parseConfig("pipeline: bench\naws:\n  regions: [us-east-1, eu-west-1]\n", {
    baseDir: "/p",
  }).config!;

  /** Five versions v1..v5 of the task runner in both regions, tagged like a bake tags them. */
  async function seed(catalog = seeding()) {
    const versions: { version: string; amis: Record<string, string>; snaps: Record<string, string[]> }[] = [];
    for (let i = 1; i <= 5; i++) {
      const version = versionName(new Date(Date.UTC(2026, 10, i)), `${i}`.repeat(12));
      const amis: Record<string, string> = {};
      const snaps: Record<string, string[]> = {};
      for (const region of [HOME, OTHER]) {
        const seeded = standin.addImage(region, {
          name: `imgtool-bench-task-runner-x86_64-${version}`,
          creationDate: new Date(Date.UTC(2026, 10, i)).toISOString(),
        });
        const e = await seedEc2(region);
        await e.tagWithSnapshots((await e.describe(seeded.imageId))!, {
          "imgtool:pipeline": "bench",
          "imgtool:role": "task-runner",
          "imgtool:version": version,
        });
        amis[region] = seeded.imageId;
        snaps[region] = seeded.snapshotIds;
      }
      await catalog.publish(
        { role: "task-runner", kind: "ami", arch: "x86_64" },
        amis[HOME]!,
        { version, inputsHash: "x", builtAt: "" },
        { dataType: "aws:ec2:image" },
      );
      versions.push({ version, amis, snaps });
    }
    return versions;
  }

  test("keeps the newest N, labelled and in-use versions; deletes the rest with their snapshots, in every region", async () => {
    standin.reset();
    const catalog = new Catalog({
      store: new SsmStore(clients(HOME).ssm),
      prefix: "/imgtool/bench",
      readBack: { attempts: 2, delayMs: 5 },
    });
    const v = await seed();
    // v1 is `stable`; v3 runs on an instance; latest is v5.
    await seeding().store.label("/imgtool/bench/task-runner/ami/x86_64", 1, ["stable"]);
    await clients(HOME, "setup").ec2.send(
      new RunInstancesCommand({
        ImageId: v[2]!.amis[HOME],
        InstanceType: "c7i.large",
        MinCount: 1,
        MaxCount: 1,
      }),
    );

    const events = recordingSink();
    const backend = awsPruneBackend({ config, ec2, catalog });
    const dry = await prune(["task-runner"], backend, { keep: 2, dryRun: true, events });
    assert.deepEqual(
      dry.map((d) => [d.version, d.action]),
      [
        [v[4]!.version, "keep"],
        [v[3]!.version, "keep"],
        [v[2]!.version, "keep"],
        [v[1]!.version, "delete"],
        [v[0]!.version, "keep"],
      ],
    );
    assert.match(dry.find((d) => d.version === v[0]!.version)!.reason, /catalog label stable/);
    assert.match(dry.find((d) => d.version === v[2]!.version)!.reason, /in use by a running instance/);
    assert.equal(standin.count("DeregisterImage", "ec2"), 0, "--dry-run deletes nothing");

    const real = await prune(["task-runner"], backend, { keep: 2, dryRun: false, events });
    const gone = real.find((d) => d.action === "delete")!;
    assert.deepEqual(gone.deleted!.map((r) => r.kind).sort(), ["ami", "ami", "snapshot", "snapshot"]);
    for (const region of [HOME, OTHER]) {
      const e = await ec2(region);
      assert.ok(
        isDeregistered(await e.describe(v[1]!.amis[region]!)),
        `v2's AMI is deregistered in ${region}`,
      );
      assert.equal(
        standin.state.region(region).ec2.snapshots.has(v[1]!.snaps[region]![0]!),
        false,
        "and its snapshot deleted",
      );
      assert.ok(await e.describe(v[0]!.amis[region]!), "labelled v1 kept");
      assert.ok(await e.describe(v[2]!.amis[region]!), "in-use v3 kept");
    }
    // superseded kept AMIs get a deprecation time; the newest does not
    const img = (id: string) => standin.state.region(HOME).ec2.images.get(id)!;
    assert.ok(img(v[3]!.amis[HOME]!).deprecationTime, "superseded v4 is deprecated");
    assert.equal(img(v[4]!.amis[HOME]!).deprecationTime, undefined, "newest v5 is not");
    assert.equal(img(v[2]!.amis[HOME]!).deprecationTime, undefined, "in-use v3 is not deprecated");
    assert.equal(img(v[0]!.amis[HOME]!).deprecationTime, undefined, "stable v1 is not deprecated");

    // Set once: a later run does not push the deprecation forward (the seeded builds are long past, so the
    // first run set "a minute from now"; the clock moved on since).
    const first = img(v[3]!.amis[HOME]!).deprecationTime;
    const later = awsPruneBackend({ config, ec2, catalog, now: () => new Date(Date.now() + 3 * 3600_000) });
    await prune(["task-runner"], later, { keep: 2, dryRun: false, events });
    assert.equal(
      img(v[3]!.amis[HOME]!).deprecationTime,
      first,
      "deprecation time unchanged by a later prune",
    );
  });

  test("a snapshot still used by a kept AMI is not deleted", async () => {
    standin.reset();
    const catalog = new Catalog({
      store: new SsmStore(clients(HOME).ssm),
      prefix: "/imgtool/bench",
      readBack: { attempts: 2, delayMs: 5 },
    });
    const tags = { "imgtool:pipeline": "bench", "imgtool:role": "orchestrator" };
    const old = standin.addImage(HOME, {
      name: "old",
      creationDate: "2026-01-01T00:00:00.000Z",
      tags: { ...tags, "imgtool:version": "v1-old" },
    });
    standin.addImage(HOME, {
      name: "new",
      creationDate: "2026-02-01T00:00:00.000Z",
      tags: { ...tags, "imgtool:version": "v2-new" },
      blockDeviceMappings: [{ deviceName: "/dev/xvda", snapshotId: old.snapshotIds[0]! }],
    });
    const single = parseConfig("pipeline: bench\n", { baseDir: "/p" }).config!;
    const decisions = await prune(["orchestrator"], awsPruneBackend({ config: single, ec2, catalog }), {
      keep: 1,
      dryRun: false,
      events: recordingSink(),
    });
    const d = decisions.find((x) => x.version === "v1-old")!;
    assert.deepEqual(
      d.deleted!.map((r) => r.kind),
      ["ami"],
    );
    assert.ok(standin.state.region(HOME).ec2.snapshots.has(old.snapshotIds[0]!), "shared snapshot kept");
  });

  test("a crash midway (DeleteSnapshot fails) is finished by a re-run", async () => {
    standin.reset();
    const catalog = new Catalog({
      store: new SsmStore(clients(HOME).ssm),
      prefix: "/imgtool/bench",
      readBack: { attempts: 2, delayMs: 5 },
    });
    const v = await seed();
    const backend = awsPruneBackend({ config, ec2, catalog });
    standin.faults.add({
      service: "ec2",
      operation: "DeleteSnapshot",
      kind: "error",
      code: "InternalError",
      status: 500,
    });
    await assert.rejects(
      prune(["task-runner"], backend, { keep: 3, dryRun: false, events: recordingSink() }),
    );
    standin.faults.clear();
    // Newest first: v2 went first. Its AMIs are gone but their snapshots are left, and v1 was not reached;
    // the re-run finds v2 through its snapshots' tags.
    assert.ok(isDeregistered(await (await ec2(HOME)).describe(v[1]!.amis[HOME]!)));
    assert.ok(standin.state.region(HOME).ec2.snapshots.has(v[1]!.snaps[HOME]![0]!));
    assert.ok(await (await ec2(HOME)).describe(v[0]!.amis[HOME]!));
    await prune(["task-runner"], backend, { keep: 3, dryRun: false, events: recordingSink() });
    for (const region of [HOME, OTHER]) {
      for (const old of [v[0]!, v[1]!]) {
        assert.ok(isDeregistered(await (await ec2(region)).describe(old.amis[region]!)));
        assert.equal(standin.state.region(region).ec2.snapshots.has(old.snaps[region]![0]!), false);
      }
      assert.ok(await (await ec2(region)).describe(v[2]!.amis[region]!));
    }
  });
});

describe("prune on local (real Docker engine, through the CLI)", () => {
  test("removes old twin images and pre-load volumes; keeps newest, labelled and in-use", async () => {
    const stack = requireStack(projectPath(".imgtool"));
    const docker = connectDocker(dockerHost(stack, {}));
    const pipeline = `prune${process.pid}`;
    const dir = mkdtempSync(path.join(tmpdir(), "imgtool-prune-"));
    const cfg = path.join(dir, "c.yaml");
    writeFileSync(cfg, `pipeline: ${pipeline}\nlocal:\n  state_dir: ${path.join(dir, "state")}\n`);
    // stack.json is read from the state dir: point it at the real one.
    writeFileSync(
      path.join(dir, "c.yaml"),
      `pipeline: ${pipeline}\nlocal:\n  state_dir: ${projectPath(".imgtool")}\n`,
    );
    const repo = `imgtool-twin/${pipeline}-task-runner`;
    const versions = [
      "v20260101-000000-aaaaaaaa",
      "v20260102-000000-bbbbbbbb",
      "v20260103-000000-cccccccc",
      "v20260104-000000-dddddddd",
    ];
    // A distinct image per version, as each bake makes (a commit with its own label).
    const scratch = await docker.createContainer({ Image: "imgtool/base:bookworm", Cmd: ["true"] });
    for (const v of versions) {
      await scratch.commit({ repo, tag: v, changes: [`LABEL imgtool.version=${v}`] });
      await docker.createVolume({
        Name: `imgtool-${pipeline}-task-runner-${v}-store`,
        Labels: { "imgtool.pipeline": pipeline, "imgtool.role": "task-runner", "imgtool.version": v },
      });
    }
    // v1 is `stable` in the local catalog; v2's volume is mounted by a container (an "instance").
    const store = new SqliteStore(path.join(projectPath(".imgtool"), "catalog.db"));
    const cat = new Catalog({ store, prefix: `/imgtool/${pipeline}` });
    await cat.publish(
      { role: "task-runner", kind: "ami", arch: "x86_64" },
      "sha256:x",
      { version: versions[0]!, inputsHash: "a", builtAt: "" },
      { labels: ["stable"] },
    );
    await cat.publish({ role: "task-runner", kind: "ami", arch: "x86_64" }, "sha256:y", {
      version: versions[3]!,
      inputsHash: "d",
      builtAt: "",
    });
    store.close();
    const instance = await docker.createContainer({
      Image: "imgtool/ruby:bookworm",
      Cmd: ["true"],
      HostConfig: { Binds: [`imgtool-${pipeline}-task-runner-${versions[1]}-store:/var/lib/docker`] },
    });
    try {
      const r = await runCli(["prune", "--keep", "1", "--role", "task-runner", "--json", "--config", cfg], {
        env: { DOCKER_HOST: "" },
      });
      assert.equal(r.code, 0, r.stderr);
      const doc = JSON.parse(r.stdout) as {
        decisions: { version: string; action: string; reason: string }[];
      };
      const by = Object.fromEntries(doc.decisions.map((d) => [d.version, d]));
      assert.equal(by[versions[3]!]!.action, "keep");
      assert.equal(by[versions[0]!]!.action, "keep");
      assert.match(by[versions[0]!]!.reason, /stable/);
      assert.equal(by[versions[1]!]!.action, "keep");
      assert.match(by[versions[1]!]!.reason, /in use/);
      assert.equal(by[versions[2]!]!.action, "delete");
      const tags = (await docker.listImages({ filters: JSON.stringify({ reference: [repo] }) })).flatMap(
        (i) => i.RepoTags ?? [],
      );
      assert.deepEqual(
        tags.sort(),
        [versions[0], versions[1], versions[3]].map((v) => `${repo}:${v}`).sort(),
      );
      const vols = (
        await docker.listVolumes({ filters: JSON.stringify({ label: [`imgtool.pipeline=${pipeline}`] }) })
      ).Volumes.map((v) => v.Name);
      assert.equal(vols.includes(`imgtool-${pipeline}-task-runner-${versions[2]}-store`), false);
      assert.equal(vols.length, 3);
    } finally {
      await instance.remove({ force: true });
      await scratch.remove({ force: true });
      for (const v of versions) {
        await docker
          .getImage(`${repo}:${v}`)
          .remove()
          .catch(() => undefined);
        await docker
          .getVolume(`imgtool-${pipeline}-task-runner-${v}-store`)
          .remove()
          .catch(() => undefined);
      }
    }
  });
});
