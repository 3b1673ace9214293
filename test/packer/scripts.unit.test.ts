// What the provisioning scripts and their shell library do, run by bash in a temporary folder with stand-ins for
// the system's commands on PATH (apt-get, dpkg-query, cloud-init, sleep): core.sh's retry, die, log and warn;
// lib/common.sh's OS detection, env file, required variables and JSON strings; a script's self-check failing the
// step when its work did not happen. Also the scripts' one convention (header, strict mode, common.sh). shellcheck
// judges them in scripts-lint.test.ts (it takes seconds, too slow for the unit layer).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { projectPath } from "../../src/paths.js";
import { shellWord } from "../../src/render/escape.js";
import { run, tempDir } from "../render/helpers.js";

const DIR = projectPath("packer", "scripts");
const COMMON = path.join(DIR, "lib", "common.sh");
const CORE = path.join(DIR, "lib", "core.sh");
const scripts = readdirSync(DIR).filter((f) => f.endsWith(".sh"));

/** Run bash code after sourcing common.sh, with the given environment only (plus PATH). */
function withCommon(code: string, env: Record<string, string> = {}) {
  return run(["bash", "-c", `set -o errexit -o nounset -o pipefail; . ${shellWord(COMMON)}; ${code}`], {
    env: { IMGTOOL_STEP: "test", ...env },
  });
}

describe("provisioning scripts: one convention", () => {
  for (const f of scripts) {
    test(`${f}: shebang, two-line header (what, why), strict mode, common.sh`, () => {
      const lines = readFileSync(path.join(DIR, f), "utf8").split("\n");
      assert.equal(lines[0], "#!/usr/bin/env bash");
      assert.match(lines[1]!, new RegExp(`^# ${f.replace(".", "\\.")}: \\S`));
      assert.match(lines[2]!, /^# \S/);
      assert.ok(lines.includes("set -o errexit -o nounset -o pipefail"), "strict mode");
      assert.ok(
        lines.includes('. "${IMGTOOL_COMMON:-$(dirname "${BASH_SOURCE[0]}")/lib/common.sh}"'),
        "sources lib/common.sh (beside it, or where Packer uploaded it)",
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

  test("sudo's secure_path (Amazon Linux: no /usr/local) gets /usr/local/bin back, where ruby-build's Ruby is linked; a PATH with it is kept", () => {
    const secure = withCommon('printf "%s" "$PATH"', { PATH: "/sbin:/bin:/usr/sbin:/usr/bin" });
    assert.equal(secure.code, 0, secure.out);
    assert.equal(secure.stdout, "/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin");
    const kept = withCommon('printf "%s" "$PATH"', { PATH: "/usr/local/bin:/usr/bin:/bin" });
    assert.equal(kept.stdout, "/usr/local/bin:/usr/bin:/bin");
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

/** A folder of stand-in commands (put first on PATH) and a log of their calls, one line per call. */
function standins(prefix: string, commands: Record<string, string>) {
  const dir = tempDir(prefix);
  const bin = path.join(dir, "bin");
  const calls = path.join(dir, "calls");
  mkdirSync(bin);
  writeFileSync(calls, "");
  for (const [name, body] of Object.entries(commands)) {
    writeFileSync(
      path.join(bin, name),
      `#!/usr/bin/env bash\nprintf '%s\\n' "${name} $*" >>${shellWord(calls)}\n${body}\n`,
      { mode: 0o755 },
    );
  }
  return {
    dir,
    PATH: `${bin}:${process.env.PATH}`,
    calls: (name: string) =>
      readFileSync(calls, "utf8")
        .split("\n")
        .filter((l) => l === name || l.startsWith(`${name} `)),
    done: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Run bash code after sourcing core.sh alone (as scripts/lib/common.sh and packer/scripts/lib/common.sh do). */
function withCore(code: string, env: Record<string, string> = {}) {
  return run(["bash", "-c", `set -o errexit -o nounset -o pipefail; . ${shellWord(CORE)}; ${code}`], {
    env: { IMGTOOL_LOG_PREFIX: "t", IMGTOOL_QUIET: "0", ...env },
  });
}

describe("lib/core.sh: the one log, die and retry", () => {
  test("retry N DELAY: N attempts, waits DELAY then twice that between them, returns 1 (the caller goes on)", () => {
    // `flaky` fails until the attempt named by its first argument; `sleep` records how long it was asked to wait.
    const sb = standins("core-retry", {
      flaky: `n=$(grep -c '^flaky ' ${"$"}{0%/bin/*}/calls); [ "$n" -ge "$1" ]`,
      sleep: "exit 0",
    });
    try {
      const ok = withCore(`retry 5 3 flaky 3 "an arg"; echo "rc=$?"`, { PATH: sb.PATH });
      assert.equal(ok.code, 0, ok.out);
      assert.equal(ok.stdout, "rc=0\n");
      assert.deepEqual(sb.calls("flaky"), ["flaky 3 an arg", "flaky 3 an arg", "flaky 3 an arg"]);
      assert.deepEqual(sb.calls("sleep"), ["sleep 3", "sleep 6"]);
      assert.match(ok.out, /t: warning: attempt 1 of 5 failed, retrying in 3s: flaky 3 an arg/);

      const no = withCore(`retry 4 1 flaky 99 || echo "gave up rc=$?"; echo after`, { PATH: sb.PATH });
      assert.equal(no.code, 0, no.out);
      assert.equal(no.stdout, "gave up rc=1\nafter\n");
      assert.equal(sb.calls("flaky").length, 3 + 4, "four more attempts, no fifth");
      assert.deepEqual(
        sb.calls("sleep").slice(2),
        ["sleep 1", "sleep 2", "sleep 4"],
        "no wait after the last",
      );
      assert.match(no.out, /t: warning: gave up after 4 attempts: flaky 99/);
    } finally {
      sb.done();
    }
  });

  test("die [CODE] MESSAGE: prints PREFIX: error: MESSAGE and exits with CODE (1 without one); nothing after it runs", () => {
    const cases: [string, number, string][] = [
      ["die 2 wrong input", 2, "t: error: wrong input\n"],
      ["die the work failed", 1, "t: error: the work failed\n"],
      ["die 7", 1, "t: error: 7\n"],
    ];
    for (const [code, exit, stderr] of cases) {
      const r = withCore(`${code}; echo still-running`);
      assert.equal(r.code, exit, code);
      assert.equal(r.out, stderr, code);
    }
  });

  test("log is silenced by IMGTOOL_QUIET=1, warn never; both on stderr with the prefix", () => {
    const loud = withCore("log hello there; warn careful");
    assert.equal([loud.stdout, loud.out].join("|"), "|t: hello there\nt: warning: careful\n");
    const quiet = withCore("log hello; warn careful", { IMGTOOL_QUIET: "1" });
    assert.equal(quiet.out, "t: warning: careful\n");
  });

  test("both sides get the same library: scripts/lib/common.sh and packer/scripts/lib/common.sh", () => {
    const hostSide = run(
      ["bash", "-c", `. ${shellWord(projectPath("scripts", "lib", "common.sh"))}; die 3 x`],
      {
        env: { IMGTOOL_LOG_PREFIX: "setup" },
      },
    );
    assert.deepEqual([hostSide.code, hostSide.out], [3, "setup: error: x\n"]);
    const imageSide = withCommon("die 3 x");
    assert.deepEqual([imageSide.code, imageSide.out], [3, "imgtool[test]: error: x\n"]);
  });
});

describe("a provisioning script at work (stand-ins for the package manager)", () => {
  const debian = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n';

  /**
   * apt-get and dpkg-query stand-ins over a file of installed packages: `install` adds the packages, fails while
   * it has been called FLAKY_APT times or fewer, and adds nothing (yet says yes) with BROKEN_APT=1.
   */
  function apt() {
    const sb = standins("apt", {
      "apt-get": [
        'db=${0%/bin/*}/installed; [ "$1" = update ] && exit 0',
        '[ "$(grep -c "^apt-get install" ${0%/bin/*}/calls)" -le "${FLAKY_APT:-0}" ] && exit 100',
        '[ "${BROKEN_APT:-0}" = 1 ] && exit 0',
        'for p in "$@"; do case $p in -*|install) ;; *) echo "$p" >>"$db" ;; esac; done',
      ].join("\n"),
      "dpkg-query": 'grep -qx "${@: -1}" ${0%/bin/*}/installed 2>/dev/null && printf "install ok installed"',
      sleep: "exit 0",
    });
    writeFileSync(path.join(sb.dir, "installed"), "git\n");
    writeFileSync(path.join(sb.dir, "os-release"), debian);
    const install = (env: Record<string, string> = {}) =>
      run(["bash", path.join(DIR, "install-packages.sh")], {
        env: {
          PATH: sb.PATH,
          IMGTOOL_OS_RELEASE: path.join(sb.dir, "os-release"),
          IMGTOOL_CORE_PACKAGES_APT: "git curl",
          IMGTOOL_BENCH_PACKAGES_APT: "make",
          IMGTOOL_PACKAGES: "jq",
          ...env,
        },
      });
    return { ...sb, install };
  }

  test("install-packages.sh installs what is missing, once; a second run installs nothing", () => {
    const sb = apt();
    try {
      const first = sb.install();
      assert.equal(first.code, 0, first.out);
      const installs = sb.calls("apt-get").filter((c) => / install /.test(c));
      assert.equal(installs.length, 1, installs.join("\n"));
      assert.match(installs[0]!, / -- curl make jq$/, "git was there already");
      assert.match(first.out, /ok: 4 package\(s\) installed: git curl make jq/);

      const again = sb.install();
      assert.equal(again.code, 0, again.out);
      assert.equal(sb.calls("apt-get").filter((c) => / install /.test(c)).length, 1, "no second install");
      assert.match(again.out, /already installed: git curl make jq/);
    } finally {
      sb.done();
    }
  });

  test("install-packages.sh: a failing install is retried (3 attempts, 5 s then 10 s apart)", () => {
    const sb = apt();
    try {
      const r = sb.install({ FLAKY_APT: "2" });
      assert.equal(r.code, 0, r.out);
      assert.equal(sb.calls("apt-get").filter((c) => / install /.test(c)).length, 3);
      assert.deepEqual(sb.calls("sleep"), ["sleep 5", "sleep 10"]);
    } finally {
      sb.done();
    }
  });

  test("install-packages.sh: its self-check fails the step when the package manager said yes but installed nothing", () => {
    const sb = apt();
    try {
      const r = sb.install({ BROKEN_APT: "1" });
      assert.equal(r.code, 1, r.out);
      assert.match(
        r.out,
        /imgtool\[install-packages\]: error: package curl is not installed after the install/,
      );
    } finally {
      sb.done();
    }
  });

  test("install-ruby.sh, distro, on Amazon Linux 2023 (dnf stand-in with its package names: ruby3.2 provides ruby, ruby3.4 beside it): the versioned package and its headers; 3.3 gets the default with a warning", () => {
    // The stand-in's repository: the default Ruby is ruby3.2 (it provides "ruby"), ruby3.4 is another; no
    // package is named ruby. Installing a Ruby package puts a ruby on PATH that reports its version.
    const sb = standins("dnf", {
      dnf: [
        'db=${0%/bin/*}/installed; repo="ruby3.2 ruby3.2-devel ruby3.4 ruby3.4-devel"',
        'case " $* " in',
        '  *" makecache "*) exit 0 ;;',
        '  *" repoquery "*"--whatprovides ruby "*) printf "ruby3.2 3.2.8\n" ;;',
        '  *" list --available "*) [[ " $repo " == *" ${@: -1} "* ]] ;;',
        '  *" install "*) for p in "$@"; do case $p in -*|install) ;; *)',
        '      echo "$p" >>"$db"',
        "      case $p in ruby3.2) v=3.2.8 ;; ruby3.4) v=3.4.1 ;; *) continue ;; esac",
        '      printf "#!/bin/sh\nprintf %s\n" "$v" >"${0%/dnf}/ruby"; chmod +x "${0%/dnf}/ruby" ;;',
        "    esac; done ;;",
        "  *) exit 1 ;;",
        "esac",
      ].join("\n"),
      rpm: 'grep -qx "${@: -1}" ${0%/bin/*}/installed 2>/dev/null',
      sleep: "exit 0",
    });
    writeFileSync(path.join(sb.dir, "installed"), "");
    writeFileSync(
      path.join(sb.dir, "os-release"),
      'NAME="Amazon Linux"\nVERSION_ID="2023"\nID="amzn"\nID_LIKE="fedora"\nPRETTY_NAME="Amazon Linux 2023.9.20251208"\n',
    );
    const install = (version: string) =>
      run(["bash", path.join(DIR, "install-ruby.sh")], {
        env: {
          PATH: sb.PATH,
          IMGTOOL_OS_RELEASE: path.join(sb.dir, "os-release"),
          IMGTOOL_RUBY_METHOD: "distro",
          IMGTOOL_RUBY_VERSIONS: version,
          IMGTOOL_STATE_DIR: path.join(sb.dir, "state"),
        },
      });
    const installs = () => sb.calls("dnf").filter((c) => / install /.test(c));
    try {
      const r = install("3.3");
      assert.equal(r.code, 0, r.out);
      assert.match(installs().at(-1)!, / -- ruby3\.2 ruby3\.2-devel$/);
      assert.match(r.out, /has no Ruby 3\.3 package: installing its default Ruby \(3\.2\.8\)/);
      assert.match(r.out, /ok: Ruby 3\.3 -> 3\.2\.8/);
      const exact = install("3.2");
      assert.equal(exact.code, 0, exact.out);
      assert.doesNotMatch(exact.out, /has no Ruby/);
      assert.match(exact.out, /already installed: ruby3\.2 ruby3\.2-devel/);
      const other = install("3.4");
      assert.equal(other.code, 0, other.out);
      assert.match(installs().at(-1)!, / -- ruby3\.4 ruby3\.4-devel$/);
      assert.match(other.out, /ok: Ruby 3\.4 -> 3\.4\.1/);
    } finally {
      sb.done();
    }
  });

  test("configure-cloud-init.sh: its self-check fails the step when cloud-init does not run", () => {
    const sb = standins("cloud-init", {
      "cloud-init": '[ "${CLOUD_INIT_OK:-0}" = 1 ] && echo "cloud-init 24.1"',
    });
    try {
      const script = path.join(DIR, "configure-cloud-init.sh");
      const env = { PATH: sb.PATH, IMGTOOL_TARGET: "aws" };
      const ok = run(["bash", script], { env: { ...env, CLOUD_INIT_OK: "1" } });
      assert.equal(ok.code, 0, ok.out);
      assert.match(ok.out, /ok: cloud-init 24\.1/);
      const broken = run(["bash", script], { env });
      assert.equal(broken.code, 1, broken.out);
      assert.match(broken.out, /error: cloud-init --version failed/);
      assert.deepEqual(sb.calls("cloud-init"), ["cloud-init --version", "cloud-init --version"]);
    } finally {
      sb.done();
    }
  });
});
