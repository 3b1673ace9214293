// `imgtool pipeline` as a thin command: main(argv, { deps }) hands in stand-in stages through the composition
// root's `pipeline` factory (the stages' real paths have their own tests); what is checked is the command's own
// work: the result document and exit code, the report of a failed run, --out's files, --dry-run calling nothing.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import type { BakeResult } from "../../src/bake/bake.js";
import { Catalog, versionName } from "../../src/catalog/catalog.js";
import { SqliteStore } from "../../src/catalog/sqlite-store.js";
import { main } from "../../src/cli/main.js";
import type { PipelineDeps, SmokeOutcome } from "../../src/pipeline/pipeline.js";
import { SMOKE_SCRIPT_MAX_BYTES } from "../../src/pipeline/smoke-check.js";

function workDir() {
  const dir = mkdtempSync(path.join(tmpdir(), "imgtool-pipeline-cmd-"));
  const config = path.join(dir, "imgtool.config.yaml");
  writeFileSync(config, `local:\n  state_dir: ${path.join(dir, "state")}\n`);
  return { dir, config };
}

/** Stand-in stages over a real catalog: push is up to date, bake publishes a new AMI, smoke as given. */
function stages(dir: string, smoke: SmokeOutcome) {
  const cat = new Catalog({ store: new SqliteStore(path.join(dir, "c.db")), prefix: "/imgtool/p" });
  const called: string[] = [];
  let n = 0;
  const deps: PipelineDeps = {
    resolveRubyBench: async () => "a".repeat(40),
    async push(roles) {
      called.push("push");
      return roles.map((role) => ({ role, status: "up-to-date", version: null, reference: "r@sha256:x" }));
    },
    async bake(roles) {
      called.push("bake");
      const out: BakeResult[] = [];
      for (const role of roles) {
        const version = versionName(new Date(Date.UTC(2026, 10, 1, 0, 0, ++n)), `${n}`.repeat(12));
        await cat.publish({ role, kind: "ami", arch: "x86_64" }, `sha256:${n}`, {
          version,
          inputsHash: `${n}`,
          builtAt: "",
        });
        out.push({
          role,
          target: "local",
          status: "built",
          version,
          inputsHash: "",
          renderedHash: "",
          artifacts: [],
          packerRuns: 1,
          seconds: 0,
          preloadedImage: null,
        });
      }
      return out;
    },
    async smoke() {
      called.push("smoke");
      return smoke;
    },
    catalogs: async () => [cat],
    keys: (role) => [{ role, kind: "ami", arch: "x86_64" }],
    events: () => {},
  };
  return { deps, called };
}

async function pipeline(argv: string[], deps: () => PipelineDeps) {
  const sink = () => {
    const s = new PassThrough();
    let text = "";
    s.on("data", (c: Buffer) => (text += c.toString()));
    return { stream: s, text: () => text };
  };
  const stdout = sink();
  const stderr = sink();
  const code = await main(["pipeline", "--json", ...argv], {
    deps: { pipeline: deps },
    stdout: stdout.stream,
    stderr: stderr.stream,
  });
  await new Promise((resolve) => setImmediate(resolve));
  return { code, doc: JSON.parse(stdout.text()) as Record<string, unknown>, stderr: stderr.text() };
}

const passed: SmokeOutcome = { passed: true, bootToReadySeconds: { "task-runner-0": 0.5 }, detail: "ok" };

describe("cli: imgtool pipeline (stand-in stages through the deps override)", () => {
  test("a passing run: exit 0, the report, and --out writes summary.md and each artefact's manifest", async () => {
    const w = workDir();
    const s = stages(w.dir, passed);
    const out = path.join(w.dir, "report");
    const r = await pipeline(["--role", "task-runner", "--config", w.config, "--out", out], () => s.deps);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(s.called, ["push", "bake", "smoke"]);
    assert.equal(r.doc.ok, true);
    assert.equal(r.doc.promoted, true);
    assert.equal(r.doc.target, "local");
    assert.match(readFileSync(path.join(out, "summary.md"), "utf8"), /\| all \| promote \| promoted \|/);
    assert.deepEqual(readdirSync(path.join(out, "versions")), ["task-runner-ami-x86_64.json"]);
    const manifest = JSON.parse(
      readFileSync(path.join(out, "versions", "task-runner-ami-x86_64.json"), "utf8"),
    );
    assert.equal(manifest.value, "sha256:1");
  });

  test("a failed smoke launch: exit 1, the report of what ran, and the error with its message", async () => {
    const w = workDir();
    const s = stages(w.dir, { passed: false, bootToReadySeconds: {}, detail: "no worker came up" });
    const r = await pipeline(["--role", "task-runner", "--config", w.config], () => s.deps);
    assert.equal(r.code, 1);
    assert.equal(r.doc.ok, false);
    assert.equal(r.doc.promoted, false);
    const stagesRun = (r.doc.stages as { stage: string }[]).map((x) => x.stage);
    assert.deepEqual(stagesRun.slice(0, 2), ["push", "bake"]);
    assert.match((r.doc.error as { message: string }).message, /stable` was not moved/);
  });

  test("--out where no folder can be made: a usage error naming the flag (exit 2)", async () => {
    const w = workDir();
    const s = stages(w.dir, passed);
    const file = path.join(w.dir, "a-file");
    writeFileSync(file, "");
    const r = await pipeline(["--config", w.config, "--out", path.join(file, "report")], () => s.deps);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--out .*a-file\/report: cannot write the report there \(ENOTDIR\)/);
  });

  test("smoke.script that does not exist: a usage error naming it (exit 2) before any stage is built", async () => {
    const w = workDir();
    writeFileSync(
      w.config,
      `smoke:\n  script: checks/missing.sh\nlocal:\n  state_dir: ${path.join(w.dir, "state")}\n`,
    );
    const r = await pipeline(["--config", w.config], () => {
      throw new Error("no stage may be built before the smoke script is checked");
    });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`smoke\\.script: ${w.dir}/checks/missing\\.sh does not exist`));
    // --no-smoke runs no smoke check, so the script is not needed.
    const s = stages(w.dir, passed);
    const skipped = await pipeline(["--config", w.config, "--no-smoke"], () => s.deps);
    assert.equal(skipped.code, 0, skipped.stderr);
    assert.ok(!s.called.includes("smoke"));
  });

  test("a smoke script and smoke.env too large for SSM Run Command: a usage error naming smoke.script, its size and the limit (exit 2) before any stage is built", async () => {
    const w = workDir();
    mkdirSync(path.join(w.dir, "checks"));
    // Under the script's own cap, but with a long smoke.env value the command would be over 64 KB.
    writeFileSync(path.join(w.dir, "checks", "big.sh"), Buffer.alloc(SMOKE_SCRIPT_MAX_BYTES, 0xff));
    writeFileSync(
      w.config,
      `smoke:\n  script: checks/big.sh\n  env: {NOTES: '${"n".repeat(16 * 1024)}'}\nlocal:\n  state_dir: ${path.join(w.dir, "state")}\n`,
    );
    const r = await pipeline(["--config", w.config], () => {
      throw new Error("no stage may be built before the smoke script is checked");
    });
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(
        `smoke\\.script: ${w.dir}/checks/big\\.sh \\(${SMOKE_SCRIPT_MAX_BYTES} bytes\\) with its runner and smoke\\.env makes a Run Command of \\d+ bytes; SSM Run Command takes at most \\d+`,
      ),
    );
    assert.match(r.stderr, /Shorten long smoke\.env values/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
  });

  test("--dry-run names the stages and builds no stage at all", async () => {
    const w = workDir();
    const r = await pipeline(["--config", w.config, "--dry-run", "--no-smoke"], () => {
      throw new Error("a dry run must not build the stages");
    });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.doc, {
      dryRun: true,
      roles: ["task-runner", "orchestrator"],
      target: "local",
      stages: ["push", "bake"],
    });
    assert.equal(existsSync(path.join(w.dir, "state")), false);
  });
});
