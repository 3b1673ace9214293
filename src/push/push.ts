/**
 * `imgtool push image`: for each role, in parallel, build the container image only when its content tag is
 * not in the registry yet, push it with per-layer progress, read the pushed digest back from the registry,
 * and only then publish `URI@sha256:...` to the catalog. Check before work: an existing tag means nothing is
 * built and nothing is pushed ("up to date"). This file only orchestrates: build.ts builds, upload.ts pushes
 * and verifies, publish.ts is the one place that writes to the catalog.
 *
 * Every dependency (engine, registry login and client, ECR, catalog, ruby-bench source, clock, events) is a
 * parameter, so tests can hand in real-but-local ones or swap one part. The flow never prints: it emits events.
 */
import type { Catalog } from "../catalog/catalog.js";
import { holding, type LeaseKeeper } from "../catalog/lease.js";
import type { Config } from "../config/load.js";
import type { Role, Target } from "../config/schema.js";
import type { EcrApi } from "../aws/ecr.js";
import type { DockerEngine } from "../docker/engine.js";
import { isEngineUnreachable } from "../docker/errors.js";
import {
  FailureError,
  InterruptedError,
  isImgtoolError,
  stopSignalOf,
  type ImgtoolError,
} from "../errors.js";
import { ignoreEvents, type EventSink } from "../events.js";
import { exec as realExec, type Exec } from "../exec.js";
import type { RegistryClient, RegistryClientOptions } from "../registry/client.js";
import { ImageBuilder } from "./build.js";
import { roleEmitter, type RoleEmit } from "./emit.js";
import { prepareRole, type RoleInputs } from "./inputs.js";
import type { RegistryLogin } from "./login.js";
import { Publisher } from "./publish.js";
import type { RubyBenchSource } from "./ruby-bench.js";
import { Uploader, type PushedImage } from "./upload.js";

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
  /** The ruby-bench commit of each role, resolved once by the pipeline; resolved here when absent. */
  rubyBenchCommits?: Partial<Record<Role, string>>;
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
  /**
   * aws: the catalogs of the other configured regions: the image reference is published there too, so that a
   * launch in any region resolves it from its own catalog.
   */
  otherCatalogs?: Catalog[];
  rubyBench: RubyBenchSource;
  /** The registry API client for an endpoint. @default new RegistryClient(opts) */
  makeRegistryClient?: (opts: RegistryClientOptions) => RegistryClient;
  /** Child processes (the context's git revision). @default src/exec.ts */
  exec?: Exec;
  events?: EventSink;
  /** The run's folder (src/leftovers/runs.ts), for a build's temp files; asked only when one is made. */
  tempDir?: () => string;
  now?: () => Date;
  /** Where imgtool's templates' companions (docker/<role>/bin) are. @default the project root */
  projectDir?: string;
  /**
   * The run's interrupt (src/cli/context.ts): the engine's build and push streams are closed at once, nothing is
   * published after it, and each role that was stopped fails with an InterruptedError that says where.
   */
  signal?: AbortSignal;
  /** The publish lease of the pipeline's roles (src/catalog/lease.ts); none: no lease is taken. */
  lease?: LeaseKeeper;
}

/** Push every requested role: inputs of all roles are checked first, then the roles run in parallel. */
export async function pushImages(req: PushRequest, deps: PushDeps): Promise<PushReport> {
  const events = deps.events ?? ignoreEvents;
  if (req.target === "aws" && !deps.ecr) throw new Error("pushImages: the aws target needs deps.ecr");
  // Check before work: every role's inputs, sequentially (base pulls may share an engine tag).
  const inputs: RoleInputs[] = [];
  for (const role of req.roles) {
    try {
      if (deps.signal?.aborted) throw new Error("interrupted");
      inputs.push(
        await explainEngineErrors(() =>
          prepareRole(role, req.config, req.target, {
            docker: deps.docker,
            rubyBench: deps.rubyBench,
            ...(req.rubyBenchCommits?.[role] ? { rubyBenchCommit: req.rubyBenchCommits[role] } : {}),
            ...(deps.projectDir ? { projectDir: deps.projectDir } : {}),
          }),
        ),
      );
    } catch (e) {
      // A git or engine call cut short by the interrupt fails in its own words: the interrupt is the cause.
      if (!deps.signal?.aborted) throw e;
      const sig = stopSignalOf(deps.signal);
      throw new InterruptedError(
        `The push was interrupted (${sig}) while checking the inputs of ${role}: nothing was built, pushed or published.`,
        sig,
      );
    }
  }
  const run = new PushRun(req, deps, events);
  // One publisher per pipeline and role: the check, build and publish of a role run under its lease.
  const lease = req.dryRun ? undefined : deps.lease;
  const settled = await Promise.allSettled(
    inputs.map((i) => explainEngineErrors(() => holding(lease, `${i.role}-image`, () => run.role(i)))),
  );
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

/** Where a role's push is; an interrupt says it. */
type Stage = "check" | "build" | "push" | "verify" | "publish";

const STOPPED_AT: Record<Stage, string> = {
  check: "while checking the registry: nothing was built or pushed",
  build: "while building: the engine's build was stopped, nothing was pushed",
  push: "while pushing: the upload was stopped (layers already uploaded stay in the registry, unreferenced; a re-run does not upload them again)",
  verify: "after the push, before its digest was read back",
  publish: "before publishing (the image is in the registry)",
};

/** One run: the builder, the uploader and the publisher, and the per-role work that orchestrates them. */
class PushRun {
  private readonly results = new Map<Role, RoleResult>();
  private readonly now: () => Date;
  private readonly emit: RoleEmit;
  private readonly builder: ImageBuilder;
  private readonly uploader: Uploader;
  private readonly publisher: Publisher;
  private readonly signal: AbortSignal | undefined;

  constructor(
    private readonly req: PushRequest,
    deps: PushDeps,
    events: EventSink,
  ) {
    this.now = deps.now ?? (() => new Date());
    this.signal = deps.signal;
    this.emit = roleEmitter(events);
    this.builder = new ImageBuilder({
      config: req.config,
      docker: deps.docker,
      rubyBench: deps.rubyBench,
      exec: deps.exec ?? realExec,
      emit: this.emit,
      ...(deps.signal ? { signal: deps.signal } : {}),
      ...(deps.tempDir ? { tempDir: deps.tempDir } : {}),
    });
    this.uploader = new Uploader({
      config: req.config,
      target: req.target,
      dryRun: req.dryRun ?? false,
      docker: deps.docker,
      login: deps.login,
      ...(deps.ecr ? { ecr: deps.ecr } : {}),
      ...(deps.makeRegistryClient ? { makeRegistryClient: deps.makeRegistryClient } : {}),
      events,
      emit: this.emit,
      ...(deps.signal ? { signal: deps.signal } : {}),
    });
    this.publisher = new Publisher({
      target: req.target,
      ...(req.region ? { region: req.region } : {}),
      catalog: deps.catalog,
      ...(deps.otherCatalogs ? { otherCatalogs: deps.otherCatalogs } : {}),
      now: this.now,
    });
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

  /**
   * {@link work}, and when the run is interrupted meanwhile, whatever the stopped step threw becomes an
   * InterruptedError that says where the role stopped and what stays.
   */
  async role(i: RoleInputs): Promise<RoleResult> {
    const at: { stage: Stage } = { stage: "check" };
    try {
      return await this.work(i, at);
    } catch (e) {
      if (!this.signal?.aborted) throw e;
      const sig = stopSignalOf(this.signal);
      const built = this.results.get(i.role)?.built;
      throw new InterruptedError(
        `The ${i.role} push was interrupted (${sig}) ${STOPPED_AT[at.stage]}` +
          (built && at.stage !== "build" ? "; the image built stays in the engine's cache" : "") +
          "; nothing was published.",
        sig,
      );
    }
  }

  private stopHere(at: { stage: Stage }, stage: Stage): void {
    at.stage = stage;
    if (this.signal?.aborted) throw new Error("interrupted");
  }

  /** Check, then build, upload and verify each platform, then publish. */
  private async work(i: RoleInputs, at: { stage: Stage }): Promise<RoleResult> {
    const result = this.base(i);
    this.results.set(i.role, result);
    const platforms = i.platforms.map((p) => p.platform.platform).join(", ");
    this.emit(i.role, "start", `content tag ${i.tag} (${platforms}, ${i.dockerfileLabel})`, {
      tag: i.tag,
      inputsHash: i.inputsHash,
      platforms: i.platforms.map((p) => p.platform.platform),
    });
    const uri = await this.uploader.repositoryUri(i);
    result.uri = uri;
    this.emit(i.role, "check", `looking for ${uri}:${i.tag}`);
    const found = await this.uploader.existing(i);
    if (found) {
      result.status = "up-to-date";
      result.digest = found;
      result.reference = `${uri}@${found}`;
      this.emit(i.role, "found", `up to date: ${uri}:${i.tag} is ${found}; nothing to build or push`, {
        reference: result.reference,
      });
      if (!this.req.dryRun) {
        this.stopHere(at, "publish");
        await this.publisher.publishIfMissing(i, result);
      }
      return result;
    }
    if (this.req.dryRun) {
      result.status = "would-push";
      this.emit(i.role, "skip", `would build and push ${uri}:${i.tag} (--dry-run: nothing done)`);
      return result;
    }

    const builtAt = this.now();
    const gitRevision = await this.builder.gitRevision(i.contextDir);
    const multi = i.platforms.length > 1;
    const pushed: PushedImage[] = [];
    for (const p of i.platforms) {
      const tag = multi ? `${i.tag}-${p.platform.dockerArch}` : i.tag;
      // A run that stopped before the manifest list may have pushed this architecture already: reuse it (an
      // immutable repository would refuse the tag for a rebuilt image anyway).
      const done = multi ? await this.uploader.existing(i, tag) : undefined;
      if (done) {
        this.emit(
          i.role,
          "skip",
          `${uri}:${tag} is already pushed (${done}): not building ${p.platform.platform} again`,
        );
        pushed.push({ p, tag, digest: done });
        continue;
      }
      this.stopHere(at, "build");
      const imageId = await this.builder.build(i, p, `${uri}:${tag}`, builtAt, gitRevision, result);
      result.built = true;
      this.stopHere(at, "push");
      const outcome = await this.uploader.push(i, uri, tag, imageId, result);
      pushed.push({ p, tag, digest: outcome.digest });
    }
    this.stopHere(at, "verify");
    let digest: string;
    if (multi) {
      digest = await this.uploader.manifestList(i, uri, pushed);
    } else {
      digest = pushed[0]!.digest;
      await this.uploader.readBack(i, uri, i.tag, digest);
    }
    result.digest = digest;
    result.reference = `${uri}@${digest}`;
    result.status = "pushed";
    this.stopHere(at, "publish");
    await this.publisher.publish(i, result, builtAt, gitRevision);
    return result;
  }
}
