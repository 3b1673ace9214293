// scripts/nightly-rebake --target local: the workflow's steps on this machine (pipeline, prune, summary), with
// the example config's roles in a state folder and pipeline of the test's own (the examples' state is untouched).
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { connectDocker } from "../../src/docker/engine.js";
import { dockerHost, requireStack } from "../../src/local/stack.js";
import { projectPath } from "../../src/paths.js";
import { removePipelineArtifacts, tempStateDir, uniquePipelineName } from "../support/local-pipeline.js";

const stateDir = tempStateDir();
const pipeline = uniquePipelineName("nr");
const docker = connectDocker(dockerHost(requireStack(stateDir), {}));
after(() => removePipelineArtifacts(docker, pipeline));

/** examples/imgtool.config.yaml with absolute paths, the test's pipeline and its state folder. */
function exampleConfig(dir: string): string {
  const examples = projectPath("examples");
  const text = readFileSync(path.join(examples, "imgtool.config.yaml"), "utf8")
    .replace(/^pipeline: .*$/m, `pipeline: ${pipeline}`)
    .replace(/repository: \.\.\/\.imgtool\//g, `repository: ${projectPath(".imgtool")}/`)
    .replace(
      /context: (task-runner|orchestrator)/g,
      (_m, role: string) => `context: ${path.join(examples, role)}`,
    )
    .replace(/script: smoke\//, `script: ${examples}/smoke/`)
    .replace(/^ {2}state_dir: .*$/m, `  state_dir: ${stateDir}`);
  const file = path.join(dir, "imgtool.config.yaml");
  writeFileSync(file, text);
  return file;
}

test("scripts/nightly-rebake --target local: pipeline, prune, a Markdown summary appended, the reports kept", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "imgtool-nightly-"));
  const out = path.join(dir, "out");
  const summary = path.join(dir, "step-summary.md");
  writeFileSync(summary, "# before\n");
  const r = spawnSync(
    projectPath("scripts", "nightly-rebake"),
    ["--target", "local", "--config", exampleConfig(dir), "--out", out, "--summary", summary],
    { encoding: "utf8", env: { ...process.env, DOCKER_HOST: "" }, timeout: 900_000 },
  );
  assert.equal(r.status, 0, r.stderr.slice(-3000));
  const report = JSON.parse(readFileSync(path.join(out, "pipeline.json"), "utf8")) as {
    ok: boolean;
    stages: unknown[];
  };
  assert.equal(report.ok, true);
  assert.ok(report.stages.length >= 4);
  assert.ok(existsSync(path.join(out, "prune.json")), "prune ran after a successful pipeline");
  const text = readFileSync(summary, "utf8");
  assert.match(text, /^# before\n## imgtool pipeline \(local\)/, "the summary is appended, not overwritten");
  assert.ok(existsSync(path.join(out, "versions", "task-runner-ami-x86_64.json")));
});

test("scripts/nightly-rebake refuses a bad target (exit 2)", () => {
  const r = spawnSync(projectPath("scripts", "nightly-rebake"), ["--target", "gcp"], { encoding: "utf8" });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--target must be local or aws, not: gcp/);
});

test("scripts/nightly-rebake --target aws without a config refuses (exit 2) before anything runs", () => {
  const r = spawnSync(
    projectPath("scripts", "nightly-rebake"),
    ["--target", "aws", "--config", "/nonexistent/imgtool.config.yaml"],
    {
      encoding: "utf8",
    },
  );
  assert.equal(r.status, 2);
  assert.match(
    r.stderr,
    /the aws target needs your imgtool config, and \/nonexistent\/imgtool.config.yaml does not exist/,
  );
});
