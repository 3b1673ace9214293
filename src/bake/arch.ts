/** The architecture of an EC2 instance type, from its family (Graviton families carry a "g": c7g, m6gd, t4g). */
import type { Arch } from "../config/schema.js";

export function archOf(instanceType: string): Arch {
  const family = instanceType.split(".")[0] ?? "";
  if (family === "a1") return "arm64";
  // Generation digit, then attribute letters: a "g" among them means Graviton (c7g, c7gn, m6gd, r8g, t4g, x2gd, im4gn, is4gen).
  const m = /^[a-z]+\d+([a-z-]*)$/.exec(family);
  return m && m[1]!.includes("g") ? "arm64" : "x86_64";
}
