/**
 * Which architectures a role's images need, from its EC2 instance types: Graviton families carry a `g`
 * after the generation digit (c7g, m6gd, t4g, r8g, c7gn, im4gn, is4gen, x2gd, hpc7g, g5g) or are a1; every
 * other family is x86_64 (c7i, m7a, t3, g4dn, p5, ...).
 */
import { instanceArch } from "../config/arch.js";
import type { Arch } from "../config/schema.js";

export interface Platform {
  /** EC2's name: x86_64 or arm64. */
  arch: Arch;
  /** Docker's architecture name: amd64 or arm64. */
  dockerArch: "amd64" | "arm64";
  /** linux/amd64 or linux/arm64. */
  platform: string;
  /** Manifest list variant (arm64: v8). */
  variant?: string;
}

export const PLATFORMS: Record<Arch, Platform> = {
  x86_64: { arch: "x86_64", dockerArch: "amd64", platform: "linux/amd64" },
  arm64: { arch: "arm64", dockerArch: "arm64", platform: "linux/arm64", variant: "v8" },
};

/** The platforms the instance types need, x86_64 first; one entry per architecture. */
export function platformsOf(instanceTypes: readonly string[]): Platform[] {
  const arches = new Set(instanceTypes.map(instanceArch));
  return (["x86_64", "arm64"] as const).filter((a) => arches.has(a)).map((a) => PLATFORMS[a]);
}
