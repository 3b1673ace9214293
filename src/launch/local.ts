/**
 * The local target of `imgtool launch`: each "instance" is a container of the role's baked twin image with its
 * own Docker engine, booting the way an EC2 instance of the AMI does:
 *
 * - its engine's store (/var/lib/docker) is its OWN copy of the pre-load volume made at bake time, as an
 *   instance's root volume is its own copy of the AMI's snapshot (two engines never share a store);
 * - the boot shim does what systemd and cloud-init do there: start the engine, then run the exact rendered
 *   user-data (gunzipped when compressed) with its output on the console (`docker logs`);
 * - the secret the user-data reads at boot is a read-only file mounted at /run/secrets/ (the local stand-in for
 *   the SSM SecureString read through the instance role): it is in no user-data, environment, label or log;
 * - the instance shares this machine's network (its engine changes no bridge, iptables rule or sysctl; its
 *   workers use the host network), so the loopback registry and the orchestrator's port are reachable as on a VPC;
 * - the instance is sized by a CPU set of this machine; the user-data pins its workers inside it.
 * The readiness marker (/run/imgtool) is a folder of the state dir, so the launcher sees it without exec.
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import type Docker from "dockerode";
import type { Config } from "../config/load.js";
import { FailureError, UsageError } from "../errors.js";
import type { EventSink } from "../events.js";
import { formatCpuList, readCpuTopology, type CpuTopology } from "./cpus.js";
import { localInstanceName } from "./ids.js";
import type {
  BootContext,
  FoundInstance,
  GroupRequest,
  LaunchBackend,
  ReadyReport,
  StartedInstance,
} from "./types.js";
import { DOCKER_LABEL, TAG } from "../config/tags.js";

export const SECRET_MOUNT = "/run/secrets/imgtool-orchestrator-api-key";
export const REGISTRY_PASSWORD_MOUNT = "/run/secrets/imgtool-registry-password";
export const MARKER_MOUNT = "/run/imgtool";
export const USER_DATA_MOUNT = "/var/lib/cloud/instance/user-data.txt";

/**
 * The nested-engine flags (as src/bake/twin-ops.ts). NET_ADMIN is needed: the engine brings up the host
 * network's sandbox for every --network host container.
 */
export const INSTANCE_HOST_CONFIG = {
  CapAdd: ["SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE", "MKNOD"],
  SecurityOpt: ["seccomp=unconfined", "apparmor=unconfined"],
};

/**
 * The instance's engine shares the host's network namespace. It keeps its default bridge, which there is the
 * outer engine's docker0, adopted as it is (its own containers all use the host network); with --bridge=none
 * it would DELETE docker0 at start (dockerd removes the default bridge interface when the bridge is disabled),
 * and every later container of the outer engine would fail with "could not find bridge docker0". No iptables,
 * masquerading or forwarding changes either.
 */
export const INSTANCE_DOCKERD_FLAGS = "--iptables=false --ip-masq=false --ip-forward=false";

/** PID 1 of a local instance: what systemd and cloud-init do when an instance of the AMI boots. */
export const BOOT_SHIM = `set -u
mkdir -p /var/log /var/lib/cloud/instance/scripts
# systemd: the baked CPU settings (when the twin has them) and the baked engine start at boot; the engine is
# on the host's network, so it changes no iptables rule, masquerading or forwarding.
if [ -x /usr/local/sbin/imgtool-cpu-setup ]; then /usr/local/sbin/imgtool-cpu-setup >/var/log/imgtool-cpu-setup.log 2>&1 & fi
dockerd ${INSTANCE_DOCKERD_FLAGS} --cgroup-parent="$IMGTOOL_CGROUP_PARENT" >/var/log/dockerd.log 2>&1 &
# cloud-init: run the user-data as it was sent (gzip unpacked), output on the console.
ud=${USER_DATA_MOUNT}
part=/var/lib/cloud/instance/scripts/part-001
if [ "$(od -An -N2 -tx1 "$ud" | tr -d ' \\n')" = 1f8b ]; then gzip -dc "$ud" >"$part"; else cat "$ud" >"$part"; fi
chmod 0700 "$part"
"$part" 2>&1 | tee -a /var/log/cloud-init-output.log
wait
`;

/** Inside a local instance before it is removed: stop the workers and the engine, drop the engine's cgroups. */
export const SHUTDOWN_SCRIPT = `ids=$(docker ps -aq 2>/dev/null)
[ -z "$ids" ] || docker rm --force $ids >/dev/null 2>&1
if [ -e /var/run/docker.pid ]; then
  kill "$(cat /var/run/docker.pid)" 2>/dev/null
  i=0
  while [ -e /var/run/docker.pid ] && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
fi
for d in /sys/fs/cgroup/*/"$IMGTOOL_CGROUP_PARENT"; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done
exit 0
`;

export interface LocalLaunchDeps {
  config: Config;
  docker: Docker;
  /** The local registry's user and the file holding its password (scripts/setup's stack record). */
  registry: { user: string; passwordFile: string };
  events: EventSink;
  /** Where run folders (user-data, readiness marker) and the secret live. Default: config.local.state_dir. */
  stateDir?: string;
  /** This machine's CPUs. Default: read from sysfs. */
  cpus?: () => CpuTopology;
  /** How often the readiness marker is looked at. @default 25 */
  pollMs?: number;
}

const volumeOf = (name: string) => `${name}-store`;

export function localBackend(deps: LocalLaunchDeps): LaunchBackend {
  const { config, docker, events } = deps;
  const stateDir = deps.stateDir ?? config.local.state_dir;
  const secretFile = path.join(stateDir, "secrets", `${config.pipeline}-orchestrator-api-key`);
  const runDir = (runId: string, name: string) => path.join(stateDir, "launch", runId, name);
  const started = new Map<string, { runId: string; containerId: string }>();
  /** Names this launch created something for (volume, container): what a failed group start cleans up. */
  const claimed = new Set<string>();
  let port: number | undefined;

  const copyStore = async (
    from: string | null,
    to: string,
    image: string,
    labels: Record<string, string>,
  ) => {
    await docker.createVolume({ Name: to, Labels: labels });
    if (!from) return;
    const c = await docker.createContainer({
      Image: image,
      Entrypoint: ["/bin/sh", "-c", "cp -a /from/. /to/"],
      Cmd: [],
      Labels: labels,
      NetworkDisabled: true,
      HostConfig: {
        ...INSTANCE_HOST_CONFIG,
        Binds: [`${from}:/from:ro`, `${to}:/to`],
      },
    });
    try {
      await c.start();
      const { StatusCode } = (await c.wait()) as { StatusCode: number };
      if (StatusCode !== 0) {
        throw new FailureError(`Copying the pre-load volume ${from} to ${to} failed (exit ${StatusCode}).`, {
          fix: `Check that the volume exists: docker volume inspect ${from} (imgtool bake ami makes it).`,
        });
      }
    } finally {
      await c.remove({ force: true }).catch(() => undefined);
    }
  };

  const startOne = async (req: GroupRequest, runId: string, index: number, cpus: number[] | undefined) => {
    const name = localInstanceName(config.pipeline, runId, req.role, index);
    const dir = runDir(runId, name);
    await mkdir(path.join(dir, "run"), { recursive: true });
    const userDataFile = path.join(dir, "user-data");
    await writeFile(userDataFile, req.userData.bytes, { mode: 0o600 });
    const labels: Record<string, string> = {
      [DOCKER_LABEL.launch]: "instance",
      [DOCKER_LABEL.pipeline]: config.pipeline,
      [DOCKER_LABEL.role]: req.role,
      [DOCKER_LABEL.runId]: runId,
      [DOCKER_LABEL.version]: req.tags[TAG.version] ?? "",
      [DOCKER_LABEL.instanceType]: req.instanceType,
      ...(req.port !== undefined ? { [DOCKER_LABEL.port]: String(req.port) } : {}),
    };
    if (await exists(docker.getContainer(name).inspect())) {
      throw new UsageError(
        `A local instance named ${name} exists already: run ${runId} was launched before.`,
        {
          fix: `\`imgtool terminate --run-id ${runId}\` removes it; or launch with another --run-id.`,
        },
      );
    }
    claimed.add(name);
    await copyStore(req.preloadVolume, volumeOf(name), req.imageId, labels);
    const c = await docker.createContainer({
      name,
      Hostname: name,
      Image: req.imageId,
      Entrypoint: ["/bin/sh", "-c", BOOT_SHIM],
      Cmd: [],
      Env: [`IMGTOOL_CGROUP_PARENT=${name}`],
      Labels: labels,
      HostConfig: {
        ...INSTANCE_HOST_CONFIG,
        NetworkMode: "host",
        ...(cpus?.length ? { CpusetCpus: formatCpuList(cpus) } : {}),
        Binds: [
          `${volumeOf(name)}:/var/lib/docker`,
          "/sys/fs/cgroup:/sys/fs/cgroup",
          `${userDataFile}:${USER_DATA_MOUNT}:ro`,
          `${path.join(dir, "run")}:${MARKER_MOUNT}`,
          `${secretFile}:${SECRET_MOUNT}:ro`,
          `${deps.registry.passwordFile}:${REGISTRY_PASSWORD_MOUNT}:ro`,
        ],
      },
    });
    started.set(name, { runId, containerId: c.id });
    await c.start();
    return name;
  };

  const logsTail = async (name: string): Promise<string> => {
    try {
      const buf = (await docker
        .getContainer(name)
        .logs({ stdout: true, stderr: true, tail: 20 })) as unknown as Buffer;
      return demux(buf)
        .replace(/[^\x20-\x7e\n]/g, "")
        .trim();
    } catch {
      return "";
    }
  };

  const removeOne = async (name: string, runId: string | undefined) => {
    const c = docker.getContainer(name);
    try {
      const info = await c.inspect();
      runId ??= info.Config.Labels?.[DOCKER_LABEL.runId];
      if (info.State.Running) await execIn(c, SHUTDOWN_SCRIPT, 30_000).catch(() => undefined);
      await c.remove({ force: true });
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode !== 404) throw e;
    }
    try {
      await docker.getVolume(volumeOf(name)).remove();
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode !== 404) throw e;
    }
    if (runId) await rm(runDir(runId, name), { recursive: true, force: true });
  };

  return {
    target: "local",

    async bootContext(): Promise<BootContext> {
      if (port === undefined) {
        const want = config.launch.orchestrator_port;
        port = (await portFree(want)) ? want : await freePort();
        if (port !== want) {
          events({
            type: "warn",
            role: "orchestrator",
            message: `port ${want} is taken on this machine: the local orchestrator listens on ${port}`,
          });
        }
      }
      return {
        region: "local",
        registry: { user: deps.registry.user, auth: "file", passwordFile: REGISTRY_PASSWORD_MOUNT },
        secret: { source: "file", parameter: SECRET_MOUNT },
        orchestratorPort: port,
        orchestratorHost: "127.0.0.1",
      };
    },

    async prepare() {
      if (existsSync(secretFile)) return;
      await mkdir(path.dirname(secretFile), { recursive: true, mode: 0o700 });
      await writeFile(secretFile, randomBytes(24).toString("hex"), { mode: 0o600, flag: "wx" }).catch((e) => {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      });
      await chmod(secretFile, 0o600);
      events({
        type: "publish",
        message: `created the local orchestrator API key (${secretFile}, mode 0600)`,
      });
    },

    machineCpus: () => (deps.cpus ?? (() => readCpuTopology("/")))(),

    async start(req, runId) {
      const first = req.firstIndex ?? 0;
      const settled = await Promise.allSettled(
        Array.from({ length: req.count }, (_, i) => startOne(req, runId, first + i, req.instanceCpus?.[i])),
      );
      const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
      if (failed) {
        // A group starts whole or not at all, as one RunInstances does.
        await Promise.all(
          Array.from({ length: req.count }, (_, i) =>
            localInstanceName(config.pipeline, runId, req.role, first + i),
          )
            .filter((name) => claimed.has(name))
            .map((name) => removeOne(name, runId).catch(() => undefined)),
        );
        throw failed.reason;
      }
      const names = settled.map((s) => (s as PromiseFulfilledResult<string>).value);
      return names.map((id): StartedInstance => ({
        id,
        role: req.role,
        instanceType: req.instanceType,
        arch: req.arch,
        market: "on-demand",
        privateIp: "127.0.0.1",
        state: "running",
      }));
    },

    async waitReady(inst, timeoutMs): Promise<ReadyReport> {
      const meta = started.get(inst.id);
      if (!meta) throw new Error(`unknown local instance ${inst.id}`);
      const dir = path.join(runDir(meta.runId, inst.id), "run");
      const deadline = Date.now() + timeoutMs;
      let lastInspect = 0;
      for (;;) {
        const ready = await readJson(path.join(dir, "ready"));
        if (ready) {
          const info = await docker.getContainer(inst.id).inspect();
          const mtime = (await stat(path.join(dir, "ready"))).mtimeMs;
          const startedAt = dockerTimeMs(info.State.StartedAt);
          return {
            workers: (ready.workers as { name: string; cpus: string }[]) ?? [],
            bootToReadySeconds: Number(ready.bootToReadySeconds),
            ...(startedAt !== undefined ? { startToReadySeconds: round3((mtime - startedAt) / 1000) } : {}),
            pulled: ready.pulled === true,
            registryLogin: ready.registryLogin === true,
          };
        }
        const failed = await readJson(path.join(dir, "failed"));
        if (failed) {
          throw new FailureError(
            `The ${inst.role} instance ${inst.id} failed to boot: ${String(failed.reason)}\n${await logsTail(inst.id)}`,
          );
        }
        if (Date.now() - lastInspect > 500) {
          lastInspect = Date.now();
          const info = await docker.getContainer(inst.id).inspect();
          if (!info.State.Running) {
            throw new FailureError(
              `The ${inst.role} instance ${inst.id} stopped (exit ${info.State.ExitCode}) before it was ready:\n${await logsTail(inst.id)}`,
            );
          }
        }
        if (Date.now() > deadline) {
          throw new FailureError(
            `The ${inst.role} instance ${inst.id} was not ready within ${Math.round(timeoutMs / 1000)} s:\n${await logsTail(inst.id)}`,
          );
        }
        await new Promise((r) => setTimeout(r, deps.pollMs ?? 25));
      }
    },

    async terminate(ids) {
      await Promise.all(ids.map((id) => removeOne(id, started.get(id)?.runId)));
      return ids;
    },

    async find(filter) {
      const labels = [`${DOCKER_LABEL.launch}=instance`, `${DOCKER_LABEL.pipeline}=${config.pipeline}`];
      if (filter.role) labels.push(`${DOCKER_LABEL.role}=${filter.role}`);
      if (filter.runId) labels.push(`${DOCKER_LABEL.runId}=${filter.runId}`);
      const list = await docker.listContainers({ all: !filter.running, filters: { label: labels } });
      return list.map((c): FoundInstance => ({
        id: (c.Names[0] ?? c.Id).replace(/^\//, ""),
        role: c.Labels[DOCKER_LABEL.role] ?? "",
        runId: c.Labels[DOCKER_LABEL.runId] ?? "",
        privateIp: "127.0.0.1",
        state: c.State,
        ...(c.Labels[DOCKER_LABEL.port] ? { port: Number(c.Labels[DOCKER_LABEL.port]) } : {}),
      }));
    },
  };
}

/** Whether a dockerode inspect found the object (404: no). */
async function exists(p: Promise<unknown>): Promise<boolean> {
  try {
    await p;
    return true;
  } catch (e) {
    if ((e as { statusCode?: number }).statusCode === 404) return false;
    throw e;
  }
}

async function readJson(file: string): Promise<Record<string, unknown> | undefined> {
  try {
    return JSON.parse(await readFile(file, "utf8")) as Record<string, unknown>;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}

const round3 = (n: number) => Math.round(n * 1000) / 1000;

/** Milliseconds (with the fraction) of Docker's RFC 3339 time with nanoseconds. */
export function dockerTimeMs(t: string | undefined): number | undefined {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(t ?? "");
  if (!m) return undefined;
  const whole = Date.parse(`${m[1]}${m[3]}`);
  return Number.isNaN(whole) ? undefined : whole + Number(`0.${m[2] ?? "0"}`) * 1000;
}

/** The text of a non-TTY container log stream (8-byte frame headers). */
export function demux(buf: Buffer): string {
  let out = "";
  let i = 0;
  while (i + 8 <= buf.length && (buf[i] === 1 || buf[i] === 2) && buf[i + 1] === 0) {
    const len = buf.readUInt32BE(i + 4);
    out += buf.subarray(i + 8, i + 8 + len).toString("utf8");
    i += 8 + len;
  }
  return i === 0 ? buf.toString("utf8") : out;
}

/** Run a shell script in a container; resolves with its exit code and output. */
export async function execIn(
  c: Docker.Container,
  script: string,
  timeoutMs: number,
): Promise<{ exitCode: number; output: string }> {
  const ex = await c.exec({ Cmd: ["/bin/sh", "-c", script], AttachStdout: true, AttachStderr: true });
  const stream = await ex.start({ hijack: true, stdin: false });
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      stream.destroy();
      reject(new Error(`exec timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    stream.on("data", (d: Buffer) => chunks.push(d));
    stream.on("end", () => {
      clearTimeout(timer);
      resolve();
    });
    stream.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
  const info = await ex.inspect();
  return { exitCode: info.ExitCode ?? -1, output: demux(Buffer.concat(chunks)) };
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once("error", () => resolve(false));
    s.listen({ port, host: "0.0.0.0", exclusive: true }, () => s.close(() => resolve(true)));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen({ port: 0, host: "0.0.0.0", exclusive: true }, () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}
