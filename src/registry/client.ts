/**
 * A small OCI distribution (Docker Registry HTTP API v2) client: manifests by tag or digest (HEAD, GET,
 * PUT), tags, blobs. It speaks Basic auth (ECR's registry endpoint and the local registry take
 * `AWS:<token>`) and the Bearer token flow (Docker Hub style), asks its credentials provider again once
 * when the registry answers 401, and tells "not there" (undefined) from "refused" and "unreachable" (errors).
 */
import { createHash } from "node:crypto";

export interface RegistryCredentials {
  username: string;
  password: string;
}

/**
 * Where the client gets credentials. `refresh` is true when the registry refused the last ones: the provider
 * should log in again rather than answer from its cache.
 */
export type CredentialsProvider = (opts: { refresh: boolean }) => Promise<RegistryCredentials | undefined>;

export interface RegistryClientOptions {
  /** `http://127.0.0.1:5000` or `https://123456789012.dkr.ecr.us-east-1.amazonaws.com`; a bare host means https. */
  endpoint: string;
  credentials?: CredentialsProvider;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
  /** Per request. @default 30000 */
  timeoutMs?: number;
  /** Called for every HTTP request sent (method, path, status): for logs and tests. */
  onRequest?: (r: { method: string; path: string; status: number }) => void;
}

export const MEDIA_TYPES = {
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
} as const;

const ACCEPT = Object.values(MEDIA_TYPES).join(", ");

export interface ManifestRef {
  digest: string;
  mediaType: string;
  size: number;
}

/** The registry answered with an error status. */
export class RegistryError extends Error {
  constructor(
    message: string,
    readonly status: number,
    /** The registry's error code (MANIFEST_UNKNOWN, UNAUTHORIZED, ...), when it gave one. */
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = "RegistryError";
  }
}

/** The registry refused the credentials (401 after logging in again), or there were none. */
export class RegistryUnauthorizedError extends RegistryError {
  constructor(message: string) {
    super(message, 401, "UNAUTHORIZED");
    this.name = "RegistryUnauthorizedError";
  }
}

/** Nothing answered: connection refused or reset, DNS failure, timeout. */
export class RegistryUnreachableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "RegistryUnreachableError";
  }
}

interface Challenge {
  scheme: "basic" | "bearer";
  params: Record<string, string>;
}

/** Parse `WWW-Authenticate: Bearer realm="...",service="...",scope="..."` (or Basic). */
export function parseChallenge(header: string | null): Challenge | undefined {
  if (!header) return undefined;
  const m = /^\s*(\w+)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const scheme = m[1]!.toLowerCase();
  if (scheme !== "basic" && scheme !== "bearer") return undefined;
  const params: Record<string, string> = {};
  for (const p of m[2]!.matchAll(/(\w+)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g)) {
    params[p[1]!.toLowerCase()] = (p[2] ?? p[3] ?? "").replace(/\\(.)/g, "$1");
  }
  return { scheme, params };
}

/** Registry host[:port] of an endpoint or a repository URI. */
export function registryHost(endpoint: string): string {
  return endpoint.replace(/^[a-z]+:\/\//i, "").replace(/\/.*$/, "");
}

export class RegistryClient {
  /** host[:port] */
  readonly host: string;
  private readonly base: string;
  private readonly fetch: typeof fetch;
  private readonly timeoutMs: number;
  private scheme: "basic" | "bearer" | undefined;
  private readonly tokens = new Map<string, string>();

  constructor(private readonly opts: RegistryClientOptions) {
    const withScheme = /^[a-z]+:\/\//i.test(opts.endpoint) ? opts.endpoint : `https://${opts.endpoint}`;
    this.base = withScheme.replace(/\/+$/, "");
    this.host = registryHost(this.base);
    this.fetch = opts.fetch ?? globalThis.fetch;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  /**
   * GET /v2/: resolves when the registry answers and takes the credentials (a client without credentials:
   * when it lets anyone in), with the API version it names; a refusal throws a RegistryError with its status.
   */
  async ping(): Promise<{ api: string | null }> {
    const r = await this.request("GET", "/v2/", { scope: "" });
    await r.arrayBuffer();
    if (!r.ok) throw await this.error(r, "GET /v2/");
    return { api: r.headers.get("docker-distribution-api-version") };
  }

  /** HEAD a manifest: its digest, media type and size, or undefined when the tag or digest is unknown. */
  async headManifest(repo: string, reference: string): Promise<ManifestRef | undefined> {
    const p = `/v2/${repo}/manifests/${reference}`;
    const r = await this.request("HEAD", p, { scope: pullScope(repo), headers: { accept: ACCEPT } });
    if (r.status === 404) return undefined;
    if (!r.ok) throw await this.error(r, `HEAD ${p}`);
    const digest = r.headers.get("docker-content-digest");
    const mediaType = r.headers.get("content-type") ?? "";
    const size = Number(r.headers.get("content-length") ?? "0");
    // A registry may leave the digest out of a HEAD answer: read the manifest then.
    if (!digest) return (await this.getManifest(repo, reference))?.ref;
    return { digest, mediaType, size };
  }

  /** GET a manifest (raw bytes, so its digest stays exact), or undefined when unknown. */
  async getManifest(
    repo: string,
    reference: string,
  ): Promise<{ ref: ManifestRef; body: Buffer } | undefined> {
    const p = `/v2/${repo}/manifests/${reference}`;
    const r = await this.request("GET", p, { scope: pullScope(repo), headers: { accept: ACCEPT } });
    if (r.status === 404) {
      await r.arrayBuffer();
      return undefined;
    }
    if (!r.ok) throw await this.error(r, `GET ${p}`);
    const body = Buffer.from(await r.arrayBuffer());
    const digest = `sha256:${createHash("sha256").update(body).digest("hex")}`;
    const given = r.headers.get("docker-content-digest");
    if (given && given !== digest) {
      throw new RegistryError(
        `GET ${p}: the registry says ${given} but the manifest it sent hashes to ${digest}`,
        r.status,
        undefined,
      );
    }
    return {
      ref: { digest, mediaType: r.headers.get("content-type") ?? "", size: body.length },
      body,
    };
  }

  /** PUT a manifest under a tag (or its digest); resolves with the digest the registry stored. */
  async putManifest(repo: string, reference: string, body: Buffer, mediaType: string): Promise<string> {
    const p = `/v2/${repo}/manifests/${reference}`;
    const r = await this.request("PUT", p, {
      scope: pushScope(repo),
      headers: { "content-type": mediaType },
      body,
    });
    await r.arrayBuffer();
    if (!r.ok) throw await this.error(r, `PUT ${p}`);
    return (
      r.headers.get("docker-content-digest") ?? `sha256:${createHash("sha256").update(body).digest("hex")}`
    );
  }

  /** Tags of a repository ([] when the repository does not exist yet). */
  async listTags(repo: string): Promise<string[]> {
    const tags: string[] = [];
    let next: string | undefined = `/v2/${repo}/tags/list?n=1000`;
    while (next) {
      const r = await this.request("GET", next, { scope: pullScope(repo) });
      if (r.status === 404) {
        await r.arrayBuffer();
        return [];
      }
      if (!r.ok) throw await this.error(r, `GET ${next}`);
      const doc = (await r.json()) as { tags?: string[] | null };
      tags.push(...(doc.tags ?? []));
      const link = r.headers.get("link");
      next = link ? /<([^>]+)>/.exec(link)?.[1] : undefined;
    }
    return tags;
  }

  /** Whether the repository has a blob. */
  async blobExists(repo: string, digest: string): Promise<boolean> {
    const p = `/v2/${repo}/blobs/${digest}`;
    const r = await this.request("HEAD", p, { scope: pullScope(repo) });
    if (r.status === 404) return false;
    if (!r.ok) throw await this.error(r, `HEAD ${p}`);
    return true;
  }

  // -------------------------------------------------------------------------------------------- transport

  private async credentials(refresh: boolean): Promise<RegistryCredentials | undefined> {
    // The provider caches (and shares its login with the docker pushes): ask it every time.
    return this.opts.credentials?.({ refresh });
  }

  private async authHeader(scope: string): Promise<string | undefined> {
    if (this.scheme === "bearer") {
      const t = this.tokens.get(scope);
      return t ? `Bearer ${t}` : undefined;
    }
    // Basic until told otherwise: ECR and the local registry take it, and it saves a round trip.
    const c = await this.credentials(false);
    return c ? basic(c) : undefined;
  }

  private async send(
    method: string,
    p: string,
    headers: Record<string, string>,
    body: Buffer | undefined,
  ): Promise<Response> {
    const url = p.startsWith("http") ? p : `${this.base}${p}`;
    let r: Response;
    // A registry that accepts connections and drops them leaves fetch unsettled until the timeout; the timer of
    // AbortSignal.timeout does not keep the process alive, so a command would end silently with exit 0. This
    // timer does, until the answer's head arrives (the body stays bounded by the unref'd one).
    const headWait = new AbortController();
    const timer = setTimeout(
      () => headWait.abort(new DOMException("The operation was aborted due to timeout", "TimeoutError")),
      this.timeoutMs,
    );
    try {
      r = await this.fetch(url, {
        method,
        headers,
        ...(body ? { body: new Uint8Array(body) } : {}),
        redirect: "follow",
        signal: AbortSignal.any([headWait.signal, AbortSignal.timeout(this.timeoutMs)]),
      });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new RegistryUnreachableError(
        `${method} ${this.host}${p.startsWith("http") ? new URL(p).pathname : p}: the registry did not answer ` +
          `(${cause?.code ?? cause?.message ?? (e as Error).message})`,
        { cause: e },
      );
    } finally {
      clearTimeout(timer);
    }
    this.opts.onRequest?.({ method, path: p, status: r.status });
    return r;
  }

  private async request(
    method: string,
    p: string,
    opts: { scope: string; headers?: Record<string, string>; body?: Buffer },
  ): Promise<Response> {
    let refreshed = false;
    for (;;) {
      const auth = await this.authHeader(opts.scope);
      const r = await this.send(
        method,
        p,
        { ...(opts.headers ?? {}), ...(auth ? { authorization: auth } : {}) },
        opts.body,
      );
      if (r.status !== 401) return r;
      const challenge = parseChallenge(r.headers.get("www-authenticate"));
      if (challenge?.scheme === "bearer") {
        // A token that was refused means the credentials behind it went stale: log in again, once.
        const refresh = auth?.startsWith("Bearer ") ?? false;
        if (refresh && refreshed) return r;
        refreshed ||= refresh;
        await r.arrayBuffer();
        this.scheme = "bearer";
        await this.fetchToken(challenge.params, opts.scope, refresh);
        continue;
      }
      if (refreshed || !this.opts.credentials) return r;
      // Basic credentials refused (an expired ECR token): log in again, once.
      refreshed = true;
      await r.arrayBuffer();
      this.scheme = "basic";
      await this.credentials(true);
    }
  }

  private async fetchToken(params: Record<string, string>, scope: string, refresh: boolean): Promise<void> {
    const realm = params["realm"];
    if (!realm) throw new RegistryError(`${this.host}: Bearer challenge without a realm`, 401, undefined);
    const u = new URL(realm);
    if (params["service"]) u.searchParams.set("service", params["service"]);
    const s = params["scope"] ?? scope;
    if (s) u.searchParams.set("scope", s);
    const c = await this.credentials(refresh);
    const r = await this.send("GET", u.toString(), c ? { authorization: basic(c) } : {}, undefined);
    if (!r.ok) {
      await r.arrayBuffer();
      throw new RegistryUnauthorizedError(`${this.host}: the token service ${u.host} refused (${r.status})`);
    }
    const doc = (await r.json()) as { token?: string; access_token?: string };
    const token = doc.token ?? doc.access_token;
    if (!token) throw new RegistryUnauthorizedError(`${this.host}: the token service sent no token`);
    this.tokens.set(scope, token);
  }

  private async error(r: Response, what: string): Promise<RegistryError> {
    let code: string | undefined;
    let detail = "";
    try {
      const doc = (await r.json()) as { errors?: { code?: string; message?: string }[] };
      code = doc.errors?.[0]?.code;
      detail = doc.errors?.map((e) => `${e.code ?? ""}: ${e.message ?? ""}`).join("; ") ?? "";
    } catch {
      // not JSON
    }
    const msg = `${what} on ${this.host}: ${r.status} ${r.statusText}${detail ? ` (${detail})` : ""}`;
    return r.status === 401 ? new RegistryUnauthorizedError(msg) : new RegistryError(msg, r.status, code);
  }
}

const pullScope = (repo: string) => `repository:${repo}:pull`;
const pushScope = (repo: string) => `repository:${repo}:pull,push`;
const basic = (c: RegistryCredentials) =>
  `Basic ${Buffer.from(`${c.username}:${c.password}`).toString("base64")}`;
