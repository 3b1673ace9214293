/**
 * Inputs hashes: the same inputs always give the same hash, any change gives another. Used for version
 * names, content tags and "up to date" checks.
 */
import { createHash } from "node:crypto";

export interface HashPart {
  /** What this part is (a file's relative path, "base-image", "build-args"): part of the hash. */
  name: string;
  content: string | Buffer;
}

/** sha256 over the parts, sorted by name, each framed by its name and length. */
export function hashParts(parts: HashPart[]): string {
  const h = createHash("sha256");
  for (const p of [...parts].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const buf = typeof p.content === "string" ? Buffer.from(p.content, "utf8") : p.content;
    h.update(`${p.name}\0${buf.length}\0`);
    h.update(buf);
  }
  return h.digest("hex");
}
