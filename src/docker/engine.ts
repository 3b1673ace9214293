/**
 * The Docker engine adapter: a dockerode client for a DOCKER_HOST-style address, and {@link DockerEngine},
 * the narrow set of engine calls the flows make (inspect, build, tag, push, pull, remove). Import lazily:
 * it loads dockerode.
 */
import Docker from "dockerode";
import {
  BuildFailedError,
  DaemonStreamError,
  DockerfileParseError,
  PushFailedError,
  isUnauthorizedMessage,
} from "./errors.js";
import {
  BuildStreamParser,
  PushStreamParser,
  readDaemonStream,
  type BuildStep,
  type LayerProgress,
} from "./progress.js";
import { reproduceImage, type ReproduceOptions, type Reproduced } from "./reproducible.js";

/** dockerode for `unix:///path/docker.sock` or `tcp://host:port`. */
export function connectDocker(host: string, opts: { timeoutMs?: number } = {}): Docker {
  const timeout = opts.timeoutMs;
  if (host.startsWith("unix://"))
    return new Docker({ socketPath: host.slice("unix://".length), ...(timeout ? { timeout } : {}) });
  const u = new URL(host.replace(/^tcp:/, "http:"));
  return new Docker({
    host: u.hostname,
    port: Number(u.port || 2375),
    protocol: "http",
    ...(timeout ? { timeout } : {}),
  });
}

export interface EngineInfo {
  version: string;
  apiVersion: string;
}

/** Version of the engine at `host`; throws when it does not answer. */
export async function engineVersion(host: string, timeoutMs = 3000): Promise<EngineInfo> {
  const v = await connectDocker(host, { timeoutMs }).version();
  return { version: v.Version, apiVersion: v.ApiVersion };
}

/** Whether a dockerode inspect (of an image, a volume, a container) found the object: 404 is no, else it throws. */
export async function inspected(p: Promise<unknown>): Promise<boolean> {
  try {
    await p;
    return true;
  } catch (e) {
    if ((e as { statusCode?: number }).statusCode === 404) return false;
    throw e;
  }
}

/** Whether the engine at `host` has an image by that reference. */
export async function imageExists(host: string, ref: string): Promise<boolean> {
  return (await dockerEngine(connectDocker(host, { timeoutMs: 5000 })).inspectImage(ref)) !== undefined;
}

// ------------------------------------------------------------------------------------------ the adapter

export interface ImageInfo {
  /** Content-addressed image ID, `sha256:...`. */
  id: string;
  /** Docker's architecture name: amd64, arm64, ... */
  architecture: string;
  os: string;
  repoTags: string[];
  repoDigests: string[];
  labels: Record<string, string>;
}

/** Credentials for one registry, as the daemon's X-Registry-Auth wants them. */
export interface RegistryAuthConfig {
  username: string;
  password: string;
  /** Registry host[:port], e.g. 127.0.0.1:5000 or 123456789012.dkr.ecr.us-east-1.amazonaws.com. */
  serveraddress: string;
}

export interface BuildRequest {
  /** The build context as a tar stream. */
  context: NodeJS.ReadableStream;
  /** Path of the Dockerfile inside the context. */
  dockerfile: string;
  /** `repo:tag` given to the result. */
  tag: string;
  buildArgs?: Record<string, string>;
  labels?: Record<string, string>;
  /** e.g. linux/arm64. */
  platform?: string;
  /** Build every step again, without the builder's cache. */
  noCache?: boolean;
  signal?: AbortSignal;
}

export interface BuildEvents {
  step?: (s: BuildStep) => void;
  cached?: (s: BuildStep) => void;
  output?: (line: string) => void;
}

export interface BuildOutcome {
  imageId: string;
  steps: BuildStep[];
}

export interface PushOutcome {
  digest: string;
  /** Size of the manifest, in bytes. */
  size: number | undefined;
  /** Final status of every layer. */
  layers: LayerProgress[];
  /** Bytes the daemon reported uploading. */
  bytesPushed: number;
}

/** A container, image or volume found by a label key. */
export interface LabelledResource {
  kind: "container" | "volume" | "image";
  /** Container id, image id, or the volume's name. */
  id: string;
  /** The container's name (without "/"), the image's first tag (else its short id), or the volume's name. */
  name: string;
  labels: Record<string, string>;
  /** An image's tags (`repo:tag`, none for an untagged image). */
  tags?: string[];
}

/** The engine calls imgtool's flows make. Tests may hand in another implementation. */
export interface DockerEngine {
  /** The image, or undefined when the engine has none by that reference. */
  inspectImage(ref: string): Promise<ImageInfo | undefined>;
  /**
   * Build; resolves with the image ID. Rejects with {@link DockerfileParseError} when the daemon refuses the
   * Dockerfile, {@link BuildFailedError} for an `errorDetail` in the stream (naming the step) or a stream
   * that ends without an image ID.
   */
  build(req: BuildRequest, on?: BuildEvents): Promise<BuildOutcome>;
  /** Give `ref` the name `repo:tag`. */
  tag(ref: string, repo: string, tag: string): Promise<void>;
  /**
   * Push `repo:tag`; resolves with the digest the daemon pushed. Rejects with {@link PushFailedError} for an
   * `errorDetail` in the stream (`unauthorized` set when the registry refused the credentials) or a stream
   * that ends without a digest.
   */
  push(
    repo: string,
    tag: string,
    auth: RegistryAuthConfig,
    on?: { layer?: (l: LayerProgress) => void },
    signal?: AbortSignal,
  ): Promise<PushOutcome>;
  /** Pull `ref` (for a platform); rejects with {@link DaemonStreamError} on an `errorDetail`. */
  pull(ref: string, opts?: { platform?: string; auth?: RegistryAuthConfig }): Promise<void>;
  /** Remove an image reference; a missing one is not an error. */
  removeImage(ref: string): Promise<void>;
  /** Every container (running or not), image and volume that carries the label key `label`, whatever its value. */
  listLabelled(label: string): Promise<LabelledResource[]>;
  /**
   * Remove a container (forced, with its anonymous volumes), an image (forced: every tag) or a volume; false
   * when it was already gone.
   * Remove a run's containers before its volumes: a volume in use cannot go.
   */
  removeLabelled(r: LabelledResource): Promise<boolean>;
  /**
   * Rewrite a built image so that the same inputs give the same image ID (src/docker/reproducible.ts): file
   * times of the layers added on `opts.base` clamped to the epoch, the config's times the epoch, `opts.tag` moved
   * to it. Absent: the engine cannot (the build stays as the builder made it).
   */
  reproduce?(imageId: string, opts: ReproduceOptions): Promise<Reproduced>;
}

const statusOf = (e: unknown): number | undefined => (e as { statusCode?: number }).statusCode;

/** The message dockerode puts on an HTTP error: the daemon's JSON `message`, else its own text. */
function daemonMessage(e: unknown): string {
  const json = (e as { json?: { message?: unknown } }).json;
  if (json && typeof json.message === "string") return json.message;
  return (e as Error).message.replace(/^\(HTTP code \d+\) [a-z ]+ - /, "").trim();
}

/** The {@link DockerEngine} over a dockerode client. */
export function dockerEngine(docker: Docker): DockerEngine {
  return {
    async inspectImage(ref) {
      try {
        const i = await docker.getImage(ref).inspect();
        return {
          id: i.Id,
          architecture: i.Architecture,
          os: i.Os,
          repoTags: i.RepoTags ?? [],
          repoDigests: i.RepoDigests ?? [],
          labels: i.Config?.Labels ?? {},
        };
      } catch (e) {
        if (statusOf(e) === 404) return undefined;
        throw e;
      }
    },

    async build(req, on = {}) {
      let stream: NodeJS.ReadableStream;
      try {
        stream = await docker.buildImage(req.context, {
          dockerfile: req.dockerfile,
          t: req.tag,
          buildargs: req.buildArgs ?? {},
          labels: req.labels ?? {},
          rm: true,
          forcerm: true,
          version: "1",
          ...(req.platform ? { platform: req.platform } : {}),
          ...(req.noCache ? { nocache: true } : {}),
          ...(req.signal ? { abortSignal: req.signal } : {}),
        });
      } catch (e) {
        const msg = daemonMessage(e);
        const parse = /dockerfile parse error (?:on )?line (\d+): (.*)/i.exec(msg);
        if (statusOf(e) === 400 || statusOf(e) === 500) {
          if (parse) throw new DockerfileParseError(parse[2]!.trim(), Number(parse[1]));
          throw new DockerfileParseError(msg, undefined);
        }
        throw e;
      }
      const parser = new BuildStreamParser(on);
      try {
        await readDaemonStream(stream, parser.message);
      } catch (e) {
        if (!(e instanceof DaemonStreamError)) throw e;
        throw new BuildFailedError(e.message, parser.current, e.code, parser.tail);
      }
      if (!parser.imageId) {
        throw new BuildFailedError(
          "the build stream ended without an image ID: the daemon did not say the build succeeded",
          parser.current,
          undefined,
          parser.tail,
        );
      }
      return { imageId: parser.imageId, steps: parser.steps };
    },

    async tag(ref, repo, tag) {
      await docker.getImage(ref).tag({ repo, tag });
    },

    async push(repo, tag, auth, on = {}, signal) {
      const stream = await docker.getImage(repo).push({
        tag,
        authconfig: auth,
        ...(signal ? { abortSignal: signal } : {}),
      });
      const parser = new PushStreamParser(on);
      const abort = () => (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
      signal?.addEventListener("abort", abort, { once: true });
      try {
        await readDaemonStream(stream, parser.message);
      } catch (e) {
        if (signal?.aborted) throw new PushFailedError(`push of ${repo}:${tag} was cancelled`, false);
        if (!(e instanceof DaemonStreamError)) throw e;
        throw new PushFailedError(e.message, isUnauthorizedMessage(e.message));
      } finally {
        signal?.removeEventListener("abort", abort);
      }
      if (!parser.digest) {
        throw new PushFailedError(
          `the push stream of ${repo}:${tag} ended without a digest: the daemon did not say the push succeeded`,
          false,
        );
      }
      return {
        digest: parser.digest,
        size: parser.size,
        layers: [...parser.layers.values()],
        bytesPushed: parser.bytesPushed,
      };
    },

    async pull(ref, opts = {}) {
      const stream = (await docker.pull(ref, {
        ...(opts.platform ? { platform: opts.platform } : {}),
        ...(opts.auth ? { authconfig: opts.auth } : {}),
      })) as NodeJS.ReadableStream;
      await readDaemonStream(stream, () => {});
    },

    async removeImage(ref) {
      try {
        await docker.getImage(ref).remove({ noprune: false });
      } catch (e) {
        if (statusOf(e) === 404) return;
        throw e;
      }
    },

    async listLabelled(label) {
      const filters = JSON.stringify({ label: [label] });
      const containers = await docker.listContainers({ all: true, filters });
      const volumes = (await docker.listVolumes({ filters })).Volumes ?? [];
      const images = await docker.listImages({ filters });
      return [
        ...containers.map((c) => ({
          kind: "container" as const,
          id: c.Id,
          name: (c.Names?.[0] ?? c.Id).replace(/^\//, ""),
          labels: c.Labels ?? {},
        })),
        ...images.map((i) => ({
          kind: "image" as const,
          id: i.Id,
          name: i.RepoTags?.find((t) => t !== "<none>:<none>") ?? i.Id.replace(/^sha256:/, "").slice(0, 12),
          labels: i.Labels ?? {},
          tags: (i.RepoTags ?? []).filter((t) => t !== "<none>:<none>"),
        })),
        ...volumes.map((v) => ({
          kind: "volume" as const,
          id: v.Name,
          name: v.Name,
          labels: (v.Labels as Record<string, string> | null) ?? {},
        })),
      ];
    },

    reproduce: (imageId, opts) => reproduceImage(docker, imageId, opts),

    async removeLabelled(r) {
      try {
        if (r.kind === "container") await docker.getContainer(r.id).remove({ force: true, v: true });
        else if (r.kind === "image") await docker.getImage(r.id).remove({ force: true });
        else await docker.getVolume(r.id).remove();
        return true;
      } catch (e) {
        if (statusOf(e) === 404) return false;
        throw e;
      }
    },
  };
}
