/**
 * ECR repositories for the aws target: found, or created with immutable tags, scan on push, encryption and
 * a lifecycle policy that keeps the newest N images; and the "is this tag already there" check, through
 * DescribeImages, so an unchanged image costs no registry login at all.
 */
import { errorName } from "../errors.js";
import { ignoreEvents, type EventSink } from "../events.js";
import type { EcrApi } from "../aws/ecr.js";
import { TAG } from "../config/tags.js";

/** The lifecycle policy imgtool puts on its repositories: expire all but the newest `keep` images. */
export function lifecyclePolicy(keep: number): string {
  return JSON.stringify({
    rules: [
      {
        rulePriority: 1,
        description: `imgtool: keep the newest ${keep} images`,
        selection: { tagStatus: "any", countType: "imageCountMoreThan", countNumber: keep },
        action: { type: "expire" },
      },
    ],
  });
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
    if (repo && !repo.imageScanningConfiguration?.scanOnPush) {
      events({ type: "warn", role: opts.role, message: `ECR repository ${opts.name} does not scan on push` });
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
  if (current !== wanted) {
    await ecr.putLifecyclePolicy({ repositoryName: opts.name, lifecyclePolicyText: wanted });
    events({
      type: "push",
      role: opts.role,
      message: `set the lifecycle policy of ${opts.name}: keep the newest ${opts.keepImages} images`,
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
