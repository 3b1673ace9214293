// The user's smoke check (issue 9 section 4) on the local target, everything real: the twin baked by Packer
// (test/launch/fixtures/local.ts), the pipeline's smoke stage from the composition root launching real local
// instances, and the script run inside the orchestrator's local instance with the role's secret in its env.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { PassThrough } from "node:stream";
import { makeContext } from "../../src/cli/context.js";
import { Output } from "../../src/cli/output.js";
import { projectPath } from "../../src/paths.js";
import type { SmokeOutcome } from "../../src/pipeline/pipeline.js";
import { makeLocalFixture, type LocalFixture } from "../launch/fixtures/local.js";

let fx: LocalFixture;
let n = 0;

/** The pipeline's smoke stage with `smokeYaml` added to the fixture's config. */
async function smoke(smokeYaml: string): Promise<SmokeOutcome> {
  const file = path.join(path.dirname(fx.configFile), `imgtool.smoke-${++n}.yaml`);
  writeFileSync(file, `${readFileSync(fx.configFile, "utf8")}\n${smokeYaml}\n`);
  const out = new Output({
    json: true,
    verbose: false,
    stdout: new PassThrough(),
    stderr: new PassThrough(),
  });
  const ctx = makeContext(
    { config: file, target: "local", json: true, verbose: false, "dry-run": false },
    out,
  );
  return ctx.deps.pipeline({ force: false }).smoke();
}

async function leftRunning(): Promise<string[]> {
  const left = await fx.docker.listContainers({
    all: true,
    filters: { label: [`imgtool.pipeline=${fx.pipeline}`] },
  });
  return left.map((c) => c.Names.join(","));
}

describe("the user's smoke script on the local target (real engine, Packer-baked twin, local instances)", () => {
  before(async () => {
    fx = await makeLocalFixture();
  });
  after(async () => {
    await fx?.cleanup();
  });

  test("examples/smoke/fib-task.sh, run inside the orchestrator's instance, sees its fib task done; nothing is left running", async () => {
    const outcome = await smoke(
      `smoke:\n  script: ${projectPath("examples", "smoke", "fib-task.sh")}\n  timeout_seconds: 180`,
    );
    assert.equal(outcome.passed, true, outcome.detail);
    assert.equal(outcome.detail, "smoke script fib-task.sh passed");
    assert.ok(Object.keys(outcome.bootToReadySeconds).length >= 2, "both instances reported boot-to-ready");
    assert.deepEqual(await leftRunning(), []);
  });

  test("a script that exits 3 fails the smoke launch naming its code and last line; the secret reached it under the chosen name", async () => {
    const script = path.join(path.dirname(fx.configFile), "failing-smoke.sh");
    writeFileSync(
      script,
      [
        "#!/bin/sh",
        'echo "the key is $BENCH_KEY"',
        'echo "key-sha256 $(printf %s "$BENCH_KEY" | sha256sum | cut -d " " -f 1)"',
        "exit 3",
      ].join("\n"),
    );
    const outcome = await smoke(
      `smoke:\n  script: failing-smoke.sh\n  env: {BENCH_KEY: '{secret:orchestrator-api-key}'}\n  timeout_seconds: 60`,
    );
    const key = readFileSync(fx.config.secrets["orchestrator-api-key"]!.local_file, "utf8");
    const sha = createHash("sha256").update(key).digest("hex");
    assert.equal(outcome.passed, false);
    assert.equal(
      outcome.detail,
      `smoke script failing-smoke.sh exited with code 3; its last line: key-sha256 ${sha}`,
    );
    assert.ok(!outcome.detail.includes(key));
    assert.deepEqual(await leftRunning(), []);
  });
});
