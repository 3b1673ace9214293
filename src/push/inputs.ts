/**
 * A role's build inputs, gathered and checked before any work: the context files (after .dockerignore), the
 * Dockerfile (rendered, or the user's own), the build args, the base image of every platform (from the
 * engine), and for the task runner the ruby-bench commit. Their hash is the content tag: the same inputs
 * always give the same tag, any change gives another. Every bad input is a UsageError naming the config key.
 */
import { existsSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { Config } from "../config/load.js";
import type { Role, Target } from "../config/schema.js";
import { listContext, type ContextFile } from "../docker/context.js";
import type { DockerEngine } from "../docker/engine.js";
import { DaemonStreamError } from "../docker/errors.js";
import { FailureError, UsageError } from "../errors.js";
import { hashParts, type HashPart } from "../hash.js";
import { projectPath } from "../paths.js";
import {
  CONTAINER_SCRIPTS,
  DockerfileSyntaxError,
  LABEL_BUILD_ARGS,
  RESERVED_BUILD_ARGS,
  baseImagesOf,
  checkDockerfile,
  healthBuildArgs,
  parseDockerfile,
  renderDockerfile,
  type Instruction,
} from "../render/dockerfile.js";
import { platformsOf, type Platform } from "./platforms.js";
import type { RubyBenchSource } from "./ruby-bench.js";

/**
 * Bumped when the way imgtool lays out build contexts or renders images changes, so that every content tag
 * changes with it.
 */
export const IMAGE_FORMAT = "imgtool-image/2";

/** A Docker tag: 1-128 of [A-Za-z0-9_.-], not starting with '.' or '-'. */
export const DOCKER_TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/** Hex characters of the inputs hash in the tag (128 bits). */
const TAG_HASH_LENGTH = 32;

export interface BaseImage {
  /** As configured (rendered Dockerfile) or as written in FROM (a user's Dockerfile). */
  ref: string;
  /** The engine reference that holds it for this platform (the ref, or `<ref>-<arch>`). */
  engineRef: string;
  /** Image ID, sha256:... */
  id: string;
}

export interface PlatformInputs {
  platform: Platform;
  bases: BaseImage[];
}

export interface RoleInputs {
  role: Role;
  contextDir: string;
  mode: "rendered" | "dockerfile";
  /** Where the Dockerfile came from, for messages. */
  dockerfileLabel: string;
  /** Its path inside the build context archive. */
  dockerfilePath: string;
  dockerfileText: string;
  instructions: Instruction[];
  /** The application's files (rendered: under app/ in the archive; own Dockerfile: at its root). */
  appFiles: ContextFile[];
  /** imgtool's helpers for the role (rendered only), under imgtool/bin/ in the archive. */
  helperFiles: ContextFile[];
  /** The provisioning scripts the rendered Dockerfile runs (rendered only), under imgtool/scripts/. */
  scriptFiles: ContextFile[];
  /** Build args for every platform (BASE_IMAGE is added per platform). */
  buildArgs: Record<string, string>;
  platforms: PlatformInputs[];
  rubyBench?: { repository: string; ref: string; commit: string };
  inputsHash: string;
  tag: string;
  /** Repository name, e.g. bench/task-runner. */
  repository: string;
}

/** `<name>:<tag>-<arch>`: where a base image for another architecture lives in the engine. */
export function archVariant(ref: string, dockerArch: string): string | undefined {
  if (ref.includes("@")) return undefined;
  const slash = ref.lastIndexOf("/");
  const colon = ref.lastIndexOf(":");
  return colon > slash ? `${ref}-${dockerArch}` : `${ref}:latest-${dockerArch}`;
}

export interface PrepareDeps {
  docker: DockerEngine;
  rubyBench: RubyBenchSource;
  /** The ruby-bench commit pinned for this run (the pipeline's); resolved through `rubyBench` when absent. */
  rubyBenchCommit?: string;
  /** Where imgtool's docker/<role>/bin helpers are. @default the project root */
  projectDir?: string;
}

/**
 * The base image for one platform: the engine's image if its architecture matches, else the `-<arch>` variant;
 * on aws, pulled when the engine has neither. `at` names the input in errors.
 */
async function resolveBase(
  docker: DockerEngine,
  ref: string,
  platform: Platform,
  opts: { target: Target; at: string; variants: boolean; instanceTypes: string[] },
): Promise<BaseImage> {
  const candidates = [ref, ...(opts.variants ? [archVariant(ref, platform.dockerArch)] : [])].filter(
    (c): c is string => c !== undefined,
  );
  for (const c of candidates) {
    const info = await docker.inspectImage(c);
    if (info?.architecture === platform.dockerArch) return { ref, engineRef: c, id: info.id };
  }
  if (opts.target === "aws") {
    try {
      await docker.pull(ref, { platform: platform.platform });
    } catch (e) {
      if (!(e instanceof DaemonStreamError)) throw e;
      throw new FailureError(
        `${opts.at}: cannot pull base image ${ref} for ${platform.platform}: ${e.message}`,
        {
          fix: "Check the image name and that the engine can reach its registry.",
        },
      );
    }
    const info = await docker.inspectImage(ref);
    if (info?.architecture === platform.dockerArch) return { ref, engineRef: ref, id: info.id };
  }
  const present = await docker.inspectImage(ref);
  if (present) {
    throw new UsageError(
      `${opts.at}: base image ${ref} is ${present.architecture} in the Docker engine, but instance types ` +
        `${opts.instanceTypes.join(", ")} need ${platform.platform}.`,
      {
        fix: opts.variants
          ? `Load a ${platform.dockerArch} image of it into the engine as ${candidates.at(-1)}, or use instance types of one architecture.`
          : "Build from a base that the engine has for every architecture, or use instance types of one architecture.",
      },
    );
  }
  throw new UsageError(`${opts.at}: base image ${JSON.stringify(ref)} is not present in the Docker engine.`, {
    fix:
      opts.target === "local"
        ? "Nothing can be pulled on the local target: scripts/setup builds the local base images " +
          "(packer/versions.json local_bases), or `docker load` the image into the engine, or name one that exists."
        : "Name an image the engine can pull.",
  });
}

/** "a/b/c.sh" -> ["a", "a/b"]. */
function parentDirs(rel: string): string[] {
  const parts = rel.split("/").slice(0, -1);
  return parts.map((_, n) => parts.slice(0, n + 1).join("/"));
}

async function hashFiles(files: ContextFile[], prefix: string): Promise<HashPart[]> {
  return Promise.all(
    files.map(async (f) => ({
      name: `file:${prefix}${f.rel}:${f.type}:${f.mode.toString(8)}`,
      content: f.type === "file" ? await readFile(f.abs) : (f.linkname ?? ""),
    })),
  );
}

/** Gather and check one role's inputs; nothing is built or pushed. */
export async function prepareRole(
  role: Role,
  config: Config,
  target: Target,
  deps: PrepareDeps,
): Promise<RoleInputs> {
  const rc = config.roles[role];
  const at = `roles.${role}.app`;
  const contextDir = rc.app.context;
  if (!existsSync(contextDir) || !statSync(contextDir).isDirectory()) {
    throw new UsageError(
      `${at}.context: ${contextDir} ${existsSync(contextDir) ? "is not a folder" : "does not exist"}.`,
      { fix: `Point ${at}.context at the ${role}'s application folder (relative to the config file).` },
    );
  }
  const platforms = platformsOf(rc.instance_types);
  const configArgs = rc.app.build_args;
  let buildArgs: Record<string, string>;
  let dockerfileText: string;
  let dockerfilePath: string;
  let dockerfileLabel: string;
  let mode: RoleInputs["mode"];
  let rubyBench: RoleInputs["rubyBench"];
  let helperFiles: ContextFile[] = [];
  let scriptFiles: ContextFile[] = [];

  if (rc.app.dockerfile !== undefined) {
    // The user's own Dockerfile, used as it is, with the config's build args.
    mode = "dockerfile";
    dockerfilePath = rc.app.dockerfile.split(path.sep).join("/");
    const abs = path.resolve(contextDir, rc.app.dockerfile);
    dockerfileLabel = abs;
    if (rc.app.packages.length) {
      throw new UsageError(
        `${at}.packages (${rc.app.packages.join(", ")}) is for the rendered Dockerfile; ${at}.dockerfile is your own.`,
        { fix: `Install them in ${abs}, or remove ${at}.dockerfile to use the rendered one.` },
      );
    }
    try {
      dockerfileText = await readFile(abs, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT" && (e as NodeJS.ErrnoException).code !== "EISDIR")
        throw e;
      throw new UsageError(`${at}.dockerfile: ${abs} does not exist.`, {
        fix: `Give the Dockerfile's path relative to ${at}.context (${contextDir}).`,
      });
    }
    buildArgs = { ...configArgs };
  } else {
    mode = "rendered";
    const taken = [...RESERVED_BUILD_ARGS, ...Object.values(LABEL_BUILD_ARGS)];
    const reserved = Object.keys(configArgs).filter((k) => taken.includes(k));
    if (reserved.length) {
      throw new UsageError(
        `${at}.build_args: ${reserved.join(", ")} ${reserved.length > 1 ? "are" : "is"} set by imgtool for the rendered Dockerfile.`,
        { fix: `Use other names; imgtool sets ${taken.join(", ")} itself.` },
      );
    }
    dockerfilePath = "Dockerfile";
    dockerfileLabel = "rendered Dockerfile";
    const http = role === "orchestrator" ? rc.run.health.http : undefined;
    dockerfileText = renderDockerfile({
      role,
      buildArgNames: Object.keys(configArgs),
      httpHealth: http !== undefined,
    });
    const packages = [...new Set([...rc.packages, ...rc.app.packages])];
    buildArgs = { ...configArgs, IMGTOOL_PACKAGES: packages.join(" "), ...healthBuildArgs(http) };
    const helpers = path.join(deps.projectDir ?? projectPath(), "docker", role, "bin");
    helperFiles = existsSync(helpers) ? await listContext(helpers, { dockerignore: false }) : [];
    const scripts = await listContext(path.join(deps.projectDir ?? projectPath(), "packer", "scripts"), {
      dockerignore: false,
    });
    const wanted = new Set(CONTAINER_SCRIPTS.flatMap((f) => [f, ...parentDirs(f)]));
    scriptFiles = scripts.filter((f) => wanted.has(f.rel));
    if (role === "task-runner") {
      // The pipeline pins the commit it resolved once for the run (so the AMI and the image agree).
      const { repository, ref } = rc.ruby_bench;
      const commit = deps.rubyBenchCommit ?? (await deps.rubyBench.resolve(role, rc.ruby_bench));
      rubyBench = { repository, ref, commit };
      buildArgs.RUBY_BENCH_REF = rc.ruby_bench.ref;
      buildArgs.RUBY_BENCH_COMMIT = commit;
    }
  }

  let instructions: Instruction[];
  try {
    instructions = parseDockerfile(dockerfileText);
    checkDockerfile(instructions);
  } catch (e) {
    if (!(e instanceof DockerfileSyntaxError)) throw e;
    throw new UsageError(`${dockerfileLabel}:${e.line}: ${e.message}.`, {
      fix:
        mode === "dockerfile"
          ? `Fix line ${e.line} of ${dockerfileLabel}.`
          : "This is a bug in imgtool's template.",
    });
  }

  const appFiles = await listContext(contextDir);
  const platformInputs: PlatformInputs[] = [];
  for (const platform of platforms) {
    const bases: BaseImage[] = [];
    if (mode === "rendered") {
      const ref = target === "aws" ? rc.app.base_image.aws : rc.app.base_image.local;
      bases.push(
        await resolveBase(deps.docker, ref, platform, {
          target,
          at: `${at}.base_image.${target}`,
          variants: true,
          instanceTypes: rc.instance_types,
        }),
      );
    } else {
      const froms = baseImagesOf(instructions, buildArgs);
      for (const ref of froms) {
        const line = instructions.find((i) => i.keyword === "FROM" && i.args.includes(ref))?.line;
        bases.push(
          await resolveBase(deps.docker, ref, platform, {
            target,
            at: `${dockerfileLabel}${line ? `:${line}` : ""} (FROM ${ref})`,
            variants: false,
            instanceTypes: rc.instance_types,
          }),
        );
      }
    }
    platformInputs.push({ platform, bases });
  }

  const repository = config.aws.ecr.repositories[role];
  const parts: HashPart[] = [
    { name: "format", content: IMAGE_FORMAT },
    { name: "mode", content: mode },
    { name: `dockerfile:${dockerfilePath}`, content: dockerfileText },
    { name: "build-args", content: JSON.stringify(Object.entries(buildArgs).sort()) },
    { name: "platforms", content: platforms.map((p) => p.platform).join(",") },
    ...platformInputs.flatMap((p) =>
      p.bases.map((b) => ({ name: `base:${p.platform.platform}:${b.ref}`, content: b.id })),
    ),
    ...(await hashFiles(appFiles, mode === "rendered" ? "app/" : "")),
    ...(await hashFiles(helperFiles, "imgtool/bin/")),
    ...(await hashFiles(scriptFiles, "imgtool/scripts/")),
    ...(rubyBench ? [{ name: "ruby-bench", content: `${rubyBench.repository}\n${rubyBench.commit}` }] : []),
  ];
  const inputsHash = hashParts(parts);
  const prefix = rc.app.tag_prefix ?? "";
  const tag = `${prefix}${inputsHash.slice(0, TAG_HASH_LENGTH)}`;
  if (!DOCKER_TAG_RE.test(tag)) {
    throw new UsageError(
      `${at}.tag_prefix: ${JSON.stringify(prefix)} makes the tag ${JSON.stringify(tag)}, which is not a valid Docker tag.`,
      { fix: "Use letters, digits, '_', '.' and '-', not starting with '.' or '-', at most 64 characters." },
    );
  }
  return {
    role,
    contextDir,
    mode,
    dockerfileLabel,
    dockerfilePath,
    dockerfileText,
    instructions,
    appFiles,
    helperFiles,
    scriptFiles,
    buildArgs,
    platforms: platformInputs,
    ...(rubyBench ? { rubyBench } : {}),
    inputsHash,
    tag,
    repository,
  };
}
