import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseConfig, loadConfig, formatPath } from "../../src/config/load.js";
import { ConfigError, UsageError } from "../../src/errors.js";
import { projectPath } from "../../src/paths.js";
import { configKeys, exampleYaml, withReference } from "../../src/config/docs.js";
import { configJsonSchema } from "../../src/config/json-schema.js";

const base = { source: "test.yaml", baseDir: "/work/project" };

function errorsOf(yaml: string): string[] {
  const r = parseConfig(yaml, base);
  assert.equal(r.config, undefined, "expected the config to be refused");
  return r.errors;
}

describe("config: defaults", () => {
  test("no file at all gives a working local config", () => {
    const r = parseConfig("", { baseDir: "/p" });
    assert.deepEqual(r.errors, []);
    const c = r.config!;
    assert.equal(c.pipeline, "bench");
    assert.equal(c.local.registry_port, 5000);
    assert.equal(c.local.state_dir, "/p/.imgtool");
    assert.equal(c.aws.ssm_prefix, "/imgtool/bench");
    assert.equal(c.aws.ecr.repositories["task-runner"], "bench/task-runner");
    assert.equal(c.roles["task-runner"].workers_per_instance, "auto");
    assert.equal(c.roles.orchestrator.workers_per_instance, 1);
    assert.equal(c.roles["task-runner"].app.context, "/p/examples/task-runner");
    assert.equal(c.roles["task-runner"].base.local.image, "imgtool/base:bookworm");
  });

  test("defaults come from the versions manifest", () => {
    const versions = JSON.parse(readFileSync(projectPath("packer", "versions.json"), "utf8"));
    const c = parseConfig("", { baseDir: "/p" }).config!;
    assert.deepEqual(c.roles["task-runner"].ruby.versions, versions.ruby.default_versions);
    assert.equal(c.roles.orchestrator.ruby_bench.ref, versions.ruby_bench.ref);
    assert.equal(c.roles.orchestrator.base.aws.name.arm64, versions.aws_base.arm64.name);
  });

  test("the pipeline name flows into the SSM prefix and ECR names unless set", () => {
    const c = parseConfig("pipeline: nightly\naws:\n  ssm_prefix: /teams/perf\n", base).config!;
    assert.equal(c.aws.ssm_prefix, "/teams/perf");
    assert.equal(c.aws.ecr.repositories.orchestrator, "nightly/orchestrator");
  });

  test("ssm_prefix: SSM's reserved /aws and /ssm names and too deep a hierarchy are config errors naming the key", () => {
    for (const [prefix, why] of [
      ["/aws/imgtool", /must not begin with \/aws or \/ssm/],
      ["/SSM", /must not begin with \/aws or \/ssm/],
      ["/a/b/c/d/e/f/g/h/i/j/k/l", /too many levels: SSM allows 15 and the catalog adds 4/],
    ] as const) {
      const r = parseConfig(`aws:\n  ssm_prefix: ${prefix}\n`, base);
      assert.equal(r.config, undefined, prefix);
      assert.ok(
        r.errors.some((e) => e.includes("aws.ssm_prefix") && why.test(e)),
        r.errors.join("\n"),
      );
    }
    assert.ok(parseConfig("aws:\n  ssm_prefix: /a/b/c/d/e/f/g/h/i/j/k\n", base).config, "11 levels fit");
    assert.ok(parseConfig("aws:\n  ssm_prefix: /awsome/x\n", base).config === undefined, "begins with /aws");
  });

  test("aws.instance_role: a name, after its IAM path if it has one; anything else names the key", () => {
    for (const ok of ["imgtool-instance", "ci/imgtool-instance", "/ci/team/imgtool-instance"])
      assert.equal(parseConfig(`aws:\n  instance_role: ${ok}\n`, base).config?.aws.instance_role, ok);
    for (const bad of [
      "ci/",
      "imgtool instance",
      "ci//imgtool",
      "arn:aws:iam::123456789012:role/x",
      "a".repeat(65),
    ]) {
      const r = parseConfig(`aws:\n  instance_role: ${JSON.stringify(bad)}\n`, base);
      assert.equal(r.config, undefined, bad);
      assert.ok(
        r.errors.some((e) => e.includes("aws.instance_role") && /must be an IAM role name/.test(e)),
        r.errors.join("\n"),
      );
    }
  });

  test("the example config parses to exactly the defaults", () => {
    const text = readFileSync(projectPath("imgtool.config.example.yaml"), "utf8");
    const r = parseConfig(text, { source: "example", baseDir: projectPath() });
    assert.deepEqual(r.errors, []);
    const defaults = parseConfig("", { baseDir: projectPath() }).config!;
    assert.deepEqual({ ...r.config, source: null }, defaults);
  });

  test("the example documents every key of the schema", () => {
    const text = readFileSync(projectPath("imgtool.config.example.yaml"), "utf8");
    const lines = text.split("\n");
    for (const k of configKeys()) {
      const leaf = k.path.split(".").at(-1)!;
      assert.ok(
        lines.some((l) => new RegExp(`^\\s*(# )?${leaf.replace(/[-.]/g, "\\$&")}:`).test(l)),
        `${k.path} is not in the example`,
      );
    }
  });

  test("generated documents (JSON Schema, example, README reference) are current", () => {
    assert.equal(readFileSync(projectPath("imgtool.config.example.yaml"), "utf8"), exampleYaml());
    assert.deepEqual(
      JSON.parse(readFileSync(projectPath("imgtool.config.schema.json"), "utf8")),
      configJsonSchema(),
    );
    const readme = readFileSync(projectPath("README.md"), "utf8");
    assert.equal(readme, withReference(readme), "README's config reference is stale: run npm run schema");
  });
});

describe("config: errors name the path, the value and what is allowed", () => {
  test("a bad list item names its index", () => {
    const errs = errorsOf(
      "roles:\n  task-runner:\n    ruby:\n      versions: ['3.3', '3.x']\n      method: ruby-build\n",
    );
    assert.deepEqual(errs, [
      'roles.task-runner.ruby.versions[1]: "3.x" is not allowed: must be a Ruby version such as 3.3 or 3.3.6',
    ]);
  });

  test("unknown keys are errors, with a suggestion", () => {
    const errs = errorsOf("pipline: x\nroles:\n  task-runner:\n    rubby: {}\n");
    assert.ok(
      errs.includes(
        'pipline: unknown key (did you mean "pipeline"?); allowed here: pipeline, roles, secrets, smoke, boot_budget, aws, launch, local, calibration',
      ),
      errs.join("\n"),
    );
    assert.ok(
      errs.some((e) => e.startsWith('roles.task-runner.rubby: unknown key (did you mean "ruby"?)')),
      errs.join("\n"),
    );
  });

  test("an unknown role names the roles that exist", () => {
    const errs = errorsOf("roles:\n  builder: {}\n");
    assert.deepEqual(errs, ["roles.builder: unknown key; allowed here: task-runner, orchestrator"]);
  });

  test("wrong types say what was given and what is expected", () => {
    const errs = errorsOf("local:\n  registry_port: '5000'\n");
    assert.deepEqual(errs, ['local.registry_port: "5000" is a string, expected number']);
  });

  test("out-of-range numbers and bad enums", () => {
    assert.deepEqual(errorsOf("local:\n  registry_port: 80\n"), [
      "local.registry_port: 80 is not allowed: must be between 1024 and 65535",
    ]);
    assert.deepEqual(errorsOf("roles:\n  orchestrator:\n    ruby:\n      method: rvm\n"), [
      'roles.orchestrator.ruby.method: "rvm" is not allowed: must be one of distro, ruby-build, tarball',
    ]);
    assert.deepEqual(errorsOf("roles:\n  task-runner:\n    workers_per_instance: many\n"), [
      'roles.task-runner.workers_per_instance: "many" is not allowed; use "auto", "calibrated" or a whole number from 1 to 192',
    ]);
    // CPU isolation is a task runner's (its workers' CPUs); an orchestrator's is refused, not ignored.
    assert.deepEqual(errorsOf("roles:\n  orchestrator:\n    cpu:\n      isolate: true\n"), [
      "roles.orchestrator.cpu.isolate: true is not allowed: only task runners' CPUs are isolated: set it to false or leave it out",
    ]);
    assert.equal(
      parseConfig("roles:\n  task-runner:\n    cpu:\n      isolate: false\n", base).config?.roles[
        "task-runner"
      ].cpu.isolate,
      false,
    );
  });

  test("rules across keys", () => {
    assert.deepEqual(errorsOf("roles:\n  task-runner:\n    ruby:\n      method: tarball\n"), [
      'roles.task-runner.ruby.tarball_url: is required when ruby.method is "tarball" (a URL with {version} and {arch})',
    ]);
    const errs = errorsOf("roles:\n  task-runner:\n    ruby:\n      versions: ['3.3', '3.4']\n");
    assert.match(
      errs[0]!,
      /^roles\.task-runner\.ruby\.versions: \["3\.3","3\.4"\] is not allowed with method "distro"/,
    );
    assert.match(
      errorsOf("roles:\n  orchestrator:\n    app:\n      dockerfile: ../Dockerfile\n")[0]!,
      /app\.dockerfile: "\.\.\/Dockerfile"/,
    );
    assert.deepEqual(errorsOf("aws:\n  regions: [us-east-1, us-east-1]\n"), [
      'aws.regions: "us-east-1" is listed twice',
    ]);
  });

  test("invalid YAML names the line and column", () => {
    const errs = errorsOf("pipeline: bench\nroles: [\n");
    assert.equal(errs.length, 1);
    assert.match(errs[0]!, /^test\.yaml:\d+:\d+: YAML error: /);
  });

  test("a top level that is not a mapping", () => {
    assert.deepEqual(errorsOf("- a\n- b\n"), [
      '(top level): ["a","b"] is not allowed: the config must be a YAML mapping',
    ]);
  });

  test("formatPath", () => {
    assert.equal(
      formatPath(["roles", "task-runner", "ruby", "versions", 1]),
      "roles.task-runner.ruby.versions[1]",
    );
    assert.equal(formatPath([]), "(top level)");
  });
});

describe("config: loading files", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "imgtool-config-"));

  test("an absent default file means built-in defaults", () => {
    const { config } = loadConfig("imgtool.config.yaml", { explicit: false, cwd: dir });
    assert.equal(config.source, null);
    assert.equal(config.local.state_dir, path.join(dir, ".imgtool"));
  });

  test("an explicitly named file that does not exist is a usage error", () => {
    assert.throws(
      () => loadConfig("missing.yaml", { explicit: true, cwd: dir }),
      (e: unknown) =>
        e instanceof UsageError &&
        e.exitCode === 2 &&
        /--config missing\.yaml: .*does not exist/.test(e.message),
    );
  });

  test("a folder given as config is a usage error", () => {
    assert.throws(
      () => loadConfig(dir, { explicit: true }),
      (e: unknown) => e instanceof UsageError && /is a folder/.test(e.message),
    );
  });

  test("relative paths resolve against the config file's folder", () => {
    const f = path.join(dir, "c.yaml");
    writeFileSync(f, "local:\n  state_dir: state\nroles:\n  task-runner:\n    app:\n      context: app\n");
    const { config } = loadConfig(f, { explicit: true });
    assert.equal(config.local.state_dir, path.join(dir, "state"));
    assert.equal(config.roles["task-runner"].app.context, path.join(dir, "app"));
  });

  test("an invalid file is a ConfigError listing every problem", () => {
    const f = path.join(dir, "bad.yaml");
    writeFileSync(f, "pipeline: BAD\nlocal:\n  registry_port: 1\n");
    assert.throws(
      () => loadConfig(f, { explicit: true }),
      (e: unknown) => e instanceof ConfigError && e.problems.length === 2 && e.exitCode === 2,
    );
  });

  test("ruby_bench.repository: URL or local path is decided once, at load (localPath)", () => {
    const rb = (repo: string) =>
      parseConfig(`roles:\n  task-runner:\n    ruby_bench:\n      repository: "${repo}"\n`, { baseDir: "/p" })
        .config!.roles["task-runner"].ruby_bench;
    for (const url of [
      "https://github.com/ruby/ruby-bench.git",
      "git@github.com:ruby/ruby-bench.git",
      "ssh://git@example.com/r.git",
    ]) {
      assert.deepEqual(rb(url), { repository: url, ref: rb(url).ref }, `${url} is remote: no localPath`);
    }
    assert.deepEqual(
      [rb("fixtures/rb").repository, rb("fixtures/rb").localPath],
      ["/p/fixtures/rb", "/p/fixtures/rb"],
      "a relative path is made absolute against the config's folder",
    );
    assert.deepEqual(
      [rb("file:///srv/rb").repository, rb("file:///srv/rb").localPath],
      ["file:///srv/rb", "/srv/rb"],
      "a file:// URL stays as git reads it, and is a local folder",
    );
  });
});
