/**
 * `imgtool push image`: for each role, in parallel, build the container image only when its content tag is
 * not in the registry yet, push it with per-layer progress, read the pushed digest back from the registry,
 * and only then publish `URI@sha256:...` to the catalog. Check before work: an existing tag means nothing is
 * built and nothing is pushed ("up to date").
 *
 * Every dependency (engine, registry login and client, ECR, catalog, ruby-bench source, clock, events) is a
 * parameter, so tests can hand in real-but-local ones or swap one part. The flow never prints: it emits events.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { versionName, type ArtifactMeta, type Catalog } from "../catalog/catalog.js";
import type { Config } from "../config/load.js";
import type { Role, Target } from "../config/schema.js";
import type { EcrApi } from "../aws/ecr.js";
import { contextEntries, listContext } from "../docker/context.js";
import type { BuildOutcome, BuildRequest, DockerEngine, PushOutcome } from "../docker/engine.js";
import {
  BuildFailedError,
  DockerfileParseError,
  PushFailedError,
  isEngineUnreachable,
} from "../docker/errors.js";
import type { BuildStep, LayerProgress } from "../docker/progress.js";
import { tarStream, type TarEntry } from "../docker/tar.js";
import { FailureError, UsageError, errorName, isImgtoolError, type ImgtoolError } from "../errors.js";
import { ignoreEvents, type EventSink } from "../events.js";
import { exec as realExec, type Exec } from "../exec.js";
import {
  RegistryClient,
  RegistryError,
  RegistryUnreachableError,
  registryHost,
  type ManifestRef,
  type RegistryClientOptions,
} from "../registry/client.js";
import { manifestList } from "../registry/manifest.js";
import { LABEL_BUILD_ARGS, instructionOfStep } from "./dockerfile.js";
import { ensureEcrRepository, findEcrTag } from "./ecr-repository.js";
import { prepareRole, type PlatformInputs, type RoleInputs } from "./inputs.js";
import type { RegistryLogin, RegistryToken } from "./login.js";
import type { RubyBenchSource } from "./ruby-bench.js";
import { IMAGE_LABEL } from "../config/tags.js";

export type PushStatus = "pushed" | "up-to-date" | "would-push" | "failed";

export interface RoleResult {
  role: Role;
  target: Target;
  status: PushStatus;
  /** Repository name, e.g. bench/task-runner. */
  repository: string;
  /** host/name, e.g. 127.0.0.1:5000/bench/task-runner (undefined when the role failed before resolving it). */
  uri?: string;
  /** The content tag. */
  tag: string;
  /** The digest of the tag (a manifest list's when multi-arch). */
  digest?: string;
  /** `URI@sha256:...`: what the catalog points at. */
  reference?: string;
  platforms: string[];
  inputsHash: string;
  /** Whether this run published to the catalog, and under which version name. */
  published: boolean;
  version?: string;
  /** Whether this run built an image. */
  built: boolean;
  /** Build steps, and how many came from the builder's cache (per platform, summed). */
  steps: { total: number; cached: number };
  /** Layers as the daemon's push reported them (per platform, summed). */
  layers: { pushed: number; existed: number; mounted: number };
  /** Bytes the daemon reported uploading. */
  bytesPushed: number;
  error?: ImgtoolError;
}

export interface PushReport {
  results: RoleResult[];
}

export interface PushRequest {
  config: Config;
  target: Target;
  roles: Role[];
  /** Check and report; build, push and publish nothing. */
  dryRun?: boolean;
  /** aws: the home region (src/cli/context.ts), recorded in the catalog entry's meta. */
  region?: string;
}

export interface PushDeps {
  docker: DockerEngine;
  /** The login to the target's registry (local credentials, or ECR GetAuthorizationToken). */
  login: RegistryLogin;
  /** ECR (the aws target). */
  ecr?: EcrApi;
  catalog: Catalog;
  rubyBench: RubyBenchSource;
  /** The registry API client for an endpoint. @default new RegistryClient(opts) */
  makeRegistryClient?: (opts: RegistryClientOptions) => RegistryClient;
  /** Child processes (the context's git revision). @default src/exec.ts */
  exec?: Exec;
  events?: EventSink;
  now?: () => Date;
  /** Where imgtool's templates' companions (docker/<role>/bin) are. @default the project root */
  projectDir?: string;
}

/** Push every requested role: inputs of all roles are checked first, then the roles run in parallel. */
export async function pushImages(req: PushRequest, deps: PushDeps): Promise<PushReport> {
  const events = deps.events ?? ignoreEvents;
  if (req.target === "aws" && !deps.ecr) throw new Error("pushImages: the aws target needs deps.ecr");
  // Check before work: every role's inputs, sequentially (base pulls may share an engine tag).
  const inputs: RoleInputs[] = [];
  for (const role of req.roles) {
    inputs.push(
      await explainEngineErrors(() =>
        prepareRole(role, req.config, req.target, {
          docker: deps.docker,
          rubyBench: deps.rubyBench,
          ...(deps.projectDir ? { projectDir: deps.projectDir } : {}),
        }),
      ),
    );
  }
  const run = new PushRun(req, deps, events);
  const settled = await Promise.allSettled(inputs.map((i) => explainEngineErrors(() => run.role(i))));
  const results: RoleResult[] = [];
  let internal: unknown;
  settled.forEach((s, n) => {
    if (s.status === "fulfilled") {
      results.push(s.value);
      return;
    }
    const i = inputs[n]!;
    if (!isImgtoolError(s.reason)) internal ??= s.reason;
    const error = isImgtoolError(s.reason)
      ? s.reason
      : new FailureError(`internal error: ${(s.reason as Error)?.message ?? String(s.reason)}`);
    events({ type: "fail", role: i.role, message: error.message });
    // What the role got done before it failed (its URI, layers pushed) stays in the result.
    results.push({ ...run.partial(i), status: "failed", error });
  });
  if (internal !== undefined) throw internal;
  return { results };
}

/** The engine not answering is a failure to explain, not an internal error. */
async function explainEngineErrors<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (!isEngineUnreachable(e)) throw e;
    const where = (e as { address?: string }).address ?? e.path;
    throw new FailureError(`The Docker engine does not answer (${e.code}${where ? ` ${where}` : ""}).`, {
      fix: "Is it running? `imgtool doctor` checks it; scripts/setup starts one; DOCKER_HOST chooses another.",
      cause: e,
    });
  }
}

/** One run: the shared registry client and login, and the per-role work. */
class PushRun {
  private clientPromise: Promise<RegistryClient> | undefined;
  private readonly results = new Map<Role, RoleResult>();
  private readonly now: () => Date;
  private readonly exec: Exec;

  constructor(
    private readonly req: PushRequest,
    private readonly deps: PushDeps,
    private readonly events: EventSink,
  ) {
    this.now = deps.now ?? (() => new Date());
    this.exec = deps.exec ?? realExec;
  }

  /** The registry API client, made on first use; it shares the run's login. */
  private client(): Promise<RegistryClient> {
    this.clientPromise ??= (async () => {
      const token = await this.deps.login.get();
      let used: RegistryToken | undefined = token;
      const make = this.deps.makeRegistryClient ?? ((o: RegistryClientOptions) => new RegistryClient(o));
      return make({
        endpoint: token.endpoint,
        credentials: async ({ refresh }) => {
          used = refresh ? await this.deps.login.refresh(used) : await this.deps.login.get();
          return { username: used.username, password: used.password };
        },
      });
    })();
    return this.clientPromise;
  }

  /** The role's result so far (or a fresh one). */
  partial(i: RoleInputs): RoleResult {
    return this.results.get(i.role) ?? this.base(i);
  }

  private base(i: RoleInputs): RoleResult {
    return {
      role: i.role,
      target: this.req.target,
      status: "failed",
      repository: i.repository,
      tag: i.tag,
      platforms: i.platforms.map((p) => p.platform.platform),
      inputsHash: i.inputsHash,
      published: false,
      built: false,
      steps: { total: 0, cached: 0 },
      layers: { pushed: 0, existed: 0, mounted: 0 },
      bytesPushed: 0,
    };
  }

  private emit(
    role: Role,
    type: Parameters<EventSink>[0]["type"],
    message: string,
    data?: Record<string, unknown>,
  ) {
    this.events({ type, role, message, ...(data ? { data } : {}) });
  }

  /** The repository's URI (on aws: found or created in ECR). */
  private async repositoryUri(i: RoleInputs): Promise<string> {
    if (this.req.target === "aws") {
      if (this.req.dryRun) {
        // --dry-run creates nothing: an existing repository's URI, or a placeholder.
        try {
          const out = await this.deps.ecr!.describeRepositories({ repositoryNames: [i.repository] });
          return out.repositories?.[0]?.repositoryUri ?? `(ECR)/${i.repository}`;
        } catch (e) {
          if (errorName(e) !== "RepositoryNotFoundException") throw e;
          return `(ECR, to be created)/${i.repository}`;
        }
      }
      const repo = await ensureEcrRepository(this.deps.ecr!, {
        name: i.repository,
        keepImages: this.req.config.aws.ecr.keep_images,
        pipeline: this.req.config.pipeline,
        role: i.role,
        events: this.events,
      });
      return repo.uri;
    }
    return `${(await this.client()).host}/${i.repository}`;
  }

  /** The digest of a tag (default: the content tag) when the registry has it already. */
  private async existing(i: RoleInputs, tag = i.tag): Promise<string | undefined> {
    if (this.req.target === "aws") return findEcrTag(this.deps.ecr!, i.repository, tag);
    return (await this.registry(() => this.client().then((c) => c.headManifest(i.repository, tag))))?.digest;
  }

  /** Registry API calls: what goes wrong becomes a failure that names the registry. */
  private async registry<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof RegistryUnreachableError || e instanceof RegistryError) {
        throw new FailureError(e.message, {
          fix: "Is the registry running and reachable? `imgtool doctor` checks it.",
          cause: e,
        });
      }
      throw e;
    }
  }

  async role(i: RoleInputs): Promise<RoleResult> {
    const result = this.base(i);
    this.results.set(i.role, result);
    const platforms = i.platforms.map((p) => p.platform.platform).join(", ");
    this.emit(i.role, "start", `content tag ${i.tag} (${platforms}, ${i.dockerfileLabel})`, {
      tag: i.tag,
      inputsHash: i.inputsHash,
      platforms: i.platforms.map((p) => p.platform.platform),
    });
    const uri = await this.repositoryUri(i);
    result.uri = uri;
    this.emit(i.role, "check", `looking for ${uri}:${i.tag}`);
    const found = await this.existing(i);
    if (found) {
      result.status = "up-to-date";
      result.digest = found;
      result.reference = `${uri}@${found}`;
      this.emit(i.role, "found", `up to date: ${uri}:${i.tag} is ${found}; nothing to build or push`, {
        reference: result.reference,
      });
      if (!this.req.dryRun) await this.publishIfMissing(i, result);
      return result;
    }
    if (this.req.dryRun) {
      result.status = "would-push";
      this.emit(i.role, "skip", `would build and push ${uri}:${i.tag} (--dry-run: nothing done)`);
      return result;
    }

    const builtAt = this.now();
    const gitRevision = await this.gitRevision(i.contextDir);
    const multi = i.platforms.length > 1;
    const pushed: { p: PlatformInputs; tag: string; digest: string }[] = [];
    for (const p of i.platforms) {
      const tag = multi ? `${i.tag}-${p.platform.dockerArch}` : i.tag;
      // A run that stopped before the manifest list may have pushed this architecture already: reuse it (an
      // immutable repository would refuse the tag for a rebuilt image anyway).
      const done = multi ? await this.existing(i, tag) : undefined;
      if (done) {
        this.emit(
          i.role,
          "skip",
          `${uri}:${tag} is already pushed (${done}): not building ${p.platform.platform} again`,
        );
        pushed.push({ p, tag, digest: done });
        continue;
      }
      const imageId = await this.build(i, p, `${uri}:${tag}`, builtAt, gitRevision, result);
      result.built = true;
      const outcome = await this.push(i, uri, tag, imageId, result);
      pushed.push({ p, tag, digest: outcome.digest });
    }
    let digest: string;
    if (multi) {
      digest = await this.manifestList(i, uri, pushed);
    } else {
      digest = pushed[0]!.digest;
      await this.readBack(i, uri, i.tag, digest);
    }
    result.digest = digest;
    result.reference = `${uri}@${digest}`;
    result.status = "pushed";
    await this.publish(i, result, builtAt, gitRevision);
    return result;
  }

  private async gitRevision(dir: string): Promise<string | undefined> {
    const r = await this.exec(["git", "-C", dir, "rev-parse", "HEAD"], { timeoutMs: 10_000 });
    return r.exitCode === 0 ? r.stdout.trim() : undefined;
  }

  /** The build context archive of one platform. */
  private async *contextEntries(i: RoleInputs): AsyncGenerator<TarEntry> {
    if (i.mode === "dockerfile") {
      yield* contextEntries(i.appFiles);
      // Docker sends the Dockerfile and .dockerignore even when .dockerignore lists them (the daemon needs them).
      const has = new Set(i.appFiles.map((f) => f.rel));
      for (const rel of [i.dockerfilePath, ".dockerignore"]) {
        if (has.has(rel)) continue;
        const content = await readIfExists(path.join(i.contextDir, rel));
        if (content) yield { path: rel, type: "file", mode: 0o644, content };
      }
      return;
    }
    yield { path: "Dockerfile", type: "file", mode: 0o644, content: Buffer.from(i.dockerfileText) };
    yield* contextEntries(i.helperFiles, "imgtool/bin/");
    if (i.rubyBench) {
      const dir = await this.deps.rubyBench.checkout(i.rubyBench.repository, i.rubyBench.commit);
      yield* contextEntries(await listContext(dir, { dockerignore: false }), "imgtool/ruby-bench/");
    }
    yield { path: "app", type: "dir", mode: 0o755 };
    yield* contextEntries(i.appFiles, "app/");
  }

  private async build(
    i: RoleInputs,
    p: PlatformInputs,
    ref: string,
    builtAt: Date,
    gitRevision: string | undefined,
    result: RoleResult,
  ): Promise<string> {
    const base = p.bases[0];
    const labels: Record<string, string> = {
      "org.opencontainers.image.created": builtAt.toISOString(),
      "org.opencontainers.image.source": i.contextDir,
      "org.opencontainers.image.revision": gitRevision ?? "",
      "org.opencontainers.image.title": `${this.req.config.pipeline}/${i.role}`,
      "org.opencontainers.image.base.name": base?.ref ?? "",
      "org.opencontainers.image.base.digest": base?.id ?? "",
      [IMAGE_LABEL.inputsHash]: i.inputsHash,
    };
    // The rendered Dockerfile sets its labels in one step from build args; a user's own Dockerfile gets them
    // from the engine (one step per label, after its own).
    const rendered = i.mode === "rendered";
    const buildArgs: Record<string, string> = { ...i.buildArgs };
    if (rendered) {
      if (base) buildArgs["BASE_IMAGE"] = base.id;
      for (const [label, arg] of Object.entries(LABEL_BUILD_ARGS)) buildArgs[arg] = labels[label] ?? "";
    }
    this.emit(i.role, "build", `building ${ref} for ${p.platform.platform} from ${i.dockerfileLabel}`);
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.runBuild(i, p, {
        context: tarStream(this.contextEntries(i)),
        dockerfile: i.dockerfilePath,
        tag: ref,
        buildArgs,
        labels: rendered ? {} : { ...labels, [IMAGE_LABEL.role]: i.role },
        platform: p.platform.platform,
        ...(attempt > 1 ? { noCache: true } : {}),
      });
      // The classic builder can hand back a layer cached for another architecture (a stage FROM scratch has
      // no base to tell them apart), or build on a base of the wrong one: check what came out.
      const info = await this.deps.docker.inspectImage(outcome.imageId);
      if (info && info.architecture !== p.platform.dockerArch) {
        if (attempt === 1) {
          this.emit(
            i.role,
            "warn",
            `the builder's cache gave a ${info.architecture} image for ${p.platform.platform}: building it again without the cache`,
          );
          continue;
        }
        throw new FailureError(
          `${i.role}: the image built for ${p.platform.platform} is ${info.architecture}: its base image is not ${p.platform.dockerArch}.`,
          { fix: `Give the engine a ${p.platform.dockerArch} base image; nothing was pushed or published.` },
        );
      }
      const cached = outcome.steps.filter((s) => s.cached).length;
      result.steps.total += outcome.steps.length;
      result.steps.cached += cached;
      this.emit(
        i.role,
        "build",
        `built ${outcome.imageId.slice(7, 19)} for ${p.platform.platform}: ${outcome.steps.length} steps, ${cached} from cache`,
        { imageId: outcome.imageId, steps: outcome.steps.length, cached },
      );
      return outcome.imageId;
    }
  }

  /** One build, its errors turned into ones that name the role, the step and the Dockerfile line. */
  private async runBuild(i: RoleInputs, p: PlatformInputs, req: BuildRequest): Promise<BuildOutcome> {
    try {
      return await this.deps.docker.build(req, {
        step: (s: BuildStep) =>
          this.emit(i.role, "progress", `step ${s.step}/${s.total}: ${s.instruction}`, {
            step: s.step,
            instruction: s.instruction,
            platform: p.platform.platform,
          }),
        cached: (s) =>
          this.emit(i.role, "progress", `step ${s.step}/${s.total}: from cache`, {
            step: s.step,
            cached: true,
            platform: p.platform.platform,
          }),
        output: (line) => this.emit(i.role, "debug", line),
      });
    } catch (e) {
      if (e instanceof DockerfileParseError) {
        throw new UsageError(`${i.dockerfileLabel}${e.line ? `:${e.line}` : ""}: ${e.message}`, {
          fix: `The Docker engine refused the Dockerfile${e.line ? `: fix line ${e.line}` : ""}.`,
          cause: e,
        });
      }
      if (e instanceof BuildFailedError) {
        const ins = e.step ? instructionOfStep(i.instructions, e.step.step) : undefined;
        const where = e.step
          ? `step ${e.step.step}/${e.step.total} (${i.dockerfileLabel}${ins ? `:${ins.line}` : ""}: ${e.step.instruction})`
          : "the start";
        const tail = e.output.slice(-5);
        throw new FailureError(
          `${i.role}: the build failed at ${where}: ${e.message}` +
            (tail.length ? `\n  last output:\n${tail.map((l) => `    ${l}`).join("\n")}` : ""),
          { fix: "Fix the failing instruction or what it runs; nothing was pushed or published.", cause: e },
        );
      }
      throw e;
    }
  }

  /**
   * Push `uri:tag`, logging in once (shared) and again on a 401. When the daemon starts retrying an upload,
   * ask the registry whether it still answers: if it does not, stop at once rather than wait out the daemon's
   * retries.
   */
  private async push(
    i: RoleInputs,
    uri: string,
    tag: string,
    imageId: string,
    result: RoleResult,
  ): Promise<PushOutcome> {
    const host = registryHost(uri);
    const repo = uri;
    await this.deps.docker.tag(imageId, repo, tag);
    this.emit(i.role, "push", `pushing ${uri}:${tag}`);
    let token = await this.deps.login.get();
    for (let attempt = 1; ; attempt++) {
      const abort = new AbortController();
      let stopped: Error | undefined;
      let probing = false;
      const shown = new Map<string, number>();
      const onLayer = (l: LayerProgress) => {
        if (l.status !== "pushing") {
          this.emit(i.role, "progress", `${l.id}: ${l.text}`, { layer: l.id, status: l.status });
        } else if (l.total && l.current !== undefined) {
          // Per-layer progress in quarters, not every chunk the daemon reports.
          const quarter = Math.min(4, Math.floor((4 * l.current) / l.total));
          if (quarter > (shown.get(l.id) ?? 0)) {
            shown.set(l.id, quarter);
            this.emit(
              i.role,
              "progress",
              `${l.id}: pushing, ${Math.round(l.current / 1e6)} of ${Math.round(l.total / 1e6)} MB`,
              {
                layer: l.id,
                status: l.status,
                current: l.current,
                total: l.total,
              },
            );
          }
        }
        if (l.status === "retrying" && !probing && !stopped) {
          probing = true;
          void this.client()
            .then((c) => c.ping())
            .catch((e: unknown) => {
              if (e instanceof RegistryUnreachableError) {
                stopped = e;
                abort.abort();
              }
            })
            .finally(() => (probing = false));
        }
      };
      try {
        const outcome = await this.deps.docker.push(
          repo,
          tag,
          { username: token.username, password: token.password, serveraddress: host },
          { layer: onLayer },
          abort.signal,
        );
        const count = (st: string) => outcome.layers.filter((l) => l.status === st).length;
        const layers = { pushed: count("pushed"), existed: count("exists"), mounted: count("mounted") };
        result.layers.pushed += layers.pushed;
        result.layers.existed += layers.existed;
        result.layers.mounted += layers.mounted;
        result.bytesPushed += outcome.bytesPushed;
        this.emit(
          i.role,
          "push",
          `pushed ${uri}:${tag} = ${outcome.digest} (${layers.pushed} layers uploaded, ` +
            `${layers.existed + layers.mounted} already there)`,
          { digest: outcome.digest, layers },
        );
        return outcome;
      } catch (e) {
        if (!(e instanceof PushFailedError)) throw e;
        if (stopped) {
          throw new FailureError(
            `${i.role}: the registry ${host} stopped answering mid-push: ${stopped.message}`,
            {
              fix: "Start the registry again and re-run: layers already uploaded are not uploaded again. Nothing was published.",
              cause: e,
            },
          );
        }
        if (e.unauthorized && attempt === 1) {
          this.emit(
            i.role,
            "warn",
            `the registry refused the token mid-push (${e.message}): logging in again`,
          );
          token = await this.deps.login.refresh(token);
          continue;
        }
        throw new FailureError(
          `${i.role}: push of ${uri}:${tag} failed: ${e.message}` +
            (e.unauthorized ? " (even after logging in again)" : ""),
          { fix: "Nothing was published; re-run once the registry accepts pushes.", cause: e },
        );
      }
    }
  }

  /** The registry must have the tag at the digest the daemon pushed. */
  private async readBack(i: RoleInputs, uri: string, tag: string, digest: string): Promise<ManifestRef> {
    const got = await this.registry(async () => (await this.client()).headManifest(i.repository, tag));
    if (!got) {
      throw new FailureError(
        `${i.role}: the push of ${uri}:${tag} reported success but the registry does not have the tag.`,
        {
          fix: "Nothing was published; re-run the push.",
        },
      );
    }
    if (got.digest !== digest) {
      throw new FailureError(
        `${i.role}: the registry has ${uri}:${tag} at ${got.digest}, but the daemon pushed ${digest}.`,
        { fix: "Another push may have raced this one; nothing was published. Re-run the push." },
      );
    }
    return got;
  }

  /** One reference for every architecture: put a manifest list under the content tag. */
  private async manifestList(
    i: RoleInputs,
    uri: string,
    pushed: { p: PlatformInputs; tag: string; digest: string }[],
  ): Promise<string> {
    const entries = [];
    for (const x of pushed) {
      const ref = await this.readBack(i, uri, x.tag, x.digest);
      entries.push({
        ...ref,
        platform: {
          os: "linux",
          architecture: x.p.platform.dockerArch,
          ...(x.p.platform.variant ? { variant: x.p.platform.variant } : {}),
        },
      });
    }
    const list = manifestList(entries);
    const digest = await this.registry(async () =>
      (await this.client()).putManifest(i.repository, i.tag, list.body, list.mediaType),
    );
    this.emit(
      i.role,
      "push",
      `pushed the manifest list ${uri}:${i.tag} = ${digest} (${pushed.map((x) => x.p.platform.platform).join(", ")})`,
      { digest },
    );
    await this.readBack(i, uri, i.tag, digest);
    return digest;
  }

  private meta(
    i: RoleInputs,
    builtAt: Date,
    gitRevision: string | undefined,
    result: RoleResult,
  ): ArtifactMeta {
    return {
      version: versionName(builtAt, i.inputsHash),
      inputsHash: i.inputsHash,
      builtAt: builtAt.toISOString(),
      ...(gitRevision ? { gitRevision } : {}),
      base: i.platforms
        .flatMap((p) =>
          p.bases.map((b) => (i.platforms.length > 1 ? `${p.platform.platform}=${b.id}` : b.id)),
        )
        .join(","),
      ...(this.req.target === "aws" && this.req.region ? { region: this.req.region } : {}),
      target: this.req.target,
      tag: i.tag,
      platforms: result.platforms,
      ...(i.rubyBench
        ? {
            rubyBench: {
              repository: i.rubyBench.repository,
              ref: i.rubyBench.ref,
              commit: i.rubyBench.commit,
            },
          }
        : {}),
    };
  }

  private async publish(i: RoleInputs, result: RoleResult, builtAt: Date, gitRevision: string | undefined) {
    const meta = this.meta(i, builtAt, gitRevision, result);
    await this.deps.catalog.publish({ role: i.role, kind: "image" }, result.reference!, meta);
    result.published = true;
    result.version = meta.version;
  }

  /**
   * An image that is in the registry but not in the catalog (its run stopped between push and publish, or
   * another catalog) is published now. One that the catalog knows stays as it is: a rollback is respected.
   */
  private async publishIfMissing(i: RoleInputs, result: RoleResult) {
    const key = { role: i.role, kind: "image" as const };
    const { found } = await this.deps.catalog.resolve([key]);
    if (found[0]?.value === result.reference) return;
    const history = await this.deps.catalog.history(key);
    if (history.some((h) => h.value === result.reference)) return;
    await this.publish(i, result, this.now(), undefined);
  }
}

async function readIfExists(file: string): Promise<Buffer | undefined> {
  try {
    return await readFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}
