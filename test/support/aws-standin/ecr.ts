/**
 * ECR (JSON 1.1) operations of the AWS stand-in, only those imgtool calls: authorization tokens, repositories,
 * image details by tag and digest, lifecycle policies and the scanning configuration. Images arrive through the
 * registry (pushes), or `seedEcrImage`.
 */
import { fail } from "./errors.js";
import {
  decodeToken,
  encodeToken,
  optNumber,
  optObject,
  optObjectList,
  optString,
  optStringList,
  reqString,
} from "./params.js";
import type { JsonObject } from "./params.js";
import type { HandlerContext, ResolvedOptions, StandinState } from "./state.js";
import type { EcrImage, EcrImageSeed, EcrRepository, Tag } from "./types.js";

export type EcrHandler = (ctx: HandlerContext, input: JsonObject) => JsonObject;

const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";

/** Registry endpoint (what GetAuthorizationToken answers as proxyEndpoint) for a region. */
export function registryEndpoint(options: ResolvedOptions, region: string): string {
  return options.registry?.endpoint ?? `https://${options.accountId}.dkr.ecr.${region}.amazonaws.com`;
}

function registryHost(options: ResolvedOptions, region: string): string {
  const endpoint = registryEndpoint(options, region);
  try {
    return new URL(endpoint).host;
  } catch {
    return endpoint.replace(/^[a-z]+:\/\//, "").replace(/\/.*$/, "");
  }
}

function invalid(message: string): never {
  fail("InvalidParameterException", message);
}

function newRepository(options: ResolvedOptions, region: string, name: string, now: Date): EcrRepository {
  return {
    name,
    arn: `arn:aws:ecr:${region}:${options.accountId}:repository/${name}`,
    uri: `${registryHost(options, region)}/${name}`,
    registryId: options.accountId,
    createdAt: now,
    imageTagMutability: "MUTABLE",
    scanOnPush: false,
    encryption: { encryptionType: "AES256" },
    tags: [],
    images: new Map(),
  };
}

function requireRepository(ctx: HandlerContext, name: string): EcrRepository {
  const repo = ctx.state.ecr.repositories.get(name);
  if (!repo) {
    fail(
      "RepositoryNotFoundException",
      `The repository with name '${name}' does not exist in the registry with id '${ctx.options.accountId}'`,
    );
  }
  return repo;
}

function renderRepository(repo: EcrRepository): JsonObject {
  return {
    repositoryArn: repo.arn,
    registryId: repo.registryId,
    repositoryName: repo.name,
    repositoryUri: repo.uri,
    createdAt: repo.createdAt.getTime() / 1000,
    imageTagMutability: repo.imageTagMutability,
    imageScanningConfiguration: { scanOnPush: repo.scanOnPush },
    encryptionConfiguration: { ...repo.encryption },
  };
}

function manifestMediaType(manifest: string, given: string | undefined): string {
  if (given) return given;
  try {
    const parsed: unknown = JSON.parse(manifest);
    if (typeof parsed === "object" && parsed !== null && "mediaType" in parsed) {
      const mt = (parsed as { mediaType: unknown }).mediaType;
      if (typeof mt === "string") return mt;
    }
  } catch {
    // not JSON
  }
  return DOCKER_MANIFEST;
}

function defaultManifest(digest: string, sizeBytes: number): string {
  return JSON.stringify({
    schemaVersion: 2,
    mediaType: DOCKER_MANIFEST,
    config: { mediaType: "application/vnd.docker.container.image.v1+json", size: 0, digest },
    layers: [{ mediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip", size: sizeBytes, digest }],
  });
}

/** Seed an image (creating a MUTABLE repository when missing); used by `addEcrImage`. */
export function seedEcrImage(
  all: StandinState,
  options: ResolvedOptions,
  region: string,
  repositoryName: string,
  seed: EcrImageSeed,
): EcrImage {
  const ecr = all.region(region).ecr;
  let repo = ecr.repositories.get(repositoryName);
  if (!repo) {
    repo = newRepository(options, region, repositoryName, options.now());
    ecr.repositories.set(repositoryName, repo);
  }
  const tags = seed.tags ?? [];
  for (const tag of tags) {
    for (const other of repo.images.values()) other.tags = other.tags.filter((t) => t !== tag);
  }
  const sizeBytes = seed.sizeBytes ?? 50_000_000;
  const manifest = seed.manifest ?? defaultManifest(seed.digest, sizeBytes);
  const image: EcrImage = {
    digest: seed.digest,
    tags: [...tags],
    pushedAt: seed.pushedAt ?? options.now(),
    sizeBytes,
    manifest,
    manifestMediaType: seed.manifestMediaType ?? manifestMediaType(manifest, undefined),
  };
  const existing = repo.images.get(seed.digest);
  if (existing) {
    existing.tags = [...new Set([...existing.tags, ...tags])];
    return existing;
  }
  repo.images.set(seed.digest, image);
  return image;
}

interface ImageId {
  imageDigest?: string;
  imageTag?: string;
}

function readImageIds(input: JsonObject): ImageId[] | undefined {
  const list = optObjectList(input, "imageIds");
  return list?.map((o) => ({
    ...(typeof o["imageDigest"] === "string" ? { imageDigest: o["imageDigest"] } : {}),
    ...(typeof o["imageTag"] === "string" ? { imageTag: o["imageTag"] } : {}),
  }));
}

type Lookup = { image: EcrImage } | { failureCode: string; failureReason: string };

function lookup(repo: EcrRepository, id: ImageId): Lookup {
  if (id.imageDigest === undefined && id.imageTag === undefined) {
    return {
      failureCode: "MissingDigestAndTag",
      failureReason: "Invalid request parameters: both tag and digest cannot be null",
    };
  }
  const byDigest = id.imageDigest !== undefined ? repo.images.get(id.imageDigest) : undefined;
  const byTag =
    id.imageTag !== undefined
      ? [...repo.images.values()].find((i) => i.tags.includes(id.imageTag ?? ""))
      : undefined;
  if (id.imageDigest !== undefined && id.imageTag !== undefined) {
    if (byDigest && byTag && byDigest !== byTag) {
      return {
        failureCode: "ImageTagDoesNotMatchDigest",
        failureReason: "Invalid request parameters: given tag does not map to the given digest",
      };
    }
    if (byDigest && byTag) return { image: byDigest };
    return { failureCode: "ImageNotFound", failureReason: "Requested image not found" };
  }
  const image = byDigest ?? byTag;
  return image ? { image } : { failureCode: "ImageNotFound", failureReason: "Requested image not found" };
}

function pagination(
  input: JsonObject,
  scope: string,
  combinedWith: string | undefined,
): { start: number; limit: number } {
  const maxResults = optNumber(input, "maxResults");
  if (maxResults !== undefined && combinedWith) {
    invalid(
      `Invalid parameter at 'maxResults' failed to satisfy constraint: 'maxResults' can't be used with ${combinedWith}`,
    );
  }
  if (maxResults !== undefined && (maxResults < 1 || maxResults > 1000)) {
    invalid(
      `Invalid parameter at 'maxResults' failed to satisfy constraint: 'Member must have value less than or equal to 1000'`,
    );
  }
  const token = optString(input, "nextToken");
  let start = 0;
  if (token !== undefined) {
    const decoded = decodeToken(token, scope);
    if (decoded === undefined)
      invalid("Invalid parameter at 'nextToken' failed to satisfy constraint: 'Invalid NextToken'");
    start = decoded;
  }
  return { start, limit: maxResults ?? 100 };
}

// ---------------------------------------------------------------- operations

const getAuthorizationToken: EcrHandler = (ctx) => {
  const reg = ctx.options.registry ?? {
    endpoint: registryEndpoint(ctx.options, ctx.region),
    user: "AWS",
    password: "standin-ecr-password",
  };
  return {
    authorizationData: [
      {
        authorizationToken: Buffer.from(`${reg.user}:${reg.password}`).toString("base64"),
        expiresAt: ctx.now.getTime() / 1000 + ctx.options.tokenTtlSeconds,
        proxyEndpoint: reg.endpoint,
      },
    ],
  };
};

const createRepository: EcrHandler = (ctx, input) => {
  const name = reqString(input, "repositoryName");
  if (
    name.length < 2 ||
    name.length > 256 ||
    !/^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*\/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$/.test(name)
  ) {
    invalid(
      `Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression '(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*''`,
    );
  }
  const mutability = optString(input, "imageTagMutability") ?? "MUTABLE";
  if (mutability !== "MUTABLE" && mutability !== "IMMUTABLE") {
    invalid(
      `Invalid parameter at 'imageTagMutability': the AWS stand-in supports MUTABLE and IMMUTABLE, not '${mutability}'`,
    );
  }
  const scan = optObject(input, "imageScanningConfiguration");
  const enc = optObject(input, "encryptionConfiguration");
  const encryptionType = typeof enc?.["encryptionType"] === "string" ? enc["encryptionType"] : "AES256";
  if (!["AES256", "KMS", "KMS_DSSE"].includes(encryptionType)) {
    invalid(`Invalid parameter at 'encryptionType': '${encryptionType}'`);
  }
  const kmsKey = typeof enc?.["kmsKey"] === "string" ? enc["kmsKey"] : undefined;
  if (kmsKey !== undefined && encryptionType === "AES256") {
    invalid(
      "Invalid parameter at 'encryptionConfiguration': a KMS key can only be given with encryptionType KMS",
    );
  }
  if (ctx.state.ecr.repositories.has(name)) {
    fail(
      "RepositoryAlreadyExistsException",
      `The repository with name '${name}' already exists in the registry with id '${ctx.options.accountId}'`,
    );
  }
  const repo = newRepository(ctx.options, ctx.region, name, ctx.now);
  repo.imageTagMutability = mutability;
  repo.scanOnPush = scan?.["scanOnPush"] === true;
  repo.encryption = {
    encryptionType,
    ...(encryptionType !== "AES256"
      ? { kmsKey: kmsKey ?? `arn:aws:kms:${ctx.region}:${ctx.options.accountId}:key/standin-ecr` }
      : {}),
  };
  repo.tags = (optObjectList(input, "tags") ?? []).map((t): Tag => ({
    Key: String(t["Key"] ?? ""),
    Value: String(t["Value"] ?? ""),
  }));
  ctx.state.ecr.repositories.set(name, repo);
  return { repository: renderRepository(repo) };
};

const describeRepositories: EcrHandler = (ctx, input) => {
  const names = optStringList(input, "repositoryNames");
  const scope = `repos:${ctx.region}`;
  const { start, limit } = pagination(input, scope, names?.length ? "repositoryNames" : undefined);
  if (names?.length) {
    return { repositories: names.map((n) => renderRepository(requireRepository(ctx, n))) };
  }
  const all = [...ctx.state.ecr.repositories.values()];
  const end = start + limit;
  return {
    repositories: all.slice(start, end).map(renderRepository),
    ...(end < all.length ? { nextToken: encodeToken(end, scope) } : {}),
  };
};

/**
 * `registryId` when given: 12 digits (else InvalidParameterException, as ECR), and this account's (another
 * account's registry holds none of this stand-in's repositories: RepositoryNotFoundException naming it).
 */
function checkRegistryId(ctx: HandlerContext, input: JsonObject): void {
  const id = optString(input, "registryId");
  if (id === undefined || id === ctx.options.accountId) return;
  if (!/^[0-9]{12}$/.test(id)) {
    invalid(
      `Invalid parameter at 'registryId' failed to satisfy constraint: 'must satisfy regular expression '[0-9]{12}''`,
    );
  }
  fail(
    "RepositoryNotFoundException",
    `The repository with name '${reqString(input, "repositoryName")}' does not exist in the registry with id '${id}'`,
  );
}

const describeImages: EcrHandler = (ctx, input) => {
  checkRegistryId(ctx, input);
  const repo = requireRepository(ctx, reqString(input, "repositoryName"));
  const ids = readImageIds(input);
  const scope = `images:${ctx.region}:${repo.name}`;
  const { start, limit } = pagination(input, scope, ids?.length ? "imageIds" : undefined);
  const detail = (i: EcrImage): JsonObject => ({
    registryId: repo.registryId,
    repositoryName: repo.name,
    imageDigest: i.digest,
    ...(i.tags.length ? { imageTags: [...i.tags] } : {}),
    imageSizeInBytes: i.sizeBytes,
    imagePushedAt: i.pushedAt.getTime() / 1000,
    imageManifestMediaType: i.manifestMediaType,
    artifactMediaType: "application/vnd.docker.container.image.v1+json",
    imageStatus: "ACTIVE",
  });
  if (ids?.length) {
    const found: EcrImage[] = [];
    for (const id of ids) {
      const r = lookup(repo, id);
      if (!("image" in r)) {
        fail(
          "ImageNotFoundException",
          `The image with imageId {imageDigest:'${id.imageDigest ?? "null"}', imageTag:'${id.imageTag ?? "null"}'} does not exist within the repository with name '${repo.name}' in the registry with id '${repo.registryId}'`,
        );
      }
      if (!found.includes(r.image)) found.push(r.image);
    }
    return { imageDetails: found.map(detail) };
  }
  const filter = optObject(input, "filter");
  const tagStatus = typeof filter?.["tagStatus"] === "string" ? filter["tagStatus"] : "ANY";
  const all = [...repo.images.values()].filter(
    (i) => tagStatus === "ANY" || (tagStatus === "TAGGED" ? i.tags.length > 0 : i.tags.length === 0),
  );
  const end = start + limit;
  return {
    imageDetails: all.slice(start, end).map(detail),
    ...(end < all.length ? { nextToken: encodeToken(end, scope) } : {}),
  };
};

const putLifecyclePolicy: EcrHandler = (ctx, input) => {
  const repo = requireRepository(ctx, reqString(input, "repositoryName"));
  const text = reqString(input, "lifecyclePolicyText");
  let rules: unknown;
  try {
    rules = (JSON.parse(text) as { rules?: unknown }).rules;
  } catch {
    fail(
      "InvalidParameterException",
      "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: not valid JSON'",
    );
  }
  if (!Array.isArray(rules) || rules.length === 0) {
    fail(
      "InvalidParameterException",
      "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: object has missing required properties ([\"rules\"])'",
    );
  }
  repo.lifecyclePolicy = { text, updatedAt: ctx.now };
  return { registryId: repo.registryId, repositoryName: repo.name, lifecyclePolicyText: text };
};

const getLifecyclePolicy: EcrHandler = (ctx, input) => {
  const repo = requireRepository(ctx, reqString(input, "repositoryName"));
  if (!repo.lifecyclePolicy) {
    fail(
      "LifecyclePolicyNotFoundException",
      `Lifecycle policy does not exist for the repository with name '${repo.name}' in the registry with id '${repo.registryId}'`,
    );
  }
  return {
    registryId: repo.registryId,
    repositoryName: repo.name,
    lifecyclePolicyText: repo.lifecyclePolicy.text,
    lastEvaluatedAt: repo.lifecyclePolicy.updatedAt.getTime() / 1000,
  };
};

const batchGetRepositoryScanningConfiguration: EcrHandler = (ctx, input) => {
  const names = optStringList(input, "repositoryNames") ?? [];
  if (names.length < 1 || names.length > 25) {
    invalid(
      `Invalid parameter at 'repositoryNames' failed to satisfy constraint: 'Member must have length ${names.length < 1 ? "greater than or equal to 1" : "less than or equal to 25"}'`,
    );
  }
  const wildcard = (f: string) =>
    new RegExp(
      `^${f
        .split("*")
        .map((x) => x.replace(/[.+?^$()|[\]\\{}]/g, "\\$&"))
        .join(".*")}$`,
    );
  const scanningConfigurations: JsonObject[] = [];
  const failures: JsonObject[] = [];
  for (const name of names) {
    const repo = ctx.state.ecr.repositories.get(name);
    if (!repo) {
      failures.push({
        repositoryName: name,
        failureCode: "REPOSITORY_NOT_FOUND",
        failureReason: "REPOSITORY_NOT_FOUND",
      });
      continue;
    }
    const rule = ctx.state.ecr.registryScanning?.rules.find((r) =>
      r.filters.some((f) => wildcard(f).test(name)),
    );
    const frequency = rule?.scanFrequency ?? (repo.scanOnPush ? "SCAN_ON_PUSH" : "MANUAL");
    scanningConfigurations.push({
      repositoryArn: repo.arn,
      repositoryName: repo.name,
      scanOnPush: frequency === "SCAN_ON_PUSH",
      scanFrequency: frequency,
      appliedScanFilters: rule ? rule.filters.map((f) => ({ filter: f, filterType: "WILDCARD" })) : [],
    });
  }
  return { scanningConfigurations, failures };
};

export const ecrHandlers: Readonly<Record<string, EcrHandler>> = {
  BatchGetRepositoryScanningConfiguration: batchGetRepositoryScanningConfiguration,
  GetAuthorizationToken: getAuthorizationToken,
  CreateRepository: createRepository,
  DescribeRepositories: describeRepositories,
  DescribeImages: describeImages,
  PutLifecyclePolicy: putLifecyclePolicy,
  GetLifecyclePolicy: getLifecyclePolicy,
};
