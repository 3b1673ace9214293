/**
 * The local target's part of a bake, on the Docker engine: resolve the base image; after Packer, tag the twin,
 * and pre-load the role's image into a volume that holds the twin engine's /var/lib/docker (the local twin's EBS
 * snapshot).
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { ActiveRun } from "../leftovers/runs.js";
import type Docker from "dockerode";
import { FailureError, InterruptedError, UsageError, stopSignalOf } from "../errors.js";
import { hashLabel, type BakeArtifact, type BakeTargetOps, type PreloadSeed } from "./bake.js";

/** The local target's bake ops, and the pre-load on its own (the launch tests pre-load twins they build). */
export interface TwinOps extends BakeTargetOps {
  /** Pull `imageRef` into a fresh volume (labelled) holding the twin engine's /var/lib/docker. */
  preload(
    twinImageId: string,
    imageRef: string,
    volume: string,
    labels: Record<string, string>,
  ): Promise<void>;
}
import { DOCKER_LABEL, IMAGE_LABEL, SHARED_BASE_REPO, TAG } from "../config/tags.js";
import { registerPending } from "../process-group.js";
import { inspected } from "../docker/engine.js";
import {
  ENGINE_LIB_MOUNT,
  copyStoreEntrypoint,
  engineLibDir,
  nestedEngineHostConfig,
  preloadScriptsHash,
} from "../docker/nested-engine.js";

export function makeTwinOps(opts: {
  docker: Docker;
  registry?: { endpoint: string; user: string; password: string };
  /** The run's interrupt (src/cli/context.ts): kills the pre-load at once and removes what the bake made. */
  signal?: AbortSignal;
  /** The run that bakes: its id labels the pre-load container; its folder holds the secret file. */
  run?: Pick<ActiveRun, "id" | "dir">;
}): TwinOps {
  const { docker, signal } = opts;
  const owner: Record<string, string> = opts.run ? { [DOCKER_LABEL.owner]: opts.run.id } : {};
  const ops: TwinOps = {
    target: "local",
    dataType: "text",
    packerInit: false,
    seedsPreload: true,
    async resolveBase(config, role) {
      const image = config.roles[role].base.local.image;
      try {
        return (await docker.getImage(image).inspect()).Id;
      } catch (e) {
        if ((e as { statusCode?: number }).statusCode === 404) {
          throw new UsageError(`The local base image ${image} is not in the Docker engine.`, {
            fix: "scripts/setup builds the base images listed in packer/versions.json; or set roles.<role>.base.local.image.",
          });
        }
        throw e;
      }
    },
    baseInputs: (base) => ({ base: Object.values(base)[0]! }),
    async adoptBase({ config, role, arches, inputsHash }) {
      const found = await docker.listImages({
        filters: JSON.stringify({
          label: [
            `${IMAGE_LABEL.stage}=base`,
            `${IMAGE_LABEL.role}=${role}`,
            `${IMAGE_LABEL.inputsHash}=${inputsHash}`,
          ],
        }),
      });
      const newest = found
        .filter((i) => i.Labels?.[IMAGE_LABEL.version])
        .sort((a, b) => b.Created - a.Created)[0];
      if (!newest) return null;
      const version = newest.Labels[IMAGE_LABEL.version]!;
      // This pipeline's tag: its prune and clean-ups see the base it now uses.
      await docker
        .getImage(newest.Id)
        .tag({ repo: `imgtool-twin/${config.pipeline}-${role}-base`, tag: version });
      return {
        version,
        builtAt: new Date(newest.Created * 1000).toISOString(),
        artifacts: [{ region: "local", arch: arches[0]!, id: newest.Id }],
      };
    },
    exists: (id) => inspected(docker.getImage(id).inspect()),
    async finish(
      made,
      { config, role, version, imageRef, stackImages, stackVolumes, emit, stage, tags, seed },
    ) {
      const fills = (stackVolumes ?? []).length > 0;
      const artifacts: BakeArtifact[] = [];
      // A staged bake's base twins have their own repository: prune and launch see only the role's twins.
      const repo = `imgtool-twin/${config.pipeline}-${role}${stage === "base" ? "-base" : ""}`;
      const cleanup: Cleanup = { removed: [], failed: [] };
      let preloadVolume: string | null = null;
      let preloading = false;
      const done = registerPending({
        what: `the ${role} bake's pre-load`,
        mayLeave:
          `twin image ${repo}:${version}, volume imgtool-${config.pipeline}-${role}-${version}-store and the ` +
          `pre-load container (\`docker ps -a --filter label=${DOCKER_LABEL.version}=${version}\`)`,
      });
      try {
        for (const m of made) {
          if (signal?.aborted) throw new Stopped();
          await docker.getImage(m.id).tag({ repo, tag: version });
          // A base twin is the engine's too: its engine-wide tag outlives the pipelines' tags (see sharedBaseTag).
          const hash = tags[TAG.inputsHash];
          if (stage === "base" && hash) await docker.getImage(m.id).tag(sharedBaseTag(role, hash));
          artifacts.push({ region: "local", arch: m.arch, id: m.id });
        }
        if (imageRef) {
          preloadVolume = `imgtool-${config.pipeline}-${role}-${version}-store`;
          // Check before work: the store of a version with the same images on the same base is copied, not pulled.
          let from: (PreloadSeed & { scripts: string }) | undefined;
          if (seed) {
            const checked = await checkSeed(seed, imageRef, fills);
            if ("scripts" in checked) from = { ...seed, scripts: checked.scripts };
            else
              emit(`the pre-loaded store of ${seed.version} (volume ${seed.volume}) ${checked.not}: pulling`);
          }
          emit(
            `pre-loading ${[imageRef, ...(stackImages ?? [])].join(", ")} into volume ${preloadVolume}` +
              (fills
                ? ` and filling the stack's volumes ${stackVolumes!.map((w) => w.split(",")[0]).join(", ")}`
                : "") +
              (from
                ? ` (a copy of volume ${from.volume}: ${from.version} holds the same images on the same base; no pull)`
                : ""),
          );
          preloading = true;
          await runPreload(
            made[0]!.id,
            imageRef,
            preloadVolume,
            {
              [DOCKER_LABEL.pipeline]: config.pipeline,
              [DOCKER_LABEL.role]: role,
              [DOCKER_LABEL.version]: version,
            },
            cleanup,
            stackImages,
            from,
            fills,
          );
          preloading = false;
        }
        if (signal?.aborted) throw new Stopped();
        return { artifacts, preloadVolume };
      } catch (e) {
        // Nothing of this bake is published: the twin Packer committed goes too (a new image, only our tag).
        for (const m of made) {
          await attempt(
            cleanup,
            `twin image ${repo}:${version} (${m.id.replace(/^sha256:/, "").slice(0, 12)})`,
            () => docker.getImage(m.id).remove({ force: true }),
          );
        }
        if (!signal?.aborted) {
          if (cleanup.removed.length)
            emit(`removed what the failed bake made: ${cleanup.removed.join(", ")}`);
          throw e;
        }
        const sig = stopSignalOf(signal);
        const when = !preloading
          ? "after Packer, before the pre-load"
          : cleanup.killed
            ? "during the pre-load (its container was killed at once)"
            : "during the pre-load";
        throw new InterruptedError(
          `The ${role} bake was interrupted (${sig}) ${when}; ` +
            (cleanup.removed.length ? `removed ${cleanup.removed.join(", ")}` : "nothing to remove") +
            (cleanup.failed.length ? `; could NOT remove ${cleanup.failed.join(", ")}` : "") +
            "; nothing was published.",
          sig,
          cleanup.failed.length
            ? {
                fix: "Remove what is named above with `docker rm -f` / `docker volume rm` / `docker image rm`.",
              }
            : {},
        );
      } finally {
        done();
      }
    },
    preload: (twinImageId, imageRef, volume, labels) =>
      runPreload(twinImageId, imageRef, volume, labels, { removed: [], failed: [] }),
  };

  /**
   * The pre-load: a container of the twin starts its engine on a fresh volume and pulls the image. On an
   * interrupt the container is killed at once; on any failure its container and volume are removed, and
   * `cleanup` records what was removed and what could not be.
   */
  async function runPreload(
    twinImageId: string,
    imageRef: string,
    volume: string,
    labels: Record<string, string>,
    cleanup: Cleanup,
    /** A Compose stack's other images, pulled into the same store. */
    extra: string[] = [],
    /**
     * A published store of the same images on the same base, made by the scripts `scripts` names: copied into
     * the volume instead of a pull.
     */
    seed?: PreloadSeed & { scripts: string },
    /** The twin lists stack volumes that the pre-load fills (imgtool-stack fill): its hash is in the label. */
    fills = false,
  ): Promise<void> {
    if (signal?.aborted) throw new Stopped();
    // The run's owner label too: a run killed mid-pre-load leaves a volume `imgtool doctor` finds.
    await docker.createVolume({
      Name: volume,
      Labels: {
        ...labels,
        ...owner,
        [DOCKER_LABEL.image]: imageRef,
        [DOCKER_LABEL.preloadScripts]: seed?.scripts ?? preloadScriptsHash(fills),
      },
    });
    const env = seed ? [] : [`IMGTOOL_IMAGE=${[imageRef, ...extra].join(" ")}`];
    const binds = seed ? [`${seed.volume}:/from:ro`] : [`${engineLibDir()}:${ENGINE_LIB_MOUNT}:ro`];
    // The password reaches `docker login` on stdin from a read-only mounted file: never the container's
    // environment (which `docker inspect` shows) nor a command line.
    let secretDir: string | undefined;
    if (opts.registry && !seed) {
      secretDir = await mkdtemp(path.join(opts.run?.dir ?? tmpdir(), "imgtool-preload-"));
      const file = path.join(secretDir, "registry-password");
      await writeFile(file, opts.registry.password, { mode: 0o600 });
      binds.push(`${file}:/run/secrets/imgtool-registry-password:ro`);
      env.push(`IMGTOOL_REGISTRY=${opts.registry.endpoint}`, `IMGTOOL_REGISTRY_USER=${opts.registry.user}`);
    }
    let container: Docker.Container | undefined;
    /** The kill an interrupt sent; false when it found the container not (yet) running. */
    let killing: Promise<boolean> | undefined;
    const kill = () => {
      if (!container) return;
      cleanup.killed = true;
      killing = container.kill().then(
        () => true,
        () => false,
      );
    };
    try {
      container = await docker.createContainer({
        Image: twinImageId,
        // packer/scripts/lib/imgtool-preload: start the twin's engine on the volume, pull, stop it cleanly. A
        // seed: copy its store (no engine, no network).
        Entrypoint: seed
          ? copyStoreEntrypoint("/var/lib/docker", { requireStore: true })
          : ["/bin/sh", `${ENGINE_LIB_MOUNT}/imgtool-preload`],
        Cmd: [],
        Env: env,
        Labels: { ...labels, ...owner },
        HostConfig: {
          ...nestedEngineHostConfig(volume, binds),
          ...(seed ? { NetworkMode: "none" } : {}),
        },
      });
      if (signal?.aborted) throw new Stopped();
      signal?.addEventListener("abort", kill, { once: true });
      await container.start();
      // An interrupt that came while the container was starting: its kill may have found it not running yet.
      if (signal?.aborted && !(await killing)) {
        cleanup.killed = true;
        await container.kill().catch(() => undefined);
      }
      const { StatusCode } = (await container.wait()) as { StatusCode: number };
      if (signal?.aborted) throw new Stopped();
      if (StatusCode !== 0) {
        const logs = (await container.logs({ stdout: true, stderr: true, tail: 30 })).toString("utf8");
        const how = seed ? `by a copy of volume ${seed.volume} (${seed.version}) ` : "";
        throw new FailureError(
          `Pre-loading ${imageRef} into the twin's image store ${how}failed (exit ${StatusCode}${seed && StatusCode === 3 ? ": it is empty" : ""}):\n${logs.replace(/[^\x20-\x7e\n]/g, "")}`,
          seed ? { fix: "Bake again with --force: it pulls the images afresh." } : {},
        );
      }
      await container.remove({ force: true });
    } catch (e) {
      const c = container;
      if (c)
        await attempt(cleanup, `pre-load container ${c.id.slice(0, 12)}`, () => c.remove({ force: true }));
      await attempt(cleanup, `volume ${volume}`, () => docker.getVolume(volume).remove());
      throw e;
    } finally {
      signal?.removeEventListener("abort", kill);
      if (secretDir) await rm(secretDir, { recursive: true, force: true });
    }
  }
  /**
   * Whether a seed's volume is the store its catalog entry says: labelled with that version and image (an
   * empty, unlabelled volume of the same name is what the engine makes when something mounts a name that is
   * gone) and made by the scripts a pull would run now. Its scripts' hash, or why not.
   */
  async function checkSeed(
    seed: PreloadSeed,
    imageRef: string,
    fills: boolean,
  ): Promise<{ scripts: string } | { not: string }> {
    let labels: Record<string, string> | null | undefined;
    try {
      labels = (await docker.getVolume(seed.volume).inspect()).Labels;
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 404) return { not: "is gone" };
      throw e;
    }
    if (labels?.[DOCKER_LABEL.version] !== seed.version || labels[DOCKER_LABEL.image] !== imageRef)
      return { not: `is not labelled as ${seed.version}'s store of ${imageRef}` };
    const scripts = labels[DOCKER_LABEL.preloadScripts];
    if (scripts !== preloadScriptsHash(fills))
      return {
        not: `was made by other pre-load scripts (packer/scripts/lib/imgtool-preload, imgtool-engine${fills ? ", imgtool-stack" : ""})`,
      };
    return { scripts };
  }
  return ops;
}

/** The run was interrupted before or during a step of {@link TwinOps.finish}; finish says what it removed. */
class Stopped extends Error {}

/** What a failed or interrupted finish removed, and what it could not remove (with why). */
interface Cleanup {
  removed: string[];
  failed: string[];
  /** The pre-load container was killed (an interrupt while it ran). */
  killed?: boolean;
}

/** Remove one thing and record the outcome; one that is gone already (404) counts as removed. */
async function attempt(c: Cleanup, what: string, remove: () => Promise<unknown>): Promise<void> {
  try {
    await remove();
    c.removed.push(what);
  } catch (e) {
    if ((e as { statusCode?: number }).statusCode === 404) c.removed.push(what);
    else c.failed.push(`${what} (${(e as Error).message})`);
  }
}

/**
 * The engine-wide tag of a base twin (`imgtool-base-twin/<role>:h-<inputs hash>`): a base twin's content does
 * not depend on the pipeline, so every pipeline on the engine with the same base inputs uses it (check before
 * work: found by its labels, {@link TwinOps.adoptBase}). This tag keeps it while pipelines' own tags come and go;
 * a prune that removes the last pipeline's tag of a base removes this one too (src/prune/backends.ts).
 */
export function sharedBaseTag(role: string, inputsHash: string): { repo: string; tag: string } {
  return { repo: `${SHARED_BASE_REPO}${role}`, tag: hashLabel(inputsHash) };
}
