/**
 * Manifest lists (multi-arch images): one reference that an arm64 and an x86_64 machine both pull, each
 * getting its own architecture's image.
 */
import { MEDIA_TYPES, type ManifestRef } from "./client.js";

export interface PlatformManifest extends ManifestRef {
  platform: { os: string; architecture: string; variant?: string };
}

/**
 * The manifest list (Docker's media type when the entries are Docker manifests, else an OCI index) for
 * per-platform manifests, in the order given. Returns the exact bytes to PUT and their media type.
 */
export function manifestList(entries: PlatformManifest[]): { body: Buffer; mediaType: string } {
  if (entries.length === 0) throw new Error("manifestList: no platforms");
  const oci = entries.every((e) => e.mediaType === MEDIA_TYPES.ociManifest);
  const mediaType = oci ? MEDIA_TYPES.ociIndex : MEDIA_TYPES.dockerManifestList;
  const doc = {
    schemaVersion: 2,
    mediaType,
    manifests: entries.map((e) => ({
      mediaType: e.mediaType,
      size: e.size,
      digest: e.digest,
      platform: {
        architecture: e.platform.architecture,
        os: e.platform.os,
        ...(e.platform.variant ? { variant: e.platform.variant } : {}),
      },
    })),
  };
  return { body: Buffer.from(JSON.stringify(doc, null, 2)), mediaType };
}

/** Parse a manifest list / OCI index body into its entries. */
export function parseManifestList(body: Buffer): PlatformManifest[] {
  const doc = JSON.parse(body.toString("utf8")) as {
    manifests?: {
      mediaType: string;
      size: number;
      digest: string;
      platform?: { os: string; architecture: string; variant?: string };
    }[];
  };
  return (doc.manifests ?? []).map((m) => ({
    mediaType: m.mediaType,
    size: m.size,
    digest: m.digest,
    platform: m.platform ?? { os: "unknown", architecture: "unknown" },
  }));
}
