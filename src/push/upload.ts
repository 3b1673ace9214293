/**
 * The uploader of the push flow: where a role's repository is (on aws: found or created in ECR), whether a tag
 * is there already, the push itself (logging in again on a 401, stopping at once when the registry stops
 * answering), reading the pushed digest back from the registry, and the manifest list of a multi-arch image.
 * One registry client per run, sharing the run's login.
 */
import type { Config } from "../config/load.js";
import type { Target } from "../config/schema.js";
import type { EcrApi } from "../aws/ecr.js";
import type { DockerEngine, PushOutcome } from "../docker/engine.js";
import { PushFailedError } from "../docker/errors.js";
import type { LayerProgress } from "../docker/progress.js";
import { FailureError, errorName } from "../errors.js";
import type { EventSink } from "../events.js";
import {
  RegistryClient,
  RegistryError,
  RegistryUnreachableError,
  registryHost,
  type ManifestRef,
  type RegistryClientOptions,
} from "../registry/client.js";
import { manifestList } from "../registry/manifest.js";
import { ensureEcrRepository, findEcrTag } from "./ecr-repository.js";
import type { PlatformInputs, RoleInputs } from "./inputs.js";
import type { RegistryLogin, RegistryToken } from "./login.js";
import type { RoleEmit } from "./emit.js";

export interface UploaderDeps {
  config: Config;
  target: Target;
  dryRun: boolean;
  docker: DockerEngine;
  login: RegistryLogin;
  ecr?: EcrApi;
  makeRegistryClient?: (opts: RegistryClientOptions) => RegistryClient;
  events: EventSink;
  emit: RoleEmit;
  /** The run's interrupt: the daemon's push stream is closed at once (the push flow then publishes nothing). */
  signal?: AbortSignal;
}

/** What an upload adds to the role's result. */
export interface UploadTally {
  layers: { pushed: number; existed: number; mounted: number };
  bytesPushed: number;
}

/** One architecture's image, pushed under its own tag. */
export interface PushedImage {
  p: PlatformInputs;
  tag: string;
  digest: string;
}

export class Uploader {
  private clientPromise: Promise<RegistryClient> | undefined;

  constructor(private readonly deps: UploaderDeps) {}

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

  /** The repository's URI (on aws: found or created in ECR). */
  async repositoryUri(i: RoleInputs): Promise<string> {
    if (this.deps.target === "aws") {
      if (this.deps.dryRun) {
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
        keepImages: this.deps.config.aws.ecr.keep_images,
        pipeline: this.deps.config.pipeline,
        role: i.role,
        events: this.deps.events,
      });
      return repo.uri;
    }
    return `${(await this.client()).host}/${i.repository}`;
  }

  /** The digest of a tag (default: the content tag) when the registry has it already. */
  async existing(i: RoleInputs, tag = i.tag): Promise<string | undefined> {
    if (this.deps.target === "aws") return findEcrTag(this.deps.ecr!, i.repository, tag);
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

  /**
   * Push `uri:tag`, logging in once (shared) and again on a 401. When the daemon starts retrying an upload,
   * ask the registry whether it still answers: if it does not, stop at once rather than wait out the daemon's
   * retries.
   */
  async push(
    i: RoleInputs,
    uri: string,
    tag: string,
    imageId: string,
    tally: UploadTally,
  ): Promise<PushOutcome> {
    const emit = this.deps.emit;
    const host = registryHost(uri);
    const repo = uri;
    await this.deps.docker.tag(imageId, repo, tag);
    emit(i.role, "push", `pushing ${uri}:${tag}`);
    let token = await this.deps.login.get();
    for (let attempt = 1; ; attempt++) {
      const abort = new AbortController();
      let stopped: Error | undefined;
      let probing = false;
      const shown = new Map<string, number>();
      const onLayer = (l: LayerProgress) => {
        if (l.status !== "pushing") {
          emit(i.role, "progress", `${l.id}: ${l.text}`, { layer: l.id, status: l.status });
        } else if (l.total && l.current !== undefined) {
          // Per-layer progress in quarters, not every chunk the daemon reports.
          const quarter = Math.min(4, Math.floor((4 * l.current) / l.total));
          if (quarter > (shown.get(l.id) ?? 0)) {
            shown.set(l.id, quarter);
            emit(
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
          this.deps.signal ? AbortSignal.any([abort.signal, this.deps.signal]) : abort.signal,
        );
        const count = (st: string) => outcome.layers.filter((l) => l.status === st).length;
        const layers = { pushed: count("pushed"), existed: count("exists"), mounted: count("mounted") };
        tally.layers.pushed += layers.pushed;
        tally.layers.existed += layers.existed;
        tally.layers.mounted += layers.mounted;
        tally.bytesPushed += outcome.bytesPushed;
        emit(
          i.role,
          "push",
          `pushed ${uri}:${tag} = ${outcome.digest} (${layers.pushed} layers uploaded, ` +
            `${layers.existed + layers.mounted} already there)`,
          { digest: outcome.digest, layers },
        );
        return outcome;
      } catch (e) {
        if (!(e instanceof PushFailedError) || this.deps.signal?.aborted) throw e;
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
          emit(i.role, "warn", `the registry refused the token mid-push (${e.message}): logging in again`);
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
  async readBack(i: RoleInputs, uri: string, tag: string, digest: string): Promise<ManifestRef> {
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
  async manifestList(i: RoleInputs, uri: string, pushed: PushedImage[]): Promise<string> {
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
    this.deps.emit(
      i.role,
      "push",
      `pushed the manifest list ${uri}:${i.tag} = ${digest} (${pushed.map((x) => x.p.platform.platform).join(", ")})`,
      { digest },
    );
    await this.readBack(i, uri, i.tag, digest);
    return digest;
  }
}
