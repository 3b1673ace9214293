/**
 * Before any instance starts: every image an instance would have to pull (the catalog's image differs from
 * the one baked into its AMI or twin) is asked for at its registry. An image gone from the registry (deleted,
 * expired by a lifecycle policy, a registry wiped) would fail every instance at boot, after the launch started
 * them; here it fails the launch before it starts anything, naming the image, the role and the fix.
 */
import type { EcrApi } from "../aws/ecr.js";
import { ecrRegionOf } from "../config/registry.js";
import type { Role } from "../config/schema.js";
import { FailureError } from "../errors.js";
import type { EventSink } from "../events.js";

/** Whether the registry has the image `ref` (`host/repo@sha256:...`). Rejects when the registry cannot answer. */
export type ImageProbe = (ref: string) => Promise<boolean>;

/** host, repository and reference (digest or tag) of an image reference. */
export function splitImageRef(ref: string): { host: string; repo: string; reference: string } {
  const at = ref.indexOf("@");
  const slash = ref.indexOf("/");
  if (slash < 0) throw new Error(`splitImageRef: ${ref} has no registry host`);
  const host = ref.slice(0, slash);
  if (at > 0) return { host, repo: ref.slice(slash + 1, at), reference: ref.slice(at + 1) };
  const colon = ref.lastIndexOf(":");
  return colon > slash
    ? { host, repo: ref.slice(slash + 1, colon), reference: ref.slice(colon + 1) }
    : { host, repo: ref.slice(slash + 1), reference: "latest" };
}

export interface PullNeed {
  role: Role;
  /** The image the instances run. */
  image: string;
  /** Its version name in the catalog. */
  version: string;
  /** The image baked into the AMI or twin (null: none). */
  bakedImage: string | null;
}

/**
 * Ask the registry for each image that an instance would pull; a missing one fails the launch (exit 1) before
 * anything starts. Images the AMI or twin has baked in are not asked for: no instance pulls them.
 */
export async function checkPulls(
  needs: PullNeed[],
  probe: ImageProbe,
  opts: { label: string; events: EventSink },
): Promise<void> {
  const pulls = needs.filter((n) => n.image !== n.bakedImage);
  const seen = new Set<string>();
  const gone: PullNeed[] = [];
  for (const n of pulls) {
    if (seen.has(n.image)) continue;
    seen.add(n.image);
    let found: boolean;
    try {
      found = await probe(n.image);
    } catch (e) {
      throw new FailureError(
        `Could not ask the registry ${splitImageRef(n.image).host} whether ${n.image} (${n.role}, version ${n.version}) ` +
          `exists, which the ${n.role} instances would pull at boot: ${(e as Error).message}. Nothing was launched.`,
        {
          fix:
            "Start the registry (local: scripts/setup) or check the network, then launch again (aws: the " +
            "launcher needs ecr:DescribeImages on the role repositories, `imgtool iam-policy --for launch`).",
          cause: e,
        },
      );
    }
    if (!found) gone.push(n);
  }
  if (gone.length) {
    throw new FailureError(
      gone
        .map(
          (n) =>
            `The ${n.role} image ${n.image} (version ${n.version}, catalog label ${opts.label}) is gone from the ` +
            `registry ${splitImageRef(n.image).host}: its instances would have to pull it at boot, because their ` +
            `${n.bakedImage ? `image has ${n.bakedImage} baked in` : "image has no application image baked in"}.`,
        )
        .join("\n") + "\nNothing was launched.",
      {
        fix:
          gone
            .map(
              (n) =>
                `\`imgtool push image --role ${n.role}\` pushes it again (then \`imgtool bake ami --role ${n.role}\` bakes it in), ` +
                `or \`imgtool rollback --role ${n.role} --kind image --to <version>\` points the catalog at one the registry has`,
            )
            .join("; ") + ".",
      },
    );
  }
  if (pulls.length) {
    opts.events({
      type: "check",
      message: `the registry has every image the instances will pull (${[...seen].length})`,
      data: { images: [...seen] },
    });
  }
}

/** A probe that asks each image's registry for its manifest (HEAD), through a client per registry host. */
export function registryImageProbe(
  client: (host: string) => Promise<{ headManifest(repo: string, reference: string): Promise<unknown> }>,
): ImageProbe {
  return async (ref) => {
    const { host, repo, reference } = splitImageRef(ref);
    return (await (await client(host)).headManifest(repo, reference)) !== undefined;
  };
}

/**
 * A probe that asks ECR (DescribeImages by digest) in the image's own region (from its registry host, else
 * `region`): ImageNotFoundException and RepositoryNotFoundException mean gone; any other error propagates.
 */
export function ecrImageProbe(ecr: (region: string) => Promise<EcrApi>, region: string): ImageProbe {
  return async (ref) => {
    const { host, repo, reference } = splitImageRef(ref);
    const account = /^(\d{12})\.dkr\.ecr/.exec(host)?.[1];
    const imageId = reference.startsWith("sha256:") ? { imageDigest: reference } : { imageTag: reference };
    try {
      const out = await (
        await ecr(ecrRegionOf(host) ?? region)
      ).describeImages({
        repositoryName: repo,
        imageIds: [imageId],
        ...(account ? { registryId: account } : {}),
      });
      return (out.imageDetails ?? []).length > 0;
    } catch (e) {
      const name = (e as { name?: string }).name;
      if (name === "ImageNotFoundException" || name === "RepositoryNotFoundException") return false;
      throw e;
    }
  };
}
