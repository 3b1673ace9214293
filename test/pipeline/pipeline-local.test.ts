// The whole local pipeline through the CLI, all parts real (engine, registry, Packer, nested engines): the
// first run builds everything, smoke-launches and promotes; a second run with no change builds nothing; a
// smoke launch that fails leaves `stable` where it was and exits non-zero.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { connectDocker } from "../../src/docker/engine.js";
import { dockerHost, requireStack } from "../../src/local/stack.js";
import { projectPath } from "../../src/paths.js";
import { git, makeBenchRepo } from "../support/fixtures/bench-repo.js";
import { runCli } from "../support/cli.js";
import { copyProject } from "../support/project-copy.js";
import { removePipelineArtifacts } from "../support/local-pipeline.js";

interface PipelineJson {
  ok: boolean;
  promoted: boolean;
  stages: { role: string; stage: string; status: string; version: string | null }[];
  stable: Record<string, string>;
  smoke: { passed: boolean; bootToReadySeconds: Record<string, number>; detail: string } | null;
}

const stateDir = projectPath(".imgtool");
const stack = requireStack(stateDir);
const docker = connectDocker(dockerHost(stack, {}));
const pipeline = `pl${process.pid}`;
const dir = mkdtempSync(path.join(tmpdir(), "imgtool-pipeline-"));
const repo = makeBenchRepo(dir);
// A ref whose ruby-bench has no `fib`: the smoke launch's example task fails there.
git(repo.path, "checkout", "--quiet", "-b", "nofib");
git(repo.path, "rm", "--quiet", "benchmarks/fib.rb");
git(repo.path, "commit", "--quiet", "-m", "no fib");
git(repo.path, "checkout", "--quiet", "main");

function config(ref: string): string {
  const file = path.join(dir, `imgtool-${ref}.config.yaml`);
  const role = (r: string) => [
    `  ${r}:`,
    '    ruby: { versions: ["3.1"] }',
    `    ruby_bench: { repository: ${repo.path}, ref: ${ref} }`,
    `    app: { context: ${projectPath("examples", r)} }`,
  ];
  writeFileSync(
    file,
    [
      `pipeline: ${pipeline}`,
      "roles:",
      ...role("task-runner"),
      ...role("orchestrator"),
      // The rebake's boot is compared with the first run's, minutes apart on a shared machine: this file is
      // about the pipeline's stages, the boot budget has its own test (boot-budget-local.test.ts).
      "boot_budget: { max_ratio: 100 }",
      "local:",
      `  state_dir: ${stateDir}`,
    ].join("\n"),
  );
  return file;
}

const run = (cfg: string, out: string, root?: string) =>
  runCli(["pipeline", "--json", "--out", out, "--config", cfg], {
    env: { DOCKER_HOST: "" },
    timeoutMs: 900_000,
    root,
  });

const status = (doc: PipelineJson, role: string, stage: string) =>
  doc.stages.find((s) => s.role === role && s.stage === stage)?.status;

describe("imgtool pipeline on the local target (everything real)", () => {
  after(() => removePipelineArtifacts(docker, pipeline));

  let first: PipelineJson;
  let lastStable: Record<string, string> = {};

  test("first run: pushes, bakes (pre-loading the image), smoke-launches, runs a task and promotes", async () => {
    const out = path.join(dir, "out1");
    const r = await run(config("main"), out);
    assert.equal(r.code, 0, r.stderr.slice(-4000));
    first = JSON.parse(r.stdout) as PipelineJson;
    assert.equal(first.ok, true);
    for (const role of ["task-runner", "orchestrator"]) {
      assert.equal(status(first, role, "push"), "pushed");
      assert.equal(status(first, role, "bake"), "built");
    }
    assert.equal(first.smoke?.passed, true, first.smoke?.detail);
    assert.ok(Object.values(first.smoke!.bootToReadySeconds).length >= 2);
    assert.equal(first.promoted, true);
    lastStable = first.stable;
    assert.ok(Object.keys(first.stable).some((n) => n.endsWith("/task-runner/image")));
    assert.ok(Object.keys(first.stable).some((n) => /\/orchestrator\/ami\/x86_64$/.test(n)));
    assert.match(readFileSync(path.join(out, "summary.md"), "utf8"), /\| all \| promote \| promoted \|/);
    assert.ok(existsSync(path.join(out, "versions", "task-runner-ami-x86_64.json")));
    // The baked version manifest records the image that was pre-loaded.
    const v = JSON.parse(readFileSync(path.join(out, "versions", "task-runner-ami-x86_64.json"), "utf8")) as {
      meta: { image: string; preloadVolume: string };
    };
    assert.match(v.meta.image, /@sha256:[0-9a-f]{64}$/);
    assert.ok(v.meta.preloadVolume);
  });

  test("second run with no change: nothing is built, pushed, launched or promoted", async () => {
    const r = await run(config("main"), path.join(dir, "out2"));
    assert.equal(r.code, 0, r.stderr.slice(-4000));
    const doc = JSON.parse(r.stdout) as PipelineJson;
    for (const role of ["task-runner", "orchestrator"]) {
      assert.equal(status(doc, role, "push"), "up-to-date");
      assert.equal(status(doc, role, "bake"), "up-to-date");
    }
    assert.equal(status(doc, "all", "smoke"), "up-to-date");
    assert.equal(doc.smoke, null);
    assert.deepEqual(doc.stable, first.stable);
    assert.doesNotMatch(r.stderr, /Provisioning with shell script/);
  });

  test("after a one-byte change to a provisioning script, only the AMIs rebake: no image is rebuilt", async () => {
    // The change is made in a copy of the project, whose CLI runs: no tracked file is touched.
    const copy = copyProject();
    const script = copy.path("packer", "scripts", "cleanup.sh");
    writeFileSync(script, `${readFileSync(script, "utf8")}\n`);
    try {
      const r = await run(config("main"), path.join(dir, "out-onebyte"), copy.root);
      assert.equal(r.code, 0, r.stderr.slice(-4000));
      const doc = JSON.parse(r.stdout) as PipelineJson;
      for (const role of ["task-runner", "orchestrator"]) {
        assert.equal(
          status(doc, role, "push"),
          "up-to-date",
          `${role}: the image does not depend on the scripts`,
        );
        assert.equal(status(doc, role, "bake"), "built", `${role}: both roles run cleanup.sh`);
      }
      assert.equal(doc.promoted, true);
      lastStable = doc.stable;
    } finally {
      copy.remove();
    }
  });

  test("a smoke launch that fails leaves stable unchanged and exits non-zero", async () => {
    const r = await run(config("nofib"), path.join(dir, "out3"));
    assert.equal(r.code, 1, r.stderr.slice(-4000));
    const doc = JSON.parse(r.stdout) as PipelineJson & { error: { message: string } };
    assert.equal(doc.ok, false);
    assert.equal(status(doc, "task-runner", "bake"), "built", "new ruby-bench commit: new versions");
    assert.equal(doc.smoke?.passed, false);
    assert.match(doc.error.message, /stable` was not moved/);
    assert.equal(doc.promoted, false);
    assert.deepEqual(doc.stable, lastStable, "stable still points at the last promoted versions");
    assert.match(readFileSync(path.join(dir, "out3", "summary.md"), "utf8"), /\| all \| smoke \| failed \|/);

    // What is in a version, and what changed between the two bakes of the task runner.
    const v1 = first.stages.find((x) => x.role === "task-runner" && x.stage === "bake")!.version!;
    const v2 = doc.stages.find((x) => x.role === "task-runner" && x.stage === "bake")!.version!;
    const cfg = config("main");
    const shown = await runCli(["status", "--version", v1, "--json", "--config", cfg]);
    assert.equal(shown.code, 0, shown.stderr);
    const rec = (
      JSON.parse(shown.stdout) as {
        artifacts: { kind: string; labels: string[]; inputsHash: string; manifest: unknown }[];
      }
    ).artifacts[0]!;
    assert.equal(rec.kind, "ami");
    assert.match(rec.inputsHash, /^[0-9a-f]{64}$/, "it records its inputs hash");
    assert.match(
      JSON.stringify(rec.manifest),
      new RegExp(repo.commit),
      "its manifest records the ruby-bench commit",
    );
    const diff = await runCli(["diff", v1, v2, "--json", "--config", cfg]);
    assert.equal(diff.code, 0, diff.stderr);
    const changes = (JSON.parse(diff.stdout) as { changes: { path: string; from: string; to: string }[] })
      .changes;
    assert.ok(
      changes.some(
        (c) => c.path.startsWith("task-runner/ami/x86_64.manifest") && c.from?.includes(repo.commit),
      ),
      JSON.stringify(changes).slice(0, 2000),
    );
    assert.ok(changes.some((c) => c.path === "task-runner/ami/x86_64.inputsHash"));
  });
});
