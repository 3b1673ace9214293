/**
 * A Docker engine inside a container of the outer engine: the one place for the host config it needs (the
 * twin's pre-load at bake time, a local instance at launch) and for where its scripts are. The engine itself
 * starts through packer/scripts/lib/imgtool-engine, everywhere.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import type Docker from "dockerode";
import { projectPath } from "../paths.js";

/**
 * Capabilities and security options that let an engine run inside a container here (`--privileged` is refused
 * on these machines). NET_ADMIN is needed: the engine brings up the host network's sandbox for every
 * `--network host` container, and a local stack's boot adds its forwarding chain (src/launch/local.ts). Also what a helper container needs to copy an engine's store (device nodes).
 */
export const NESTED_ENGINE_PRIVILEGES = {
  CapAdd: ["SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE", "MKNOD"],
  SecurityOpt: ["seccomp=unconfined", "apparmor=unconfined"],
} as const;

/** Where the nested engine's scripts (packer/scripts/lib) are mounted, read-only, in a container that needs them. */
export const ENGINE_LIB_MOUNT = "/run/imgtool-lib";

/** The folder of imgtool-engine, imgtool-preload, imgtool-shutdown and imgtool-boot on this machine. */
export const engineLibDir = (): string => projectPath("packer", "scripts", "lib");

/**
 * The hash of the scripts that make a pre-load store (imgtool-preload and the imgtool-engine it starts; with
 * `fills`, a store whose stack volumes imgtool-stack fills, that script too): a
 * store made by other scripts is not copied as if a pull made it now (src/bake/twin-ops.ts).
 */
export function preloadScriptsHash(fills = false): string {
  const h = createHash("sha256");
  for (const name of ["imgtool-preload", "imgtool-engine", ...(fills ? ["imgtool-stack"] : [])])
    h.update(readFileSync(path.join(engineLibDir(), name)));
  return h.digest("hex").slice(0, 16);
}

/** The text of one of those scripts, to run with `sh -c` where nothing can be mounted (an exec). */
export function engineScript(name: "imgtool-shutdown"): string {
  return readFileSync(projectPath("packer", "scripts", "lib", name), "utf8");
}

/**
 * The host config of a container that runs a nested engine: the privileges, the host's network (to reach the
 * loopback registry; imgtool-engine --host-network leaves it alone, but for a local stack's forwarding chain,
 * src/launch/local.ts stackForwardChain), the engine's store volume at
 * /var/lib/docker, the cgroup hierarchy, then `binds`.
 */
export function nestedEngineHostConfig(storeVolume: string, binds: string[] = []): Docker.HostConfig {
  return {
    CapAdd: [...NESTED_ENGINE_PRIVILEGES.CapAdd],
    SecurityOpt: [...NESTED_ENGINE_PRIVILEGES.SecurityOpt],
    NetworkMode: "host",
    Binds: [`${storeVolume}:/var/lib/docker`, "/sys/fs/cgroup:/sys/fs/cgroup", ...binds],
  };
}

/**
 * The command that copies an engine's store (its /var/lib/docker, mounted read-only at /from) into `to`, as an
 * instance's root volume is a copy of the AMI's snapshot. With `requireStore`, an empty source (the engine
 * creates an empty volume for a name that is gone) fails with exit 3 instead of copying nothing. The container
 * needs {@link NESTED_ENGINE_PRIVILEGES} (MKNOD: the store's whiteout device nodes).
 */
export function copyStoreEntrypoint(to: string, opts: { requireStore?: boolean } = {}): string[] {
  const copy = `cp -a /from/. ${to}/`;
  return ["/bin/sh", "-c", opts.requireStore ? `[ -n "$(ls -A /from)" ] || exit 3; ${copy}` : copy];
}
