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
