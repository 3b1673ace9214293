// The real CLI (compiled, bin/imgtool) as a user runs it: help, exit codes, --json, config errors, the
// catalog commands on the local target, and AWS credentials missing on the aws target.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { runCli } from "../support/cli.js";
import { projectPath } from "../../src/paths.js";
import { Catalog, versionName } from "../../src/catalog/catalog.js";
import { SqliteStore } from "../../src/catalog/sqlite-store.js";

const pkg = JSON.parse(readFileSync(projectPath("package.json"), "utf8")) as { version: string };

function tempProject(config = ""): { dir: string; config: string; state: string } {
  const dir = mkdtempSync(path.join(tmpdir(), "imgtool-cli-"));
  const state = path.join(dir, "state");
  const file = path.join(dir, "imgtool.config.yaml");
  writeFileSync(file, `local:\n  state_dir: ${state}\n${config}`);
  return { dir, config: file, state };
}

const noStack = (s: string) =>
  assert.doesNotMatch(s, /^\s+at .+\(.*:\d+:\d+\)$/m, `unexpected stack trace:\n${s}`);

describe("cli: help and exit codes", () => {
  test("--help lists every command and exits 0", async () => {
    const r = await runCli(["--help"]);
    assert.equal(r.code, 0);
    for (const c of ["render", "bake", "push", "launch", "status", "rollback", "prune", "doctor", "config"]) {
      assert.match(r.stdout, new RegExp(`imgtool ${c}`), `${c} missing from --help`);
    }
    assert.match(r.stdout, /Exit codes: 0 success, 1 failure, 2 usage or config error/);
  });

  test("the help rendered at build time (the fast path of `imgtool --help`) is what yargs renders now", async () => {
    const cached = await runCli(["--help"]);
    const live = await runCli(["--help"], { env: { IMGTOOL_NO_HELP_CACHE: "1" } });
    assert.equal(live.code, 0);
    assert.equal(cached.stdout, live.stdout, "dist/help.txt is stale: npm run build");
  });

  test("--version prints the package version", async () => {
    const r = await runCli(["--version"]);
    assert.equal(r.code, 0);
    assert.equal(r.stdout.trim(), pkg.version);
  });

  for (const cmd of [
    ["bake", "ami"],
    ["push", "image"],
    ["launch"],
    ["prune"],
    ["render", "--out", "x"],
    ["status"],
    ["rollback"],
    ["doctor"],
  ]) {
    test(`\`imgtool ${cmd[0]}${cmd[1] && !cmd[1].startsWith("-") ? ` ${cmd[1]}` : ""} --help\` teaches with examples`, async () => {
      const r = await runCli([...cmd, "--help"]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /Examples:/);
    });
  }

  test("an unknown command or option is a usage error (exit 2)", async () => {
    const r1 = await runCli(["bogus"]);
    assert.equal(r1.code, 2);
    assert.match(r1.stderr, /Unknown argument: bogus/);
    const r2 = await runCli(["status", "--colour"]);
    assert.equal(r2.code, 2);
    assert.match(r2.stderr, /Unknown arguments?: colour/);
  });

  test("an unknown role is a usage error naming the choices", async () => {
    const r = await runCli(["status", "--role", "builder"]);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /Invalid values:[\s\S]*role, Given: "builder", Choices: "task-runner", "orchestrator", "all"/,
    );
  });

  test("--json: usage errors are one JSON document on stdout too", async () => {
    const p = tempProject();
    const r = await runCli([
      "rollback",
      "--role",
      "task-runner",
      "--kind",
      "ami",
      "--json",
      "--config",
      p.config,
    ]);
    assert.equal(r.code, 2);
    const doc = JSON.parse(r.stdout) as { error: { message: string; exitCode: number } };
    assert.equal(doc.error.exitCode, 2);
    assert.match(doc.error.message, /No AMI of role task-runner/);
  });
});

describe("cli: config errors are clear, exit 2, and write nothing", () => {
  test("an invalid config names every bad key", async () => {
    const p = tempProject(
      "pipeline: Bad\nroles:\n  task-runner:\n    ruby:\n      versions: ['3.3', 'three']\n",
    );
    const r = await runCli(["status", "--config", p.config]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /pipeline: "Bad" is not allowed/);
    assert.match(
      r.stderr,
      /roles\.task-runner\.ruby\.versions\[1\]: "three" is not allowed: must be a Ruby version/,
    );
    assert.match(r.stderr, /fix: /);
    noStack(r.stderr);
    assert.throws(() => readFileSync(path.join(p.state, "catalog.db")), /ENOENT/, "nothing was written");
  });

  test("an unreadable config file", async () => {
    const r = await runCli(["status", "--config", "/nonexistent/imgtool.yaml"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--config \/nonexistent\/imgtool\.yaml: .* does not exist/);
    noStack(r.stderr);
  });

  test("config validate / get / schema", async () => {
    const p = tempProject("pipeline: nightly\n");
    const v = await runCli(["config", "validate", "--config", p.config]);
    assert.equal(v.code, 0);
    assert.match(v.stdout, /valid/);
    const g = await runCli(["config", "get", "aws.ssm_prefix", "--config", p.config]);
    assert.equal(g.stdout.trim(), "/imgtool/nightly");
    const gj = await runCli(["config", "get", "local.registry_port", "--json", "--config", p.config]);
    assert.deepEqual(JSON.parse(gj.stdout), { path: "local.registry_port", value: 5000 });
    const bad = await runCli(["config", "get", "local.nope", "--config", p.config]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /config path "local\.nope" does not exist/);
    const s = await runCli(["config", "schema"]);
    assert.equal((JSON.parse(s.stdout) as { title: string }).title, "imgtool config");
  });
});

describe("cli: status and rollback on the local catalog", () => {
  test("empty catalog, then two versions, then rollback", async () => {
    const p = tempProject();
    const empty = await runCli(["status", "--config", p.config]);
    assert.equal(empty.code, 0);
    assert.match(empty.stdout, /catalog is empty/);

    const store = new SqliteStore(path.join(p.state, "catalog.db"));
    const cat = new Catalog({ store, prefix: "/imgtool/bench" });
    const key = { role: "task-runner", kind: "ami" as const, arch: "x86_64" };
    const v1 = versionName(new Date("2026-11-28T10:00:00Z"), "11111111ffff");
    const v2 = versionName(new Date("2026-11-29T10:00:00Z"), "22222222ffff");
    await cat.publish(key, "sha256:aaa", {
      version: v1,
      inputsHash: "11111111ffff",
      builtAt: "2026-11-28T10:00:00Z",
    });
    await cat.publish(key, "sha256:bbb", {
      version: v2,
      inputsHash: "22222222ffff",
      builtAt: "2026-11-29T10:00:00Z",
    });
    store.close();

    const st = await runCli(["status", "--config", p.config]);
    assert.equal(st.code, 0);
    assert.match(
      st.stdout,
      new RegExp(`task-runner\\s+ami\\s+x86_64\\s+${v2}\\s+${v1}\\s+\\S+\\s+sha256:bbb`),
    );

    const js = await runCli(["status", "--json", "--config", p.config]);
    const doc = JSON.parse(js.stdout) as {
      artifacts: { role: string; current: { version: string }; previous: { version: string } }[];
    };
    assert.equal(doc.artifacts.length, 1);
    assert.equal(doc.artifacts[0]!.current.version, v2);

    const dry = await runCli([
      "rollback",
      "--role",
      "task-runner",
      "--kind",
      "ami",
      "--dry-run",
      "--config",
      p.config,
    ]);
    assert.equal(dry.code, 0);
    assert.match(dry.stdout, /would roll back/);
    const still = JSON.parse((await runCli(["status", "--json", "--config", p.config])).stdout) as typeof doc;
    assert.equal(still.artifacts[0]!.current.version, v2, "--dry-run changed nothing");

    const rb = await runCli(["rollback", "--role", "task-runner", "--kind", "ami", "--config", p.config]);
    assert.equal(rb.code, 0, rb.stderr);
    assert.match(rb.stdout, new RegExp(`latest -> ${v1} \\(was ${v2}\\)`));
    const after = JSON.parse((await runCli(["status", "--json", "--config", p.config])).stdout) as typeof doc;
    assert.equal(after.artifacts[0]!.current.version, v1);

    const none = await runCli(["rollback", "--role", "orchestrator", "--kind", "ami", "--config", p.config]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /No AMI of role orchestrator/);
  });
});

describe("cli: the aws target", () => {
  test("no AWS credentials: exit 2, names the credential chain, no stack trace", async () => {
    const p = tempProject();
    const home = mkdtempSync(path.join(tmpdir(), "imgtool-home-"));
    const env: NodeJS.ProcessEnv = {
      HOME: home,
      AWS_EC2_METADATA_DISABLED: "true",
      AWS_CONFIG_FILE: path.join(home, "none"),
      AWS_SHARED_CREDENTIALS_FILE: path.join(home, "none"),
    };
    for (const k of [
      "AWS_ACCESS_KEY_ID",
      "AWS_SECRET_ACCESS_KEY",
      "AWS_SESSION_TOKEN",
      "AWS_PROFILE",
      "AWS_WEB_IDENTITY_TOKEN_FILE",
      "AWS_CONTAINER_CREDENTIALS_FULL_URI",
      "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    ]) {
      env[k] = "";
    }
    const r = await runCli(["status", "--target", "aws", "--config", p.config], { env });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /No AWS credentials found for the aws target/);
    assert.match(r.stderr, /AWS_ACCESS_KEY_ID/);
    assert.match(r.stderr, /~\/\.aws\/credentials/);
    noStack(r.stderr);
  });
});
