/**
 * The one versions manifest (packer/versions.json): Ruby, Docker, ruby-bench ref, base filters and the local
 * base images. The TypeScript, scripts/setup, the provisioning scripts and the tests all read the same file.
 */
import { readFileSync } from "node:fs";
import { z } from "zod";
import { projectPath } from "./paths.js";

const Arch = z.enum(["x86_64", "arm64"]);

const VersionsSchema = z.object({
  ruby: z.object({
    default_versions: z.array(z.string()).min(1),
    default_method: z.enum(["distro", "ruby-build", "tarball"]),
    ruby_build_ref: z.string(),
  }),
  docker: z.object({ dnf_package: z.string(), apt_package: z.string() }),
  ruby_bench: z.object({ repository: z.string(), ref: z.string() }),
  aws_base: z.record(Arch, z.object({ owner: z.string(), name: z.string() })),
  local_bases: z.record(
    z.string(),
    z.object({ suite: z.string(), variant: z.string(), include: z.array(z.string()) }),
  ),
});

export type Versions = z.infer<typeof VersionsSchema>;

export const versionsFile = projectPath("packer", "versions.json");

let cached: Versions | undefined;

export function loadVersions(): Versions {
  cached ??= VersionsSchema.parse(JSON.parse(readFileSync(versionsFile, "utf8")));
  return cached;
}
