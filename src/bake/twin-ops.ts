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
import { FailureError, UsageError } from "../errors.js";
import type { BakeArtifact, BakeTargetOps } from "./bake.js";

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
import { DOCKER_LABEL } from "../config/tags.js";
import { ENGINE_LIB_MOUNT, engineLibDir, nestedEngineHostConfig } from "../docker/nested-engine.js";

export function makeTwinOps(opts: {
  docker: Docker;
  registry?: { endpoint: string; user: string; password: string };
  /**
   * The run that bakes: its id labels the pre-load container (not the volume: once published it outlives the
   * run, and a run killed later, say in a pipeline's smoke launch, must not make it a leftover); its folder
   * holds the secret file.
   */
  run?: Pick<ActiveRun, "id" | "dir">;
}): TwinOps {
  const { docker } = opts;
  const owner: Record<string, string> = opts.run ? { [DOCKER_LABEL.owner]: opts.run.id } : {};
  const ops: TwinOps = {
    target: "local",
    dataType: "text",
    packerInit: false,
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
    async finish(made, { config, role, version, imageRef, emit }) {
      const artifacts: BakeArtifact[] = [];
      const repo = `imgtool-twin/${config.pipeline}-${role}`;
      for (const m of made) {
        await docker.getImage(m.id).tag({ repo, tag: version });
        artifacts.push({ region: "local", arch: m.arch, id: m.id });
      }
      let preloadVolume: string | null = null;
      if (imageRef) {
        preloadVolume = `imgtool-${config.pipeline}-${role}-${version}-store`;
        emit(`pre-loading ${imageRef} into volume ${preloadVolume}`);
        await ops.preload(made[0]!.id, imageRef, preloadVolume, {
          [DOCKER_LABEL.pipeline]: config.pipeline,
          [DOCKER_LABEL.role]: role,
          [DOCKER_LABEL.version]: version,
        });
      }
      return { artifacts, preloadVolume };
    },
    async preload(twinImageId, imageRef, volume, labels) {
      await docker.createVolume({ Name: volume, Labels: { ...labels, [DOCKER_LABEL.image]: imageRef } });
      const env = [`IMGTOOL_IMAGE=${imageRef}`];
      const binds = [`${engineLibDir()}:${ENGINE_LIB_MOUNT}:ro`];
      // The password reaches `docker login` on stdin from a read-only mounted file: never the container's
      // environment (which `docker inspect` shows) nor a command line.
      let secretDir: string | undefined;
      if (opts.registry) {
        secretDir = await mkdtemp(path.join(opts.run?.dir ?? tmpdir(), "imgtool-preload-"));
        const file = path.join(secretDir, "registry-password");
        await writeFile(file, opts.registry.password, { mode: 0o600 });
        binds.push(`${file}:/run/secrets/imgtool-registry-password:ro`);
        env.push(`IMGTOOL_REGISTRY=${opts.registry.endpoint}`, `IMGTOOL_REGISTRY_USER=${opts.registry.user}`);
      }
      let container: Docker.Container | undefined;
      try {
        container = await docker.createContainer({
          Image: twinImageId,
          // packer/scripts/lib/imgtool-preload: start the twin's engine on the volume, pull, stop it cleanly.
          Entrypoint: ["/bin/sh", `${ENGINE_LIB_MOUNT}/imgtool-preload`],
          Cmd: [],
          Env: env,
          Labels: { ...labels, ...owner },
          HostConfig: nestedEngineHostConfig(volume, binds),
        });
        await container.start();
        const { StatusCode } = (await container.wait()) as { StatusCode: number };
        if (StatusCode !== 0) {
          const logs = (await container.logs({ stdout: true, stderr: true, tail: 30 })).toString("utf8");
          throw new FailureError(
            `Pre-loading ${imageRef} into the twin's image store failed (exit ${StatusCode}):\n${logs.replace(/[^\x20-\x7e\n]/g, "")}`,
          );
        }
        await container.remove({ force: true });
      } catch (e) {
        await container?.remove({ force: true }).catch(() => undefined);
        await docker
          .getVolume(volume)
          .remove()
          .catch(() => undefined);
        throw e;
      } finally {
        if (secretDir) await rm(secretDir, { recursive: true, force: true });
      }
    },
  };
  return ops;
}
