/** The architecture of an EC2 instance type, from its family: Graviton families carry a "g" (c7g, m6gd, t4g). */
import type { Arch } from "./schema.js";

export function instanceArch(instanceType: string): Arch {
  const family = instanceType.split(".")[0] ?? "";
  if (family === "a1") return "arm64";
  const mac = /^mac(\d+)/.exec(family);
  if (mac) return Number(mac[1]) >= 2 ? "arm64" : "x86_64";
  // Generation digits, then attribute letters: a "g" among them is Graviton (c7g, c7gn, m6gd, x2gd, im4gn, is4gen).
  const m = /^[a-z]+\d+([a-z-]*)$/.exec(family);
  return m && m[1]!.includes("g") ? "arm64" : "x86_64";
}
