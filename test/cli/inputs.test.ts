// Bad input, as a hostile user types it: every error echoes the value as typed, names the fix, exits 2, and
// prints no stack trace and no raw bytes.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { runCli } from "../support/cli.js";
import { Output } from "../../src/cli/output.js";
import { FailureError } from "../../src/errors.js";

function tempDir(): string {
  return mkdtempSync(path.join(tmpdir(), "imgtool-inputs-"));
}

const noStack = (s: string) =>
  assert.doesNotMatch(s, /^\s+at .+:\d+:\d+\)?$/m, `unexpected stack trace:\n${s}`);

describe("cli: bad input is echoed as typed", () => {
  for (const [args, flag, typed] of [
    [["launch", "--task-runners", "abc", "--dry-run"], "--task-runners", "abc"],
    [["prune", "--keep", "three", "--dry-run"], "--keep", "three"],
    [["launch", "--task-runners=1x", "--dry-run"], "--task-runners", "1x"],
  ] as const) {
    test(`${args.join(" ")}: exit 2, the value as typed, never NaN`, async () => {
      const dir = tempDir();
      const config = path.join(dir, "c.yaml");
      writeFileSync(config, `local:\n  state_dir: ${path.join(dir, "state")}\n`);
      const r = await runCli([...args, "--config", config]);
      assert.equal(r.code, 2, r.stderr);
      assert.ok(r.stderr.includes(`${flag} "${typed}" is not a number`), r.stderr);
      assert.match(r.stderr, /fix: Give a whole number, e\.g\. --/);
      assert.doesNotMatch(r.stderr, /NaN/);
      noStack(r.stderr);
    });
  }

  test("an unknown command suggests the closest one", async () => {
    const r = await runCli(["stauts"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /Unknown command "stauts": did you mean `imgtool status`\?/);
    assert.match(r.stderr, /fix: Run `imgtool status --help`/);
  });

  test("--json errors carry no absent fields", async () => {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let json = "";
    stdout.on("data", (c) => (json += c));
    const code = new Output({ json: true, verbose: false, stdout, stderr }).error(
      new FailureError("it broke"),
    );
    assert.equal(code, 1);
    assert.deepEqual(JSON.parse(json), { error: { message: "it broke", exitCode: 1 } });
    assert.doesNotMatch(json, /null/);
  });

  test("--json usage error from the real CLI: message, fix, exit code; nothing null", async () => {
    const r = await runCli(["stauts", "--json"]);
    assert.equal(r.code, 2);
    const doc = JSON.parse(r.stdout) as { error: Record<string, unknown> };
    assert.deepEqual(Object.keys(doc.error).sort(), ["exitCode", "fix", "message"]);
    assert.doesNotMatch(r.stdout, /null/);
  });
});

describe("cli: config files that are not YAML text", () => {
  test("a YAML error is one message with line and column", async () => {
    const file = path.join(tempDir(), "bad.yaml");
    writeFileSync(file, 'pipeline: x\na: [1, 2\nb: {\n  c: "x\n');
    const r = await runCli(["config", "validate", "--config", file]);
    assert.equal(r.code, 2);
    const yamlErrors = r.stderr.split("\n").filter((l) => l.includes("YAML error"));
    assert.equal(yamlErrors.length, 1, r.stderr);
    assert.match(yamlErrors[0]!, /bad\.yaml:\d+:\d+: YAML error: .+ \(line \d+, column \d+\)$/);
    assert.doesNotMatch(yamlErrors[0]!, /at line \d+, column \d+:/);
  });

  test("a binary config is refused by name; its bytes are not printed", async () => {
    const file = path.join(tempDir(), "imgtool.config.yaml");
    writeFileSync(file, Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, 0, 0, 0x1b, 0x5b, 0x32, 0x4a]));
    const r = await runCli(["config", "validate", "--config", file]);
    assert.equal(r.code, 2);
    assert.ok(r.stderr.includes(`${file} is a binary file (a NUL byte at offset 7)`), r.stderr);
    assert.match(r.stderr, /fix: Pass the YAML config file/);
    assert.doesNotMatch(r.stderr, /ELF|\\u0000/);
    assert.ok(!r.stderr.includes(String.fromCharCode(0x1b)), "raw escape bytes printed");
  });

  test("a non-UTF-8 config is refused by name", async () => {
    const file = path.join(tempDir(), "latin1.yaml");
    writeFileSync(file, Buffer.from("pipeline: caf\xe9\n", "latin1"));
    const r = await runCli(["config", "validate", "--config", file]);
    assert.equal(r.code, 2);
    assert.ok(r.stderr.includes(`${file} is not UTF-8 text`), r.stderr);
    assert.match(r.stderr, /iconv/);
  });
});
