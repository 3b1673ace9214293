/**
 * The local target of `imgtool launch`: each "instance" is a container of the role's baked twin image with its
 * own Docker engine, booting the way an EC2 instance of the AMI does:
 *
 * - its engine's store (/var/lib/docker) is its OWN copy of the pre-load volume made at bake time, as an
 *   instance's root volume is its own copy of the AMI's snapshot (two engines never share a store);
 * - it boots through the twin's entrypoint, imgtool-boot, as systemd boots the AMI: cloud-init's local and network
 *   stages, then the CPU settings and the engine beside its config stage, then its final stage, seeded through
 *   NoCloud with the exact rendered user-data (gzipped when so configured) and an instance id: cloud-init decodes
 *   and runs it, once per instance id, output on the console (`docker logs`); /run is a fresh tmpfs at every
 *   start, /var/lib/cloud (the container's own layer) persists across a restart, as on a reboot;
 * - the secret the user-data reads at boot is a read-only file mounted at /run/secrets/ (the local stand-in for
 *   the SSM SecureString read through the instance role): it is in no user-data, environment, label or log;
 * - the instance shares this machine's network (its engine changes no bridge, iptables rule or sysctl; its
 *   workers use the host network), so the loopback registry and the orchestrator's port are reachable as on a VPC;
 *   a stack's Compose project bridges are the one exception: see {@link stackForwardChain};
 * - the instance is sized by a CPU set of this machine; the user-data pins its workers inside it.
 * The readiness marker (/run/imgtool) and cloud-init's run folder are folders of the state dir, so the launcher
 * sees them without exec.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import type Docker from "dockerode";
import { withBootSteps } from "./boot-steps.js";
import { ensureLocalSecrets, localSecretBinds, localSecretMount } from "./secret-files.js";
import { cloudInitErrors, ec2UserDataRefusal, userDataRefused } from "./cloud-init.js";
import type { Config } from "../config/load.js";
import { FailureError, UsageError } from "../errors.js";
import type { EventSink } from "../events.js";
import {
  NESTED_ENGINE_PRIVILEGES,
  copyStoreEntrypoint,
  engineScript,
  nestedEngineHostConfig,
} from "../docker/nested-engine.js";
import { formatCpuList, readCpuTopology, type CpuTopology } from "./cpus.js";
import { localInstanceName } from "./ids.js";
import { describeOwner, portClaims } from "./port-claims.js";
import { inspected as exists } from "../docker/engine.js";
import type {
  BootContext,
  FoundInstance,
  GroupRequest,
  LaunchBackend,
  ReadyReport,
  StartedInstance,
} from "./types.js";
import { DOCKER_LABEL, TAG } from "../config/tags.js";

export const SECRET_MOUNT = localSecretMount("orchestrator-api-key");
export const REGISTRY_PASSWORD_MOUNT = "/run/secrets/imgtool-registry-password";
export const MARKER_MOUNT = "/run/imgtool";
/** cloud-init's NoCloud seed: the user-data exactly as sent to EC2, and the meta-data (instance id, hostname). */
export const SEED_MOUNT = "/var/lib/cloud/seed/nocloud";
/**
 * cloud-init's data folder (the instance id it last booted, its status.json and result.json, which
 * /run/cloud-init links to): a folder of the state dir, so the launcher reads cloud-init's result without exec.
 */
export const CLOUD_INIT_DATA_MOUNT = "/var/lib/cloud/data";

/** The nested-engine privileges (src/docker/nested-engine.ts). */
export const INSTANCE_HOST_CONFIG = NESTED_ENGINE_PRIVILEGES;

/**
 * The instance's engine shares the host's network namespace. It keeps its default bridge, which there is the
 * outer engine's docker0, adopted as it is (its own containers all use the host network); with --bridge=none
 * it would DELETE docker0 at start (dockerd removes the default bridge interface when the bridge is disabled),
 * and every later container of the outer engine would fail with "could not find bridge docker0". No iptables,
 * masquerading or forwarding changes either.
 */
export const INSTANCE_DOCKERD_FLAGS = "--iptables=false --ip-masq=false --ip-forward=false";

/**
 * The iptables chain through which a local instance lets the services of its Compose stack reach each other.
 *
 * Why: the instance's engine runs in the host's network namespace without iptables (above), so a project bridge it
 * creates for a stack is a bridge of this machine, and the host's FORWARD policy (DROP, set by the outer engine;
 * br_netfilter is on, so bridged frames go through FORWARD) drops every packet between two services on it: `web`
 * could not reach `db:5432`. imgtool-stack (packer/scripts/lib) makes this chain when the variable
 * IMGTOOL_STACK_FORWARD_CHAIN names it: one ACCEPT rule per project bridge (in on it and out on it, nothing else;
 * each bridge named per instance, so the rules go in before Compose runs), jumped to from the top of the host's
 * DOCKER-USER chain, before any service starts;
 * `imgtool-stack down` and imgtool-shutdown (run before the instance is removed) delete it. One chain per instance
 * (a hash of its name: at most 28 characters, as iptables wants), so concurrent instances never touch each other's.
 * On aws the variable is unset: the instance's engine manages its own iptables in its own host.
 *
 * The other design, an own network namespace per local instance (its engine then runs with iptables there), would
 * also give each instance ports of its own (today two launches at once choose the orchestrator's port through claims,
 * src/launch/port-claims.ts), but needs a path from each instance to the loopback registry, the orchestrator's URL
 * from the task runners and imgtool's health port: not done yet.
 */
export function stackForwardChain(instanceName: string): string {
  return `IMGTOOL-${createHash("sha256").update(instanceName).digest("hex").slice(0, 12)}`;
}

/** PID 1 of a local instance: the twin's entrypoint, as on the twin (packer/scripts/lib/imgtool-boot). */
export const BOOT_ENTRYPOINT = "/usr/local/sbin/imgtool-boot";

/** Inside a local instance before it is removed: packer/scripts/lib/imgtool-shutdown (workers, engine, cgroups). */
export const SHUTDOWN_SCRIPT = engineScript("imgtool-shutdown");

export interface LocalLaunchDeps {
  config: Config;
  docker: Docker;
  /** The local registry's user and the file holding its password (scripts/setup's stack record). */
  registry: { user: string; passwordFile: string };
  events: EventSink;
  /** Labels naming the imgtool run that starts the instances (src/leftovers/runs.ts), on every container and volume. */
  ownerLabels?: Record<string, string>;
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
  const runDir = (runId: string, name: string) => path.join(stateDir, "launch", runId, name);
  const started = new Map<string, { runId: string; containerId: string }>();
  /** Names this launch created something for (volume, container): what a failed group start cleans up. */
  const claimed = new Set<string>();
  let port: number | undefined;
  // Claims (the orchestrator's port) live as long as launch waits for the orchestrator (a --no-wait launch exits
  // before its instance binds the port); a task runner's longer wait (its pre-warm) claims no port.
  const claims = portClaims(path.join(stateDir, "port-claims"), {
    ttlMs: (config.launch.ready_timeout_seconds + 60) * 1000,
  });
  const owner = (runId: string) => `${config.pipeline}.${runId}`;

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
      Entrypoint: copyStoreEntrypoint("/to"),
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
    await mkdir(path.join(dir, "cloud-init"), { recursive: true });
    await mkdir(path.join(dir, "seed"), { recursive: true, mode: 0o700 });
    await writeFile(path.join(dir, "seed", "user-data"), req.userData.bytes, { mode: 0o600 });
    await writeFile(path.join(dir, "seed", "meta-data"), metaData(name), { mode: 0o600 });
    const labels: Record<string, string> = {
      [DOCKER_LABEL.launch]: "instance",
      [DOCKER_LABEL.pipeline]: config.pipeline,
      [DOCKER_LABEL.role]: req.role,
      [DOCKER_LABEL.runId]: runId,
      [DOCKER_LABEL.version]: req.tags[TAG.version] ?? "",
      [DOCKER_LABEL.instanceType]: req.instanceType,
      ...(req.port !== undefined ? { [DOCKER_LABEL.port]: String(req.port) } : {}),
      ...deps.ownerLabels,
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
      Entrypoint: [BOOT_ENTRYPOINT],
      Cmd: ["sleep", "infinity"],
      Env: [
        `IMGTOOL_CGROUP_PARENT=${name}`,
        `IMGTOOL_DOCKERD_ARGS=${INSTANCE_DOCKERD_FLAGS} --cgroup-parent=${name}`,
        `IMGTOOL_STACK_FORWARD_CHAIN=${stackForwardChain(name)}`,
      ],
      Labels: labels,
      HostConfig: {
        // A fresh /run at every start, as a reboot gives (the mounts below it come on top).
        Tmpfs: { "/run": "rw,exec,nosuid,nodev,mode=755" },
        ...nestedEngineHostConfig(volumeOf(name), [
          `${path.join(dir, "seed")}:${SEED_MOUNT}:ro`,
          `${path.join(dir, "cloud-init")}:${CLOUD_INIT_DATA_MOUNT}`,
          `${path.join(dir, "run")}:${MARKER_MOUNT}`,
          ...localSecretBinds(config),
          `${deps.registry.passwordFile}:${REGISTRY_PASSWORD_MOUNT}:ro`,
        ]),
        ...(cpus?.length ? { CpusetCpus: formatCpuList(cpus) } : {}),
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

  /**
   * Why cloud-init did not get the user-data to ready, in its own words: its result.json and status.json (in
   * the instance's cloud-init data folder) and the WARNING/ERROR lines of its log, which the console carries;
   * then imgtool-boot's own lines and the end of the console.
   */
  const cloudInitReport = async (name: string, runId: string): Promise<string> => {
    const data = path.join(runDir(runId, name), "cloud-init");
    let text = "";
    try {
      const buf = (await docker.getContainer(name).logs({ stdout: true, stderr: true })) as unknown as Buffer;
      text = demux(buf).replace(/[^\x20-\x7e\n]/g, "");
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode !== 404) throw e;
    }
    const words = cloudInitErrors({
      result: await readText(path.join(data, "result.json")),
      status: await readText(path.join(data, "status.json")),
      log: text,
    });
    const lines = text.split("\n");
    return [
      words.length
        ? `cloud-init's own words:\n${words.map((w) => `  ${w}`).join("\n")}`
        : "cloud-init reported no error or warning (result.json, status.json, its log).",
      ...lines.filter((l) => l.startsWith("imgtool-boot:")),
      "The end of the console:",
      ...lines
        .filter((l) => !l.startsWith("ci-info:"))
        .slice(-10)
        .map((l) => `  ${l}`),
    ]
      .join("\n")
      .trimEnd();
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

  /** Start one group whole or not at all, as one RunInstances does. */
  const startGroup = async (req: GroupRequest, runId: string): Promise<StartedInstance[]> => {
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
  };

  return {
    target: "local",

    async bootContext(runId): Promise<BootContext> {
      if (port === undefined) {
        const want = config.launch.orchestrator_port;
        const held = await claims.heldBy(want, owner(runId));
        port = !held && (await portFree(want)) ? want : await freePort();
        if (port !== want) {
          events({
            type: "warn",
            role: "orchestrator",
            message:
              `port ${want} is ${held ? `claimed by the launch of ${describeOwner(held.owner)}` : "taken"} on this machine: ` +
              `the local orchestrator listens on ${port}`,
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
      for (const made of await ensureLocalSecrets(config)) {
        events({
          type: "publish",
          message: `created the local secret ${made.name} (${made.file}, mode 0600, a random value)`,
        });
      }
    },

    machineCpus: () => (deps.cpus ?? (() => readCpuTopology("/")))(),

    async start(req, runId) {
      // The instance stands in for EC2: RunInstances refuses user-data over its limit before any instance exists.
      const refusal = ec2UserDataRefusal(req.userData.bytes.length);
      if (refusal) {
        throw userDataRefused({
          what: `The launch of ${req.count} x ${req.instanceType} of ${req.role}`,
          size: req.userData.bytes.length,
          error: refusal,
          by: "the local target, as EC2 does",
        });
      }
      // The orchestrator's port: claimed only when an orchestrator starts (a launch that keeps one claims none).
      const claiming = req.role === "orchestrator" && port !== undefined;
      if (claiming) {
        const held = await claims.claim(port!, owner(runId));
        if (held) {
          throw new FailureError(
            `Port ${port} for the local orchestrator was claimed at the same moment by the launch of ${describeOwner(held.owner)} (pid ${held.pid}).`,
            { fix: "Launch again: this launch started nothing, and the next picks another port." },
          );
        }
      }
      try {
        return await startGroup(req, runId);
      } catch (e) {
        if (claiming) await claims.release(owner(runId)).catch(() => undefined);
        throw e;
      }
    },

    async waitReady(inst, timeoutMs, signal): Promise<ReadyReport> {
      const meta = started.get(inst.id);
      if (!meta) throw new Error(`unknown local instance ${inst.id}`);
      const dir = path.join(runDir(meta.runId, inst.id), "run");
      const deadline = Date.now() + timeoutMs;
      let lastInspect = 0;
      for (;;) {
        if (signal?.aborted)
          throw new FailureError(`Stopped waiting for ${inst.id}: the launch was interrupted.`);
        const ready = await readJson(path.join(dir, "ready"));
        if (ready) {
          const info = await docker.getContainer(inst.id).inspect();
          const mtime = (await stat(path.join(dir, "ready"))).mtimeMs;
          const startedAt = dockerTimeMs(info.State.StartedAt);
          return {
            workers: (ready.workers as ReadyReport["workers"]) ?? [],
            bootToReadySeconds: Number(ready.bootToReadySeconds),
            ...withBootSteps(ready.bootSteps),
            ...(startedAt !== undefined ? { startToReadySeconds: round3((mtime - startedAt) / 1000) } : {}),
            pulled: ready.pulled === true,
            registryLogin: ready.registryLogin === true,
            ...(typeof ready.prewarmSeconds === "number" ? { prewarmSeconds: ready.prewarmSeconds } : {}),
            ...(ready.stackReadySeconds !== undefined
              ? { stackReadySeconds: Number(ready.stackReadySeconds), stack: ready.stack as string[] }
              : {}),
          };
        }
        const failed = await readJson(path.join(dir, "failed"));
        if (failed) {
          throw new FailureError(
            `The ${inst.role} instance ${inst.id} failed to boot: ${String(failed.reason)}\n${await logsTail(inst.id)}`,
          );
        }
        // cloud-init's final stage is over and the user-data wrote no marker (looked at again: it may have just
        // now): cloud-init did not run it to the end. Its own words are in its result and on the console.
        const finished = existsSync(path.join(runDir(meta.runId, inst.id), "cloud-init", "result.json"));
        if (finished && !existsSync(path.join(dir, "ready")) && !existsSync(path.join(dir, "failed"))) {
          throw new FailureError(
            `The ${inst.role} instance ${inst.id}: cloud-init finished without the user-data reaching ready. ` +
              (await cloudInitReport(inst.id, meta.runId)),
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

    /** The run's claims on the orchestrator's port (a running orchestrator's port is bound, taken anyway). */
    async forgetRun(runId) {
      await claims.release(owner(runId));
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

/** NoCloud's meta-data of a local instance: its id (cloud-init runs the user-data once per id) and hostname. */
export function metaData(name: string): string {
  return `instance-id: ${name}\nlocal-hostname: ${name}\n`;
}

async function readText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}

async function readJson(file: string): Promise<Record<string, unknown> | undefined> {
  const text = await readText(file);
  return text === undefined ? undefined : (JSON.parse(text) as Record<string, unknown>);
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

/** A port the kernel just handed out as free (bound to port 0 on every address, then closed). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen({ port: 0, host: "0.0.0.0", exclusive: true }, () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}
