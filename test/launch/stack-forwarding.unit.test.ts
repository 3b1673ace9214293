// packer/scripts/lib/imgtool-stack's check of the forwarding chain, run with bash against stand-ins for docker
// and docker-compose (PATH): on an engine with --iptables=false (a local instance, in the host's network
// namespace) whose project has a bridge network, an `up` without IMGTOOL_STACK_FORWARD_CHAIN fails at once and
// says why (it used to go on, and the boot failed minutes later with "stack service web is unhealthy": the
// services could not reach each other); an engine with iptables, or a project without a bridge, goes on as before.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { projectBridges } from "../../src/bake/stack-images.js";
import { projectPath } from "../../src/paths.js";

const SCRIPT = projectPath("packer", "scripts", "lib", "imgtool-stack");

let dir: string;
let engine: ChildProcess;
let enginePidfile: string;
const plainPidfile = () => path.join(dir, "plain.pid");

/** The stand-ins log every call to calls.log; `docker network ls` answers $FAKE_NETWORKS. */
function writeStandIns(bin: string) {
  const docker = `#!/bin/bash
echo "docker $*" >>"$FAKE_LOG"
case "$1 $2" in
  "compose version") exit 1 ;;
  "network ls") [[ -z \${FAKE_NETWORKS:-} ]] || printf '%s\\n' $FAKE_NETWORKS ;;
  "network inspect") shift 2; while [[ $1 == --* ]]; do shift 2; done; for id in "$@"; do echo "$id <no value>"; done ;;
esac
exit 0
`;
  // docker-compose: logged with the bridge names it was given (the override's variables).
  const compose = `#!/bin/bash
echo "docker-compose $* [\${IMGTOOL_STACK_BRIDGE_0:-}|\${IMGTOOL_STACK_BRIDGE_1:-}]" >>"$FAKE_LOG"
exit 0
`;
  // iptables: logged; a table with DOCKER-USER and no chain or jump of imgtool's yet (-D, -F, -X find nothing).
  const iptables = `#!/bin/bash
echo "iptables $*" >>"$FAKE_LOG"
case "$3" in -D | -F | -X) exit 1 ;; esac
exit 0
`;
  for (const [name, text] of [
    ["docker", docker],
    ["docker-compose", compose],
    ["iptables", iptables],
  ] as const) {
    writeFileSync(path.join(bin, name), text);
    chmodSync(path.join(bin, name), 0o755);
  }
}

/**
 * `up` (or `down`), with the bake's list of bridges ($DIR/bridges) when `bridges` is given (absent: a twin baked
 * before it) and its override ($DIR/bridges.yaml) when `override` is.
 */
function up(env: Record<string, string>, bridges?: string[], override?: string, command = "up") {
  const log = path.join(dir, "calls.log");
  writeFileSync(log, "");
  rmSync(path.join(dir, "stack", "bridges"), { force: true });
  rmSync(path.join(dir, "stack", "bridges.yaml"), { force: true });
  if (bridges) writeFileSync(path.join(dir, "stack", "bridges"), bridges.map((b) => `${b}\n`).join(""));
  if (override) writeFileSync(path.join(dir, "stack", "bridges.yaml"), override);
  const r = spawnSync("bash", [SCRIPT, command], {
    encoding: "utf8",
    timeout: 30_000,
    env: {
      PATH: `${path.join(dir, "bin")}:${process.env.PATH}`,
      IMGTOOL_STACK_DIR: path.join(dir, "stack"),
      IMGTOOL_STACK_WAIT_SECONDS: "0",
      FAKE_LOG: log,
      ...env,
    },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, calls: readFileSync(log, "utf8") };
}

describe("imgtool-stack up: the forwarding chain a local instance needs", () => {
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), "imgtool-stack-fwd-"));
    mkdirSync(path.join(dir, "bin"));
    mkdirSync(path.join(dir, "stack"));
    writeStandIns(path.join(dir, "bin"));
    writeFileSync(path.join(dir, "stack", "compose.yaml"), "services: {}\n");
    writeFileSync(path.join(dir, "stack", "settle-ms"), "0\n");
    writeFileSync(path.join(dir, "stack", "wait-for"), "web\n");
    // A process whose command line is an engine's without iptables (what the script reads from /proc); `; :` so
    // that bash does not exec sleep in its place.
    engine = spawn("bash", ["-c", "sleep 60; :", "dockerd", "--iptables=false", "--ip-masq=false"], {
      stdio: "ignore",
    });
    enginePidfile = path.join(dir, "engine.pid");
    writeFileSync(enginePidfile, `${engine.pid}\n`);
    writeFileSync(plainPidfile(), `${process.pid}\n`);
  });
  after(() => {
    engine.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  test("engine without iptables, a project bridge, no chain: fails at once, saying why", () => {
    const r = up({ IMGTOOL_ENGINE_PIDFILE: enginePidfile, FAKE_NETWORKS: "0123456789abcdef" });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /cannot reach each other .* no IMGTOOL_STACK_FORWARD_CHAIN .*npm run build/);
    assert.equal(r.stdout.trim().split("\n").length, 1, "one line, as the failure record shows it");
    assert.match(r.calls, /docker-compose .* up --no-start --no-build/);
    assert.doesNotMatch(r.calls, /up --detach/, "no service was started");
    assert.match(r.calls, /docker-compose .* down/, "the created project is removed");
  });

  test("engine without iptables but no bridge network (e.g. network_mode): goes on", () => {
    const r = up({ IMGTOOL_ENGINE_PIDFILE: enginePidfile });
    assert.doesNotMatch(r.stdout, /IMGTOOL_STACK_FORWARD_CHAIN/);
    assert.match(r.calls, /up --no-start/, "the project's networks were looked at");
    assert.match(r.calls, /up --detach --no-build/);
  });

  test("baked bridges and a chain: the rules are in before the one Compose run, which names the bridges", () => {
    const chain = "IMGTOOL-0123456789ab";
    // What the bake lists for a project with a bridge named by the file and the default network.
    const baked = projectBridges(
      "services:\n  a:\n    image: x\n    networks: [back, default]\nnetworks:\n  back:\n    driver_opts: { com.docker.network.bridge.name: br-back0 }\n",
      "compose.yaml",
    );
    assert.deepEqual(baked.words, ["back", "default"]);
    const env = { IMGTOOL_ENGINE_PIDFILE: enginePidfile, IMGTOOL_STACK_FORWARD_CHAIN: chain };
    const r = up(env, baked.words, baked.override);
    const calls = r.calls.split("\n");
    // One `up` (the `down` after it: the stand-ins start no service, so the wait of 0 s gives up).
    const compose = calls.filter((c) => c.startsWith("docker-compose ") && c.includes(" up "));
    assert.equal(compose.length, 1, r.calls);
    assert.doesNotMatch(r.calls, /--no-start/);
    // One name per instance and network, the one the file names too: ib + 12 hex of a hash of the chain and
    // the key, given to Compose as the variable of its line in the list, which the baked override names it by.
    const own = (key: string) =>
      `ib${createHash("sha256").update(`${chain}/${key}`).digest("hex").slice(0, 12)}`;
    const [back, name] = [own("back"), own("default")];
    const files = `--file \\S+/compose\\.yaml --file \\S+/bridges\\.yaml`;
    assert.match(compose[0]!, new RegExp(`${files} up --detach --no-build \\[${back}\\|${name}\\]$`));
    assert.match(baked.override, /IMGTOOL_STACK_BRIDGE_0[^]*IMGTOOL_STACK_BRIDGE_1/);
    const ruleFor = (bridge: string) =>
      calls.indexOf(`iptables -w 10 -A ${chain} -i ${bridge} -o ${bridge} -j ACCEPT`);
    const jump = calls.indexOf(`iptables -w 10 -I DOCKER-USER -j ${chain}`);
    const composeAt = calls.indexOf(compose[0]!);
    assert.ok(ruleFor(name) >= 0 && ruleFor(back) >= 0 && jump >= 0, r.calls);
    assert.doesNotMatch(r.calls, /br-back0/, "the file's own name is not this instance's");
    assert.ok(Math.max(ruleFor(name), ruleFor(back), jump) < composeAt, `rules before Compose:\n${r.calls}`);
    // `down` reads the project the same way, and removes the chain.
    const down = up(env, baked.words, baked.override, "down");
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.calls, new RegExp(`${files} down --timeout 5 \\[${back}\\|${name}\\]`));
    assert.match(down.calls, new RegExp(`iptables -w 10 -X ${chain}`));
    // An older twin's list (KEY=NAME for the bridge the file names, left out of its override): that name, as is.
    const older = up(
      env,
      ["back=br-back0", "default"],
      "networks:\n  default:\n    driver_opts:\n      com.docker.network.bridge.name: ${IMGTOOL_STACK_BRIDGE_1}\n",
    );
    assert.match(older.calls, new RegExp(`iptables -w 10 -A ${chain} -i br-back0 -o br-back0 -j ACCEPT`));
    assert.match(older.calls, new RegExp(`up --detach --no-build \\[\\|${name}\\]$`, "m"));
  });

  test("a twin whose list names an unnamed bridge but has no override: the two-run way", () => {
    const r = up(
      { IMGTOOL_ENGINE_PIDFILE: enginePidfile, IMGTOOL_STACK_FORWARD_CHAIN: "IMGTOOL-0123456789ab" },
      ["default"],
    );
    assert.match(r.calls, /up --no-start --no-build/);
    assert.doesNotMatch(r.calls, /bridges\.yaml/);
  });

  test("baked bridges, engine without iptables, no chain: fails at once without creating anything", () => {
    const r = up({ IMGTOOL_ENGINE_PIDFILE: enginePidfile }, ["default"]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /cannot reach each other .* no IMGTOOL_STACK_FORWARD_CHAIN/);
    assert.doesNotMatch(r.calls, / up /, "nothing was created or started");
  });

  test("baked bridges, none in the project (network_mode), no chain: one Compose run", () => {
    const r = up({ IMGTOOL_ENGINE_PIDFILE: enginePidfile }, []);
    assert.doesNotMatch(r.stdout, /IMGTOOL_STACK_FORWARD_CHAIN/);
    assert.doesNotMatch(r.calls, /--no-start/);
    assert.match(r.calls, /up --detach --no-build/);
  });

  test("engine with iptables (an AMI): no chain needed, the project is started as before", () => {
    const r = up({ IMGTOOL_ENGINE_PIDFILE: plainPidfile(), FAKE_NETWORKS: "0123456789abcdef" });
    assert.doesNotMatch(r.stdout, /IMGTOOL_STACK_FORWARD_CHAIN/);
    assert.doesNotMatch(r.calls, /--no-start/);
    assert.match(r.calls, /up --detach --no-build/);
  });

  test("no engine pidfile: taken as an engine with iptables", () => {
    const r = up({
      IMGTOOL_ENGINE_PIDFILE: path.join(dir, "missing.pid"),
      FAKE_NETWORKS: "0123456789abcdef",
    });
    assert.doesNotMatch(r.stdout, /IMGTOOL_STACK_FORWARD_CHAIN/);
    assert.match(r.calls, /up --detach --no-build/);
  });
});
