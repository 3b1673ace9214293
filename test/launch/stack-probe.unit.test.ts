// packer/scripts/lib/imgtool-stack's own run of a service's healthcheck, with bash against stand-ins for docker and
// docker-compose (PATH; `docker exec` runs the test here, in place of the container): a service that Docker has
// not probed yet (health "starting": Docker probes first one interval after the start) counts as healthy once its
// own test passes, read from the engine as Docker keeps it (CMD arguments split exactly, also with spaces and
// newlines; CMD-SHELL through the image's SHELL, else /bin/sh -c), bounded by the check's own timeout. A test that
// fails never counts: the boot waits for Docker, and gives up at its limit. One probe runs at a time per container,
// in the background, at most every 0.5 s, and holds none of the script's output open.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { projectPath } from "../../src/paths.js";

const SCRIPT = projectPath("packer", "scripts", "lib", "imgtool-stack");
let dir: string;

/** docker: one container, c-web, of service web, whose health is $FAKE_HEALTH and healthcheck test $FAKE_TEST. */
const DOCKER = `#!/bin/bash
echo "docker $*" >>"$FAKE_LOG"
case "$1" in
  compose) exit 1 ;;
  ps) echo c-web ;;
  inspect)
    case "$3" in
      # The probe's one call, as the engine answers its template: timeout, SHELL's length and words, the test.
      *Healthcheck.Test*)
        shell=(\${FAKE_SHELL:-})
        printf '%s\\0%s\\0' "\${FAKE_TIMEOUT_NS:-0}" "\${#shell[@]}"
        ((\${#shell[@]} == 0)) || printf '%s\\0' "\${shell[@]}"
        cat "$FAKE_TEST"; echo ;;
      *) echo "web running 0 0 $FAKE_HEALTH 2026-12-05T10:00:00.000000000Z c-web" ;;
    esac ;;
  exec) shift 2; exec "$@" ;;
esac
exit 0
`;
const COMPOSE = `#!/bin/bash
echo "docker-compose $*" >>"$FAKE_LOG"
exit 0
`;

function up(health: string, testArgs: string[], waitSeconds = 3, extra: Record<string, string> = {}) {
  const log = path.join(dir, "calls.log");
  writeFileSync(log, "");
  const testFile = path.join(dir, "test");
  // As `docker inspect` prints {{range .Config.Healthcheck.Test}}{{.}}{{"\x00"}}{{end}}.
  writeFileSync(testFile, testArgs.map((a) => `${a}\0`).join(""));
  const started = Date.now();
  const r = spawnSync("bash", [SCRIPT, "up"], {
    encoding: "utf8",
    timeout: 30_000,
    env: {
      PATH: `${path.join(dir, "bin")}:${process.env.PATH}`,
      IMGTOOL_STACK_DIR: path.join(dir, "stack"),
      IMGTOOL_STACK_WAIT_SECONDS: String(waitSeconds),
      IMGTOOL_ENGINE_PIDFILE: path.join(dir, "none.pid"),
      FAKE_LOG: log,
      FAKE_HEALTH: health,
      FAKE_TEST: testFile,
      ...extra,
    },
  });
  const calls = readFileSync(log, "utf8");
  return {
    code: r.status,
    stdout: r.stdout,
    stderr: r.stderr,
    execs: calls.split("\n").filter((l) => l.startsWith("docker exec")),
    ms: Date.now() - started,
  };
}

describe("imgtool-stack up: a service's own healthcheck, run before Docker's first probe", () => {
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), "imgtool-stack-probe-"));
    mkdirSync(path.join(dir, "bin"));
    mkdirSync(path.join(dir, "stack"));
    for (const [name, text] of [
      ["docker", DOCKER],
      ["docker-compose", COMPOSE],
    ] as const) {
      writeFileSync(path.join(dir, "bin", name), text);
      chmodSync(path.join(dir, "bin", name), 0o755);
    }
    writeFileSync(path.join(dir, "stack", "compose.yaml"), "services: {}\n");
    writeFileSync(path.join(dir, "stack", "settle-ms"), "1000\n");
    writeFileSync(path.join(dir, "stack", "wait-for"), "web\n");
    writeFileSync(path.join(dir, "ready-file"), "");
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("starting, and its CMD test passes: ready at once, after one run of the test in the container", () => {
    const r = up("starting", ["CMD", "test", "-e", path.join(dir, "ready-file")]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /"stack": \["web"\], "stackReadySeconds": \d+\.\d{3}/);
    assert.deepEqual(r.execs, [`docker exec c-web test -e ${path.join(dir, "ready-file")}`]);
  });

  test("CMD arguments arrive exactly (spaces, a newline, quotes); CMD-SHELL runs through /bin/sh -c", () => {
    const odd = "a b\nc 'd\"";
    const exact = up("starting", ["CMD", "test", odd, "=", odd]);
    assert.equal(exact.code, 0, exact.stdout + exact.stderr);
    const split = up("starting", ["CMD", "test", odd, "=", "a b"], 1);
    assert.equal(split.code, 1, "a different argument must not pass");
    const shell = up("starting", [
      "CMD-SHELL",
      `test "a b" = 'a b' && test -e ${path.join(dir, "ready-file")}`,
    ]);
    assert.equal(shell.code, 0, shell.stdout + shell.stderr);
    assert.match(shell.execs.join("\n"), /^docker exec c-web \/bin\/sh -c test "a b"/);
  });

  test("a test that fails never counts: tried again, at most every 0.5 s, then the boot gives up at its limit", () => {
    const r = up("starting", ["CMD", "test", "-e", path.join(dir, "no-such-file")], 2);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /the stack services web were not ready within 2s/);
    assert.ok(r.execs.length >= 2 && r.execs.length <= 6, `tried ${r.execs.length} time(s) in about 2 s`);
  });

  test("one probe at a time, in the background: a slow test runs once, and the give-up does not wait for it", () => {
    const r = up("starting", ["CMD", "sleep", "6"], 1);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stdout, /not ready within 1s/);
    assert.equal(r.execs.length, 1, "no second run while the first one runs");
    assert.ok(r.ms < 5000, `the script's output was held open ${r.ms} ms by the probe`);
  });

  test("the check's own timeout bounds a probe (30 s when it sets none), not a fixed one", () => {
    const slowPass = up("starting", ["CMD", "sleep", "2.5"], 6);
    assert.equal(slowPass.code, 0, "a 2.5 s test passes within the default 30 s");
    const capped = up("starting", ["CMD", "sleep", "2.5"], 4, { FAKE_TIMEOUT_NS: "1000000000" });
    assert.equal(capped.code, 1, "a 2.5 s test does not pass its 1 s timeout");
    assert.ok(capped.execs.length >= 2, `a timed-out probe is followed by another (${capped.execs.length})`);
  });

  test("CMD-SHELL runs through the image's SHELL when it sets one", () => {
    const r = up("starting", ["CMD-SHELL", 'test -n "$BASH_VERSION"'], 2, { FAKE_SHELL: "/bin/bash -c" });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.execs[0] ?? "", /^docker exec c-web \/bin\/bash -c test -n/);
  });

  test("healthy by Docker: ready without running the test; no healthcheck (NONE) is not probed", () => {
    const healthy = up("healthy", ["CMD", "false"]);
    assert.equal(healthy.code, 0, healthy.stdout + healthy.stderr);
    assert.deepEqual(healthy.execs, []);
    const none = up("starting", ["NONE"], 1);
    assert.equal(none.code, 1);
    assert.deepEqual(none.execs, []);
  });
});
