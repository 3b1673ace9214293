/**
 * The one place that knows architectures: the machine imgtool runs on (where a local twin and local instances
 * run), the architecture of an EC2 instance type, and which of the two a target uses. `process.arch` is read
 * here only (eslint bans it elsewhere).
 */
import type { Config } from "./load.js";
import { ARCHES, type Arch, type Role, type Target } from "./schema.js";

/** This machine's architecture in EC2's names: arm64 or x86_64. */
export function machineArch(): Arch {
  // eslint-disable-next-line no-restricted-properties -- the one place that reads it
  return process.arch === "arm64" ? "arm64" : "x86_64";
}

/** The architecture of an EC2 instance type, from its family: Graviton families carry a "g" (c7g, m6gd, t4g). */
export function instanceArch(instanceType: string): Arch {
  const family = instanceType.split(".")[0] ?? "";
  if (family === "a1") return "arm64";
  const mac = /^mac(\d+)/.exec(family);
  if (mac) return Number(mac[1]) >= 2 ? "arm64" : "x86_64";
  // Generation digits, then attribute letters: a "g" among them is Graviton (c7g, c7gn, m6gd, x2gd, im4gn, is4gen).
  const m = /^[a-z]+\d+([a-z-]*)$/.exec(family);
  return m && m[1]!.includes("g") ? "arm64" : "x86_64";
}

/** The architecture an instance of this type runs on for a target: its family's on aws, this machine's locally. */
export function targetArch(target: Target, instanceType: string): Arch {
  return target === "local" ? machineArch() : instanceArch(instanceType);
}

/**
 * The architectures a role is baked for, in ARCHES order: on aws those of its instance types, locally this
 * machine's (a twin runs here, whatever instance types the config names).
 */
export function targetArches(config: Pick<Config, "roles">, role: Role, target: Target): Arch[] {
  const types = config.roles[role].instance_types;
  return ARCHES.filter((arch) => types.some((t) => targetArch(target, t) === arch));
}
