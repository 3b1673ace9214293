/**
 * `imgtool bake ami`: for each role, compute the inputs hash, check the catalog, and only when nothing is
 * published for that hash render to a build folder, run Packer, and publish what it made. Both roles bake in
 * parallel. Nothing is published unless every step for the role succeeded.
 *
 * What depends on the target lives in its {@link BakeTargetOps}: aws (./aws-ops.ts) waits for the AMI per
 * architecture (several `available` reads in a row), tags it with its snapshots and copies it to the other regions
 * (encrypted, waited for); local (./twin-ops.ts) tags the twin image with the version and pre-loads the role's
 * image into a Docker volume that holds the twin engine's image store (the twin's EBS snapshot). Then the flow
 * publishes per region and architecture.
 *
 * The inputs hash: the hash of the rendered files as `imgtool render` renders them ({@link renderedHash} over
 * {@link renderInputs}: the same number `imgtool render` prints), with what only a bake resolves beside it (the
 * base, the ruby-bench commit, the published image, the regions).
 */
import { mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import type { Artifact, Catalog } from "../catalog/catalog.js";
import { holding, type LeaseKeeper } from "../catalog/lease.js";
import { versionName } from "../catalog/catalog.js";
import type { DataType } from "../catalog/store.js";
import type { Config } from "../config/load.js";
import { targetArches } from "../config/arch.js";
import { targetRegions } from "../config/regions.js";
import type { Arch, Role, Target } from "../config/schema.js";
import { FailureError, InterruptedError, type StopSignal } from "../errors.js";
import type { EventSink } from "../events.js";
import type { RubyBenchRepo } from "../git.js";
import { hashParts } from "../hash.js";
import type { PackerRunner } from "../packer/runner.js";
import {
  artifactsFromManifest,
  renderInputs,
  renderedHash,
  type BakeInputs,
  type ManifestArtifact,
  type RenderedBake,
} from "../render/packer.js";
import { TAG } from "../config/tags.js";
import { bakeStack } from "./stack-images.js";

export interface BakeArtifact {
  region: string;
  arch: Arch;
  id: string;
}

export interface BakeResult {
  role: Role;
  target: Target;
  /** resumed: an interrupted publish finished from the artefact already made (no Packer run). */
  status: "built" | "up-to-date" | "resumed";
  version: string;
  inputsHash: string;
  /** The rendered files' part of the inputs hash: what `imgtool render` prints for the same config. */
  renderedHash: string;
  artifacts: BakeArtifact[];
  /** Packer runs this bake made (0 when up to date). */
  packerRuns: number;
  seconds: number;
  /** The image pre-loaded into the AMI / twin store, or null when none was published yet. */
  preloadedImage: string | null;
}

/**
 * What a bake does that depends on its target: aws over EC2 (./aws-ops.ts), local on the Docker engine
 * (./twin-ops.ts). The flow calls these and has no branch of its own on the target.
 */
export interface BakeTargetOps {
  readonly target: Target;
  /** How the catalog stores the artefact ids ("aws:ec2:image": SSM checks them). */
  readonly dataType: DataType;
  /** Whether Packer needs `packer init` (its plugins) before the build. */
  readonly packerInit: boolean;
  /** The newest base for a role and architecture: an AMI id (aws), the local base image's id (local). */
  resolveBase(config: Config, role: Role, arch: Arch): Promise<string>;
  /** The resolved bases as the renderer takes them. */
  baseInputs(
    base: Partial<Record<Arch, string>>,
    home: string,
  ): Pick<BakeInputs, "base" | "bases" | "region">;
  /**
   * After Packer: make what it made usable and say where it is, in every region, home first (aws: wait, tag
   * with the snapshots, copy; local: tag the twin image, pre-load the role's image into its store's volume).
   */
  finish(made: ManifestArtifact[], bake: FinishingBake): Promise<FinishedBake>;
}

/** The bake, as its target's {@link BakeTargetOps.finish} sees it. */
export interface FinishingBake {
  config: Config;
  role: Role;
  version: string;
  /** The regions the bake publishes in, home first. */
  regions: string[];
  /** The tags every artefact carries (plus `imgtool:arch`). */
  tags: Record<string, string>;
  /** The role's published image, to pre-load; absent when none is published yet. */
  imageRef: string | undefined;
  /** A Compose stack's other images (by digest), pre-loaded with the role's. */
  stackImages?: string[];
  /** A "build" event of the role's bake. */
  emit: (message: string) => void;
}

export interface FinishedBake {
  artifacts: BakeArtifact[];
  /** The volume that holds the pre-loaded image store (local), or null. */
  preloadVolume: string | null;
}

export interface BakeDeps {
  config: Config;
  /** The target's part of the bake. */
  ops: BakeTargetOps;
  events: EventSink;
  packer: PackerRunner;
  render: (config: Config, role: Role, target: Target, inputs: BakeInputs) => RenderedBake;
  writeRendered: (r: RenderedBake, dir: string) => Promise<void>;
  /** The catalog of a region (aws) or the local catalog (region ignored). */
  catalog: (region: string) => Promise<Catalog>;
  /** The role's ruby-bench commit (src/git.ts `resolveRubyBenchRef`, or the pipeline's pin for the run). */
  resolveCommit: (role: Role, src: RubyBenchRepo) => Promise<string>;
  gitRevision: () => Promise<string>;
  /** Local registry credentials for pre-loading on the twin: passed to Packer through the environment. */
  registry?: RegistryCredentials;
  /**
   * aws: the login to the registry of the role's image for the provisioning step's pre-load pull, asked only
   * when Packer is about to run (an ECR token from GetAuthorizationToken with the bake's own credentials, in
   * the registry's region). Like {@link BakeDeps.registry}, the password reaches Packer only through its
   * environment (the sensitive variable `registry_password`), never a file or a command line.
   */
  registryLogin?: RegistryLoginAccess;
  buildRoot: string;
  now?: () => Date;
  signal?: AbortSignal;
  /** `packer version` of the Packer that runs the build (decides the plugins file's place). */
  packerVersion?: string;
  /** Extra environment for Packer (DOCKER_HOST on local, AWS_PROFILE on aws; PACKER_TMP_DIR is created). */
  packerEnv?: NodeJS.ProcessEnv;
  /** The run that bakes (src/leftovers/runs.ts): labels what Packer's builder makes, via the `run_id` variable. */
  runId?: string;
  /** The publish lease of the pipeline's roles (src/catalog/lease.ts); none: no lease is taken. */
  lease?: LeaseKeeper;
}

export interface RegistryCredentials {
  endpoint: string;
  user: string;
  password: string;
}

export interface RegistryLoginAccess {
  /** Who logs in where, without the secret (part of the inputs hash): e.g. "ecr:GetAuthorizationToken". */
  readonly id: string;
  /** Credentials for the registry that holds `imageRef` (URI@sha256:...). */
  credentials(imageRef: string): Promise<RegistryCredentials>;
}

export { InterruptedError };

/** Exit 130 / 143: the user (or CI) stopped the bake while Packer ran; nothing was published. */
function packerInterrupted(what: string, signal: StopSignal, killedLeft?: string[]): InterruptedError {
  return new InterruptedError(
    killedLeft
      ? `${what} was interrupted (${signal}): Packer did not finish cleaning up in time and was killed, nothing was published. May be left: ${killedLeft.join("; ")}.`
      : `${what} was interrupted (${signal}): Packer cleaned up, nothing was published.`,
    signal,
  );
}

export const hashLabel = (inputsHash: string) => `h-${inputsHash.slice(0, 24)}`;

export async function bakeRole(
  role: Role,
  deps: BakeDeps,
  opts: { force?: boolean; abortReason?: () => "SIGINT" | "SIGTERM" } = {},
): Promise<BakeResult> {
  const started = Date.now();
  const { config, events, ops } = deps;
  const { target } = ops;
  const rc = config.roles[role];
  const arches = targetArches(config, role, target);
  const regions = targetRegions(config, target);
  const home = regions[0]!;
  const emit = (
    type: "start" | "check" | "found" | "skip" | "build" | "progress" | "publish" | "warn" | "done",
    message: string,
    data?: Record<string, unknown>,
  ) => events({ type, role, message, ...(data ? { data } : {}) });

  // 1. Inputs: the resolved base, the ruby-bench commit, the role's published image, the rendered files.
  emit("check", "resolving inputs (base, ruby-bench commit, published image)");
  const base: Record<string, string> = {};
  for (const arch of arches) base[arch] = await ops.resolveBase(config, role, arch);
  const rubyBenchCommit = await deps.resolveCommit(role, rc.ruby_bench);
  const homeCatalog = await deps.catalog(home);
  const imageKey = { role, kind: "image" as const };
  const published = (await homeCatalog.resolve([imageKey])).found[0];
  const imageRef = published?.value;
  if (!imageRef)
    emit(
      "warn",
      "no container image is published for this role yet: the bake skips the pre-load step and records that",
    );
  const stack = await bakeStack({
    stack: rc.stack,
    target,
    imageRef,
    settleSeconds: rc.run.settle_seconds,
    ...(deps.registry ? { localRegistry: deps.registry } : {}),
    ...(deps.registryLogin ? { login: (ref: string) => deps.registryLogin!.credentials(ref) } : {}),
  });

  const baseInputs = (
    version: string,
    inputsHash: string,
    gitRevision: string,
    registry: RegistryCredentials | undefined,
  ): BakeInputs => ({
    version,
    inputsHash,
    gitRevision,
    rubyBenchCommit,
    ...(deps.runId ? { runId: deps.runId } : {}),
    ...ops.baseInputs(base, home),
    ...(deps.packerVersion ? { packerVersion: deps.packerVersion } : {}),
    ...(stack ? { stack } : {}),
    ...(imageRef
      ? {
          image: {
            ref: imageRef,
            ...(registry
              ? {
                  registry: {
                    endpoint: registry.endpoint,
                    user: registry.user,
                    passwordEnv: "IMGTOOL_REGISTRY_PASSWORD",
                  },
                }
              : {}),
          },
        }
      : {}),
  });
  const filesHash = renderedHash(
    deps.render(
      config,
      role,
      target,
      renderInputs(config, role, {
        ...(ops.baseInputs(base, home).region ? { region: home } : {}),
        ...(deps.packerVersion ? { packerVersion: deps.packerVersion } : {}),
      }),
    ),
  );
  const inputsHash = hashParts([
    { name: "rendered-files", content: filesHash },
    { name: "target", content: target },
    { name: "base", content: JSON.stringify(base) },
    { name: "ruby-bench", content: `${rc.ruby_bench.repository}@${rubyBenchCommit}` },
    { name: "image", content: imageRef ?? "none" },
    {
      name: "registry",
      content: deps.registry
        ? `${deps.registry.user}@${deps.registry.endpoint}`
        : (deps.registryLogin?.id ?? "none"),
    },
    { name: "regions", content: regions.join(",") },
    ...(stack ? [{ name: "stack", content: JSON.stringify(stack) }] : []),
  ]);

  // 2. Check before work: is there an artefact for this hash in every region and architecture?
  const keys = arches.map((arch) => ({ role, kind: "ami" as const, arch }));
  if (!opts.force) {
    let version: string | undefined;
    const artifacts: BakeArtifact[] = [];
    const lacking: string[] = [];
    let homeFound: Artifact[] = [];
    for (const region of regions) {
      const r = await (
        await deps.catalog(region)
      ).resolve(keys, { label: hashLabel(inputsHash), meta: true });
      if (r.missing.length) lacking.push(region);
      if (region === home) homeFound = r.found;
      for (const a of r.found) {
        version ??= a.meta?.version;
        artifacts.push({ region, arch: a.key.arch as Arch, id: a.value });
      }
    }
    if (lacking.length === 0 && version) {
      emit("skip", `up to date: ${version} (inputs ${inputsHash.slice(0, 12)} unchanged)`);
      return {
        role,
        target,
        status: "up-to-date",
        version,
        inputsHash,
        renderedHash: filesHash,
        artifacts,
        packerRuns: 0,
        seconds: (Date.now() - started) / 1000,
        preloadedImage: imageRef ?? null,
      };
    }
    // A run stopped between regions' publishes: the home region has every architecture for these inputs, so
    // finish the others from that artefact (copies, waits, tags are idempotent) instead of building again.
    if (!lacking.includes(home) && homeFound.length === keys.length) {
      return resumePublish(role, deps, {
        homeFound,
        lacking,
        inputsHash,
        filesHash,
        imageRef,
        started,
        emit: (m) => emit("build", m),
      });
    }
  }

  // 3. Render to a build folder and run Packer.
  const now = (deps.now ?? (() => new Date()))();
  const version = versionName(now, inputsHash);
  const gitRevision = await deps.gitRevision();
  let registry = deps.registry;
  if (!registry && imageRef && deps.registryLogin) {
    emit("check", `logging in to the registry of ${imageRef} for the pre-load pull`);
    registry = await deps.registryLogin.credentials(imageRef);
  }
  const rendered = deps.render(config, role, target, baseInputs(version, inputsHash, gitRevision, registry));
  const dir = path.join(deps.buildRoot, `${role}-${version}`);
  await mkdir(dir, { recursive: true });
  await deps.writeRendered(rendered, dir);
  emit("build", `baking ${version} with Packer in ${dir}`, {
    version,
    inputsHash,
    renderedHash: filesHash,
    dir,
  });
  const env: NodeJS.ProcessEnv = { ...deps.packerEnv };
  if (env.PACKER_TMP_DIR) await mkdir(env.PACKER_TMP_DIR, { recursive: true });
  if (registry) env.IMGTOOL_REGISTRY_PASSWORD = registry.password;
  if (ops.packerInit) {
    const init = await deps.packer.run(rendered.initArgs, {
      cwd: dir,
      env,
      onLine: (l) => emit("progress", l, { stream: "packer" }),
      ...(deps.signal ? { signal: deps.signal } : {}),
    });
    if (init.exitCode !== 0 && !init.interrupted)
      throw new FailureError(`packer init failed for ${role} (exit ${init.exitCode}).`, {
        fix: `See the output above; the files are in ${dir}.`,
      });
  }
  const run = await deps.packer.run(rendered.buildArgs, {
    cwd: dir,
    env,
    onLine: (l) => emit("progress", l, { stream: "packer" }),
    ...(deps.signal ? { signal: deps.signal } : {}),
  });
  if (run.interrupted) {
    throw packerInterrupted(
      `The ${role} bake`,
      opts.abortReason?.() ?? "SIGINT",
      run.killed ? ["Packer's builder (container or instance)", dir] : undefined,
    );
  }
  if (run.exitCode !== 0) {
    throw new FailureError(
      `Packer failed for ${role} (exit ${run.exitCode ?? run.signal}); nothing was published.`,
      {
        fix: `See the [${role}] output above; the rendered files are in ${dir} (\`imgtool render\` writes the same).`,
      },
    );
  }

  // 4. Read the result from the manifest file, never from stdout.
  let manifestText: string;
  try {
    manifestText = await readFile(path.join(dir, rendered.manifestFile), "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    throw new FailureError(
      `Packer succeeded but wrote no manifest for ${role} (${rendered.manifestFile}); nothing was published.`,
    );
  }
  const made: ManifestArtifact[] = artifactsFromManifest(rendered, manifestText);
  if (made.length !== rendered.sources.length) {
    throw new FailureError(
      `Packer's manifest lists ${made.length} artefact(s) for ${role}, expected ${rendered.sources.length}.`,
    );
  }
  const versionManifests: Record<string, unknown> = {};
  for (const src of rendered.sources)
    versionManifests[src.arch] = await readVersionManifest(path.join(dir, src.versionManifestFile));
  const tags = {
    [TAG.pipeline]: config.pipeline,
    [TAG.role]: role,
    [TAG.version]: version,
    [TAG.inputsHash]: inputsHash,
    [TAG.gitRevision]: gitRevision,
  };

  const { artifacts, preloadVolume } = await ops.finish(made, {
    config,
    role,
    version,
    regions,
    tags,
    imageRef,
    ...(stack ? { stackImages: stack.images.slice(1) } : {}),
    emit: (message) => emit("build", message),
  });

  // 5. Publish, only now that everything for this role succeeded (and nobody asked to stop meanwhile).
  if (deps.signal?.aborted) {
    throw new InterruptedError(
      `The ${role} bake was interrupted (${opts.abortReason?.() ?? "SIGINT"}) after Packer finished: nothing was published; left unpublished: ${artifacts.map((a) => `${a.region}/${a.arch} ${a.id}`).join(", ")}${preloadVolume ? ` and volume ${preloadVolume}` : ""}.`,
      opts.abortReason?.() ?? "SIGINT",
    );
  }
  for (const a of artifacts) {
    const cat = await deps.catalog(a.region);
    await cat.publish(
      { role, kind: "ami", arch: a.arch },
      a.id,
      {
        version,
        inputsHash,
        renderedHash: filesHash,
        gitRevision,
        builtAt: now.toISOString(),
        base: base[a.arch],
        region: a.region,
        rubyBenchCommit,
        image: imageRef ?? null,
        preloadVolume,
        manifest: versionManifests[a.arch] ?? null,
      },
      { dataType: ops.dataType, labels: [hashLabel(inputsHash)] },
    );
  }
  emit("done", `built ${version}: ${artifacts.map((a) => `${a.region}/${a.arch} ${a.id}`).join(", ")}`);
  return {
    role,
    target,
    status: "built",
    version,
    inputsHash,
    renderedHash: filesHash,
    artifacts,
    packerRuns: 1,
    seconds: (Date.now() - started) / 1000,
    preloadedImage: imageRef ?? null,
  };
}

/**
 * Finish a publish that a run left half done: the home region has the artefact of every architecture for
 * the inputs hash, `lacking` regions do not. The target's finish step runs over the home artefacts for home
 * and the lacking regions (aws: waits, tags, copies with the same client token, so a copy made before the
 * interruption is found again, not made twice), then only the lacking regions are published, with the home
 * region's metadata.
 */
async function resumePublish(
  role: Role,
  deps: BakeDeps,
  r: {
    homeFound: Artifact[];
    lacking: string[];
    inputsHash: string;
    filesHash: string;
    imageRef: string | undefined;
    started: number;
    emit: (message: string) => void;
  },
): Promise<BakeResult> {
  const { config, ops } = deps;
  const home = targetRegions(config, ops.target)[0]!;
  const first = r.homeFound[0]!;
  const version = first.meta?.version;
  if (!version)
    throw new FailureError(`${first.name} carries no version metadata; run \`imgtool bake ami --force\`.`);
  r.emit(
    `resuming ${version}: published in ${home}, not yet in ${r.lacking.join(", ")}; finishing from ${r.homeFound.map((a) => a.value).join(", ")} (no new build)`,
  );
  const tags = {
    [TAG.pipeline]: config.pipeline,
    [TAG.role]: role,
    [TAG.version]: version,
    [TAG.inputsHash]: r.inputsHash,
    [TAG.gitRevision]: String(first.meta?.gitRevision ?? ""),
  };
  const made: ManifestArtifact[] = r.homeFound.map((a) => ({
    source: `resume-${a.key.arch}`,
    arch: a.key.arch as Arch,
    id: a.value,
    region: home,
  }));
  const { artifacts } = await ops.finish(made, {
    config,
    role,
    version,
    regions: [home, ...r.lacking],
    tags,
    imageRef: r.imageRef,
    emit: r.emit,
  });
  if (deps.signal?.aborted) {
    throw new InterruptedError(
      `The ${role} bake was interrupted while it finished ${version} in ${r.lacking.join(", ")}; a new run resumes it.`,
      "SIGINT",
    );
  }
  for (const a of artifacts) {
    if (!r.lacking.includes(a.region)) continue;
    const homeMeta = r.homeFound.find((h) => h.key.arch === a.arch)!.meta!;
    const { value: _value, ...meta } = homeMeta;
    await (
      await deps.catalog(a.region)
    ).publish(
      { role, kind: "ami", arch: a.arch },
      a.id,
      { ...meta, region: a.region },
      {
        dataType: ops.dataType,
        labels: [hashLabel(r.inputsHash)],
      },
    );
  }
  r.emit(`resumed ${version}: ${artifacts.map((a) => `${a.region}/${a.arch} ${a.id}`).join(", ")}`);
  return {
    role,
    target: ops.target,
    status: "resumed",
    version,
    inputsHash: r.inputsHash,
    renderedHash: r.filesHash,
    artifacts,
    packerRuns: 0,
    seconds: (Date.now() - r.started) / 1000,
    preloadedImage: r.imageRef ?? null,
  };
}

/** The version manifest that write-manifest.sh wrote and Packer downloaded into the build folder, if any. */
async function readVersionManifest(file: string): Promise<Record<string, unknown> | null> {
  try {
    return JSON.parse(await readFile(file, "utf8")) as Record<string, unknown>;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
}

/** Bake several roles in parallel; every role's result, or the first failure after all have settled. */
export async function bake(
  roles: Role[],
  deps: BakeDeps,
  opts: { force?: boolean; abortReason?: () => "SIGINT" | "SIGTERM" } = {},
): Promise<BakeResult[]> {
  // One publisher per pipeline and role: each role's check, bake and publish run under its lease.
  const settled = await Promise.allSettled(
    roles.map((r) => holding(deps.lease, `${r}-ami`, () => bakeRole(r, deps, opts))),
  );
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (failed) throw failed.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<BakeResult>).value);
}
