/**
 * `imgtool bake ami`: for each role, compute the inputs hash, check the catalog, and only when nothing is
 * published for that hash render to a build folder, run Packer, and publish what it made. Both roles bake in
 * parallel. Nothing is published unless every step for the role succeeded.
 *
 * aws: the AMI per architecture is waited for (several `available` reads in a row), tagged with its snapshots,
 * copied to the other regions (encrypted, waited for), then published per region and architecture.
 * local: the twin image is tagged with the version, the role's image is pre-loaded into a Docker volume that
 * holds the twin engine's image store (the twin's EBS snapshot), and both are published.
 */
import { mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import type { Catalog } from "../catalog/catalog.js";
import { versionName } from "../catalog/catalog.js";
import type { Config } from "../config/load.js";
import type { Arch, Role, Target } from "../config/schema.js";
import { FailureError, ImgtoolError } from "../errors.js";
import type { EventSink } from "../events.js";
import { hashParts } from "../hash.js";
import type { PackerRunner } from "../packer/runner.js";
import {
  artifactsFromManifest,
  roleArches,
  type BakeInputs,
  type ManifestArtifact,
  type RenderedBake,
} from "../render/packer.js";

export interface BakeArtifact {
  region: string;
  arch: Arch;
  id: string;
}

export interface BakeResult {
  role: Role;
  target: Target;
  status: "built" | "up-to-date";
  version: string;
  inputsHash: string;
  artifacts: BakeArtifact[];
  /** Packer runs this bake made (0 when up to date). */
  packerRuns: number;
  seconds: number;
  /** The image pre-loaded into the AMI / twin store, or null when none was published yet. */
  preloadedImage: string | null;
}

/** What the aws target needs per region. */
export interface AwsBakeOps {
  /** Newest base AMI id matching the role's filter, per architecture, in the home region. */
  resolveBase(role: Role, arch: Arch): Promise<string>;
  /** Wait (consecutive reads), tag with snapshots; returns the snapshot ids. */
  finish(region: string, imageId: string, tags: Record<string, string>): Promise<void>;
  /** Copy into `region` (encrypted), wait, tag; returns the copy's id. */
  copy(
    fromRegion: string,
    imageId: string,
    toRegion: string,
    name: string,
    token: string,
    tags: Record<string, string>,
  ): Promise<string>;
}

/** What the local target needs from the Docker engine. */
export interface TwinOps {
  /** Digest (or id) of the local base image. */
  resolveBase(image: string): Promise<string>;
  /** Tag the twin image made by Packer. */
  tag(imageId: string, repo: string, tag: string): Promise<void>;
  /** Pull `imageRef` into a fresh volume (labelled) holding the twin engine's /var/lib/docker. */
  preload(
    twinImageId: string,
    imageRef: string,
    volume: string,
    labels: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<void>;
  /** Remove unpublished twin images and their pre-load volume; returns what could not be removed. */
  discard(imageIds: string[], volume: string | null): Promise<string[]>;
}

export interface BakeDeps {
  config: Config;
  target: Target;
  events: EventSink;
  packer: PackerRunner;
  render: (config: Config, role: Role, target: Target, inputs: BakeInputs) => RenderedBake;
  writeRendered: (r: RenderedBake, dir: string) => Promise<void>;
  /** The catalog of a region (aws) or the local catalog (region ignored). */
  catalog: (region: string) => Promise<Catalog>;
  resolveCommit: (repository: string, ref: string) => Promise<string>;
  gitRevision: () => Promise<string>;
  aws?: AwsBakeOps;
  twin?: TwinOps;
  /** Local registry credentials for pre-loading on the twin: passed to Packer through the environment. */
  registry?: { endpoint: string; user: string; password: string };
  buildRoot: string;
  now?: () => Date;
  signal?: AbortSignal;
  /** `packer version` of the Packer that runs the build (decides the plugins file's place). */
  packerVersion?: string;
  /** Extra environment for Packer (DOCKER_HOST on local, AWS_PROFILE on aws). */
  packerEnv?: NodeJS.ProcessEnv;
}

/**
 * Exit 130 / 143: the user (or CI) stopped the bake and nothing was published. The message says what was
 * cleaned up and, truthfully, what could not be.
 */
export class InterruptedError extends ImgtoolError {
  constructor(
    what: string,
    signal: "SIGINT" | "SIGTERM",
    cleanup = "Packer cleaned up",
    left: string[] = [],
  ) {
    super(
      `${what} was interrupted (${signal}): ${cleanup}, nothing was published.` +
        (left.length ? ` May be left: ${left.join("; ")}.` : ""),
      {
        exitCode: signal === "SIGINT" ? 130 : 143,
        ...(left.length
          ? { fix: "`imgtool doctor` lists leftovers; `imgtool prune` removes old twins and volumes." }
          : {}),
      },
    );
  }
}

export const hashLabel = (inputsHash: string) => `h-${inputsHash.slice(0, 24)}`;

/** The architectures a role bakes for: aws from its instance types, local the machine's own. */
export function archesFor(config: Config, role: Role, target: Target): Arch[] {
  if (target === "local") return [process.arch === "arm64" ? "arm64" : "x86_64"];
  return roleArches(config, role).map((a) => a.arch);
}

function regionsFor(config: Config, target: Target): string[] {
  return target === "aws" ? config.aws.regions : ["local"];
}

export async function bakeRole(
  role: Role,
  deps: BakeDeps,
  opts: { force?: boolean; abortReason?: () => "SIGINT" | "SIGTERM" } = {},
): Promise<BakeResult> {
  const started = Date.now();
  const { config, target, events } = deps;
  const rc = config.roles[role];
  const arches = archesFor(config, role, target);
  const regions = regionsFor(config, target);
  const home = regions[0]!;
  const emit = (
    type: "start" | "check" | "found" | "skip" | "build" | "progress" | "publish" | "warn" | "done",
    message: string,
    data?: Record<string, unknown>,
  ) => events({ type, role, message, ...(data ? { data } : {}) });

  // 1. Inputs: the resolved base, the ruby-bench commit, the role's published image, the rendered files.
  emit("check", "resolving inputs (base, ruby-bench commit, published image)");
  const base: Record<string, string> = {};
  for (const arch of arches) {
    base[arch] =
      target === "aws"
        ? await deps.aws!.resolveBase(role, arch)
        : await deps.twin!.resolveBase(rc.base.local.image);
  }
  const rubyBenchCommit = await deps.resolveCommit(rc.ruby_bench.repository, rc.ruby_bench.ref);
  const homeCatalog = await deps.catalog(home);
  const imageKey = { role, kind: "image" as const };
  const published = (await homeCatalog.resolve([imageKey])).found[0];
  const imageRef = published?.value;
  if (!imageRef)
    emit(
      "warn",
      "no container image is published for this role yet: the bake skips the pre-load step and records that",
    );

  const baseInputs = (version: string, inputsHash: string, gitRevision: string): BakeInputs => ({
    version,
    inputsHash,
    gitRevision,
    rubyBenchCommit,
    ...(target === "aws" ? { bases: base } : { base: Object.values(base)[0]! }),
    ...(deps.packerVersion ? { packerVersion: deps.packerVersion } : {}),
    ...(imageRef
      ? {
          image: {
            ref: imageRef,
            ...(deps.registry
              ? {
                  registry: {
                    endpoint: deps.registry.endpoint,
                    user: deps.registry.user,
                    passwordEnv: "IMGTOOL_REGISTRY_PASSWORD",
                  },
                }
              : {}),
          },
        }
      : {}),
  });
  const probe = deps.render(config, role, target, baseInputs("v0", "0", "0"));
  const inputsHash = hashParts([
    ...probe.hashedFiles.map((f) => ({ name: `file:${f}`, content: probe.files[f] ?? "" })),
    { name: "target", content: target },
    { name: "base", content: JSON.stringify(base) },
    { name: "ruby-bench", content: `${rc.ruby_bench.repository}@${rubyBenchCommit}` },
    { name: "image", content: imageRef ?? "none" },
    { name: "regions", content: regions.join(",") },
  ]);

  // 2. Check before work: is there an artefact for this hash in every region and architecture?
  const keys = arches.map((arch) => ({ role, kind: "ami" as const, arch }));
  if (!opts.force) {
    let version: string | undefined;
    const artifacts: BakeArtifact[] = [];
    let complete = true;
    for (const region of regions) {
      const r = await (
        await deps.catalog(region)
      ).resolve(keys, { label: hashLabel(inputsHash), meta: true });
      if (r.missing.length) complete = false;
      for (const a of r.found) {
        version ??= a.meta?.version;
        artifacts.push({ region, arch: a.key.arch as Arch, id: a.value });
      }
    }
    if (complete && version) {
      emit("skip", `up to date: ${version} (inputs ${inputsHash.slice(0, 12)} unchanged)`);
      return {
        role,
        target,
        status: "up-to-date",
        version,
        inputsHash,
        artifacts,
        packerRuns: 0,
        seconds: (Date.now() - started) / 1000,
        preloadedImage: imageRef ?? null,
      };
    }
  }

  // 3. Render to a build folder and run Packer.
  const now = (deps.now ?? (() => new Date()))();
  const version = versionName(now, inputsHash);
  const gitRevision = await deps.gitRevision();
  const rendered = deps.render(config, role, target, baseInputs(version, inputsHash, gitRevision));
  const dir = path.join(deps.buildRoot, `${role}-${version}`);
  await mkdir(dir, { recursive: true });
  await deps.writeRendered(rendered, dir);
  emit("build", `baking ${version} with Packer in ${dir}`, { version, inputsHash, dir });
  const env: NodeJS.ProcessEnv = { ...deps.packerEnv };
  if (deps.registry) env.IMGTOOL_REGISTRY_PASSWORD = deps.registry.password;
  if (target === "aws") {
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
    throw run.killed
      ? new InterruptedError(
          `The ${role} bake`,
          opts.abortReason?.() ?? "SIGINT",
          "Packer did not finish cleaning up in time and was killed",
          [`Packer's build ${target === "aws" ? "instance" : "container"}`, dir],
        )
      : new InterruptedError(`The ${role} bake`, opts.abortReason?.() ?? "SIGINT");
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
    "imgtool:pipeline": config.pipeline,
    "imgtool:role": role,
    "imgtool:version": version,
    "imgtool:inputs-hash": inputsHash,
    "imgtool:git-revision": gitRevision,
  };

  const artifacts: BakeArtifact[] = [];
  if (target === "aws") {
    const aws = deps.aws!;
    await Promise.all(made.map((m) => aws.finish(home, m.id, { ...tags, "imgtool:arch": m.arch })));
    for (const m of made) artifacts.push({ region: home, arch: m.arch, id: m.id });
    const copies = await Promise.all(
      regions.slice(1).flatMap((region) =>
        made.map(async (m) => {
          emit("build", `copying ${m.id} (${m.arch}) to ${region}`);
          const id = await aws.copy(
            home,
            m.id,
            region,
            `imgtool-${config.pipeline}-${role}-${m.arch}-${version}`,
            `${version}-${m.arch}-${region}`.slice(0, 64),
            { ...tags, "imgtool:arch": m.arch },
          );
          return { region, arch: m.arch, id };
        }),
      ),
    );
    artifacts.push(...copies);
  }
  let preloadVolume: string | null = null;
  if (target === "local") {
    const twin = deps.twin!;
    const repo = `imgtool-twin/${config.pipeline}-${role}`;
    try {
      for (const m of made) {
        await twin.tag(m.id, repo, version);
        artifacts.push({ region: "local", arch: m.arch, id: m.id });
      }
      if (imageRef) {
        preloadVolume = `imgtool-${config.pipeline}-${role}-${version}-store`;
        emit("build", `pre-loading ${imageRef} into volume ${preloadVolume}`);
        await twin.preload(
          made[0]!.id,
          imageRef,
          preloadVolume,
          { "imgtool.pipeline": config.pipeline, "imgtool.role": role, "imgtool.version": version },
          deps.signal,
        );
      }
      if (deps.signal?.aborted)
        throw new InterruptedError(`The ${role} bake`, opts.abortReason?.() ?? "SIGINT");
    } catch (e) {
      // Nothing unpublished stays: the twin image and its pre-load volume go, and the message says what could not.
      const left = await twin.discard(
        made.map((m) => m.id),
        preloadVolume,
      );
      if (!deps.signal?.aborted) throw e;
      throw new InterruptedError(
        `The ${role} bake`,
        opts.abortReason?.() ?? "SIGINT",
        left.length
          ? "the unpublished twin could not be removed entirely"
          : "the unpublished twin and its pre-load volume were removed",
        left,
      );
    }
  }

  // 5. Publish, only now that everything for this role succeeded (and nobody asked to stop meanwhile).
  if (deps.signal?.aborted) throw new InterruptedError(`The ${role} bake`, opts.abortReason?.() ?? "SIGINT");
  for (const a of artifacts) {
    const cat = await deps.catalog(a.region);
    await cat.publish(
      { role, kind: "ami", arch: a.arch },
      a.id,
      {
        version,
        inputsHash,
        gitRevision,
        builtAt: now.toISOString(),
        base: base[a.arch],
        region: a.region,
        rubyBenchCommit,
        image: imageRef ?? null,
        preloadVolume,
        manifest: versionManifests[a.arch] ?? null,
      },
      { dataType: target === "aws" ? "aws:ec2:image" : "text", labels: [hashLabel(inputsHash)] },
    );
  }
  emit("done", `built ${version}: ${artifacts.map((a) => `${a.region}/${a.arch} ${a.id}`).join(", ")}`);
  return {
    role,
    target,
    status: "built",
    version,
    inputsHash,
    artifacts,
    packerRuns: 1,
    seconds: (Date.now() - started) / 1000,
    preloadedImage: imageRef ?? null,
  };
}

/** The version manifest that validate.sh wrote and Packer downloaded into the build folder, if any. */
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
  const settled = await Promise.allSettled(roles.map((r) => bakeRole(r, deps, opts)));
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (failed) throw failed.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<BakeResult>).value);
}
