/**
 * Renders one bake (a role on a target) into the files of a Packer build folder: HCL split by block kind
 * (plugins, variables, sources, build), the per-build variables file, the provisioning scripts copied from
 * packer/scripts/, build.env (the scripts' inputs as shell words) and the versions manifest.
 *
 * Pure: it reads imgtool's own templates and scripts, never the network, a child process or the config file.
 * Config values reach HCL only through {@link hclString} (the `hcl` template helper) and the scripts only
 * through build.env ({@link shellWord}); the per-build values reach the scripts base64-encoded, so neither
 * Packer's quoting of environment_vars nor its `{{ }}` template expansion can touch them.
 */
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import type { Config } from "../config/load.js";
import { ARCHES, type Arch, type Role, type Target } from "../config/schema.js";
import { hashParts } from "../hash.js";
import { projectPath } from "../paths.js";
import { loadVersions, versionsFile } from "../versions.js";
import { instanceArch, machineArch } from "../config/arch.js";
import { sentence, UsageError } from "../errors.js";
import { dockerfileString, packerTemplateProblem } from "./escape.js";
import { renderTemplate } from "./templates.js";
import { IMAGE_LABEL } from "../config/tags.js";
import { stackVolumeWord, type BakedStack } from "../config/stack.js";

/** install-stack.sh's inputs (and preload-image.sh's extra images on aws): empty when the role is no stack. */
function stackEnv(stack: BakedStack | undefined): Record<string, string> {
  const c = loadVersions().compose;
  return {
    IMGTOOL_STACK_COMPOSE_B64: stack ? Buffer.from(stack.compose).toString("base64") : "",
    IMGTOOL_STACK_WAIT_FOR: stack ? stack.waitFor.join(" ") : "",
    IMGTOOL_STACK_SETTLE_MS: stack ? String(stack.settleMs) : "",
    IMGTOOL_STACK_BRIDGES: stack ? stack.bridges.join(" ") : "",
    IMGTOOL_STACK_BRIDGES_OVERRIDE_B64: stack ? Buffer.from(stack.bridgesOverride).toString("base64") : "",
    IMGTOOL_STACK_IMAGES: stack ? stack.images.slice(1).join(" ") : "",
    IMGTOOL_STACK_VOLUMES: stack ? stack.volumes.map(stackVolumeWord).join(" ") : "",
    IMGTOOL_COMPOSE_PACKAGE_APT: c.apt_package,
    IMGTOOL_COMPOSE_URL: c.url,
    IMGTOOL_COMPOSE_SHA256_X86_64: c.sha256.x86_64,
    IMGTOOL_COMPOSE_SHA256_ARM64: c.sha256.arm64,
  };
}

export interface BakeInputs {
  /** Version name, e.g. v20261129-171500-1a2b3c4d (goes to names and tags, via the variables file). */
  version: string;
  /** Via the variables file. */
  inputsHash: string;
  /** Via the variables file. */
  gitRevision: string;
  /** The imgtool run that bakes (src/leftovers/runs.ts), via the variables file. @default "none" */
  runId?: string;
  /** The resolved commit of the configured ruby-bench repository+ref (or the ref itself, for `imgtool render`). */
  rubyBenchCommit: string;
  /**
   * The role image to pre-load (URI@sha256:...). Absent: none is published yet; the step is skipped and the
   * version manifest says so. `registry.passwordEnv` names the environment variable that holds the password
   * when Packer runs (it never enters a file).
   */
  image?: { ref: string; registry?: { endpoint: string; user: string; passwordEnv: string } };
  /** The role's Compose stack, resolved (src/bake/stack-images.ts); absent when the role is not a stack. */
  stack?: BakedStack;
  /**
   * aws: the resolved base AMI id; several architectures: one id per architecture, comma-separated in the
   * order x86_64, arm64 (or use {@link BakeInputs.bases}). local: the base image digest or reference.
   * Absent: the source filter (aws) or the configured base image (local) decides at build time.
   */
  base?: string;
  /**
   * aws: the region Packer builds in, the home region (computed once, in src/cli/context.ts; the bake flow
   * passes the first of its regions). Required on aws.
   */
  region?: string;
  /** The resolved base per architecture (aws); wins over {@link BakeInputs.base}. */
  bases?: Partial<Record<Arch, string>>;
  /**
   * The Packer that will run the build (`packer version`, e.g. "Packer v1.6.6" or "1.11.2"). Before 1.7 the
   * plugins file goes to plugins/ so that `packer build .` does not read it. Default: 1.7 or later.
   */
  packerVersion?: string;
  /**
   * Which stage this render is (src/bake/bake.ts): "base" (OS updates, Docker, Ruby, packages, CPU settings),
   * "role" (ruby-bench, the role's images, validate, the version manifest; its source is the base stage's
   * artefact, given as {@link BakeInputs.base} / {@link BakeInputs.bases}), or absent: the single full bake.
   */
  stage?: BakeStageName;
  /** Role stage: the base version it builds on (a label on the local twin). */
  baseVersion?: string;
}

/** The two stages of a staged bake. */
export type BakeStageName = "base" | "role";

export interface BakeSource {
  /** Packer source name: the build's name in packer-manifest.json ("x86_64", "arm64", "twin"). */
  name: string;
  /** `source.amazon-ebs.x86_64`, `source.docker.twin`. */
  ref: string;
  arch: Arch;
  /** aws: the instance type the bake runs on. */
  instanceType?: string;
  /** The version manifest that write-manifest.sh wrote, downloaded into the build folder (relative path). */
  versionManifestFile: string;
}

export interface RenderedBake {
  role: Role;
  target: Target;
  /** relative path -> content: plugins.pkr.hcl, variables.pkr.hcl, sources.pkr.hcl, build.pkr.hcl, imgtool.pkrvars.hcl, build.env, scripts/..., versions.json */
  files: Record<string, string>;
  /** files whose content defines the inputs hash: everything except the per-build variables file */
  hashedFiles: string[];
  /** "imgtool.pkrvars.hcl" */
  varFile: string;
  /** The manifest post-processor's output, relative to the build folder. */
  manifestFile: string;
  /** argv for `packer build` (without "packer"), run with cwd = the build folder. */
  buildArgs: string[];
  /** The plugins file: "plugins.pkr.hcl" (Packer >= 1.7), or "plugins/plugins.pkr.hcl" (kept out of the build). */
  pluginsFile: string;
  /** argv for `packer init` (Packer >= 1.7), cwd = the build folder. */
  initArgs: string[];
  /** The oldest Packer that can run this build: the aws sources use settings of the amazon plugin. */
  minPackerVersion: string;
  /** The sources, one per architecture (aws) or the twin (local). */
  sources: BakeSource[];
  /** Files with a "#!" line or under scripts/: written executable. */
  executableFiles: string[];
  /** What the render decided that a reader should know (skipped steps, placeholders). */
  notes: string[];
}

export const VAR_FILE = "imgtool.pkrvars.hcl";
export const MANIFEST_FILE = "packer-manifest.json";
/** Where write-manifest.sh writes the version manifest inside the image. */
export const IMAGE_MANIFEST_PATH = "/etc/imgtool/manifest.json";
/**
 * The kernel arguments a task-runner AMI boots with when `roles.task-runner.cpu.isolate` is on: every CPU but the
 * first is taken from the scheduler's balancing, the timer tick and RCU callbacks, and interrupts go to CPU 0, so
 * the OS, its interrupts and the engine stay off the workers' CPUs. `N` is the last CPU (Linux 5.13 or newer), so
 * one AMI fits every instance size. configure-cpu.sh bakes them; imgtool-cpu-setup reads them back at boot.
 */
export const ISOLATION_KERNEL_ARGS =
  "isolcpus=domain,managed_irq,1-N nohz_full=1-N rcu_nocbs=1-N irqaffinity=0";

/** The provisioning steps, in order: packer/scripts/<step>.sh. */
export const STEPS = [
  "update-os",
  "install-packages",
  "install-docker",
  "install-stack",
  "configure-cloud-init",
  "install-ruby",
  "install-ruby-bench",
  "preload-image",
  "configure-cpu",
  "cleanup",
  "validate",
  "write-manifest",
] as const;
/** The base stage's steps: what changes rarely (and, task runner, the kernel and CPU settings that need a reboot). */
export const BASE_STEPS: readonly (typeof STEPS)[number][] = [
  "update-os",
  "install-packages",
  "install-docker",
  "configure-cloud-init",
  "install-ruby",
  "configure-cpu",
  "cleanup",
];
/** The role stage's steps: what changes often; it runs on the base stage's artefact. */
export const ROLE_STEPS: readonly (typeof STEPS)[number][] = [
  "install-stack",
  "install-ruby-bench",
  "preload-image",
  "cleanup",
  "validate",
  "write-manifest",
];
/** build.env keys only the role stage reads: left out of the base stage's build.env (and so its hash). */
const ROLE_ONLY_ENV = /^IMGTOOL_(RUBY_BENCH_|IMAGE_REF$|STACK_|COMPOSE_|REGISTRY_|PIPELINE$)/;
/** The subnet of the bake's build instances: aws.bake_subnet_id, else aws.subnet_id (undefined: the default VPC's). */
export function bakeSubnet(config: Config): string | undefined {
  return config.aws.bake_subnet_id ?? config.aws.subnet_id;
}

/** The architectures of a role's instance types, each with the first instance type of that architecture. */
export function roleArches(config: Config, role: Role): { arch: Arch; instanceType: string }[] {
  const out: { arch: Arch; instanceType: string }[] = [];
  for (const arch of ARCHES) {
    const t = config.roles[role].instance_types.find((it) => instanceArch(it) === arch);
    if (t) out.push({ arch, instanceType: t });
  }
  return out;
}

/** "Packer v1.6.6" / "1.11.2" -> [1, 6, 6]; undefined when it has no version number. */
function parseVersion(v: string): number[] | undefined {
  const m = /(\d+)\.(\d+)(?:\.(\d+))?/.exec(v);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : undefined;
}

/** a >= b for version strings. */
export function versionAtLeast(a: string, b: string): boolean {
  const pa = parseVersion(a);
  const pb = parseVersion(b);
  if (!pa || !pb) return true;
  for (let i = 0; i < 3; i++) if (pa[i]! !== pb[i]!) return pa[i]! > pb[i]!;
  return true;
}

/** The oldest Packer that bakes for `target`. */
export const minPackerFor = (target: Target): string =>
  target === "aws" ? loadVersions().packer.plugins_min_version : "1.6.0";

/**
 * Why this Packer (`packer version`'s line, e.g. "Packer v1.6.6") cannot bake for `target`, or undefined when it
 * can: the aws bake needs `packer init` and `required_plugins` (packer/versions.json plugins_min_version).
 */
export function packerTooOld(target: Target, version: string): string | undefined {
  const min = minPackerFor(target);
  if (versionAtLeast(version, min)) return undefined;
  return (
    `the ${target} bake needs Packer ${min} or later (packer init, and the amazon plugin's IMDSv2 settings ` +
    `metadata_options and imds_support); found ${version}`
  );
}

/** What installs a Packer that bakes for `target`. */
export function packerFix(target: Target): string {
  return target === "aws"
    ? `Install Packer ${minPackerFor("aws")} or later from HashiCorp's releases (the nightly workflow uses ` +
        "hashicorp/setup-packer); Debian's packer 1.6.6, which scripts/setup installs, bakes the local twin only."
    : "scripts/setup installs Debian's packer (apt-get install -y packer).";
}

/** Every file under packer/scripts/, relative to it. */
function scriptFiles(): string[] {
  const root = projectPath("packer", "scripts");
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = dir ? `${dir}/${e.name}` : e.name;
      if (e.isDirectory()) walk(rel);
      else if (e.isFile()) out.push(rel);
    }
  };
  walk("");
  return out.sort();
}

const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
// Names, tags and the AMI name carry these: letters, digits and . _ - + only.
const BUILD_VALUE_RE = /^[A-Za-z0-9._+-]{1,128}$/;

function check(ok: boolean, what: string, value: string, why: string): void {
  if (!ok) throw new Error(`renderBake: ${what} ${JSON.stringify(value)} ${why}`);
}

export function renderBake(config: Config, role: Role, target: Target, inputs: BakeInputs): RenderedBake {
  const versions = loadVersions();
  const rc = config.roles[role];
  const notes: string[] = [];

  for (const [what, v] of [
    ["inputs.version", inputs.version],
    ["inputs.inputsHash", inputs.inputsHash],
    ["inputs.gitRevision", inputs.gitRevision],
    ["inputs.runId", inputs.runId ?? "none"],
  ] as const) {
    check(BUILD_VALUE_RE.test(v), what, v, "must be 1-128 of A-Z a-z 0-9 . _ + -");
  }
  if (inputs.image?.registry) {
    const pe = inputs.image.registry.passwordEnv;
    check(
      ENV_NAME_RE.test(pe),
      "inputs.image.registry.passwordEnv",
      pe,
      "is not an environment variable name",
    );
  }

  // Values that Packer reads as its own templates: refuse `{{` with the config key that holds it.
  const packerValues: [string, string][] = [[`pipeline`, config.pipeline]];
  const at = `roles.${role}`;
  if (target === "aws") {
    packerValues.push(
      [`${at}.base.aws.owner`, rc.base.aws.owner],
      [`aws.regions[0]`, inputs.region ?? ""],
      ...rc.instance_types.map((t, i) => [`${at}.instance_types[${i}]`, t] as [string, string]),
    );
    if (config.aws.bake_subnet_id) packerValues.push(["aws.bake_subnet_id", config.aws.bake_subnet_id]);
    else if (config.aws.subnet_id) packerValues.push(["aws.subnet_id", config.aws.subnet_id]);
  } else {
    packerValues.push([`${at}.base.local.image`, rc.base.local.image]);
  }
  // URL or local path was decided when the config loaded.
  const repoPath = rc.ruby_bench.localPath;
  if (repoPath) packerValues.push([`${at}.ruby_bench.repository`, repoPath]);

  const arches = roleArches(config, role);
  if (target === "aws") {
    for (const { arch } of arches) packerValues.push([`${at}.base.aws.name.${arch}`, rc.base.aws.name[arch]]);
  }
  for (const [key, value] of packerValues) {
    const problem = packerTemplateProblem(value);
    if (problem) {
      throw new UsageError(`${key}: ${JSON.stringify(value)} is not allowed: it ${problem}.`);
    }
  }

  // The resolved bases, per architecture.
  const bases: Partial<Record<Arch, string>> = { ...inputs.bases };
  if (target === "aws" && inputs.base && !inputs.bases) {
    const ids = inputs.base.split(",").map((s) => s.trim());
    check(
      ids.length === arches.length,
      "inputs.base",
      inputs.base,
      `must hold one AMI id per architecture (${arches.map((a) => a.arch).join(", ")}), comma-separated`,
    );
    arches.forEach(({ arch }, i) => (bases[arch] = ids[i]!));
  }
  for (const [arch, id] of Object.entries(bases)) {
    check(/^ami-[0-9a-f]{8,17}$/.test(id), `inputs.base (${arch})`, id, "is not an AMI id");
  }
  if (target === "local" && inputs.base) {
    check(
      !packerTemplateProblem(inputs.base) && /^\S+$/.test(inputs.base),
      "inputs.base",
      inputs.base,
      "is not an image reference or digest",
    );
  }

  const modernPacker = inputs.packerVersion === undefined || versionAtLeast(inputs.packerVersion, "1.7.0");
  const minPackerVersion = minPackerFor(target);
  const tooOld = inputs.packerVersion ? packerTooOld(target, inputs.packerVersion) : undefined;
  if (tooOld) {
    throw new UsageError(sentence(tooOld), {
      ...(target === "aws" ? { fix: packerFix("aws") } : {}),
    });
  }
  const pluginsFile = modernPacker ? "plugins.pkr.hcl" : "plugins/plugins.pkr.hcl";

  const stage = inputs.stage;
  const pipeline = config.pipeline;
  const namePrefix = `${pipeline}-${role}${stage === "base" ? "-base" : ""}`;
  const sources: BakeSource[] = [];
  const manifestPerSource = target === "aws" && arches.length > 1;
  let sourcesFile: string;
  if (target === "aws") {
    const region = inputs.region;
    if (!region) throw new Error("renderBake: the aws target needs inputs.region (the home region)");
    const aws = {
      region,
      sshUsername: versions.packer.aws.ssh_username,
      rootDevice: versions.packer.aws.root_device_name,
      rootVolumeGb: versions.packer.aws.root_volume_gb,
      sources: arches.map(({ arch, instanceType }) => ({
        name: arch,
        arch,
        instanceType,
        owner: rc.base.aws.owner,
        nameFilter: rc.base.aws.name[arch],
        imageId: bases[arch] ?? false,
        // The role stage starts from the base stage's AMI, named by id (it matches no base name filter).
        sourceAmi: stage === "role" ? (bases[arch] ?? false) : false,
      })),
    };
    for (const s of aws.sources) {
      sources.push({
        name: s.name,
        ref: `source.amazon-ebs.${s.name}`,
        arch: s.arch,
        instanceType: s.instanceType,
        versionManifestFile: manifestPerSource ? `version-manifest-${s.name}.json` : "version-manifest.json",
      });
    }
    sourcesFile = renderTemplate("packer/sources-aws.pkr.hcl.hbs", {
      role,
      pipeline,
      namePrefix,
      description: `imgtool ${pipeline} ${role}${stage === "base" ? " base" : ""}`,
      stage: stage ?? false,
      aws,
    });
  } else {
    const arch: Arch = machineArch();
    const local = {
      sourceName: "twin",
      image: inputs.base ?? rc.base.local.image,
      changes: [
        'ENTRYPOINT ["/usr/local/sbin/imgtool-boot"]',
        'CMD ["sleep", "infinity"]',
        // A base twin is the engine's, shared by every pipeline with the same base inputs: no pipeline label.
        stage === "base"
          ? `LABEL ${IMAGE_LABEL.role}=${dockerfileString(role)}`
          : `LABEL ${IMAGE_LABEL.pipeline}=${dockerfileString(pipeline)} ${IMAGE_LABEL.role}=${dockerfileString(role)}`,
        ...(stage
          ? [
              `LABEL ${IMAGE_LABEL.stage}=${dockerfileString(stage)}` +
                (inputs.baseVersion
                  ? ` ${IMAGE_LABEL.baseVersion}=${dockerfileString(inputs.baseVersion)}`
                  : ""),
            ]
          : []),
      ],
    };
    sources.push({
      name: "twin",
      ref: "source.docker.twin",
      arch,
      versionManifestFile: "version-manifest.json",
    });
    // A base twin carries its inputs hash and version (Packer variables: out of the hash), so a bake of another
    // catalog finds it on the engine by its inputs hash instead of building it again.
    sourcesFile = renderTemplate("packer/sources-local.pkr.hcl.hbs", {
      role,
      local,
      buildLabels: stage === "base",
    });
  }

  // The scripts' inputs: build.env, one shell word per value.
  const pkgs = versions.packages;
  const isRunner = role === "task-runner";
  const origin = rc.ruby_bench.repository;
  const env: Record<string, string> = {
    IMGTOOL_PIPELINE: pipeline,
    IMGTOOL_ROLE: role,
    IMGTOOL_TARGET: target,
    IMGTOOL_CORE_PACKAGES_APT: pkgs.core.apt.join(" "),
    IMGTOOL_CORE_PACKAGES_DNF: pkgs.core.dnf.join(" "),
    IMGTOOL_BENCH_PACKAGES_APT: isRunner ? pkgs.bench.apt.join(" ") : "",
    IMGTOOL_BENCH_PACKAGES_DNF: isRunner ? pkgs.bench.dnf.join(" ") : "",
    IMGTOOL_PACKAGES: rc.packages.join(" "),
    IMGTOOL_DOCKER_PACKAGE_APT: versions.docker.apt_package,
    IMGTOOL_DOCKER_PACKAGE_DNF: versions.docker.dnf_package,
    IMGTOOL_RUBY_METHOD: rc.ruby.method,
    IMGTOOL_RUBY_VERSIONS: rc.ruby.versions.join(" "),
    IMGTOOL_RUBY_TARBALL_URL: rc.ruby.method === "tarball" ? (rc.ruby.tarball_url ?? "") : "",
    IMGTOOL_RUBY_BUILD_REF: versions.ruby.ruby_build_ref,
    IMGTOOL_RUBY_BUILD_URL: versions.ruby.ruby_build_url.replaceAll("{ref}", versions.ruby.ruby_build_ref),
    IMGTOOL_RUBY_BUILD_PACKAGES_APT: rc.ruby.method === "ruby-build" ? pkgs.ruby_build.apt.join(" ") : "",
    IMGTOOL_RUBY_BUILD_PACKAGES_DNF: rc.ruby.method === "ruby-build" ? pkgs.ruby_build.dnf.join(" ") : "",
    IMGTOOL_RUBY_BENCH_SOURCE: repoPath ? "/tmp/imgtool-ruby-bench-src" : origin,
    IMGTOOL_RUBY_BENCH_ORIGIN: origin,
    IMGTOOL_RUBY_BENCH_REF: rc.ruby_bench.ref,
    IMGTOOL_RUBY_BENCH_COMMIT: inputs.rubyBenchCommit,
    IMGTOOL_IMAGE_REF: inputs.image?.ref ?? "",
    ...stackEnv(inputs.stack),
    IMGTOOL_REGISTRY_ENDPOINT: inputs.image?.registry?.endpoint ?? "",
    IMGTOOL_REGISTRY_USER: inputs.image?.registry?.user ?? "",
    IMGTOOL_CPU_GOVERNOR: rc.cpu.governor,
    IMGTOOL_CPU_TURBO: rc.cpu.turbo,
    IMGTOOL_CPU_QUIET_SERVICES: String(rc.cpu.quiet_services),
    IMGTOOL_CPU_KERNEL_ARGS: isRunner && rc.cpu.isolate ? ISOLATION_KERNEL_ARGS : "",
  };
  // The base stage neither pre-loads nor checks out ruby-bench: those notes are the role stage's (and a full bake's).
  if (stage !== "base") {
    if (!inputs.image)
      notes.push(
        `no ${role} image is published yet: the pre-load step skips, and the version manifest says so`,
      );
    else if (target === "local")
      notes.push(
        `the twin's pre-load of ${inputs.image.ref} happens outside Packer (into the engine volume)`,
      );
    if (repoPath) notes.push(`ruby-bench is the local repository ${repoPath}: uploaded into the build`);
  }
  if (!modernPacker)
    notes.push(`Packer ${inputs.packerVersion} predates required_plugins: ${pluginsFile} is not built`);

  if (stage === "base") for (const k of Object.keys(env)) if (ROLE_ONLY_ENV.test(k)) delete env[k];
  const registryPasswordEnv =
    (stage !== "base" && target === "aws" && inputs.image?.registry?.passwordEnv) || false;
  const stepNames = stage === "base" ? BASE_STEPS : stage === "role" ? ROLE_STEPS : STEPS;
  const steps = stepNames.map((name) => ({
    name,
    password: name === "preload-image" && registryPasswordEnv !== false,
    buildValues: name === "write-manifest",
  }));

  const plugin = target === "aws" ? "amazon" : "docker";
  const files: Record<string, string> = {
    [pluginsFile]: renderTemplate("packer/plugins.pkr.hcl.hbs", {
      role,
      target,
      plugins: [{ name: plugin, ...versions.packer.required_plugins[plugin] }],
    }),
    "variables.pkr.hcl": renderTemplate("packer/variables.pkr.hcl.hbs", {
      role,
      target,
      aws: target === "aws",
      registryPasswordEnv,
    }),
    "sources.pkr.hcl": sourcesFile,
    "build.pkr.hcl": renderTemplate("packer/build.pkr.hcl.hbs", {
      role,
      target,
      // A local base twin is shared by the engine's pipelines: its manifest names none.
      pipeline: stage === "base" && target === "local" ? false : pipeline,
      aws: target === "aws",
      sourceRefs: sources.map((s) => s.ref),
      rubyBenchUpload: repoPath && stage !== "base" ? `${repoPath.replace(/\/+$/, "")}/` : false,
      // The base stage writes no version manifest: the role stage does.
      versionManifest: stage !== "base",
      steps,
      manifestPerSource,
      manifestFile: MANIFEST_FILE,
    }),
    "build.env": renderTemplate("packer/build.env.hbs", { role, target, env }),
    "versions.json": readFileSync(versionsFile, "utf8"),
  };
  const executableFiles: string[] = [];
  const stepScripts = new Set<string>(stepNames.map((n) => `${n}.sh`));
  for (const rel of scriptFiles()) {
    // A stage carries the shared helpers (lib/) and its own steps' scripts only, so its hash is its own.
    if (stage && !rel.startsWith("lib/") && !stepScripts.has(rel)) continue;
    const text = readFileSync(projectPath("packer", "scripts", rel), "utf8");
    files[`scripts/${rel}`] = text;
    if (rel.endsWith(".sh") || text.startsWith("#!")) executableFiles.push(`scripts/${rel}`);
  }
  files[VAR_FILE] = renderTemplate("packer/imgtool.pkrvars.hcl.hbs", {
    role,
    target,
    placeholder: inputs.version === RENDER_PLACEHOLDER_VERSION,
    version: inputs.version,
    inputsHash: inputs.inputsHash,
    gitRevision: inputs.gitRevision,
    runId: inputs.runId ?? "none",
    aws: target === "aws",
    subnetId: bakeSubnet(config) ?? "",
  });

  return {
    role,
    target,
    files,
    hashedFiles: Object.keys(files)
      .filter((f) => f !== VAR_FILE)
      .sort(),
    varFile: VAR_FILE,
    manifestFile: MANIFEST_FILE,
    buildArgs: ["build", "-color=false", `-var-file=${VAR_FILE}`, "."],
    pluginsFile,
    initArgs: ["init", pluginsFile],
    minPackerVersion,
    sources,
    executableFiles,
    notes,
  };
}

/** The version `imgtool render` uses: it names no build. */
export const RENDER_PLACEHOLDER_VERSION = "v0-render";

/**
 * The inputs `imgtool render` renders with, and a bake hashes its rendered files with: only what the config
 * says (the ruby-bench ref, the configured base, no image) and the Packer that will run the build. What only a
 * bake resolves (the base, the commit, the image) it hashes beside the files, so that `imgtool render`'s hash
 * is the rendered part of every bake's inputs hash.
 */
export function renderInputs(
  config: Config,
  role: Role,
  opts: { region?: string; packerVersion?: string; stage?: BakeStageName } = {},
): BakeInputs {
  return {
    version: RENDER_PLACEHOLDER_VERSION,
    inputsHash: "0",
    gitRevision: "unknown",
    rubyBenchCommit: config.roles[role].ruby_bench.ref,
    ...(opts.region ? { region: opts.region } : {}),
    ...(opts.packerVersion ? { packerVersion: opts.packerVersion } : {}),
    ...(opts.stage ? { stage: opts.stage } : {}),
  };
}

/** sha256 over the hashed files (name and content): the rendered part of a bake's inputs hash. */
export function renderedHash(r: RenderedBake): string {
  return hashParts(r.hashedFiles.map((f) => ({ name: f, content: r.files[f] ?? "" })));
}

/** Write the rendered files under dir (scripts executable). */
export async function writeRendered(r: RenderedBake, dir: string): Promise<void> {
  const exec = new Set(r.executableFiles);
  for (const [rel, content] of Object.entries(r.files)) {
    const file = path.join(dir, rel);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, content);
    await chmod(file, exec.has(rel) ? 0o755 : 0o644);
  }
}

export interface ManifestArtifact {
  source: string;
  arch: Arch;
  /** The AMI id (aws) or image id (local). */
  id: string;
  /** aws: the region of the AMI. */
  region?: string;
}

/** The artefacts of the last run in packer-manifest.json (the manifest post-processor's output). */
export function artifactsFromManifest(r: RenderedBake, text: string): ManifestArtifact[] {
  const doc = JSON.parse(text) as {
    builds?: { name: string; artifact_id: string; packer_run_uuid?: string }[];
    last_run_uuid?: string;
  };
  const builds = (doc.builds ?? []).filter(
    (b) => !doc.last_run_uuid || b.packer_run_uuid === doc.last_run_uuid,
  );
  return builds.map((b) => {
    const src = r.sources.find((s) => s.name === b.name);
    if (!src)
      throw new Error(`packer manifest: build ${JSON.stringify(b.name)} is not a source of this bake`);
    if (r.target === "aws") {
      // "us-east-1:ami-0123" (one region: CopyImage does the others).
      const [region, id] = b.artifact_id.split(",")[0]!.split(":");
      return { source: src.name, arch: src.arch, id: id!, region: region! };
    }
    return { source: src.name, arch: src.arch, id: b.artifact_id };
  });
}
