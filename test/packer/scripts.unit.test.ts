// The provisioning scripts' convention (two-line header, strict mode, common.sh, a self-check; shellcheck judges
// them in scripts-lint.test.ts, too slow for the unit layer)
// and the shared helpers of lib/common.sh: OS detection from /etc/os-release, the env file and its precedence,
// required variables, retries, JSON strings.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { projectPath } from "../../src/paths.js";
import { shellWord } from "../../src/render/escape.js";
import { run, tempDir } from "../render/helpers.js";

const DIR = projectPath("packer", "scripts");
const COMMON = path.join(DIR, "lib", "common.sh");
const scripts = readdirSync(DIR).filter((f) => f.endsWith(".sh"));

/** Run bash code after sourcing common.sh, with the given environment only (plus PATH). */
function withCommon(code: string, env: Record<string, string> = {}) {
  return run(["bash", "-c", `set -o errexit -o nounset -o pipefail; . ${shellWord(COMMON)}; ${code}`], {
    env: { IMGTOOL_STEP: "test", ...env },
  });
}

describe("provisioning scripts: one convention", () => {
  for (const f of scripts) {
    test(`${f}: shebang, two-line header (what, why), strict mode, common.sh, a self-check`, () => {
      const lines = readFileSync(path.join(DIR, f), "utf8").split("\n");
      assert.equal(lines[0], "#!/usr/bin/env bash");
      assert.match(lines[1]!, new RegExp(`^# ${f.replace(".", "\\.")}: \\S`));
      assert.match(lines[2]!, /^# \S/);
      assert.ok(lines.includes("set -o errexit -o nounset -o pipefail"), "strict mode");
      assert.ok(
        lines.includes('. "${IMGTOOL_COMMON:-$(dirname "${BASH_SOURCE[0]}")/lib/common.sh}"'),
        "sources lib/common.sh (beside it, or where Packer uploaded it)",
      );
      assert.ok(
        lines.some((l) => /^# Self-check/.test(l)),
        "has a self-check at its end",
      );
    });
  }
});

describe("lib/common.sh", () => {
  test("detect_os: dnf on Amazon Linux 2023, apt on Debian and Ubuntu, a clear error elsewhere", () => {
    const dir = tempDir("os-release");
    const fakeBin = path.join(dir, "bin");
    mkdirSync(fakeBin);
    writeFileSync(path.join(fakeBin, "dnf"), "#!/bin/sh\nexit 0\n");
    chmodSync(path.join(fakeBin, "dnf"), 0o755);
    const cases: [string, string, string][] = [
      [
        "amzn",
        'NAME="Amazon Linux"\nVERSION_ID="2023"\nID="amzn"\nID_LIKE="fedora"\nPRETTY_NAME="Amazon Linux 2023.6.20241212"\n',
        "dnf amzn 2023 Amazon Linux 2023.6.20241212",
      ],
      [
        "debian",
        'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n',
        "apt debian 12 Debian GNU/Linux 12 (bookworm)",
      ],
      [
        "ubuntu",
        'PRETTY_NAME="Ubuntu 24.04.1 LTS"\nID=ubuntu\nID_LIKE=debian\nVERSION_ID="24.04"\n',
        "apt ubuntu 24.04 Ubuntu 24.04.1 LTS",
      ],
    ];
    try {
      for (const [name, content, want] of cases) {
        writeFileSync(path.join(dir, name), content);
        const r = withCommon('detect_os; echo "$PKG $OS_ID $OS_VERSION_ID $OS_NAME"', {
          IMGTOOL_OS_RELEASE: path.join(dir, name),
          PATH: `${fakeBin}:${process.env.PATH}`,
        });
        assert.equal(r.code, 0, r.out);
        assert.equal(r.stdout.trim(), want);
      }
      writeFileSync(path.join(dir, "alpine"), "ID=alpine\nVERSION_ID=3.20\n");
      const bad = withCommon("detect_os", { IMGTOOL_OS_RELEASE: path.join(dir, "alpine") });
      assert.notEqual(bad.code, 0);
      assert.match(
        bad.out,
        /imgtool\[test\]: error: unsupported OS .*dnf \(Amazon Linux 2023\) and apt \(Debian, Ubuntu\)/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the env file: read without expanding anything; a value already in the environment wins", () => {
    const dir = tempDir("env-file");
    const hostile = "a'b\"c $(touch pwned) `touch pwned` ${HOME}\nline2 ü";
    try {
      writeFileSync(
        path.join(dir, "build.env"),
        `IMGTOOL_A=${shellWord(hostile)}\nIMGTOOL_B=${shellWord("from file")}\n`,
      );
      const r = withCommon('printf "%s|%s" "$IMGTOOL_A" "$IMGTOOL_B"', {
        IMGTOOL_ENV_FILE: path.join(dir, "build.env"),
        IMGTOOL_B: "from env",
      });
      assert.equal(r.code, 0, r.out);
      assert.equal(r.stdout, `${hostile}|from env`);
      assert.deepEqual(readdirSync(dir), ["build.env"], "nothing executed");
      const missing = withCommon("true", { IMGTOOL_ENV_FILE: path.join(dir, "nope.env") });
      assert.notEqual(missing.code, 0);
      assert.match(missing.out, /IMGTOOL_ENV_FILE=.*nope\.env is not readable/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("require_var and require_set name the missing variable", () => {
    const r = withCommon("require_var IMGTOOL_X");
    assert.notEqual(r.code, 0);
    assert.match(r.out, /IMGTOOL_X is required/);
    assert.equal(withCommon("require_set IMGTOOL_EMPTY", { IMGTOOL_EMPTY: "" }).code, 0);
    assert.match(
      withCommon("require_set IMGTOOL_UNSET").out,
      /IMGTOOL_UNSET must be set \(empty means none\)/,
    );
  });

  test("retry: runs until success, gives up after N attempts", () => {
    const dir = tempDir("retry");
    try {
      const ok = withCommon(`n=0; f() { n=$((n+1)); [ $n -ge 3 ]; }; retry 5 0 f; echo "tries=$n"`);
      assert.equal(ok.code, 0, ok.out);
      assert.match(ok.stdout, /tries=3/);
      const no = withCommon("retry 2 0 false");
      assert.notEqual(no.code, 0);
      assert.match(no.out, /gave up after 2 attempts: false/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("json_str: any value becomes a JSON string that parses back to it", () => {
    for (const v of [
      "plain",
      'q"uote \\ back',
      "new\nline\ttab\rcr",
      "\u0001ctl\u001f",
      "ünïcødé ✓",
      "$(x) `y` ${z}",
    ]) {
      const r = withCommon(`json_str ${shellWord(v)}`);
      assert.equal(r.code, 0, r.out);
      assert.equal(JSON.parse(r.stdout), v);
    }
  });
});
