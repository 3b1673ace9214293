// The default build contexts and imgtool's in-image helpers, tested with plain tools: the example apps' own
// Ruby tests (minitest from Debian's ruby, in the local ruby base image, no network), the ruby-bench checkout
// helper (POSIX sh, on the host: it fetches only for a ref the image was not baked with), and the task
// runner's HEALTHCHECK.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { exec } from "../../src/exec.js";
import { projectPath } from "../../src/paths.js";
import { makeBenchRepo } from "../support/fixtures/bench-repo.js";
import { dockerCli, stack } from "./support.js";

const RUBY_BASE = "imgtool/ruby:bookworm";

// Each app and the local base its image is built on (the seed example's orchestrator needs ruby-pg).
const APPS: [string, string][] = [
  ["orchestrator", RUBY_BASE],
  ["task-runner", RUBY_BASE],
  ["seed-fleet/orchestrator", "imgtool/ruby-pg:bookworm"],
  ["seed-fleet/task-runner", RUBY_BASE],
];

describe("example applications (plain ruby)", () => {
  for (const [app, base] of APPS) {
    test(`examples/${app}: its minitest suite passes`, async () => {
      const out = await dockerCli([
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        `${projectPath("examples", ...app.split("/"))}:/app:ro`,
        "-w",
        "/app",
        base,
        "ruby",
        "-w",
        "-e",
        'Dir.glob("test/*_test.rb").sort.each { |f| require File.expand_path(f) }',
      ]);
      const summary = /(\d+) runs, (\d+) assertions, (\d+) failures, (\d+) errors/.exec(out);
      assert.ok(summary, out);
      assert.ok(Number(summary[1]) >= 4, `ran ${summary[1]} tests`);
      assert.equal(summary[3], "0", out);
      assert.equal(summary[4], "0", out);
    });
  }
});

describe("ruby-bench-checkout (the task runner's helper)", () => {
  const helper = projectPath("docker", "task-runner", "bin", "ruby-bench-checkout");

  test("the baked ref costs no network; another ref is fetched; back to the baked commit without a fetch", async () => {
    const repo = makeBenchRepo();
    const dir = path.join(mkdtempSync(path.join(tmpdir(), "imgtool-rbc-")), "ruby-bench");
    const git = (...a: string[]) => execFileSync("git", a, { encoding: "utf8" }).trim();
    // What the image holds: a shallow checkout of the pinned commit.
    git("init", "--quiet", dir);
    git("-C", dir, "fetch", "--quiet", "--depth", "1", `file://${repo.path}`, repo.commit);
    git("-C", dir, "checkout", "--quiet", "--detach", "FETCH_HEAD");
    git("-C", dir, "remote", "add", "origin", "/nonexistent/ruby-bench");
    const run = (ref?: string) =>
      exec(["sh", helper, ...(ref === undefined ? [] : [ref])], {
        env: { ...process.env, RUBY_BENCH_DIR: dir, RUBY_BENCH_REF: "main", RUBY_BENCH_COMMIT: repo.commit },
      });

    // origin does not exist: any fetch would fail, so these prove there was none.
    for (const ref of [undefined, "", "main", repo.commit]) {
      const r = await run(ref);
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(r.stdout.trim(), repo.commit);
      assert.doesNotMatch(r.stderr, /fetching/);
    }
    const unreachable = await run(repo.otherRef);
    assert.notEqual(unreachable.exitCode, 0, "another ref needs the repository");
    assert.match(unreachable.stderr, /fetching other from \/nonexistent\/ruby-bench/);

    git("-C", dir, "remote", "set-url", "origin", repo.path);
    const other = await run(repo.otherRef);
    assert.equal(other.exitCode, 0, other.stderr);
    assert.equal(other.stdout.trim(), repo.otherCommit);
    assert.equal(git("-C", dir, "rev-parse", "HEAD"), repo.otherCommit);
    git("-C", dir, "remote", "set-url", "origin", "/nonexistent/ruby-bench");
    const back = await run("main");
    assert.equal(back.exitCode, 0, back.stderr);
    assert.equal(back.stdout.trim(), repo.commit, "the baked commit is still there: no fetch");
    assert.equal(git("-C", dir, "rev-parse", "HEAD"), repo.commit);
  });
});

describe("the task runner's HEALTHCHECK", () => {
  test("unhealthy without a heartbeat, healthy right after one, unhealthy when it is old", async () => {
    const bin = projectPath("docker", "task-runner", "bin");
    const check = (script: string) =>
      exec(
        ["docker", "run", "--rm", "--network", "none", "-v", `${bin}:/h:ro`, RUBY_BASE, "sh", "-c", script],
        { env: { ...process.env, DOCKER_HOST: stack.docker.host } },
      );
    assert.equal((await check("/h/imgtool-healthcheck")).exitCode, 1);
    assert.equal((await check("touch /tmp/task-runner.heartbeat && /h/imgtool-healthcheck")).exitCode, 0);
    assert.equal(
      (await check("touch -d '-10 minutes' /tmp/task-runner.heartbeat && /h/imgtool-healthcheck")).exitCode,
      1,
    );
  });
});

describe("the orchestrator's HEALTHCHECK (docker/orchestrator/bin/imgtool-healthcheck, real ruby)", () => {
  // A tiny HTTP server in the container: 200 on /healthz, 204 on /nocontent, 404 elsewhere; /tmp/up once it
  // listens. Each check prints its exit code.
  const SERVER = [
    'require "socket"',
    's = TCPServer.new("127.0.0.1", 9000)',
    'File.write("/tmp/up", "")',
    "loop do",
    "  c = s.accept",
    '  path = c.gets.to_s.split(" ")[1]',
    '  while (l = c.gets) && l != "\\r\\n"; end',
    '  code = { "/healthz" => "200 OK", "/nocontent" => "204 No Content" }.fetch(path, "404 Not Found")',
    '  c.write("HTTP/1.1 #{code}\\r\\nContent-Length: 0\\r\\nConnection: close\\r\\n\\r\\n")',
    "  c.close",
    "end",
  ].join("\n");
  const CHECKS: [string, string, number][] = [
    ["the configured path and port", "IMGTOOL_HEALTH_PATH=/healthz IMGTOOL_HEALTH_PORT=9000", 0],
    ["the old fixed /health is not the check", "IMGTOOL_HEALTH_PATH=/health IMGTOOL_HEALTH_PORT=9000", 1],
    [
      "no port given: the orchestrator's PORT",
      "IMGTOOL_HEALTH_PATH=/healthz IMGTOOL_HEALTH_PORT= PORT=9000",
      0,
    ],
    ["another port: nothing answers", "IMGTOOL_HEALTH_PATH=/healthz IMGTOOL_HEALTH_PORT=9001", 1],
    [
      "a configured status must be the answer",
      "IMGTOOL_HEALTH_PATH=/healthz IMGTOOL_HEALTH_PORT=9000 IMGTOOL_HEALTH_STATUS=204",
      1,
    ],
    [
      "the configured status answered",
      "IMGTOOL_HEALTH_PATH=/nocontent IMGTOOL_HEALTH_PORT=9000 IMGTOOL_HEALTH_STATUS=204",
      0,
    ],
    ["no path baked in (not an imgtool build)", "IMGTOOL_HEALTH_PORT=9000", 1],
  ];

  test("asks the configured path, port and status; 1 for anything else", async () => {
    const bin = projectPath("docker", "orchestrator", "bin");
    const script = [
      `ruby -e '${SERVER.replace(/'/g, "'\\''")}' &`,
      "i=0; while [ ! -e /tmp/up ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done",
      ...CHECKS.map(([, env], n) => `env ${env} /h/imgtool-healthcheck 2>>/tmp/err; echo "check${n} $?"`),
      "cat /tmp/err >&2",
    ].join("\n");
    const r = await exec(
      ["docker", "run", "--rm", "--network", "none", "-v", `${bin}:/h:ro`, RUBY_BASE, "sh", "-c", script],
      { env: { ...process.env, DOCKER_HOST: stack.docker.host } },
    );
    assert.equal(r.exitCode, 0, r.stderr);
    const codes = Object.fromEntries(
      [...r.stdout.matchAll(/^check(\d+) (\d+)$/gm)].map((m) => [Number(m[1]), Number(m[2])]),
    );
    CHECKS.forEach(([what, , want], n) => assert.equal(codes[n], want, `${what}: ${r.stdout}\n${r.stderr}`));
    assert.match(r.stderr, /GET \/health on port 9000 answered 404/);
    assert.match(r.stderr, /IMGTOOL_HEALTH_PATH is nil, not a path/);
  });
});
