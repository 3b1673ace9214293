// The user's smoke check (config smoke.script, issue 9 section 4): the lines rendered for the orchestrator
// instance, judged by running them with this machine's real sh and bash (and shellcheck); the secrets read on
// the "instance" from files (local) or through a stand-in for the AWS CLI (aws; named so in its test); the
// report parsed into the pipeline's outcome; the config checks.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseConfig } from "../../src/config/load.js";
import type { RunOnInstance } from "../../src/aws/run-command.js";
import { isImgtoolError } from "../../src/errors.js";
import {
  RUN_COMMAND_PARAMETERS_MAX_BYTES,
  RUN_COMMAND_STDOUT_MAX_CHARS,
} from "../../src/aws/run-command-limits.js";
import { readSmokeScript, SMOKE_SCRIPT_MAX_BYTES, userSmokeTask } from "../../src/pipeline/smoke-check.js";
import { scriptDetail, smokeLaunch } from "../../src/pipeline/smoke.js";
import {
  smokeCheckAnswerOf,
  smokeCheckLines,
  smokeRunner,
  type SmokeCheckInput,
} from "../../src/render/smoke-check.js";

const SECRET = "s3cr3t-'$(touch /tmp/pwned)`x`-value";

function dir() {
  return mkdtempSync(path.join(tmpdir(), "imgtool-smoke-check-"));
}

/** Run lines as Run Command does (`sh -c`), with an extra PATH folder. */
function runLines(lines: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(
      "sh",
      ["-c", lines.join("\n")],
      { env: { ...process.env, ...env }, timeout: 30_000 },
      (e, stdout) => resolve({ code: e ? Number((e as { code?: number }).code ?? 1) : 0, stdout }),
    );
  });
}

function input(d: string, script: string, over: Partial<SmokeCheckInput> = {}): SmokeCheckInput {
  const secretFile = path.join(d, "api-key");
  writeFileSync(secretFile, SECRET);
  return {
    script: Buffer.from(script),
    env: { API_KEY: "{secret:api-key}", BEARER: "Bearer {secret:api-key}", RUN: "run={run_id}" },
    secretLocations: { "api-key": secretFile, unused: path.join(d, "absent") },
    secretSource: "file",
    values: { run_id: "smoke-abc", orchestrator_url: "http://127.0.0.1:8080", region: "local" },
    imgtoolEnv: { IMGTOOL_ORCHESTRATOR_URL: "http://127.0.0.1:8080", IMGTOOL_WORKERS: "1" },
    timeoutSeconds: 20,
    ...over,
  };
}

describe("smoke check: the lines run on the orchestrator instance (real sh and bash)", () => {
  test("a long output: the report fits in what SSM returns of stdout (the output cut to its last bytes, said so, redacted, then the mark)", async () => {
    const d = dir();
    try {
      const script = [
        "#!/bin/bash",
        "head -c 200000 /dev/urandom | base64 -w 0",
        "echo",
        'echo "the key is $API_KEY"',
        "exit 4",
      ].join("\n");
      const r = await runLines(smokeCheckLines(input(d, script)));
      assert.ok(r.stdout.length < RUN_COMMAND_STDOUT_MAX_CHARS, `${r.stdout.length} characters`);
      assert.ok(!r.stdout.includes(SECRET));
      const answer = smokeCheckAnswerOf(r.stdout);
      assert.ok("exitCode" in answer);
      assert.equal(answer.exitCode, 4);
      assert.match(answer.output, /^imgtool: the script's output is cut to its last 16384 bytes\n/);
      assert.ok(answer.output.endsWith("\nthe key is <secret api-key>"), answer.output.slice(-100));
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  test("the script gets its env, the secret read on the instance; the secret is in no line and redacted from the output", async () => {
    const d = dir();
    const script = [
      "#!/bin/bash",
      'echo "url=$IMGTOOL_ORCHESTRATOR_URL workers=$IMGTOOL_WORKERS $RUN"',
      '[ "$API_KEY" = "$(cat ' + path.join(d, "api-key") + ')" ] && echo key-matches',
      '[ "$BEARER" = "Bearer $API_KEY" ] && echo bearer-matches',
      'echo "the key is $API_KEY"',
      "exit 0",
    ].join("\n");
    const lines = smokeCheckLines(input(d, script));
    assert.ok(!lines.join("\n").includes(SECRET), "the secret's value is not part of the command");
    const r = await runLines(lines);
    assert.equal(r.code, 0);
    const answer = smokeCheckAnswerOf(r.stdout);
    assert.ok("exitCode" in answer, r.stdout);
    assert.equal(answer.exitCode, 0);
    assert.match(answer.output, /url=http:\/\/127\.0\.0\.1:8080 workers=1 run=smoke-abc/);
    assert.match(answer.output, /key-matches/);
    assert.match(answer.output, /bearer-matches/);
    assert.match(answer.output, /the key is <secret api-key>/);
    assert.ok(!r.stdout.includes(SECRET), "the output is redacted");
  });

  test("a failing script: its exit code and its last line, and a script printing a fake mark does not decide", async () => {
    const d = dir();
    const lines = smokeCheckLines(
      input(
        d,
        "#!/bin/sh\necho 'imgtool-smoke-exit 0'\necho 'one'\necho 'no task completed in time' >&2\nexit 3\n",
      ),
    );
    const answer = smokeCheckAnswerOf((await runLines(lines)).stdout);
    assert.ok("exitCode" in answer);
    assert.equal(answer.exitCode, 3);
    const detail = scriptDetail({ name: "check.sh", timeoutSeconds: 20, ...answer });
    assert.equal(
      detail,
      "smoke script check.sh exited with code 3; its last line: no task completed in time",
    );
  });

  test("a script that outlives smoke.timeout_seconds is ended and reported as timed out", async () => {
    const d = dir();
    const lines = smokeCheckLines(
      input(d, "#!/bin/sh\necho waiting\nexec sleep 30\n", { timeoutSeconds: 1 }),
    );
    const answer = smokeCheckAnswerOf((await runLines(lines)).stdout);
    assert.ok("exitCode" in answer);
    assert.equal(answer.exitCode, 124);
    assert.equal(
      scriptDetail({ name: "slow.sh", timeoutSeconds: 1, ...answer }),
      "smoke script slow.sh timed out after 1 s (smoke.timeout_seconds); its last line: waiting",
    );
  });

  test("a secret the instance cannot read: the script does not run, and the report names the secret", async () => {
    const d = dir();
    const i = input(d, "#!/bin/sh\ntouch ran\n");
    const lines = smokeCheckLines({ ...i, secretLocations: { "api-key": path.join(d, "gone") } });
    const answer = smokeCheckAnswerOf((await runLines(lines)).stdout);
    assert.ok("exitCode" in answer);
    assert.equal(answer.exitCode, 125);
    assert.match(
      scriptDetail({ name: "c.sh", timeoutSeconds: 20, ...answer }),
      new RegExp(`^smoke script c\\.sh did not run: could not read the secret api-key \\(file ${d}/gone\\)$`),
    );
  });

  test("aws: the secret is read with the AWS CLI through the instance role (a stand-in for the AWS CLI on PATH)", async () => {
    const d = dir();
    const bin = path.join(d, "bin");
    mkdirSync(bin);
    // The stand-in answers only the exact call the instance must make (region, name, decryption, text output).
    writeFileSync(
      path.join(bin, "aws"),
      [
        "#!/bin/sh",
        'want="ssm get-parameter --region eu-west-1 --name /imgtool/p/secrets/api-key --with-decryption --query Parameter.Value --output text"',
        '[ "$*" = "$want" ] && [ "$AWS_EC2_METADATA_V1_DISABLED" = true ] || { echo "unexpected: $*" >&2; exit 254; }',
        "printf '%s\\n' 'from-ssm'",
      ].join("\n"),
    );
    chmodSync(path.join(bin, "aws"), 0o755);
    const lines = smokeCheckLines({
      ...input(d, '#!/bin/sh\necho "key=$API_KEY"\n'),
      secretSource: "ssm",
      secretLocations: { "api-key": "/imgtool/p/secrets/api-key" },
      values: { region: "eu-west-1", run_id: "r" },
    });
    const r = await runLines(lines, { PATH: `${bin}:${process.env.PATH}` });
    const answer = smokeCheckAnswerOf(r.stdout);
    assert.ok("exitCode" in answer, r.stdout);
    assert.equal(answer.exitCode, 0);
    assert.match(answer.output, /key=<secret api-key>/, "read from SSM, and redacted");
  });

  test("shellcheck passes the runner; bash accepts the lines", () => {
    const d = dir();
    const i = input(d, "#!/bin/sh\nexit 0\n");
    const runner = path.join(d, "runner.sh");
    writeFileSync(runner, smokeRunner(i));
    execFileSync("shellcheck", ["-s", "bash", runner]);
    const lines = path.join(d, "lines.sh");
    writeFileSync(lines, ["#!/bin/sh", ...smokeCheckLines(i)].join("\n") + "\n");
    execFileSync("shellcheck", ["-s", "sh", lines]);
  });

  test("the example's fib-task.sh passes shellcheck", () => {
    execFileSync("shellcheck", [path.resolve("examples/smoke/fib-task.sh")]);
  });
});

describe("smoke check: the pipeline's smoke launch with the user's script", () => {
  test("the task runs on the orchestrator instance; exit 0 passes, another code fails the smoke launch naming it", async () => {
    const d = dir();
    const scriptFile = path.join(d, "check.sh");
    writeFileSync(scriptFile, '#!/bin/sh\necho "checked $IMGTOOL_ORCHESTRATOR_URL"\nexit ${CODE:-0}\n');
    const { config } = parseConfig(
      [
        "secrets:",
        `  api-key: {local_file: ${path.join(d, "key")}}`,
        "smoke:",
        "  script: check.sh",
        "  env: {KEY: '{secret:api-key}', CODE: '{port}'}",
      ].join("\n"),
      { baseDir: d, source: path.join(d, "imgtool.config.yaml") },
    );
    assert.ok(config);
    writeFileSync(path.join(d, "key"), "k");
    const seen: { instanceId: string; lines: string[] }[] = [];
    // The instance's Run Command is this machine's sh; the local secret mount is redirected to the key file.
    const run: RunOnInstance = async (instanceId, script) => {
      seen.push({ instanceId, lines: script });
      const r = await runLines(script);
      return { status: r.code === 0 ? "Success" : "Failed", exitCode: r.code, stdout: r.stdout, stderr: "" };
    };
    const script = await readSmokeScript(config.smoke.script!);
    const launch = (port: number) => async () => ({
      orchestrator: { url: `http://10.0.0.5:${port}`, id: "i-0123", healthy: true },
      instances: [],
    });
    const outcome = (port: number) =>
      smokeLaunch(
        { target: "local", instanceTypes: ["c7i.large"], spot: false, keepOnFailure: false },
        {
          launch: launch(port) as never,
          terminate: async () => {},
          task: userSmokeTask(config, "local", "local", run, script),
        },
        "smoke-run-1",
      );
    // The local secret mount does not exist on this machine: the script does not run, and says why.
    const noSecret = await outcome(0);
    assert.equal(noSecret.passed, false);
    assert.match(
      noSecret.detail,
      /did not run: could not read the secret api-key \(file \/run\/secrets\/imgtool-api-key\)/,
    );
    assert.equal(seen[0]!.instanceId, "i-0123");

    // Without the secret in the env, the port placeholder decides the exit code: 0 passes, 7 fails; the
    // orchestrator's private address becomes its own loopback address on the instance.
    const noKey = { ...config, smoke: { ...config.smoke, env: { CODE: "{port}" } } };
    const task = (c: typeof config) => userSmokeTask(c, "local", "local", run, script);
    const pass = await smokeLaunch(
      { target: "local", instanceTypes: ["c7i.large"], spot: false, keepOnFailure: false },
      { launch: launch(0) as never, terminate: async () => {}, task: task(noKey) },
      "smoke-run-2",
    );
    assert.deepEqual([pass.passed, pass.detail], [true, "smoke script check.sh passed"]);
    const failed = await smokeLaunch(
      { target: "local", instanceTypes: ["c7i.large"], spot: false, keepOnFailure: false },
      { launch: launch(7) as never, terminate: async () => {}, task: task(noKey) },
      "smoke-run-3",
    );
    assert.equal(failed.passed, false);
    assert.match(failed.detail, /exited with code 7; its last line: checked http:\/\/127\.0\.0\.1:7$/);
  });

  test("readSmokeScript: a missing script or a folder is a usage error naming smoke.script (exit 2)", async () => {
    const d = dir();
    for (const [file, what] of [
      [path.join(d, "nope.sh"), "does not exist"],
      [d, "is not a file"],
    ] as const) {
      await assert.rejects(readSmokeScript(file), (e: unknown) => {
        assert.ok(isImgtoolError(e));
        assert.equal(e.exitCode, 2);
        assert.equal(e.message, `smoke.script: ${file} ${what}.`);
        assert.match(e.fix ?? "", /relative to the config file/);
        return true;
      });
    }
    writeFileSync(path.join(d, "big.sh"), "#".repeat(SMOKE_SCRIPT_MAX_BYTES + 1));
    await assert.rejects(readSmokeScript(path.join(d, "big.sh")), (e: unknown) => {
      assert.ok(isImgtoolError(e));
      assert.equal(e.exitCode, 2);
      assert.match(
        e.message,
        new RegExp(
          `^smoke\\.script: .*big\\.sh has ${SMOKE_SCRIPT_MAX_BYTES + 1} bytes; a smoke script may have at most ${SMOKE_SCRIPT_MAX_BYTES} \\(it travels base64 in the SSM Run Command`,
        ),
      );
      assert.match(e.fix ?? "", /bake what it needs/);
      return true;
    });
  });

  test("readSmokeScript with the config: the whole Run Command (script base64, runner, env) is measured against SSM's limit", async () => {
    const d = dir();
    try {
      const file = path.join(d, "max.sh");
      // The largest script the cap allows, as incompressible as base64 makes anything: it fits with its runner.
      writeFileSync(file, Buffer.alloc(SMOKE_SCRIPT_MAX_BYTES, 0xff));
      const configWith = (env: string) => {
        const { config } = parseConfig(`smoke:\n  script: max.sh\n${env}`, {
          baseDir: d,
          source: path.join(d, "imgtool.config.yaml"),
        });
        assert.ok(config);
        return config;
      };
      const script = await readSmokeScript(file, {
        config: configWith(""),
        target: "aws",
        region: "eu-west-1",
      });
      assert.equal(script.length, SMOKE_SCRIPT_MAX_BYTES);
      // The same script with a long smoke.env value: the command would be over; named, with its size.
      const big = configWith(`  env: {NOTES: '${"n".repeat(12 * 1024)}'}\n`);
      await assert.rejects(
        readSmokeScript(file, { config: big, target: "aws", region: "eu-west-1" }),
        (e: unknown) => {
          assert.ok(isImgtoolError(e));
          assert.equal(e.exitCode, 2);
          assert.match(
            e.message,
            new RegExp(
              `^smoke\\.script: .*max\\.sh \\(${SMOKE_SCRIPT_MAX_BYTES} bytes\\) with its runner and smoke\\.env makes a Run Command of \\d+ bytes; SSM Run Command takes at most ${RUN_COMMAND_PARAMETERS_MAX_BYTES} `,
            ),
          );
          assert.match(e.fix ?? "", /smoke\.env/);
          return true;
        },
      );
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});

describe("smoke check: config", () => {
  const errorsOf = (yaml: string) => parseConfig(yaml, { baseDir: "/x", source: "/x/c.yaml" }).errors;

  test("the script's path is made absolute against the config's folder; defaults: no script, 300 s", () => {
    const { config } = parseConfig("smoke: {script: checks/smoke.sh}", {
      baseDir: "/x",
      source: "/x/c.yaml",
    });
    assert.equal(config?.smoke.script, "/x/checks/smoke.sh");
    const d = parseConfig("", { baseDir: "/x", source: null }).config!;
    assert.deepEqual(d.smoke, { env: {}, timeout_seconds: 300 });
  });

  test("errors name the key: an undeclared secret, a placeholder the smoke script cannot know, a bad timeout", () => {
    const errors = errorsOf(
      "smoke: {script: s.sh, env: {A: '{secret:nope}', B: '{worker_index}', C: '{bad'}, timeout_seconds: 5}",
    );
    assert.ok(
      errors.some((e) => e.startsWith("smoke.timeout_seconds:") && /between 10 and 3600/.test(e)),
      errors.join("\n"),
    );
    const rules = errorsOf(
      "smoke: {script: s.sh, env: {A: '{secret:nope}', B: '{worker_index}', C: '{bad'}}",
    );
    assert.ok(
      rules.some((e) => /^smoke\.env\.A: uses \{secret:nope\}, which is not declared/.test(e)),
      rules.join("\n"),
    );
    assert.ok(
      rules.some((e) => /^smoke\.env\.B: \{worker_index\} is not known to the smoke script/.test(e)),
      rules.join("\n"),
    );
    assert.ok(
      rules.some((e) => /^smoke\.env\.C: "\{bad" is not allowed/.test(e)),
      rules.join("\n"),
    );
  });
});
