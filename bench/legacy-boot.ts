/**
 * One local "instance" booting a legacy boot script (bench/boot-legacy-<kind>.sh), in the same container shape
 * as imgtool's local instance, timed two ways: from the instance's start (the engine's record) to the script's
 * readiness marker, and as the script counted from its first line. Shared by bench/boot.ts and bench/stack.ts.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, statSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type Docker from "dockerode";
import {
  INSTANCE_DOCKERD_FLAGS,
  INSTANCE_HOST_CONFIG,
  SHUTDOWN_SCRIPT,
  dockerTimeMs,
  execIn,
  stackForwardChain,
} from "../src/launch/local.js";
import type { LocalStack } from "../src/local/stack.js";
import { projectPath } from "../src/paths.js";

/** Where the legacy instance runs: the engine, the stack's registry, and the pipeline its containers are labelled with. */
export interface LegacyHost {
  docker: Docker;
  stack: LocalStack;
  pipeline: string;
}

export interface Sample {
  /** From the instance's start (engine record) to its readiness marker. */
  startToReady: number;
  /** As the instance measured it: from the first line of its script. */
  scriptSeconds: number;
}

/** One local instance booting a legacy script; the same container shape as imgtool's local instance. */
export async function legacyBoot(
  fx: LegacyHost,
  kind: string,
  round: number,
  workers: number,
  env: Record<string, string>,
  extraBinds: string[],
): Promise<Sample> {
  const name = `imgtool-${fx.pipeline}-legacy-${kind}-${round}`;
  const dir = mkdtempSync(path.join(tmpdir(), `imgtool-bench-${kind}-`));
  const marker = path.join(dir, "run");
  mkdirSync(marker);
  const c = await fx.docker.createContainer({
    name,
    Image: "imgtool/base:bookworm",
    Entrypoint: ["/bin/bash", "/bench/boot.sh"],
    Cmd: [],
    Env: [
      `IMGTOOL_DOCKERD_ARGS=${INSTANCE_DOCKERD_FLAGS} --cgroup-parent=${name}`,
      `IMGTOOL_CGROUP_PARENT=${name}`,
      // A Compose project's bridge forwards between its services only through this chain (as in imgtool's
      // instance, src/launch/local.ts); boot-legacy-stack.sh makes it, imgtool-shutdown removes it.
      `IMGTOOL_STACK_FORWARD_CHAIN=${stackForwardChain(name)}`,
      `WORKERS=${workers}`,
      `REGISTRY=${fx.stack.registry.endpoint}`,
      `REGISTRY_USER=${fx.stack.registry.user}`,
      ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
    ],
    Labels: { "imgtool.pipeline": fx.pipeline, "imgtool.bench": kind },
    HostConfig: {
      ...INSTANCE_HOST_CONFIG,
      NetworkMode: "host",
      Tmpfs: { "/var/lib/docker": "exec" },
      Binds: [
        `${projectPath("bench", `boot-legacy-${kind}.sh`)}:/bench/boot.sh:ro`,
        `${fx.stack.registry.passwordFile}:/run/secrets/registry-password:ro`,
        `${marker}:/run/imgtool`,
        "/sys/fs/cgroup:/sys/fs/cgroup",
        ...extraBinds,
      ],
    },
  });
  try {
    await c.start();
    const deadline = Date.now() + 15 * 60_000;
    for (;;) {
      try {
        const ready = JSON.parse(readFileSync(path.join(marker, "ready"), "utf8")) as {
          bootToReadySeconds: number;
        };
        const info = await c.inspect();
        const started = dockerTimeMs(info.State.StartedAt)!;
        return {
          startToReady: (statSync(path.join(marker, "ready")).mtimeMs - started) / 1000,
          scriptSeconds: ready.bootToReadySeconds,
        };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      }
      const info = await c.inspect();
      if (!info.State.Running || Date.now() > deadline) {
        const logs = (await c.logs({ stdout: true, stderr: true, tail: 30 })).toString("utf8");
        throw new Error(`legacy ${kind} boot ${round} did not get ready:\n${logs}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await execIn(c, SHUTDOWN_SCRIPT, 60_000).catch(() => undefined);
    await c.remove({ force: true }).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

/** Commit the folder `work` as one commit on `main` and clone it bare to `bare`: the repository a flow clones. */
export function bareRepository(work: string, bare: string, message: string): void {
  const git = (...a: string[]) =>
    execFileSync("git", ["-c", "user.name=bench", "-c", "user.email=bench@imgtool.invalid", ...a], {
      cwd: work,
      stdio: "ignore",
    });
  git("init", "--quiet", "--initial-branch=main");
  git("add", "--all");
  git("commit", "--quiet", "-m", message);
  execFileSync("git", ["clone", "--quiet", "--bare", work, bare], { stdio: "ignore" });
}
