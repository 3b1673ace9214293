/**
 * The aws target's part of a bake, over EC2: the base AMI lookup; after Packer, the wait for each AMI (several
 * `available` reads in a row), its tags (on its snapshots too), and its copies to the other regions (encrypted,
 * waited for, tagged); with `aws.fast_snapshot_restore`, EBS Fast Snapshot Restore for each AMI's snapshots in
 * the zones instances of that region launch in.
 */
import type { Config } from "../config/load.js";
import type { Arch, Role } from "../config/schema.js";
import { UsageError } from "../errors.js";
import type { EventSink } from "../events.js";
import type { Ec2Images, WaitOptions } from "../aws/ec2.js";
import { homeRegion } from "../config/regions.js";
import { TAG } from "../config/tags.js";
import type { BakeArtifact, BakeTargetOps, RegistryLoginAccess } from "./bake.js";
import type { EcrApi } from "../aws/ecr.js";
import { ecrRegionOf } from "../config/registry.js";
import { RegistryLogin, ecrTokenSource, type RegistryLoginOptions } from "../push/login.js";

/**
 * The aws bake's login for the pre-load pull inside the build instance (which has no instance profile and no
 * credential helper): an ECR token of the image's registry, in that registry's own region (home when the
 * reference is not ECR's), asked with the bake's credentials when Packer is about to run and checked against
 * the registry (GET /v2/) before Packer starts. The token pulls with the bake's rights (its policy's EcrPull).
 */
export function ecrPreloadLogin(opts: {
  ecr: (region: string) => Promise<EcrApi>;
  homeRegion: string;
  events: EventSink;
  /** How a fresh token is checked (default: GET /v2/ with it). */
  verify?: RegistryLoginOptions["verify"];
}): RegistryLoginAccess {
  return {
    id: "ecr:GetAuthorizationToken",
    async credentials(imageRef) {
      const ecr = await opts.ecr(ecrRegionOf(imageRef) ?? opts.homeRegion);
      const login = new RegistryLogin(ecrTokenSource(ecr), {
        events: opts.events,
        ...(opts.verify ? { verify: opts.verify } : {}),
      });
      const token = await login.get();
      return { endpoint: token.endpoint, user: token.username, password: token.password };
    },
  };
}

export function makeAwsBakeOps(opts: {
  config: Config;
  ec2: (region: string) => Promise<Ec2Images>;
  events: EventSink;
  wait?: WaitOptions;
}): BakeTargetOps {
  const { config } = opts;
  const home = homeRegion(config);
  /**
   * aws.fast_snapshot_restore: the snapshots' Fast Snapshot Restore in the zones instances launch in: the home
   * region's `aws.subnet_id` zone, else every zone of the region's default VPC. With a subnet configured, no
   * instance launches in another region (the subnet is the home region's), so copies there get none.
   */
  const fastRestore = async (region: string, imageId: string, snapshots: string[]) => {
    if (!config.aws.fast_snapshot_restore || !snapshots.length) return;
    if (region !== home && config.aws.subnet_id) {
      opts.events({
        type: "skip",
        message: `no Fast Snapshot Restore for ${imageId} in ${region}: instances launch in aws.subnet_id, a subnet of ${home}`,
      });
      return;
    }
    const ec2 = await opts.ec2(region);
    const zones = await ec2.launchZones(region === home ? config.aws.subnet_id : undefined);
    if (!zones.length) {
      opts.events({
        type: "warn",
        message: `no Fast Snapshot Restore for ${imageId} in ${region}: the region has no default subnet to launch in (set aws.subnet_id)`,
      });
      return;
    }
    opts.events({
      type: "progress",
      message: `enabling Fast Snapshot Restore for ${snapshots.join(", ")} (${imageId}) in ${zones.join(", ")}: billed per snapshot and zone-hour until \`imgtool prune\` deletes the version`,
    });
    await ec2.enableFastRestores(snapshots, zones);
  };
  /** Wait (consecutive reads), tag with snapshots, Fast Snapshot Restore when configured. */
  const finishIn = async (region: string, imageId: string, tags: Record<string, string>) => {
    const ec2 = await opts.ec2(region);
    opts.events({ type: "check", message: `waiting for ${imageId} in ${region} to be available` });
    const image = await ec2.waitAvailable(imageId, opts.wait);
    await fastRestore(region, imageId, await ec2.tagWithSnapshots(image, tags));
  };
  /** Copy into `toRegion` (encrypted), wait, tag; returns the copy's id. */
  const copy = async (
    fromRegion: string,
    imageId: string,
    toRegion: string,
    name: string,
    token: string,
    tags: Record<string, string>,
  ) => {
    const ec2 = await opts.ec2(toRegion);
    const copyId = await ec2.copyFrom(fromRegion, imageId, name, token);
    const image = await ec2.waitAvailable(copyId, opts.wait);
    await fastRestore(toRegion, copyId, await ec2.tagWithSnapshots(image, tags));
    return copyId;
  };
  return {
    target: "aws",
    dataType: "aws:ec2:image",
    packerInit: true,
    async resolveBase(_config: Config, role: Role, arch: Arch) {
      const b = config.roles[role].base.aws;
      const image = await (await opts.ec2(home)).newest(b.owner, b.name[arch], arch);
      if (!image?.ImageId) {
        throw new UsageError(
          `No ${arch} base AMI matches roles.${role}.base.aws (owner ${b.owner}, name ${JSON.stringify(b.name[arch])}) in ${home}.`,
          {
            fix: `Check roles.${role}.base.aws.owner and .name.${arch}; \`aws ec2 describe-images --owners ${b.owner} --filters Name=name,Values='${b.name[arch]}'\` shows what exists.`,
          },
        );
      }
      return image.ImageId;
    },
    baseInputs: (base, home) => ({ bases: base, region: home }),
    async adoptBase({ role, arches, region, inputsHash }) {
      // AMIs of this account tagged as this pipeline's base of these inputs (a catalog that lost them, or
      // another region's): the newest version with an available AMI for every architecture.
      const images = await (
        await opts.ec2(region)
      ).byTags({
        [TAG.pipeline]: config.pipeline,
        [TAG.role]: role,
        [TAG.stage]: "base",
        [TAG.inputsHash]: inputsHash,
      });
      const tagOf = (i: (typeof images)[number], k: string) => i.Tags?.find((t) => t.Key === k)?.Value;
      const versions = new Map<string, typeof images>();
      for (const i of images) {
        const v = tagOf(i, TAG.version);
        if (i.State === "available" && v && i.ImageId) versions.set(v, [...(versions.get(v) ?? []), i]);
      }
      const complete = [...versions.entries()]
        .map(([version, imgs]) => ({
          version,
          byArch: arches.map((a) => imgs.find((i) => tagOf(i, TAG.arch) === a)),
          builtAt: imgs.map((i) => i.CreationDate ?? "").sort()[0] ?? "",
        }))
        .filter((c) => c.builtAt && c.byArch.every(Boolean))
        .sort((a, b) => b.builtAt.localeCompare(a.builtAt))[0];
      if (!complete) return null;
      return {
        version: complete.version,
        builtAt: new Date(complete.builtAt).toISOString(),
        artifacts: arches.map((arch, n) => ({ region, arch, id: complete.byArch[n]!.ImageId! })),
      };
    },
    async exists(id, region) {
      const image = await (await opts.ec2(region)).describe(id);
      return image !== undefined && image.State !== "deregistered";
    },
    async finish(made, { role, version, regions, tags, emit }) {
      const [home, ...others] = regions as [string, ...string[]];
      const artifacts: BakeArtifact[] = [];
      await Promise.all(made.map((m) => finishIn(home, m.id, { ...tags, [TAG.arch]: m.arch })));
      for (const m of made) artifacts.push({ region: home, arch: m.arch, id: m.id });
      const copies = await Promise.all(
        others.flatMap((region) =>
          made.map(async (m) => {
            emit(`copying ${m.id} (${m.arch}) to ${region}`);
            const id = await copy(
              home,
              m.id,
              region,
              `imgtool-${config.pipeline}-${role}-${m.arch}-${version}`,
              `${version}-${m.arch}-${region}`.slice(0, 64),
              { ...tags, [TAG.arch]: m.arch },
            );
            return { region, arch: m.arch, id };
          }),
        ),
      );
      artifacts.push(...copies);
      return { artifacts, preloadVolume: null };
    },
  };
}
