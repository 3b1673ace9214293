// A staged bake on the aws path: the real SDK against the AWS stand-in, and the recording stand-in for Packer
// (test/bake/fixtures/recording-packer.mjs). The base stage's AMIs are published as kind "base" in the home
// region; the role stage's Packer source is the base AMI the catalog holds for the base's inputs hash; a role
// version's AMIs name their base; prune keeps a base that a kept role version was built from.
import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { makeAwsClients } from "../../src/aws/clients.js";
import { Ec2Images } from "../../src/aws/ec2.js";
import { bakeStaged, type BakeDeps } from "../../src/bake/bake.js";
import { makeAwsBakeOps } from "../../src/bake/aws-ops.js";
import { Catalog } from "../../src/catalog/catalog.js";
import { SsmStore } from "../../src/catalog/ssm-store.js";
import { parseConfig } from "../../src/config/load.js";
import { FailureError } from "../../src/errors.js";
import { recordingSink } from "../../src/events.js";
import { makePackerRunner } from "../../src/packer/runner.js";
import { awsPruneBackend } from "../../src/prune/backends.js";
import { prune } from "../../src/prune/prune.js";
import { renderBake, writeRendered } from "../../src/render/packer.js";
import { startAwsStandin, type AwsStandin } from "../support/aws-standin/index.js";
import { FAKE_PACKER, HOME, OTHER, awsBakeConfigText, renderedHashes } from "./aws-bake-fixture.js";
import { actorCredentials, actorPolicies } from "../support/iam-referee.js";

describe("staged bake on aws (AWS stand-in + recording Packer stand-in)", () => {
  let standin: AwsStandin;
  let tmp: string;
  let log: string;
  const configText = awsBakeConfigText([], ["c7i.large"]);
  const config = parseConfig(configText, { baseDir: "/p" }).config!;

  before(async () => {
    standin = await startAwsStandin({ iam: { policies: actorPolicies(config) } });
  });
  after(async () => {
    await standin.close();
  });
  beforeEach(() => {
    standin.reset();
    catalogs.clear();
    tmp = mkdtempSync(path.join(tmpdir(), "imgtool-bake-staged-aws-"));
    log = path.join(tmp, "packer.log");
    writeFileSync(log, "");
  });

  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  const clients = (region: string, actor: "bake" | "prune" = "bake") =>
    makeAwsClients({
      region,
      endpoint: standin.endpoint,
      credentials: actorCredentials(actor),
      retryBaseDelayMs: 5,
    });
  const catalogs = new Map<string, Catalog>();
  const catalog = async (region: string) => {
    if (!catalogs.has(region))
      catalogs.set(
        region,
        new Catalog({
          store: new SsmStore(clients(region).ssm),
          prefix: "/imgtool/bench",
          readBack: { attempts: 3, delayMs: 5 },
        }),
      );
    return catalogs.get(region)!;
  };
  const seedUpstream = () =>
    standin.addImage(HOME, {
      name: "al2023-ami-2026.1-x86_64",
      architecture: "x86_64",
      creationDate: new Date(Date.UTC(2026, 10, 1)).toISOString(),
    }).imageId;
  const seed = (name: string) => standin.addImage(HOME, { name, architecture: "x86_64" }).imageId;

  function deps(amis: { base: string; role: string }, extra: Partial<BakeDeps> = {}): BakeDeps {
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
        wait: { consecutive: 1, intervalMs: 1, sleep: async () => {} },
      }),
      buildRoot: tmp,
      packerEnv: {
        FAKE_PACKER_LOG: log,
        FAKE_PACKER_BASE_AMIS: `x86_64=${amis.base}`,
        FAKE_PACKER_AMIS: `x86_64=${amis.role}`,
        AWS_REGION: HOME,
      },
      ...extra,
    };
  }
  const builds = () =>
    readFileSync(log, "utf8")
      .split("\n")
      .filter(Boolean)
      .filter((l) => JSON.parse(l)[0] === "build").length;
  /** The rendered sources of the role stage's build folder for `version`. */
  const roleSources = (version: string) =>
    readFileSync(path.join(tmp, `task-runner-role-${version}`, "sources.pkr.hcl"), "utf8");

  test("each stage records the rendered-files hash that `imgtool render` prints for it (render's default: both stages)", async () => {
    seedUpstream();
    const r = await bakeStaged("task-runner", deps({ base: seed("base-1"), role: seed("role-1") }), {
      stage: "all",
    });
    assert.deepEqual(await renderedHashes(configText, tmp, []), [
      ["base", r.base!.renderedHash],
      ["role", r.renderedHash],
    ]);
    assert.notEqual(r.base!.renderedHash, r.renderedHash);
  });

  test("the role stage's source AMI is the base AMI found through the catalog; the base is published in home only", async () => {
    seedUpstream();
    const amis = { base: seed("base-1"), role: seed("role-1") };
    const r = await bakeStaged("task-runner", deps(amis), { stage: "all" });
    assert.equal(builds(), 2, "one Packer build per stage");
    assert.equal(r.base!.status, "built");
    assert.deepEqual(r.base!.artifacts, [{ region: HOME, arch: "x86_64", id: amis.base }]);
    // The catalog: kind base in home (not copied), kind ami in both regions.
    const { found } = await (
      await catalog(HOME)
    ).resolve([{ role: "task-runner", kind: "base", arch: "x86_64" }], { meta: true });
    assert.equal(found[0]!.value, amis.base);
    const other = await (
      await catalog(OTHER)
    ).resolve([{ role: "task-runner", kind: "base", arch: "x86_64" }]);
    assert.equal(other.found.length, 0, "a base is a source in the home region only");
    const status = await (await catalog(HOME)).status();
    assert.ok(
      status.some((row) => row.key.kind === "base" && row.current?.version === r.base!.version),
      "status shows the base version",
    );
    // The role stage's Packer source: that AMI, by id, no name filter.
    const sources = roleSources(r.version);
    assert.match(sources, new RegExp(`source_ami = "${amis.base}"`));
    assert.doesNotMatch(sources, /source_ami_filter/);
    // Tags: the base AMI says it is a base; the role AMI names its base version.
    const img = (id: string) => standin.state.region(HOME).ec2.images.get(id)!;
    assert.equal(img(amis.base).tags["imgtool:stage"], "base");
    assert.equal(img(amis.role).tags["imgtool:base-version"], r.base!.version);
    const role = await (
      await catalog(HOME)
    ).resolve([{ role: "task-runner", kind: "ami", arch: "x86_64" }], { meta: true });
    assert.equal(role.found[0]!.value, amis.role);
    assert.equal(role.found[0]!.meta!.baseVersion, r.base!.version);
    assert.equal((role.found[0]!.meta!.manifest as { base: { id: string } }).base.id, amis.base);
  });

  test("a new ruby-bench commit rebakes only the role stage; --stage role finds the base by its inputs hash", async () => {
    seedUpstream();
    const first = await bakeStaged("task-runner", deps({ base: seed("base-1"), role: seed("role-1") }), {
      stage: "all",
    });
    const role2 = seed("role-2");
    const d = deps({ base: seed("base-unused"), role: role2 }, { resolveCommit: async () => "d".repeat(40) });
    const r = await bakeStaged("task-runner", d, { stage: "role" });
    assert.equal(builds(), 3, "one more build: the role stage");
    assert.equal(r.status, "built");
    assert.equal(r.base!.version, first.base!.version);
    assert.match(roleSources(r.version), new RegExp(`source_ami = "${first.base!.artifacts[0]!.id}"`));
  });

  test("--stage role without a published base fails naming the fix, and builds nothing", async () => {
    seedUpstream();
    await assert.rejects(
      bakeStaged("task-runner", deps({ base: seed("b"), role: seed("r") }), { stage: "role" }),
      (e: Error) =>
        e instanceof FailureError &&
        /No base stage of task-runner is published/.test(e.message) &&
        /--stage base/.test(e.fix ?? ""),
    );
    assert.equal(builds(), 0);
  });

  test("the age rule: a base older than max_age_days is rebuilt even with unchanged inputs, and says why", async () => {
    seedUpstream();
    await bakeStaged("task-runner", deps({ base: seed("base-1"), role: seed("role-1") }), { stage: "all" });
    const young = await bakeStaged(
      "task-runner",
      deps({ base: seed("x"), role: seed("y") }, { now: () => new Date(Date.now() + 6 * 86_400_000) }),
      { stage: "base" },
    );
    assert.equal(young.status, "up-to-date");
    assert.match(young.reason ?? "", /unchanged/);
    const base2 = seed("base-2");
    const role2 = seed("role-2");
    const old = await bakeStaged(
      "task-runner",
      deps({ base: base2, role: role2 }, { now: () => new Date(Date.now() + 8 * 86_400_000) }),
      { stage: "all" },
    );
    assert.equal(old.base!.status, "built");
    assert.match(old.base!.reason ?? "", /days old, older than roles\.task-runner\.base\.max_age_days \(7\)/);
    assert.equal(old.status, "built", "the role stage follows its new base");
    assert.match(old.reason ?? "", /its base .* is new/);
    assert.match(roleSources(old.version), new RegExp(`source_ami = "${base2}"`));
  });

  test("prune keeps a base that a kept role version was built from, and removes one no kept version uses", async () => {
    seedUpstream();
    const later = (days: number) => () => new Date(Date.now() + days * 86_400_000);
    const b1 = seed("base-1");
    const r1 = await bakeStaged("task-runner", deps({ base: b1, role: seed("role-1") }), { stage: "all" });
    // A second base (the age rule), and a role version on it.
    const b2 = seed("base-2");
    const r2 = await bakeStaged("task-runner", deps({ base: b2, role: seed("role-2") }, { now: later(8) }), {
      stage: "all",
    });
    assert.notEqual(r2.base!.version, r1.base!.version);
    const ec2 = async (region: string) => new Ec2Images(clients(region, "prune").ec2, region);
    const backend = awsPruneBackend({ config, ec2, catalog: await catalog(HOME) });
    const keep2 = await prune(["task-runner"], backend, { keep: 2, dryRun: true, events: recordingSink() });
    const b1Decision = keep2.find((d) => d.stage === "base" && d.version === r1.base!.version)!;
    assert.equal(b1Decision.action, "keep");
    assert.match(b1Decision.reason, new RegExp(`kept role version\\(s\\) ${r1.version}`));
    assert.equal(keep2.find((d) => d.stage === "base" && d.version === r2.base!.version)!.action, "keep");
    assert.ok(
      keep2.every((d) => d.action === "keep"),
      "both role versions and both bases kept",
    );

    const keep1 = await prune(["task-runner"], backend, { keep: 1, dryRun: false, events: recordingSink() });
    assert.deepEqual(
      keep1.map((d) => [d.stage ?? "role", d.version, d.action]),
      [
        ["role", r2.version, "keep"],
        ["role", r1.version, "delete"],
        ["base", r2.base!.version, "keep"],
        ["base", r1.base!.version, "delete"],
      ],
    );
    const state = (id: string) => standin.state.region(HOME).ec2.images.get(id)?.state;
    assert.notEqual(state(b2), "deregistered");
    assert.ok(!standin.state.region(HOME).ec2.images.has(b1) || state(b1) === "deregistered");
    assert.ok(readdirSync(tmp).length > 0);
  });
  test("a catalog that lost its base record finds the base by DescribeImages (owner self, its inputs-hash tag): recorded, not rebuilt", async () => {
    seedUpstream();
    const first = await bakeStaged("task-runner", deps({ base: seed("base-1"), role: seed("role-1") }), {
      stage: "all",
    });
    // A catalog that lost the base (its records deleted; the AMI stays): it no longer knows it.
    const params = standin.state.region(HOME).ssm.parameters;
    for (const name of [...params.keys()]) if (name.includes("/task-runner/base/")) params.delete(name);
    catalogs.clear();
    const r = await bakeStaged("task-runner", deps({ base: seed("b"), role: seed("r") }), { stage: "base" });
    assert.equal(builds(), 2, "no Packer build for the base");
    assert.equal(r.status, "up-to-date");
    assert.equal(r.version, first.base!.version);
    assert.deepEqual(r.artifacts, first.base!.artifacts);
    assert.match(r.reason ?? "", /outside this catalog: recorded, not rebuilt/);
    const { found } = await (
      await catalog(HOME)
    ).resolve([{ role: "task-runner", kind: "base", arch: "x86_64" }], { meta: true });
    assert.equal(found[0]?.value, first.base!.artifacts[0]!.id);
    assert.equal(found[0]?.meta?.adopted, true);
  });

  test("a published base AMI deregistered outside this catalog (another catalog's prune) is found gone and rebuilt", async () => {
    seedUpstream();
    const b1 = seed("base-1");
    await bakeStaged("task-runner", deps({ base: b1, role: seed("role-1") }), { stage: "all" });
    standin.state.region(HOME).ec2.images.get(b1)!.state = "deregistered";
    const b2 = seed("base-2");
    // Its own second: version names carry the build time to the second, and the same inputs in the same second
    // would name the rebuilt base as the first (the catalog refuses a second value under one version name).
    const r = await bakeStaged(
      "task-runner",
      deps({ base: b2, role: seed("role-2") }, { now: () => new Date(Date.now() + 2_000) }),
      { stage: "all" },
    );
    assert.equal(r.base!.status, "built");
    assert.match(r.base!.reason ?? "", new RegExp(`${b1} is gone \\(removed outside this catalog\\)`));
    assert.equal(r.status, "built", "the role stage follows its new base");
    assert.match(roleSources(r.version), new RegExp(`source_ami = "${b2}"`));
  });
});
