// The PostgreSQL image of local stacks (docker/postgres, which scripts/build-stack-images pushes as
// library/postgres:15), built and run with the real engine: it ships a cluster initialised at build time with no
// password in it, and the first start on a new volume applies POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB
// (no initdb at boot); the password works over TCP, a wrong one does not, it never reaches the container's log,
// and a second start on the same volume changes nothing.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { projectPath } from "../../src/paths.js";
import { readStack, dockerHost } from "../../src/local/stack.js";
import { unavailable } from "../support/unavailable.js";

const id = randomBytes(3).toString("hex");
const image = `imgtool-test-postgres-${id}:test`;
const volume = `imgtool-test-postgres-${id}`;
const container = `imgtool-test-postgres-${id}`;
const stack = readStack(projectPath(".imgtool"));
const env = stack ? { DOCKER_HOST: dockerHost(stack) } : {};
/** The docker CLI on the local stack's engine: exit code, stdout and stderr (a container's log is on both). */
function docker(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync("docker", args, { env: { ...process.env, ...env }, encoding: "utf8" });
  return { code: r.status ?? 1, out: r.stdout ?? "", err: (r.stderr ?? "") + (r.error?.message ?? "") };
}
// Quotes of both kinds and a backslash: the entrypoint quotes it as an SQL literal.
const PASSWORD = `pw'${id}"\\x`;

/** Run psql in the container over TCP (password auth) as `user`; its exit code and output. */
function psql(user: string, password: string, sql: string) {
  return docker([
    "exec",
    "-e",
    `PGPASSWORD=${password}`,
    container,
    "psql",
    "-h",
    "127.0.0.1",
    "-U",
    user,
    "-d",
    "runs",
    "-tAc",
    sql,
  ]);
}

/** Start the container on the volume and wait (bounded by the engine test's timeout) until it answers. */
function start(): void {
  const r = docker([
    "run",
    "-d",
    "--name",
    container,
    "-e",
    `POSTGRES_PASSWORD=${PASSWORD}`,
    "-e",
    "POSTGRES_USER=orchestrator",
    "-e",
    "POSTGRES_DB=runs",
    "-v",
    `${volume}:/var/lib/postgresql/data`,
    image,
  ]);
  assert.equal(r.code, 0, r.err);
  for (;;) {
    const ready = docker([
      "exec",
      container,
      "pg_isready",
      "-q",
      "-h",
      "127.0.0.1",
      "-U",
      "orchestrator",
      "-d",
      "runs",
    ]);
    if (ready.code === 0) return;
    const state = docker(["inspect", "-f", "{{.State.Status}}", container]).out.trim();
    assert.equal(state, "running", `the server stopped:\n${docker(["logs", container]).err}`);
  }
}

const remove = () => docker(["rm", "-f", container]);

describe(
  "docker/postgres: a cluster made at build time, configured at the first start (real engine)",
  { skip: unavailable(!stack && "no local stack: run scripts/setup") },
  () => {
    before(() => {
      const r = docker(["build", "-q", "-t", image, projectPath("docker", "postgres")]);
      assert.equal(r.code, 0, r.err);
    });
    after(() => {
      remove();
      docker(["volume", "rm", "-f", volume]);
      docker(["rmi", "-f", image]);
    });

    test("the image holds an initialised cluster, still to be configured, with no password set", () => {
      const r = docker(["run", "--rm", "--entrypoint", "ls", image, "/var/lib/postgresql/data"]);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /^PG_VERSION$/m);
      assert.match(r.out, /^imgtool-unconfigured$/m);
    });

    test("the first start applies user, password and database; the password stays out of the log", () => {
      start();
      const logs = docker(["logs", container]);
      const all = logs.out + logs.err;
      assert.match(all, /ready \(user orchestrator, database runs\)/);
      assert.doesNotMatch(all, /initdb|Success\. You can now start/, "no initdb at start");
      assert.ok(!all.includes(PASSWORD), "the password is not in the container's log");
      const ok = psql("orchestrator", PASSWORD, "SELECT current_user || ' ' || current_database()");
      assert.equal(ok.code, 0, ok.err);
      assert.equal(ok.out.trim(), "orchestrator runs");
      const bad = psql("orchestrator", "wrong", "SELECT 1");
      assert.notEqual(bad.code, 0);
      assert.match(bad.err, /password authentication failed/);
      const marker = docker(["exec", container, "ls", "/var/lib/postgresql/data"]);
      assert.doesNotMatch(marker.out, /imgtool-unconfigured/);
    });

    test("a second start on the same volume keeps the cluster and configures nothing again", () => {
      assert.equal(psql("orchestrator", PASSWORD, "CREATE TABLE kept (x int)").code, 0);
      assert.equal(remove().code, 0);
      start();
      const logs = docker(["logs", container]);
      assert.doesNotMatch(logs.out + logs.err, /ready \(user/);
      const kept = psql("orchestrator", PASSWORD, "SELECT count(*) FROM kept");
      assert.equal(kept.code, 0, kept.err);
      assert.equal(kept.out.trim(), "0");
    });
  },
);
