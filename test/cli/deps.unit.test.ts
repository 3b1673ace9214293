// The composition root's one override point: a test replaces one factory, and the flows (and the other
// factories, which build through the same object) get the replacement; main(argv, { deps }) hands it in.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { makeContext, type GlobalArgs } from "../../src/cli/context.js";
import { main } from "../../src/cli/main.js";
import { Output } from "../../src/cli/output.js";
import type { DoctorProbes } from "../../src/doctor/doctor.js";
import type { PackerRunner } from "../../src/packer/runner.js";

function tempConfig(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "imgtool-deps-"));
  const file = path.join(dir, "imgtool.config.yaml");
  writeFileSync(
    file,
    `local:\n  state_dir: ${path.join(dir, "state")}\naws:\n  regions: [eu-west-1, us-east-2]\n`,
  );
  return file;
}

const sink = () => {
  const s = new PassThrough();
  let text = "";
  s.on("data", (c: Buffer) => (text += c.toString()));
  return { stream: s, text: () => text };
};

const args = (config: string, extra: Partial<GlobalArgs> = {}): GlobalArgs => ({
  config,
  target: "local",
  json: true,
  verbose: false,
  "dry-run": false,
  ...extra,
});

const fakePacker = (version: string | null): PackerRunner => ({
  version: async () => version,
  run: async () => {
    throw new Error("the test's Packer runs nothing");
  },
});

describe("cli/deps: the composition root", () => {
  test("an overridden factory is what the other factories use", async () => {
    const err = sink();
    const out = new Output({ json: true, verbose: false, stderr: err.stream, stdout: sink().stream });
    const ctx = makeContext(args(tempConfig()), out, { packer: () => fakePacker("Packer v9.9.9") });
    assert.equal(await ctx.deps.doctorProbes().packerVersion(), "Packer v9.9.9");

    const missing = makeContext(args(tempConfig()), out, { packer: () => fakePacker(null) });
    await assert.rejects(missing.deps.bake(), /Packer is not installed/);
  });

  test("the regions are computed once, in the context", () => {
    const out = new Output({ json: true, verbose: false, stderr: sink().stream, stdout: sink().stream });
    const local = makeContext(args(tempConfig()), out);
    assert.deepEqual(
      [local.homeRegion, local.region, local.targetRegion, local.regions],
      ["eu-west-1", "eu-west-1", "local", ["local"]],
    );
    const aws = makeContext(args(tempConfig(), { target: "aws", region: "us-east-2" }), out);
    assert.deepEqual(
      [aws.homeRegion, aws.region, aws.targetRegion, aws.regions],
      ["eu-west-1", "us-east-2", "us-east-2", ["eu-west-1", "us-east-2"]],
    );
  });

  test("main(argv, { deps }) runs a command with the overrides", async () => {
    const probes: DoctorProbes = {
      nodeVersion: () => "v20.0.0",
      dockerVersion: async () => "20.10.24",
      imageExists: async () => true,
      registry: async () => ({ anonymous: 401, authenticated: 200, api: "registry/2.0" }),
      packerVersion: async () => "Packer v9.9.9",
      awsIdentity: async () => ({ account: "123456789012", arn: "arn:aws:iam::123456789012:user/test" }),
    };
    const stdout = sink();
    const code = await main(["doctor", "--target", "aws", "--json", "--config", tempConfig()], {
      deps: { doctorProbes: () => probes },
      stdout: stdout.stream,
      stderr: sink().stream,
    });
    const doc = JSON.parse(stdout.text()) as {
      ok: boolean;
      checks: { part: string; version: string | null }[];
    };
    assert.equal(code, 0);
    assert.equal(doc.ok, true);
    assert.equal(doc.checks.find((c) => c.part === "packer")?.version, "Packer v9.9.9");
    assert.ok(doc.checks.some((c) => c.part === "aws credentials"));
  });
});
