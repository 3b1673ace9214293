/**
 * The local target's secrets: one file per declared secret (config secrets.<name>.local_file), made with a
 * random value when missing, mounted read-only into each local instance at /run/secrets/imgtool-<name>, where
 * the user-data reads it at boot (the local stand-in for an SSM SecureString read through the instance role).
 */
import { randomBytes } from "node:crypto";
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import path from "node:path";
import type { Config } from "../config/load.js";

export const localSecretMount = (name: string) => `/run/secrets/imgtool-${name}`;

/** Make each missing secret file (mode 0600, a random value); answer the names made. */
export async function ensureLocalSecrets(config: Config): Promise<{ name: string; file: string }[]> {
  const made: { name: string; file: string }[] = [];
  for (const [name, s] of Object.entries(config.secrets)) {
    if (existsSync(s.local_file)) continue;
    await mkdir(path.dirname(s.local_file), { recursive: true, mode: 0o700 });
    const wrote = await writeFile(s.local_file, randomBytes(24).toString("hex"), {
      mode: 0o600,
      flag: "wx",
    }).then(
      () => true,
      (e: NodeJS.ErrnoException) => {
        if (e.code !== "EEXIST") throw e;
        return false;
      },
    );
    if (wrote) {
      await chmod(s.local_file, 0o600);
      made.push({ name, file: s.local_file });
    }
  }
  return made;
}

/** The bind mounts of every declared secret into a local instance. */
export function localSecretBinds(config: Config): string[] {
  return Object.entries(config.secrets).map(([name, s]) => `${s.local_file}:${localSecretMount(name)}:ro`);
}
