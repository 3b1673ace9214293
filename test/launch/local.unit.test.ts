// The pure parts of a local instance's boot: EC2's user-data size rule as the local target applies it (before
// any engine call), and reading cloud-init's own account of a boot (result.json, status.json, its log lines).
// The samples are cloud-init 22.4.2's own output (Debian 12, the twin's), captured from real boots, trimmed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type Docker from "dockerode";
import { parseConfig } from "../../src/config/load.js";
import { machineArch } from "../../src/config/arch.js";
import { UsageError } from "../../src/errors.js";
import {
  EC2_USER_DATA_TOO_LARGE,
  cloudInitErrors,
  ec2UserDataRefusal,
  logProblems,
  resultErrors,
  statusStages,
} from "../../src/launch/cloud-init.js";
import { localBackend, stackForwardChain } from "../../src/launch/local.js";
import type { GroupRequest } from "../../src/launch/types.js";
import { USER_DATA_LIMIT } from "../../src/render/user-data.js";

const RESULT_FAILED = `{
 "v1": {
  "datasource": "DataSourceNoCloud [seed=/var/lib/cloud/seed/nocloud][dsmode=net]",
  "errors": [
   "('scripts-user', RuntimeError('Runparts: 1 failures (part-001) in 1 attempted commands'))"
  ]
 }
}`;

const STATUS_FAILED = `{
 "v1": {
  "datasource": "DataSourceNoCloud [seed=/var/lib/cloud/seed/nocloud][dsmode=net]",
  "init": { "errors": [], "finished": 1796270761.0946596, "start": 1796270760.7615302 },
  "init-local": { "errors": [], "finished": 1796270760.4513772, "start": 1796270760.409273 },
  "modules-config": { "errors": [], "finished": 1796270761.836494, "start": 1796270761.5567462 },
  "modules-final": {
   "errors": ["('scripts-user', RuntimeError('Runparts: 1 failures (part-001) in 1 attempted commands'))"],
   "finished": 1796270762.5020359,
   "start": 1796270762.3661916
  },
  "modules-init": { "errors": [], "finished": null, "start": null },
  "stage": null
 }
}`;

const CONSOLE_TEXT_X_SH = [
  "Cloud-init v. 22.4.2 running 'init-local' at Thu, 03 Dec 2026 04:05:52 +0000. Up 11388.51 seconds.",
  "Cloud-init v. 22.4.2 running 'init' at Thu, 03 Dec 2026 04:05:53 +0000. Up 11388.85 seconds.",
  "ci-info: +++++++++++++++++++++++++++Net device info++++++++++++++++++++++++++++",
  "2026-12-03 04:05:53,234 - __init__.py[WARNING]: Unhandled unknown content-type (text/x-sh) userdata: 'b'#!/bin/sh'...'\r",
  "Cloud-init v. 22.4.2 running 'modules:final' at Thu, 03 Dec 2026 04:05:54 +0000. Up 11389.73 seconds.",
  "imgtool-user-data[task-runner]: this line is the user-data's, not cloud-init's [WARNING]: not a log line",
  "Cloud-init v. 22.4.2 finished at Thu, 03 Dec 2026 04:05:54 +0000. Datasource DataSourceNoCloud.  Up 11389.80 seconds",
].join("\n");

const LOG_FAILED = [
  "2026-12-03 04:06:02,480 - subp.py[DEBUG]: Running command ['/var/lib/cloud/instance/scripts/part-001'] with allowed return codes [0] (shell=False, capture=False)",
  "2026-12-03 04:06:02,488 - cc_scripts_user.py[WARNING]: Failed to run module scripts-user (scripts in /var/lib/cloud/instance/scripts)",
  "2026-12-03 04:06:02,488 - util.py[WARNING]: Running module scripts-user (<module 'cloudinit.config.cc_scripts_user'>) failed",
  "Traceback (most recent call last):",
  "[CLOUDINIT] util.py[ERROR]: an Ubuntu-style syslog line",
].join("\n");

test("EC2's user-data rule: 16384 raw bytes are accepted, 16385 refused with EC2's code and words", () => {
  assert.equal(USER_DATA_LIMIT, 16_384);
  assert.equal(ec2UserDataRefusal(0), undefined);
  assert.equal(ec2UserDataRefusal(16_384), undefined);
  assert.deepEqual(ec2UserDataRefusal(16_385), {
    code: "InvalidParameterValue",
    message: "User data is limited to 16384 bytes",
  });
  assert.equal(ec2UserDataRefusal(1_000_000), EC2_USER_DATA_TOO_LARGE);
});

/** A Docker client that fails every call: the local backend must refuse before it reaches the engine. */
function unreachableEngine(calls: string[]): Docker {
  return new Proxy({} as Docker, {
    get: (_t, prop) => {
      if (prop === "then") return undefined;
      return () => {
        calls.push(String(prop));
        throw new Error(`engine called: ${String(prop)}`);
      };
    },
  });
}

function request(size: number): GroupRequest {
  const bytes = Buffer.alloc(size, "#");
  return {
    role: "task-runner",
    instanceType: "local",
    arch: machineArch(),
    count: 2,
    market: "on-demand",
    imageId: "sha256:twin",
    preloadVolume: null,
    userData: { role: "task-runner", text: bytes.toString(), bytes, compression: "none" },
    tags: {},
  };
}

test("the local target refuses user-data over 16384 bytes as EC2's RunInstances does, before any engine call; 16384 bytes go on to the engine", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "imgtool-local-unit-"));
  try {
    const parsed = parseConfig(`local:\n  state_dir: ${dir}\n`, { baseDir: dir });
    assert.ok(parsed.config, parsed.errors.join("\n"));
    const calls: string[] = [];
    const backend = localBackend({
      config: parsed.config,
      docker: unreachableEngine(calls),
      registry: { user: "AWS", passwordFile: path.join(dir, "password") },
      events: () => undefined,
      stateDir: dir,
    });
    await assert.rejects(backend.start(request(16_385), "run-1"), (e: unknown) => {
      assert.ok(e instanceof UsageError, String(e));
      assert.match(e.message, /EC2's error InvalidParameterValue: User data is limited to 16384 bytes/);
      assert.match(e.message, /refused by the local target, as EC2 does/);
      assert.match(e.message, /this user-data is 16385 bytes/);
      assert.match(e.message, /2 x local of task-runner/);
      assert.match(e.fix ?? "", /user_data_compression: gzip/);
      return true;
    });
    assert.deepEqual(calls, [], "the engine was called for refused user-data");

    // Exactly the limit: no refusal; the backend goes on to the engine (which this test does not have).
    await assert.rejects(backend.start(request(16_384), "run-2"), /engine called: /);
    assert.ok(calls.length > 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("result.json: cloud-init's errors of the boot", () => {
  assert.deepEqual(resultErrors(RESULT_FAILED), [
    "('scripts-user', RuntimeError('Runparts: 1 failures (part-001) in 1 attempted commands'))",
  ]);
  assert.deepEqual(resultErrors('{"v1": {"datasource": "DataSourceNoCloud", "errors": []}}'), []);
  assert.deepEqual(resultErrors(""), []);
  assert.deepEqual(resultErrors("{ half written"), []);
});

test("status.json: the stages that ran, in boot order, with their errors; recoverable errors of newer cloud-init too", () => {
  const stages = statusStages(STATUS_FAILED);
  assert.deepEqual(
    stages.map((s) => s.stage),
    ["init-local", "init", "modules-config", "modules-final"],
    "modules-init did not run (start null)",
  );
  assert.ok(stages.every((s) => s.finished));
  assert.deepEqual(stages.at(-1)!.errors, [
    "('scripts-user', RuntimeError('Runparts: 1 failures (part-001) in 1 attempted commands'))",
  ]);
  const newer = statusStages(
    JSON.stringify({
      v1: {
        "modules-final": { errors: [], finished: null, start: 1.5 },
        init: {
          errors: [],
          finished: 1.2,
          start: 1.1,
          recoverable_errors: { WARNING: ["Unhandled unknown content-type (text/x-sh) userdata"] },
        },
      },
    }),
  );
  assert.deepEqual(newer, [
    {
      stage: "init",
      finished: true,
      errors: ["WARNING: Unhandled unknown content-type (text/x-sh) userdata"],
    },
    { stage: "modules-final", finished: false, errors: [] },
  ]);
});

test("cloud-init's log lines: WARNING, ERROR and CRITICAL, without their times; nobody else's lines", () => {
  assert.deepEqual(logProblems(CONSOLE_TEXT_X_SH), [
    "__init__.py[WARNING]: Unhandled unknown content-type (text/x-sh) userdata: 'b'#!/bin/sh'...'",
  ]);
  assert.deepEqual(logProblems(LOG_FAILED), [
    "cc_scripts_user.py[WARNING]: Failed to run module scripts-user (scripts in /var/lib/cloud/instance/scripts)",
    "util.py[WARNING]: Running module scripts-user (<module 'cloudinit.config.cc_scripts_user'>) failed",
    "util.py[ERROR]: an Ubuntu-style syslog line",
  ]);
});

test("cloudInitErrors: result, then each stage, then the log; an error in both result and status once", () => {
  assert.deepEqual(cloudInitErrors({ result: RESULT_FAILED, status: STATUS_FAILED, log: LOG_FAILED }), [
    "result.json: ('scripts-user', RuntimeError('Runparts: 1 failures (part-001) in 1 attempted commands'))",
    "cc_scripts_user.py[WARNING]: Failed to run module scripts-user (scripts in /var/lib/cloud/instance/scripts)",
    "util.py[WARNING]: Running module scripts-user (<module 'cloudinit.config.cc_scripts_user'>) failed",
    "util.py[ERROR]: an Ubuntu-style syslog line",
  ]);
  assert.deepEqual(cloudInitErrors({ status: STATUS_FAILED }), [
    "modules-final: ('scripts-user', RuntimeError('Runparts: 1 failures (part-001) in 1 attempted commands'))",
  ]);
  // An unhandled part is only a WARNING: result.json and status.json are clean, the log says it.
  assert.deepEqual(
    cloudInitErrors({
      result: '{"v1": {"errors": []}}',
      status: '{"v1": {"init": {"errors": [], "start": 1, "finished": 2}}}',
      log: CONSOLE_TEXT_X_SH,
    }),
    ["__init__.py[WARNING]: Unhandled unknown content-type (text/x-sh) userdata: 'b'#!/bin/sh'...'"],
  );
  assert.deepEqual(cloudInitErrors({}), []);
});

test("stackForwardChain: one iptables chain name per instance, within iptables' 28 characters", () => {
  const a = stackForwardChain("imgtool-p-run-1-orchestrator-0");
  const b = stackForwardChain("imgtool-p-run-1-orchestrator-1");
  assert.match(a, /^IMGTOOL-[0-9a-f]{12}$/);
  assert.ok(a.length <= 28);
  assert.notEqual(a, b);
  assert.equal(stackForwardChain("imgtool-p-run-1-orchestrator-0"), a);
});
