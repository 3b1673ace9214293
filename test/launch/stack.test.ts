// A Compose stack as the orchestrator role (issue 9, section 2), on the local target with the real engine and a
// Packer-baked twin: `imgtool push image` and `imgtool bake ami` (the stack's images resolved to digests and
// pre-loaded: PostgreSQL from the local registry, where scripts/setup put library/postgres:15; db's named volume
// made and filled from its image), then `imgtool launch`: the stack boots from the baked images (the registry
// sees no request for library/postgres) and db on the baked volume (Compose did not create it), its
// services are ready (web before Docker's first probe of it: imgtool-stack runs web's healthcheck itself) and the
// stack's boot-to-ready is reported; a service that exits fails the boot with its
// name, exit code and last log line, and nothing is left running. The services are on the instance engine's own
// bridge network (a namespace each): only web's port, a free one that launch picks, is published. web reaches db
// by its service name over that network (web's healthcheck connects to db:5432 first), which on the local target
// works only through the instance's forwarding chain (src/launch/local.ts, stackForwardChain): the test takes the
// chain's jump out and sees db unreachable, puts it back and sees it reachable; after terminate the chain is gone.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { stackForwardChain } from "../../src/launch/local.js";
import { projectPath } from "../../src/paths.js";
import { readStack, dockerHost } from "../../src/local/stack.js";
import { runCli } from "../support/cli.js";
import { makeRubyBenchRepo } from "../support/fixtures/ruby-bench.js";
import { postgresRegistryPath, stackRegistryEntry } from "../support/stack-registry.js";
import { dockerCli } from "../support/twin-bake.js";

const id = randomBytes(3).toString("hex");
const pipeline = `st${id}`;
const base = mkdtempSync(path.join(tmpdir(), "imgtool-stack-"));
const stateDir = path.join(base, "state");
const stack = readStack(projectPath(".imgtool"));
const env = stack ? { DOCKER_HOST: dockerHost(stack) } : {};
const docker = dockerCli(env);
const registryLog = stack ? path.join(path.dirname(stack.registry.passwordFile), "registry.log") : "";
const LAST_LINE = `jobs gave up ${id}`;
/** Compose v2 as Debian ships it (scripts/fetch-compose-v2, run by scripts/setup). */
const composeV2 = stack ? path.join(stack.stateDir, "compose-v2", "docker-compose") : "";

const COMPOSE = `services:
  db:
    image: postgres:15
    environment:
      POSTGRES_PASSWORD: \${DB_PASSWORD}
    # A named volume only db mounts, over the image's prepared cluster: the bake fills it (imgtool-stack fill).
    volumes: [pgdata:/var/lib/postgresql/data]
    healthcheck:
      test: ["CMD", "pg_isready", "-U", "postgres", "-h", "127.0.0.1"]
      interval: 1s
      timeout: 5s
      retries: 60
  web:
    build: .
    environment:
      PORT: "8080"
    ports:
      - "\${PORT}:8080"
    # db reached by its service name over the project network, then the image's own check, with room for a
    # loaded machine (its default gives a Ruby start 3 s). Docker's first probe comes one interval (2 minutes)
    # after the start: the boot is ready before it only because imgtool-stack runs this test itself.
    healthcheck:
      test: ["CMD", "ruby", "-rsocket", "-e", "Socket.tcp('db', 5432, connect_timeout: 5).close; exec('imgtool-healthcheck')"]
      interval: 120s
      timeout: 30s
      retries: 30
    depends_on:
      db:
        condition: service_healthy
  jobs:
    build: .
    command: ["sh", "-c", "if [ -n \\"$$JOBS_FAIL\\" ]; then echo first line; echo \\"$$JOBS_FAIL\\"; sleep 0.5; exit 3; fi; exec sleep infinity"]
    environment:
      JOBS_FAIL: \${JOBS_FAIL:-}
    # No server in the jobs worker: the image's HTTP healthcheck is not its; it counts once it stayed up.
    healthcheck:
      disable: true
    depends_on:
      db:
        condition: service_healthy
# The project's network with settings of its own: a local instance names its bridge in an override, which must
# keep them (Compose v1 takes a later file's network in place of the earlier one's), quoted as Compose v1's YAML
# 1.1 needs ("yes" unquoted is a boolean there, which Compose refuses as a label), and whose name, the file's own
# here, is the instance's (two local instances at once would share the file's interface).
networks:
  default:
    labels:
      imgtool.test: "yes"
    driver_opts:
      com.docker.network.driver.mtu: "1400"
      com.docker.network.bridge.name: imgtoolfixed0
volumes:
  pgdata: {}
`;

/**
 * A port the kernel just handed out as free (bound to port 0 and closed): not 8080, which every other local
 * launch on this machine tries first.
 */
async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, "0.0.0.0", resolve));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/** The config, with `jobsFail` set: the jobs service prints it and exits 3 after 0.5 s. */
function config(file: string, rubyBench: string, port: number, jobsFail?: string): string {
  writeFileSync(
    file,
    [
      `pipeline: ${pipeline}`,
      "roles:",
      "  orchestrator:",
      '    ruby: { versions: ["3.1"] }',
      `    ruby_bench: { repository: ${rubyBench}, ref: main }`,
      `    app: { context: ${projectPath("examples", "orchestrator")} }`,
      `    stack: { file: compose.yaml, app_services: [web, jobs], wait_for: [db, web, jobs]${stackRegistryEntry()} }`,
      "    run:",
      "      env:",
      '        DB_PASSWORD: "{secret:db-password}"',
      ...(jobsFail ? [`        JOBS_FAIL: ${JSON.stringify(jobsFail)}`] : []),
      "secrets:",
      "  db-password: {}",
      // The stack's env (a secret, JOBS_FAIL) grows the worst-case user-data past 16 KB: gzip, as the check advises.
      `launch: { user_data_compression: gzip, orchestrator_port: ${port} }`,
      "local:",
      `  state_dir: ${stateDir}`,
    ].join("\n"),
  );
  return file;
}

let good: string;
let failing: string;
const runs: string[] = [];

async function imgtool(args: string[], configFile: string, timeoutMs = 900_000) {
  return runCli([...args, "--config", configFile], { env, timeoutMs });
}

/** Containers of the outer engine that belong to this test's pipeline (local instances and bake helpers). */
function leftContainers(): string {
  return docker([
    "ps",
    "-a",
    "--filter",
    `label=imgtool.pipeline=${pipeline}`,
    "--format",
    "{{.Names}}",
  ]).out.trim();
}

describe("a Compose stack as the orchestrator, local target", { skip: !stack && "run scripts/setup" }, () => {
  before(async () => {
    mkdirSync(stateDir, { recursive: true });
    copyFileSync(projectPath(".imgtool", "stack.json"), path.join(stateDir, "stack.json"));
    writeFileSync(path.join(base, "compose.yaml"), COMPOSE);
    const rubyBench = makeRubyBenchRepo({ parent: base }).path;
    good = config(path.join(base, "imgtool.config.yaml"), rubyBench, await freePort());
    failing = config(path.join(base, "failing.config.yaml"), rubyBench, await freePort(), LAST_LINE);
    const push = await imgtool(["push", "image", "--role", "orchestrator", "--json"], good);
    assert.equal(push.code, 0, push.stderr);
    const bake = await imgtool(["bake", "ami", "--role", "orchestrator", "--json"], good, 1_200_000);
    assert.equal(bake.code, 0, bake.stderr.slice(-4000));
    assert.match(bake.stderr, /pre-loading .*library\/postgres@sha256:/);
  });

  after(async () => {
    for (const run of runs) await imgtool(["terminate", "--run-id", run], good).catch(() => undefined);
    const names = leftContainers();
    if (names) docker(["rm", "-f", ...names.split("\n")]);
    for (const v of docker([
      "volume",
      "ls",
      "-q",
      "--filter",
      `label=imgtool.pipeline=${pipeline}`,
    ]).out.split("\n"))
      if (v) docker(["volume", "rm", "-f", v]);
    for (const img of docker(["images", "-q", "--filter", `reference=imgtool-twin/${pipeline}-*`]).out.split(
      "\n",
    ))
      if (img) docker(["rmi", "-f", img]);
    for (const img of docker(["images", "--format", "{{.Repository}}:{{.Tag}}"]).out.split("\n"))
      if (img.includes(`/${pipeline}/`)) docker(["rmi", "-f", img]);
    rmSync(base, { recursive: true, force: true });
  });

  test("the stack boots from its baked images: db, web and jobs ready, boot-to-ready reported", async () => {
    const run = `stack-ok-${process.pid}-${id}`;
    runs.push(run);
    // The plan: alone, the stack's instance gets every CPU of this machine (it pins no workers).
    const plan = await imgtool(
      ["launch", "--task-runners", "0", "--run-id", run, "--dry-run", "--json"],
      good,
    );
    assert.equal(plan.code, 0, plan.stderr.slice(-4000));
    const planned = (
      JSON.parse(plan.stdout) as { plan: { orchestrator: { group: Record<string, unknown> } } }
    ).plan.orchestrator.group;
    const cpus = /^Cpus_allowed_list:\s*(\S+)$/m.exec(readFileSync("/proc/self/status", "utf8"))?.[1];
    assert.deepEqual([planned.stack, planned.instanceCpus, planned.workerCpus], [true, [cpus], null]);
    const human = await imgtool(["launch", "--task-runners", "0", "--run-id", run, "--dry-run"], good);
    assert.match(human.stdout, new RegExp(`Compose stack on CPU ${cpus}, no pinned workers`));
    const offset = statSync(registryLog).size;
    const r = await imgtool(["launch", "--task-runners", "0", "--run-id", run, "--json"], good);
    assert.equal(r.code, 0, r.stderr.slice(-4000));
    const doc = JSON.parse(r.stdout) as {
      orchestrator: { url: string; healthy: boolean };
      instances: {
        id: string;
        role: string;
        stack?: string[];
        pulled: boolean;
        stackReadySeconds?: number;
        bootToReadySeconds: number;
      }[];
    };
    const orch = doc.instances.find((i) => i.role === "orchestrator")!;
    assert.deepEqual([...(orch.stack ?? [])].sort(), ["db", "jobs", "web"]);
    assert.equal(orch.pulled, false);
    assert.equal(typeof orch.stackReadySeconds, "number");
    assert.ok(
      orch.stackReadySeconds! > 0 && orch.stackReadySeconds! <= orch.bootToReadySeconds,
      JSON.stringify(orch),
    );
    // web's healthcheck interval is 120 s: ready well before Docker's first probe, from imgtool-stack's own run
    // of web's test (real Docker, real exec); Docker still says "starting".
    assert.ok(orch.stackReadySeconds! < 90, `ready after ${orch.stackReadySeconds} s`);
    assert.equal(doc.orchestrator.healthy, true);
    const health = await fetch(`${doc.orchestrator.url}/health`);
    assert.equal(health.status, 200);
    // Nothing was pulled at boot: the registry saw no request for the stack's third-party image (at this test's
    // path: the registry is shared, and another pipeline may pull its own copy, e.g. <pipeline>/library/postgres).
    const log = readFileSync(registryLog).subarray(offset).toString("utf8");
    assert.doesNotMatch(log, postgresRegistryPath());

    // web reaches db:5432 by name over the project bridge, in the host's namespace, only through the chain.
    const chain = stackForwardChain(orch.id);
    const image = docker(["inspect", "--format", "{{.Image}}", orch.id]).out.trim();
    const inInstance = (script: string) => docker(["exec", orch.id, "sh", "-c", script]);

    // db's named volume came with the image: the bake's pre-load made it (Compose's name and labels) and filled it
    // with the image's cluster; db runs on it.
    const store = docker([
      "volume",
      "ls",
      "--filter",
      `label=imgtool.pipeline=${pipeline}`,
      "--filter",
      "label=imgtool.role=orchestrator",
      "--format",
      "{{.Name}}",
    ])
      .out.trim()
      .split("\n")
      .filter((v) => v.startsWith(`imgtool-${pipeline}-orchestrator-v`) && v.endsWith("-store"));
    assert.equal(store.length, 1, `the orchestrator's pre-load store: ${store.join(", ")}`);
    const baked = docker([
      "run",
      "--rm",
      "-v",
      `${store[0]}:/s:ro`,
      "--entrypoint",
      "cat",
      image,
      "/s/volumes/imgtool_pgdata/_data/PG_VERSION",
    ]);
    assert.equal(baked.out.trim(), "15", `the baked store holds the filled volume: ${baked.out}`);
    // The instance's volume carries the fill's labels only: Compose (1.29 here) adds com.docker.compose.version to
    // a volume it creates, so it found this one there and did not make it (nor the engine fill it at boot).
    const labels = inInstance("docker volume inspect imgtool_pgdata --format '{{json .Labels}}'");
    assert.deepEqual(JSON.parse(labels.out), {
      "com.docker.compose.project": "imgtool",
      "com.docker.compose.volume": "pgdata",
    });
    const dbMounts = inInstance(
      "docker inspect --format '{{range .Mounts}}{{.Name}}:{{.Destination}} {{end}}' \"$(docker ps -q --filter label=com.docker.compose.service=db)\"",
    );
    assert.equal(dbMounts.out.trim(), "imgtool_pgdata:/var/lib/postgresql/data");
    const webHealth = inInstance(
      "docker inspect --format '{{.State.Health.Status}}' \"$(docker ps -q --filter label=com.docker.compose.service=web)\"",
    );
    assert.equal(webHealth.out.trim(), "starting", "Docker has not probed web yet: the boot did");
    const webToDb =
      'docker exec "$(docker ps -q --filter label=com.docker.compose.service=web)" ' +
      "ruby -rsocket -e \"Socket.tcp('db', 5432, connect_timeout: 5).close\"";
    const rules = inInstance(`iptables -w 10 -S ${chain}`);
    assert.equal(rules.code, 0, rules.out);
    // The project's one bridge, named for this instance before Compose ran: the engine made it under that name.
    const bridge = new RegExp(`-A ${chain} -i (ib[0-9a-f]{12}) -o \\1 -j ACCEPT`).exec(rules.out)?.[1];
    assert.ok(bridge, rules.out);
    const made = inInstance(
      `docker network inspect imgtool_default --format '{{index .Options "com.docker.network.bridge.name"}} {{index .Options "com.docker.network.driver.mtu"}} {{index .Labels "imgtool.test"}}'`,
    );
    assert.equal(made.out.trim(), `${bridge} 1400 yes`, "named, and the file's own settings kept");
    // The instance shares this machine's network namespace: the kernel shows the interface under that name only.
    assert.ok(existsSync(`/sys/class/net/${bridge}`), `no interface ${bridge} on this machine`);
    assert.ok(!existsSync("/sys/class/net/imgtoolfixed0"), "an interface under the file's own name");
    assert.equal(inInstance(webToDb).code, 0, "web reaches db with the chain");
    assert.equal(inInstance(`iptables -w 10 -D DOCKER-USER -j ${chain}`).code, 0);
    try {
      assert.notEqual(
        inInstance(webToDb).code,
        0,
        "without the chain the host's FORWARD policy drops web -> db",
      );
    } finally {
      assert.equal(inInstance(`iptables -w 10 -I DOCKER-USER -j ${chain}`).code, 0);
    }
    assert.equal(inInstance(webToDb).code, 0, "web reaches db again with the chain back");

    const t = await imgtool(["terminate", "--run-id", run], good);
    assert.equal(t.code, 0, t.stderr);
    assert.equal(leftContainers(), "", "the first instance is gone before the next test starts");
    // The chain went with the instance (looked at in the host's namespace, from the twin image's iptables).
    // The whole filter table: iptables-nft 1.8.9 answers `-S` of a missing chain with "incompatible", not "No chain".
    const table = docker([
      "run",
      "--rm",
      "--network",
      "host",
      "--cap-add",
      "NET_ADMIN",
      "--entrypoint",
      "iptables",
      image,
      "-w",
      "10",
      "-S",
    ]);
    assert.equal(table.code, 0, table.out);
    assert.match(table.out, /^-N DOCKER-USER$/m, "the listing is the host's filter table");
    assert.ok(!table.out.includes(chain), `the chain ${chain} is still there:\n${table.out}`);
  });

  test("a service that exits fails the boot naming it, its exit code and last log line; nothing is left", async () => {
    const run = `stack-fail-${process.pid}-${id}`;
    runs.push(run);
    const r = await imgtool(["launch", "--task-runners", "0", "--run-id", run, "--json"], failing);
    assert.equal(r.code, 1, r.stderr.slice(-4000));
    assert.match(r.stderr, /stack service jobs exited \(exit code 3\)/);
    assert.ok(r.stderr.includes(LAST_LINE), r.stderr.slice(-4000));
    assert.doesNotMatch(r.stderr, /stack service db/);
    assert.equal(leftContainers(), "");
  });

  // An AMI runs Compose v2 (install-stack.sh puts the pinned release binary in /usr/local/lib/docker/cli-plugins);
  // the twin runs Debian bookworm's 1.29. Here the baked imgtool-stack runs with Compose v2 as Debian trixie ships
  // it (2.26, from scripts/fetch-compose-v2; standing in for the AMI's 2.29.7, which cannot be fetched here), put
  // where install-stack.sh puts it, in a local instance of the same twin: v2 starts the baked project (its own
  // container names), web answers on the published port (so web reached db over the project bridge), and a
  // service that exits is named with its exit code and last log line (v2's log prefix stripped), nothing left.
  test(
    "Compose v2 (Debian's 2.26 plugin, where the AMI's goes) runs the baked stack: ready; a service that exits is named",
    { skip: !existsSync(composeV2) && "run scripts/setup (it fetches Compose v2)" },
    async () => {
      const run = `stack-v2-${process.pid}-${id}`;
      runs.push(run);
      const r = await imgtool(["launch", "--task-runners", "0", "--run-id", run, "--json"], good);
      assert.equal(r.code, 0, r.stderr.slice(-4000));
      const doc = JSON.parse(r.stdout) as {
        orchestrator: { url: string };
        instances: { id: string; role: string }[];
      };
      const orch = doc.instances.find((i) => i.role === "orchestrator")!;
      const port = new URL(doc.orchestrator.url).port;
      const inInstance = (script: string, vars: Record<string, string> = {}) =>
        docker([
          "exec",
          ...Object.entries(vars).flatMap(([k, v]) => ["--env", `${k}=${v}`]),
          orch.id,
          "bash",
          "-c",
          script,
        ]);
      const web = inInstance(
        "docker inspect --format '{{.Config.Image}}' \"$(docker ps -q --filter label=com.docker.compose.service=web)\"",
      );
      assert.equal(web.code, 0, web.out);
      // What the user-data hands imgtool-stack for this compose.yaml (the secret's value is any: db starts afresh).
      const vars = {
        IMGTOOL_STACK_FORWARD_CHAIN: stackForwardChain(orch.id),
        IMGTOOL_IMAGE: web.out.trim(),
        PORT: port,
        DB_PASSWORD: `v2-${id}`,
        IMGTOOL_STACK_WAIT_SECONDS: "300",
      };
      /** imgtool-stack with these arguments: its exit code and its stdout and stderr together. */
      const stackRun = (args: string, more: Record<string, string> = {}) => {
        const out = inInstance(
          `imgtool-stack ${args} >/tmp/stack.out 2>&1; echo "rc=$?"; cat /tmp/stack.out`,
          {
            ...vars,
            ...more,
          },
        );
        assert.equal(out.code, 0, out.out);
        const rc = /^rc=(\d+)$/m.exec(out.out)?.[1];
        return { code: Number(rc), out: out.out };
      };
      const names = () =>
        inInstance(
          "docker ps -a --filter label=com.docker.compose.project=imgtool --format '{{.Names}}' | sort",
        )
          .out.trim()
          .split("\n")
          .filter(Boolean);
      // Compose 1.29 takes its project down; then v2 goes where install-stack.sh puts it on Amazon Linux.
      assert.equal(stackRun("down").code, 0);
      assert.deepEqual(names(), []);
      assert.equal(inInstance("mkdir -p /usr/local/lib/docker/cli-plugins").code, 0);
      const cp = docker(["cp", composeV2, `${orch.id}:/usr/local/lib/docker/cli-plugins/docker-compose`]);
      assert.equal(cp.code, 0, cp.out);
      assert.match(inInstance("docker compose version --short").out.trim(), /^v?2\./);

      const up = stackRun("up");
      assert.equal(up.code, 0, up.out);
      assert.match(up.out, /with docker compose$/m, "imgtool-stack chose the v2 plugin");
      assert.match(up.out, /, "stack": \[[^\]]*\], "stackReadySeconds": \d+\.\d{3}$/m);
      // v2's container names (project-service-index), not v1's (project_service_index).
      assert.deepEqual(names(), ["imgtool-db-1", "imgtool-jobs-1", "imgtool-web-1"]);
      const health = await fetch(`${doc.orchestrator.url}/health`);
      assert.equal(health.status, 200, "web answers on the published port");

      assert.equal(stackRun("down").code, 0);
      assert.deepEqual(names(), []);
      const failed = stackRun("up", { JOBS_FAIL: `${LAST_LINE} (v2)` });
      assert.equal(failed.code, 1, failed.out);
      assert.match(failed.out, /^stack service jobs exited \(exit code 3\); last log lines:$/m);
      // The last log line as the service printed it: v2's "jobs-1  | " prefix is stripped as v1's is.
      assert.match(failed.out, new RegExp(`^${LAST_LINE} \\(v2\\)$`, "m"), failed.out);
      assert.deepEqual(names(), [], "a failed up leaves no container of the project");

      const t = await imgtool(["terminate", "--run-id", run], good);
      assert.equal(t.code, 0, t.stderr);
      assert.equal(leftContainers(), "");
    },
  );
});
