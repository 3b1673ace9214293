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
import type { Artifact, ArtifactKey, Catalog } from "../catalog/catalog.js";
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
  type BakeStageName,
  type ManifestArtifact,
  type RenderedBake,
} from "../render/packer.js";
import { TAG } from "../config/tags.js";
import { bakeStack } from "./stack-images.js";
import { stackVolumeWord } from "../config/stack.js";

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
  /** A staged bake: which stage this result is ("base" or "role"); absent for the single full bake. */
  stage?: BakeStageName;
  /** Why this stage was built or skipped (inputs unchanged, new inputs, --force, older than the age limit). */
  reason?: string;
  /** The role stage: the base stage's result (built, up to date, or found in the catalog with --stage role). */
  base?: BakeResult;
}

/** Which stages `bake ami --stage` runs. */
export type BakeStageChoice = BakeStageName | "all";

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
  /** Whether finish can copy a published version's pre-loaded store ({@link FinishingBake.seed}). */
  readonly seedsPreload?: boolean;
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
  /**
   * Check before building a base stage that this catalog does not know: a base of the same inputs hash made by
   * another catalog (local: a base twin on the engine labelled with the hash, tagged into this pipeline's base
   * repository when found). Null: none. Absent: the target has no such look-up.
   */
  adoptBase?(q: AdoptBaseQuery): Promise<AdoptedBase | null>;
  /** Whether a published artefact still exists (a base removed outside this catalog is rebuilt). */
  exists?(id: string, region: string): Promise<boolean>;
}

/** What {@link BakeTargetOps.adoptBase} looks for. */
export interface AdoptBaseQuery {
  config: Config;
  role: Role;
  arches: Arch[];
  region: string;
  inputsHash: string;
}

/** A base found by its inputs hash outside this catalog. */
export interface AdoptedBase {
  version: string;
  /** When it was built (the age rule applies to it as to a base this catalog published). */
  builtAt: string;
  artifacts: BakeArtifact[];
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
  /** A Compose stack's named volumes the pre-load fills (KEY,PATH,IMAGE words; stackVolumeWord). */
  stackVolumes?: string[];
  /** A "build" event of the role's bake. */
  emit: (message: string) => void;
  /** A staged bake's stage: "base" artefacts are named apart (the local twin's repository gains "-base"). */
  stage?: BakeStageName;
  /**
   * Check before work (local: the pre-load): the role's latest version was built on the same base and holds
   * the same images, so its store is what a pull would make again; the target may copy it instead.
   */
  seed?: PreloadSeed;
}

/** A published version's pre-loaded store, with the same images on the same base as this bake's. */
export interface PreloadSeed {
  version: string;
  /** The volume that holds it (local). */
  volume: string;
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

export interface BakeOptions {
  force?: boolean;
  abortReason?: () => "SIGINT" | "SIGTERM";
}

/** One stage of a staged bake, as {@link bakeRole} runs it. */
interface StageSpec {
  stage: BakeStageName;
  /** Role stage: the base stage's artefacts (home region, per architecture), found through the catalog. */
  base?: { ids: Record<string, string>; version: string; inputsHash: string; built: boolean };
  /** Base stage: rebuild when the published base is older than this (days; roles.<role>.base.max_age_days). */
  maxAgeDays?: number;
  /** Compute the inputs hash only: no catalog check, no build (the role stage's look-up of its base). */
  hashOnly?: boolean;
}

/** A bake's resolved inputs and its inputs hash (what a stage or the full bake depends on). */
interface ResolvedInputs {
  base: Record<string, string>;
  rubyBenchCommit: string;
  imageRef: string | undefined;
  stack: Awaited<ReturnType<typeof bakeStack>>;
  inputsHash: string;
  filesHash: string;
}

/**
 * The single full bake (every step in one Packer build), or one stage of a staged bake (`spec`): the base
 * stage starts from the configured base and publishes kind "base" in the home region only; the role stage
 * starts from the base stage's artefact and publishes the role's AMIs / twin as the full bake does.
 */
export async function bakeRole(
  role: Role,
  deps: BakeDeps,
  opts: BakeOptions = {},
  spec?: StageSpec,
): Promise<BakeResult> {
  const started = Date.now();
  const { config, events, ops } = deps;
  const { target } = ops;
  const stage = spec?.stage;
  const { arches, home, regions } = stagePlaces(config, role, target, stage);
  const kind = stage === "base" ? ("base" as const) : ("ami" as const);
  const what = stage ? `${stage} stage` : "bake";
  const emit = (
    type: "start" | "check" | "found" | "skip" | "build" | "progress" | "publish" | "warn" | "done",
    message: string,
    data?: Record<string, unknown>,
  ) => events({ type, role, message, ...(data ? { data } : {}) });

  // 1. Inputs: the resolved base, the ruby-bench commit, the role's published image, the rendered files.
  const { base, rubyBenchCommit, imageRef, stack, inputsHash, filesHash } = await resolveInputs(
    role,
    deps,
    spec,
    emit,
  );
  if (spec?.hashOnly)
    return {
      role,
      target,
      status: "up-to-date",
      version: "",
      inputsHash,
      renderedHash: filesHash,
      artifacts: [],
      packerRuns: 0,
      seconds: (Date.now() - started) / 1000,
      preloadedImage: null,
      stage: spec.stage,
    };

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
    ...(stage ? { stage } : {}),
    ...(spec?.base ? { baseVersion: spec.base.version } : {}),
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
  // 2. Check before work: is there an artefact for this hash in every region and architecture?
  const keys = arches.map((arch) => ({ role, kind, arch }));
  let reason = opts.force ? "--force" : `no ${what} is published for inputs ${inputsHash.slice(0, 12)}`;
  if (spec?.base?.built) reason = `its base ${spec.base.version} is new`;
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
    // A base's artefact can be removed outside this catalog (another catalog's prune of a base twin they
    // shared, an AMI deregistered by hand): one that is gone is not up to date.
    if (stage === "base" && version && lacking.length === 0 && ops.exists) {
      const gone: string[] = [];
      for (const a of artifacts) if (!(await ops.exists(a.id, a.region))) gone.push(a.id);
      if (gone.length) {
        reason = `${version} is published but ${gone.join(", ")} is gone (removed outside this catalog)`;
        version = undefined;
        lacking.push(home);
      }
    }
    const nowMs = (deps.now ?? (() => new Date()))().getTime();
    const ageOf = (builtAt: unknown) =>
      typeof builtAt === "string" ? (nowMs - new Date(builtAt).getTime()) / 86_400_000 : 0;
    const tooOldAt = (days: number) => spec?.maxAgeDays !== undefined && days > spec.maxAgeDays;
    const ageDays = ageOf(homeFound[0]?.meta?.builtAt);
    const tooOld = version !== undefined && tooOldAt(ageDays);
    const tooOldReason = (v: string, days: number) =>
      `${v} is ${days.toFixed(1)} days old, older than roles.${role}.base.max_age_days (${spec?.maxAgeDays}): rebuilt for OS updates`;
    if (tooOld && version) reason = tooOldReason(version, ageDays);
    if (lacking.length === 0 && version && !tooOld) {
      reason = `inputs ${inputsHash.slice(0, 12)} unchanged`;
      emit("skip", `${stage ? `${stage} stage ` : ""}up to date: ${version} (${reason})`);
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
        ...(stage ? { stage, reason } : {}),
      };
    }
    // Check before work beyond this catalog: a base of the same inputs made by another catalog is recorded
    // in this one instead of built again (unless it is too old too).
    if (stage === "base" && ops.adoptBase && (!version || lacking.length)) {
      const adopted = await ops.adoptBase({ config, role, arches, region: home, inputsHash });
      const days = adopted ? ageOf(adopted.builtAt) : 0;
      if (adopted && tooOldAt(days)) reason = tooOldReason(adopted.version, days);
      else if (adopted) {
        for (const a of adopted.artifacts)
          await (
            await deps.catalog(a.region)
          ).publish(
            { role, kind, arch: a.arch },
            a.id,
            {
              version: adopted.version,
              inputsHash,
              renderedHash: filesHash,
              builtAt: adopted.builtAt,
              base: base[a.arch],
              region: a.region,
              stage: "base",
              adopted: true,
            },
            { dataType: ops.dataType, labels: [hashLabel(inputsHash)] },
          );
        reason = `found ${adopted.version} by its inputs ${inputsHash.slice(0, 12)} outside this catalog: recorded, not rebuilt`;
        emit("skip", `base stage up to date: ${reason}`);
        return {
          role,
          target,
          status: "up-to-date",
          version: adopted.version,
          inputsHash,
          renderedHash: filesHash,
          artifacts: adopted.artifacts,
          packerRuns: 0,
          seconds: (Date.now() - started) / 1000,
          preloadedImage: null,
          stage,
          reason,
        };
      }
    }
    // A run stopped between regions' publishes: the home region has every architecture for these inputs, so
    // finish the others from that artefact (copies, waits, tags are idempotent) instead of building again.
    if (!tooOld && !lacking.includes(home) && homeFound.length === keys.length) {
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

  // Check before work, for the pre-load after Packer: the store of a published version it may copy.
  const stackImages = stack ? stack.images.slice(1) : [];
  // The stack's named volumes the pre-load fills (imgtool-stack fill): a store is copied only if it holds them too.
  const stackVolumes = stack ? stack.volumes.map(stackVolumeWord) : [];
  const seed =
    ops.seedsPreload && stage === "role" && imageRef && spec?.base && !opts.force
      ? await preloadSeed(
          await deps.catalog(home),
          keys[0]!,
          spec.base.version,
          [imageRef, ...stackImages],
          stackVolumes,
        )
      : undefined;

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
  const dir = path.join(deps.buildRoot, `${role}-${stage ? `${stage}-` : ""}${version}`);
  await mkdir(dir, { recursive: true });
  await deps.writeRendered(rendered, dir);
  if (stage) emit("build", `${stage} stage: rebuilding (${reason})`);
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
    const init = await oneAtATime(deps.packer, () =>
      deps.packer.run(rendered.initArgs, {
        cwd: dir,
        env,
        onLine: (l) => emit("progress", l, { stream: "packer" }),
        ...(deps.signal ? { signal: deps.signal } : {}),
      }),
    );
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
  const versionManifests: Record<string, Record<string, unknown> | null> = {};
  for (const src of rendered.sources)
    versionManifests[src.arch] = await readVersionManifest(path.join(dir, src.versionManifestFile));
  const tags = {
    [TAG.pipeline]: config.pipeline,
    [TAG.role]: role,
    [TAG.version]: version,
    [TAG.inputsHash]: inputsHash,
    [TAG.gitRevision]: gitRevision,
    ...(stage === "base" ? { [TAG.stage]: "base" } : {}),
    ...(spec?.base ? { [TAG.baseVersion]: spec.base.version } : {}),
  };

  const { artifacts, preloadVolume } = await ops.finish(made, {
    config,
    role,
    version,
    regions,
    tags,
    imageRef,
    ...(stack ? { stackImages, stackVolumes } : {}),
    emit: (message) => emit("build", message),
    ...(stage ? { stage } : {}),
    ...(seed ? { seed } : {}),
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
      { role, kind, arch: a.arch },
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
        // What the pre-load volume holds: a later role stage with the same images copies it (preloadSeed).
        ...(preloadVolume && imageRef ? { preloadImages: [imageRef, ...stackImages] } : {}),
        ...(preloadVolume && imageRef && stackVolumes.length ? { preloadVolumes: stackVolumes } : {}),
        manifest: spec?.base
          ? {
              ...versionManifests[a.arch],
              // Which base this role version was built on (prune keeps it while this version is kept).
              base: {
                version: spec.base.version,
                inputsHash: spec.base.inputsHash,
                id: spec.base.ids[a.arch] ?? null,
              },
            }
          : (versionManifests[a.arch] ?? null),
        ...(stage ? { stage } : {}),
        ...(spec?.base ? { baseVersion: spec.base.version, baseInputsHash: spec.base.inputsHash } : {}),
      },
      { dataType: ops.dataType, labels: [hashLabel(inputsHash)] },
    );
  }
  emit(
    "done",
    `built ${stage ? `${stage} stage ` : ""}${version}: ${artifacts.map((a) => `${a.region}/${a.arch} ${a.id}`).join(", ")}`,
  );
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
    ...(stage ? { stage, reason } : {}),
  };
}

/**
 * The role's latest version, when it was built on `baseVersion` and its pre-load volume holds exactly `images`
 * and a stack's filled `volumes` (KEY,PATH,IMAGE words; a store recorded without them filled none): after a new
 * ruby-bench commit, or a rebake after a failed one, its store is the one a pull would make now. Whether
 * the volume is still there is the target's check. None with --force, which pulls afresh.
 */
export async function preloadSeed(
  catalog: Catalog,
  key: ArtifactKey,
  baseVersion: string,
  images: string[],
  volumes: string[],
): Promise<PreloadSeed | undefined> {
  const meta = (await catalog.resolve([key], { meta: true })).found[0]?.meta;
  const same = (held: unknown, want: string[]) =>
    Array.isArray(held) && held.length === want.length && want.every((w, i) => held[i] === w);
  if (
    !meta ||
    typeof meta.preloadVolume !== "string" ||
    meta.baseVersion !== baseVersion ||
    !same(meta.preloadImages, images) ||
    !same(meta.preloadVolumes ?? [], volumes)
  )
    return undefined;
  return { version: meta.version, volume: meta.preloadVolume };
}

/** A bake's architectures and regions (home first). A base is only ever a source of the role stage, which
 * builds in the home region: the base stage publishes there only. */
function stagePlaces(config: Config, role: Role, target: Target, stage: BakeStageName | undefined) {
  const arches = targetArches(config, role, target);
  const all = targetRegions(config, target);
  const home = all[0]!;
  return { arches, home, regions: stage === "base" ? [home] : all };
}

/**
 * A bake's inputs and inputs hash. The full bake and the role stage: the resolved base (the role stage's is
 * the base stage's artefact), the ruby-bench commit, the role's published image (and stack), the rendered
 * files. The base stage: the resolved upstream base and its own rendered files only, so a new image digest or
 * ruby-bench commit leaves it unchanged.
 */
async function resolveInputs(
  role: Role,
  deps: BakeDeps,
  spec: StageSpec | undefined,
  emit: (type: "check" | "warn", message: string) => void,
): Promise<ResolvedInputs> {
  const { config, ops } = deps;
  const { target } = ops;
  const rc = config.roles[role];
  const stage = spec?.stage;
  const { arches, home, regions } = stagePlaces(config, role, target, stage);
  const base: Record<string, string> = {};
  let rubyBenchCommit = rc.ruby_bench.ref;
  let imageRef: string | undefined;
  let stack: ResolvedInputs["stack"];
  if (stage === "base") {
    emit("check", "resolving the base stage's inputs (upstream base)");
    for (const arch of arches) base[arch] = await ops.resolveBase(config, role, arch);
  } else {
    emit("check", "resolving inputs (base, ruby-bench commit, published image)");
    if (spec?.base) Object.assign(base, spec.base.ids);
    else for (const arch of arches) base[arch] = await ops.resolveBase(config, role, arch);
    rubyBenchCommit = await deps.resolveCommit(role, rc.ruby_bench);
    const homeCatalog = await deps.catalog(home);
    const published = (await homeCatalog.resolve([{ role, kind: "image" as const }])).found[0];
    imageRef = published?.value;
    if (!imageRef)
      emit(
        "warn",
        "no container image is published for this role yet: the bake skips the pre-load step and records that",
      );
    stack = await bakeStack({
      stack: rc.stack,
      target,
      imageRef,
      settleSeconds: rc.run.settle_seconds,
      ...(deps.registry ? { localRegistry: deps.registry } : {}),
      ...(deps.registryLogin ? { login: (ref: string) => deps.registryLogin!.credentials(ref) } : {}),
    });
  }
  const filesHash = renderedHash(
    deps.render(
      config,
      role,
      target,
      renderInputs(config, role, {
        ...(ops.baseInputs(base, home).region ? { region: home } : {}),
        ...(deps.packerVersion ? { packerVersion: deps.packerVersion } : {}),
        ...(stage ? { stage } : {}),
      }),
    ),
  );
  const inputsHash = hashParts(
    stage === "base"
      ? [
          { name: "stage", content: "base" },
          { name: "rendered-files", content: filesHash },
          { name: "target", content: target },
          { name: "base", content: JSON.stringify(base) },
        ]
      : [
          ...(stage ? [{ name: "stage", content: stage }] : []),
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
        ],
  );

  return { base, rubyBenchCommit, imageRef, stack, inputsHash, filesHash };
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

/**
 * A staged bake of one role: the base stage (skipped when its inputs are unchanged and it is younger than
 * roles.<role>.base.max_age_days), then the role stage, whose source is the base artefact found through the
 * catalog by the base stage's inputs hash. `stage` "base" runs the base stage only; "role" only looks the base
 * up (and fails, naming the fix, when none is published for the current base inputs). `force` applies to the
 * stages that run. The result is the role stage's, with the base stage's result in `base` ("base": the base's).
 */
export async function bakeStaged(
  role: Role,
  deps: BakeDeps,
  opts: BakeOptions & { stage: BakeStageChoice },
): Promise<BakeResult> {
  const { config, ops } = deps;
  const baseSpec: StageSpec = { stage: "base", maxAgeDays: config.roles[role].base.max_age_days };
  let base: BakeResult;
  if (opts.stage === "role") {
    base = await bakeRole(role, deps, {}, { ...baseSpec, hashOnly: true });
  } else {
    base = await bakeRole(role, deps, opts, baseSpec);
    if (opts.stage === "base") return base;
  }
  // The role stage's source: the base stage's artefact, through the catalog, by the base's inputs hash.
  const home = targetRegions(config, ops.target)[0]!;
  const arches = targetArches(config, role, ops.target);
  const found = await (
    await deps.catalog(home)
  ).resolve(
    arches.map((arch) => ({ role, kind: "base" as const, arch })),
    { label: hashLabel(base.inputsHash), meta: true },
  );
  const version = found.found[0]?.meta?.version;
  if (found.missing.length || !version) {
    throw new FailureError(
      `No base stage of ${role} is published for its current inputs (${base.inputsHash.slice(0, 12)}): the role stage has no source.`,
      { fix: `Run \`imgtool bake ami --stage base --role ${role}\` (or \`--stage all\`) first.` },
    );
  }
  if (opts.stage === "role")
    base = {
      ...base,
      version,
      artifacts: found.found.map((a) => ({ region: home, arch: a.key.arch as Arch, id: a.value })),
      reason: "not run (--stage role): found in the catalog by its inputs hash",
    };
  const ids = Object.fromEntries(found.found.map((a) => [a.key.arch!, a.value]));
  const roleResult = await bakeRole(role, deps, opts, {
    stage: "role",
    base: { ids, version, inputsHash: base.inputsHash, built: base.status === "built" },
  });
  return { ...roleResult, base };
}

/** The last task queued per key ({@link oneAtATime}); it never rejects. */
const queues = new WeakMap<object, Promise<unknown>>();

/**
 * `work` once every task queued before it under `key` has settled. `packer init` installs plugins into one folder
 * per user (~/.config/packer/plugins), which two installs at once break ("text file busy", "Missing plugins"):
 * the roles bake in parallel, their inits one at a time per Packer runner. The second finds the plugin installed.
 */
export function oneAtATime<T>(key: object, work: () => Promise<T>): Promise<T> {
  const next = (queues.get(key) ?? Promise.resolve()).then(work);
  queues.set(
    key,
    next.catch(() => undefined),
  );
  return next;
}

/** Bake several roles in parallel; every role's result, or the first failure after all have settled. */
export async function bake(
  roles: Role[],
  deps: BakeDeps,
  /** stage: a staged bake (base and/or role stage, {@link bakeStaged}); absent: the single full bake. */
  opts: BakeOptions & { stage?: BakeStageChoice } = {},
): Promise<BakeResult[]> {
  const { stage } = opts;
  // One publisher per pipeline and role: each role's check, bake and publish run under its lease.
  const settled = await Promise.allSettled(
    roles.map((r) =>
      holding(deps.lease, `${r}-ami`, () =>
        stage ? bakeStaged(r, deps, { ...opts, stage }) : bakeRole(r, deps, opts),
      ),
    ),
  );
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (failed) throw failed.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<BakeResult>).value);
}
