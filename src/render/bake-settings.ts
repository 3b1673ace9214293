/**
 * The bake settings in packer/versions.json that the rendered HCL and scripts read: Packer plugins, the aws
 * builder's user and root volume, and the OS package lists. Same file as src/versions.ts (one manifest), read
 * with its own schema for the keys the render adds.
 */
import { readFileSync } from "node:fs";
import { z } from "zod";
import { versionsFile } from "../versions.js";

const PackageLists = z.object({ apt: z.array(z.string()), dnf: z.array(z.string()) });
const Plugin = z.object({ source: z.string(), version: z.string() });

const BakeSettingsSchema = z.object({
  ruby: z.object({ ruby_build_ref: z.string(), ruby_build_url: z.string() }),
  docker: z.object({ dnf_package: z.string(), apt_package: z.string() }),
  packer: z.object({
    required_plugins: z.object({ amazon: Plugin, docker: Plugin }),
    plugins_min_version: z.string(),
    aws: z.object({
      ssh_username: z.string(),
      root_device_name: z.string(),
      root_volume_gb: z.number().int().min(8),
    }),
  }),
  packages: z.object({ core: PackageLists, bench: PackageLists, ruby_build: PackageLists }),
});

export type BakeSettings = z.infer<typeof BakeSettingsSchema>;

let cached: BakeSettings | undefined;

export function loadBakeSettings(): BakeSettings {
  cached ??= BakeSettingsSchema.parse(JSON.parse(readFileSync(versionsFile, "utf8")));
  return cached;
}
