/**
 * ECR repositories for the aws target: found, or created with immutable tags, scan on push, encryption and
 * a lifecycle policy that expires only untagged images; and the "is this tag already there" check, through
 * DescribeImages, so an unchanged image costs no registry login at all.
 */
import { errorName } from "../errors.js";
import { ignoreEvents, type EventSink } from "../events.js";
import type { EcrApi } from "../aws/ecr.js";
import { TAG } from "../config/tags.js";

/**
 * The lifecycle policy imgtool puts on its repositories: expire untagged images beyond the newest `keep`, and
 * nothing else. Every version imgtool pushes carries its (immutable) content tag, and the catalog's labels
 * (`stable`, `latest`, a release) point at those tagged images by digest: a rule over tagged (or "any")
 * images could expire the very image a label still references, so there is none. Old tagged versions go
 * with `imgtool prune`, which knows what the labels reference.
 */
export function lifecyclePolicy(keep: number): string {
  return JSON.stringify({
    rules: [
      {
        rulePriority: 1,
        description: `imgtool: keep the newest ${keep} untagged images; tagged versions never expire`,
        selection: { tagStatus: "untagged", countType: "imageCountMoreThan", countNumber: keep },
        action: { type: "expire" },
      },
    ],
  });
}

/** JSON values compared as values: key order and whitespace do not matter (ECR may re-format a policy). */
export function sameJson(a: string, b: string): boolean {
  const canonical = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(canonical)
      : v && typeof v === "object"
        ? Object.fromEntries(
            Object.keys(v)
              .sort()
              .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
          )
        : v;
  try {
    return JSON.stringify(canonical(JSON.parse(a))) === JSON.stringify(canonical(JSON.parse(b)));
  } catch (e) {
    if (e instanceof SyntaxError) return false;
    throw e;
  }
}

export interface EcrRepository {
  name: string;
  /** host/name */
  uri: string;
  created: boolean;
}

/** Find or create the repository, and make its lifecycle policy the one imgtool keeps. */
export async function ensureEcrRepository(
  ecr: EcrApi,
  opts: { name: string; keepImages: number; pipeline: string; role: string; events?: EventSink },
): Promise<EcrRepository> {
  const events = opts.events ?? ignoreEvents;
  let uri: string | undefined;
  let created = false;
  try {
    const out = await ecr.describeRepositories({ repositoryNames: [opts.name] });
    const repo = out.repositories?.[0];
    uri = repo?.repositoryUri;
    if (repo?.imageTagMutability && repo.imageTagMutability !== "IMMUTABLE") {
      events({
        type: "warn",
        role: opts.role,
        message: `ECR repository ${opts.name} has ${repo.imageTagMutability} tags; imgtool creates IMMUTABLE ones, so a content tag can never be moved`,
      });
    }
    if (repo) {
      // The scanning in effect: the repository's own setting, or the registry's rules (basic or enhanced
      // scanning), which the repository's deprecated scanOnPush field does not show.
      const scan = (await ecr.batchGetRepositoryScanningConfiguration({ repositoryNames: [opts.name] }))
        .scanningConfigurations?.[0];
      if (!scan?.scanOnPush && (scan?.scanFrequency ?? "MANUAL") === "MANUAL") {
        events({
          type: "warn",
          role: opts.role,
          message: `ECR repository ${opts.name} is not scanned on push (neither its own setting nor a registry scanning rule)`,
        });
      }
    }
  } catch (e) {
    if (errorName(e) !== "RepositoryNotFoundException") throw e;
  }
  if (!uri) {
    try {
      const out = await ecr.createRepository({
        repositoryName: opts.name,
        imageTagMutability: "IMMUTABLE",
        imageScanningConfiguration: { scanOnPush: true },
        encryptionConfiguration: { encryptionType: "AES256" },
        tags: [
          { Key: TAG.pipeline, Value: opts.pipeline },
          { Key: TAG.role, Value: opts.role },
        ],
      });
      uri = out.repository?.repositoryUri;
      created = true;
      events({
        type: "push",
        role: opts.role,
        message: `created ECR repository ${opts.name} (immutable tags, scan on push, AES256 encryption)`,
      });
    } catch (e) {
      // Another run created it between our two calls: use theirs.
      if (errorName(e) !== "RepositoryAlreadyExistsException") throw e;
      const out = await ecr.describeRepositories({ repositoryNames: [opts.name] });
      uri = out.repositories?.[0]?.repositoryUri;
    }
  }
  if (!uri) throw new Error(`ECR answered without a repository URI for ${opts.name}`);
  const wanted = lifecyclePolicy(opts.keepImages);
  let current: string | undefined;
  try {
    current = (await ecr.getLifecyclePolicy({ repositoryName: opts.name })).lifecyclePolicyText;
  } catch (e) {
    if (errorName(e) !== "LifecyclePolicyNotFoundException") throw e;
  }
  if (current === undefined || !sameJson(current, wanted)) {
    await ecr.putLifecyclePolicy({ repositoryName: opts.name, lifecyclePolicyText: wanted });
    events({
      type: "push",
      role: opts.role,
      message: `set the lifecycle policy of ${opts.name}: expire untagged images beyond the newest ${opts.keepImages}; tagged versions never expire`,
    });
  }
  return { name: opts.name, uri, created };
}

/** The digest of `tag` in the repository, or undefined when ECR has no such image. */
export async function findEcrTag(ecr: EcrApi, repository: string, tag: string): Promise<string | undefined> {
  try {
    const out = await ecr.describeImages({ repositoryName: repository, imageIds: [{ imageTag: tag }] });
    return out.imageDetails?.[0]?.imageDigest;
  } catch (e) {
    const n = errorName(e);
    if (n === "ImageNotFoundException" || n === "RepositoryNotFoundException") return undefined;
    throw e;
  }
}
