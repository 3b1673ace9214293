/**
 * A role that is a Compose project (issue 9, section 2): the user's compose.yaml, which of its services run the
 * role's own image, which must be healthy (or stay up) before the instance is ready, and where its third-party
 * images come from. The bake resolves every image to a digest and pre-loads them (src/bake/stack-images.ts); the
 * boot starts the project with the baked Compose (packer/scripts/lib/imgtool-stack).
 */
import { z } from "zod";

const msg = (error: string) => ({ error });
const SERVICE_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const REGISTRY_RE = /^[a-zA-Z0-9.-]+(?::\d+)?(\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/;

const Service = z.string().regex(SERVICE_RE, msg("must be a Compose service name"));

export const StackSchema = z
  .strictObject({
    file: z.string().min(1).describe("The Compose file (compose.yaml), relative to the config file."),
    app_services: z
      .array(Service)
      .min(1, msg("needs at least one service that runs the role's image"))
      .describe("Services that run the role's own image (their build: and image: are replaced by it)."),
    wait_for: z
      .array(Service)
      .optional()
      .describe(
        "Services that must be healthy (with a healthcheck) or stay up through run.settle_seconds before the instance is ready. Default: every service.",
      ),
    registry: z
      .strictObject({
        local: z
          .string()
          .regex(REGISTRY_RE, msg("must be a registry host[:port][/path]"))
          .optional()
          .describe("local: where third-party images come from. Default: the project's local registry."),
        aws: z
          .string()
          .regex(REGISTRY_RE, msg("must be a registry host[:port][/path]"))
          .optional()
          .describe(
            "aws: where third-party images come from (an ECR registry or a pull-through cache). Default: the role's ECR registry.",
          ),
      })
      .default({})
      .describe("The registry third-party images (e.g. postgres:15) are pulled from at bake time."),
  })
  .describe(
    "orchestrator only: the role is a Compose project; every image is resolved to a digest and pre-loaded at bake time.",
  );

export type StackConfig = z.output<typeof StackSchema>;

/**
 * A named volume the bake fills (packer/scripts/lib/imgtool-stack `fill`): the project's volume `key`, which one
 * service mounts at `path` from `image`, an image the rendered compose file pins by digest. Filled as the engine
 * fills a new volume when a container first mounts it (a copy of the image's content at that path), so at boot
 * the engine finds it full and copies nothing: PostgreSQL's initialised cluster was half of its start.
 */
export interface StackVolume {
  key: string;
  path: string;
  image: string;
}

/** A volume as one word of the bake's list (KEY,PATH,IMAGE: none of them holds a space or a comma). */
export const stackVolumeWord = (v: StackVolume) => `${v.key},${v.path},${v.image}`;

/** A stack as a bake resolved it: the compose file with every image by digest, and what the boot waits for. */
export interface BakedStack {
  /** The rendered compose.yaml: third-party images by digest, app services on `${IMGTOOL_IMAGE}`. */
  compose: string;
  /** Every image to pre-load (URI@sha256:...), the role's own first. */
  images: string[];
  /** The named volumes the bake fills from their (pinned) images (src/bake/stack-images.ts, stackVolumes). */
  volumes: StackVolume[];
  /** The services the boot waits for. */
  waitFor: string[];
  /** The keys of the project's bridge networks (projectBridges). */
  bridges: string[];
  /** A Compose file naming each of them through a variable (projectBridges); "" when there is none. */
  bridgesOverride: string;
  /** How long services without a healthcheck must stay up (run.settle_seconds). */
  settleMs: number;
}
