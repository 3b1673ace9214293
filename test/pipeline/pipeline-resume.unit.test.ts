// A pipeline interrupted between the two regions' publishes, and run again: the real pipeline flow, the real
// bake over the AWS stand-in (real SDK; two regions) with the recording Packer stand-in, push and smoke
// handed in. The stand-in fails the first run's PutParameter in the second region; the re-run finishes that
// region from the AMI already made (no second Packer build, no second copy) and writes the release once.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { makeAwsClients } from "../../src/aws/clients.js";
import { Ec2Images } from "../../src/aws/ec2.js";
import { makeAwsBakeOps } from "../../src/bake/aws-ops.js";
import { bake, type BakeDeps } from "../../src/bake/bake.js";
import { Catalog, versionName } from "../../src/catalog/catalog.js";
import { Releases } from "../../src/catalog/release.js";
import { SsmStore } from "../../src/catalog/ssm-store.js";
import { parseConfig } from "../../src/config/load.js";
import type { Role } from "../../src/config/schema.js";
import { recordingSink } from "../../src/events.js";
import { makePackerRunner } from "../../src/packer/runner.js";
import { runPipeline, type PipelineDeps } from "../../src/pipeline/pipeline.js";
import { renderBake, writeRendered } from "../../src/render/packer.js";
import { startAwsStandin, type AwsStandin } from "../support/aws-standin/index.js";

const HOME = "us-east-1";
const OTHER = "eu-west-1";
const ACCOUNT = "123456789012";
const FAKE_PACKER = new URL("../bake/fixtures/recording-packer.mjs", import.meta.url).pathname;
const REF = `${ACCOUNT}.dkr.ecr.${HOME}.amazonaws.com/bench/task-runner@sha256:${"a".repeat(64)}`;

describe("pipeline interrupted between two regions' publishes, then run again", () => {
  let standin: AwsStandin;
  before(async () => {
    standin = await startAwsStandin();
  });
  after(async () => {
    await standin.close();
  });

  test("the re-run resumes from the existing AMI: one Packer build, both regions published, one release", async () => {
    const tmp = mkdtempSync(path.join(tmpdir(), "imgtool-pl-resume-"));
    const log = path.join(tmp, "packer.log");
    writeFileSync(log, "");
    const config = parseConfig(
      [
        "pipeline: bench",
        "roles:",
        "  task-runner:",
        "    instance_types: [c7i.large]",
        "    ruby_bench: { repository: https://example.invalid/ruby-bench.git, ref: main }",
        "    base:",
        `      aws: { owner: "${ACCOUNT}", name: { x86_64: "al2023-ami-*-x86_64", arm64: "al2023-ami-*-arm64" } }`,
        "aws:",
        `  regions: [${HOME}, ${OTHER}]`,
      ].join("\n"),
      { baseDir: "/p" },
    ).config!;
    const clients = (region: string) =>
      makeAwsClients({
        region,
        endpoint: standin.endpoint,
        credentials: async () => ({ accessKeyId: "AKIDTEST", secretAccessKey: "secret" }),
        retryBaseDelayMs: 5,
      });
    const catalogs = new Map(
      [HOME, OTHER].map((region) => [
        region,
        new Catalog({
          store: new SsmStore(clients(region).ssm),
          prefix: "/imgtool/bench",
          region,
          readBack: { attempts: 3, delayMs: 5 },
        }),
      ]),
    );
    const cat = (r: string) => catalogs.get(r)!;
    standin.addImage(HOME, {
      name: "al2023-ami-2026.1-x86_64",
      architecture: "x86_64",
      ownerId: ACCOUNT,
      creationDate: new Date(Date.UTC(2026, 10, 1)).toISOString(),
    });
    const built = standin.addImage(HOME, { name: "built-1-x86_64", architecture: "x86_64" }).imageId;

    const events = recordingSink();
    const bakeDeps: BakeDeps = {
      config,
      events,
      packer: makePackerRunner(FAKE_PACKER),
      packerVersion: "Packer v1.11.2",
      render: renderBake,
      writeRendered,
      catalog: async (r) => cat(r),
      resolveCommit: async () => "c".repeat(40),
      gitRevision: async () => "0123456789abcdef",
      ops: makeAwsBakeOps({
        config,
        events,
        ec2: async (r) => new Ec2Images(clients(r).ec2, r),
        wait: { consecutive: 1, intervalMs: 1, sleep: async () => {} },
      }),
      buildRoot: tmp,
      packerEnv: { FAKE_PACKER_LOG: log, FAKE_PACKER_AMIS: `x86_64=${built}`, AWS_REGION: HOME },
    };
    let failNextBake = true;
    const deps: PipelineDeps = {
      resolveRubyBench: async () => "c".repeat(40),
      async push(roles) {
        const version = versionName(new Date(Date.UTC(2026, 10, 1)), "b".repeat(16));
        for (const r of [HOME, OTHER]) {
          const key = { role: "task-runner", kind: "image" as const };
          if ((await cat(r).resolve([key])).found[0]?.value !== REF)
            await cat(r).publish(key, REF, { version, inputsHash: "b".repeat(16), builtAt: "" });
        }
        if (failNextBake) {
          // The bake's PutParameters: home meta (1), home value (2), then the second region's meta (3).
          standin.faults.add({
            service: "ssm",
            operation: "PutParameter",
            calls: [3],
            kind: "error",
            code: "AccessDeniedException",
            message: "the run's credentials were revoked",
          });
          failNextBake = false;
        }
        return roles.map((role) => ({ role, status: "pushed", version, reference: REF }));
      },
      bake: (roles: Role[]) => bake(roles, bakeDeps),
      smoke: async () => ({ passed: true, bootToReadySeconds: {}, detail: "1 task done" }),
      catalogs: async () => [cat(HOME), cat(OTHER)],
      keys: (role) => [
        { role, kind: "image" },
        { role, kind: "ami", arch: "x86_64" },
      ],
      events,
    };
    const builds = () =>
      readFileSync(log, "utf8")
        .split("\n")
        .filter((l) => l.startsWith('["build"')).length;
    const amiKey = { role: "task-runner", kind: "ami" as const, arch: "x86_64" };
    const releases = new Releases(cat(HOME));

    // First run: the home region is published, the second region's PutParameter fails.
    await assert.rejects(runPipeline(["task-runner"], deps, { smoke: true }), /PutParameter|AccessDenied/);
    standin.faults.clear();
    assert.equal(builds(), 1);
    assert.equal((await cat(HOME).resolve([amiKey])).found[0]?.value, built);
    assert.equal(
      (await cat(OTHER).resolve([amiKey])).missing.length,
      1,
      "not published in the second region",
    );
    assert.deepEqual(await releases.history(), [], "no release: not every artefact was published");
    const copiesBefore = [...standin.state.region(OTHER).ec2.images.values()].filter((i) =>
      i.name.startsWith("imgtool-bench-task-runner-x86_64-"),
    );
    assert.equal(copiesBefore.length, 1, "the first run copied to the second region before it failed");

    // Re-run: resumes, no rebake, no second copy, both regions published, the release written once.
    const report = await runPipeline(["task-runner"], deps, { smoke: true });
    assert.equal(builds(), 1, "no second Packer build");
    assert.deepEqual(
      report.stages.filter((s) => s.stage === "bake").map((s) => s.status),
      ["resumed"],
    );
    const copy = (await cat(OTHER).resolve([amiKey], { meta: true })).found[0]!;
    assert.equal(copy.value, copiesBefore[0]!.imageId, "the second region has the copy made before");
    assert.equal(copy.meta?.region, OTHER);
    const hist = await releases.history();
    assert.equal(hist.length, 1, "the release was written once");
    const rel = hist[0]!.release;
    assert.deepEqual(rel.roles["task-runner"]!.ami!.x86_64!.ids, { [HOME]: built, [OTHER]: copy.value });
    assert.deepEqual(hist[0]!.labels.sort(), [rel.id, "latest", "stable"].sort());
    assert.equal(report.promoted, true);

    // A third run: nothing to do, no new release.
    await runPipeline(["task-runner"], deps, { smoke: true });
    assert.equal((await releases.history()).length, 1);
    assert.equal(builds(), 1);
  });
});
