/**
 * The one versions manifest (packer/versions.json) and its one schema: Ruby, Docker, ruby-bench ref, base
 * filters, the local base images, the bake's Packer settings and the OS package lists. The TypeScript,
 * scripts/setup, the provisioning scripts and the tests all read the same file; in the TypeScript, only
 * through `loadVersions()`.
 */
import { readFileSync } from "node:fs";
import { z } from "zod";
import { projectPath } from "./paths.js";

const Arch = z.enum(["x86_64", "arm64"]);

const Sha256OrEmpty = z.string().regex(/^(?:[0-9a-f]{64})?$/, "must be 64 lowercase hex digits, or empty");

const PackageLists = z.object({ apt: z.array(z.string()), dnf: z.array(z.string()) });
// An exact pin ("= 1.3.9"): given a range, Packer picks the newest release, whose checksum file is not on GitHub
// (packer/versions.json $reason_required_plugins).
const Plugin = z.object({
  source: z.string(),
  version: z.string().regex(/^= \d+\.\d+\.\d+$/, 'must be an exact pin, "= X.Y.Z"'),
});

const VersionsSchema = z.object({
  ruby: z.object({
    default_versions: z.array(z.string()).min(1),
    default_method: z.enum(["distro", "ruby-build", "tarball"]),
    ruby_build_ref: z.string(),
    /** Where install-ruby.sh fetches ruby-build; `{ref}` is ruby_build_ref. */
    ruby_build_url: z.string(),
  }),
  docker: z.object({ dnf_package: z.string(), apt_package: z.string() }),
  compose: z.object({
    apt_package: z.string(),
    version: z.string(),
    url: z.string(),
    /** The release binaries' SHA-256 (64 lowercase hex digits), or empty: not pinned, the aws bake refuses. */
    sha256: z.object({ x86_64: Sha256OrEmpty, arm64: Sha256OrEmpty }),
    /** Compose v2 from a newer Debian suite, for tests only (scripts/fetch-compose-v2): never baked. */
    debian_v2: z.object({ suite: z.string(), package: z.string() }),
  }),
  ruby_bench: z.object({ repository: z.string(), ref: z.string() }),
  aws_base: z.record(Arch, z.object({ owner: z.string(), name: z.string() })),
  local_bases: z.record(
    z.string(),
    z.object({ suite: z.string(), variant: z.string(), include: z.array(z.string()) }),
  ),
  /** Packer plugins, and the aws builder's user and root volume (the rendered HCL). */
  packer: z.object({
    required_plugins: z.object({ amazon: Plugin, docker: Plugin }),
    plugins_min_version: z.string(),
    aws: z.object({
      ssh_username: z.string(),
      root_device_name: z.string(),
      root_volume_gb: z.number().int().min(8),
    }),
  }),
  /** OS packages of the bake, per package manager. */
  packages: z.object({ core: PackageLists, bench: PackageLists, ruby_build: PackageLists }),
});

export type Versions = z.infer<typeof VersionsSchema>;

export const versionsFile = projectPath("packer", "versions.json");

let cached: Versions | undefined;

export function loadVersions(): Versions {
  cached ??= VersionsSchema.parse(JSON.parse(readFileSync(versionsFile, "utf8")));
  return cached;
}
