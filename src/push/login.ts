/**
 * Registry logins: one per registry, shared by everything that talks to it (both roles' pushes, the
 * registry API client). A token is cached until shortly before it expires; concurrent callers wait for the
 * same login (never two logins racing); a 401 mid-push asks for a new one, once, however many callers saw it.
 */
import { FailureError, UsageError, errorName } from "../errors.js";
import { ignoreEvents, type EventSink } from "../events.js";
import type { EcrApi } from "../aws/ecr.js";
import {
  RegistryClient,
  RegistryUnauthorizedError,
  RegistryUnreachableError,
  registryHost,
} from "../registry/client.js";

export interface RegistryToken {
  /** `http://127.0.0.1:5000` or `https://123456789012.dkr.ecr.us-east-1.amazonaws.com`. */
  endpoint: string;
  /** host[:port] of the endpoint. */
  host: string;
  username: string;
  password: string;
  /** When the registry stops taking the password; undefined: never (the local registry's htpasswd). */
  expiresAt?: Date;
  /** Where the token came from, for messages: "ECR GetAuthorizationToken", "the local registry's password". */
  source: string;
}

/** Fetches a fresh token (ECR GetAuthorizationToken, or the local registry's credentials). */
export type TokenSource = () => Promise<RegistryToken>;

/** The local registry: user and password file from stack.json; read again at every login. */
export function localTokenSource(opts: {
  endpoint: string;
  user: string;
  password: () => string;
}): TokenSource {
  const endpoint = /^[a-z]+:\/\//.test(opts.endpoint) ? opts.endpoint : `http://${opts.endpoint}`;
  return async () => ({
    endpoint,
    host: registryHost(endpoint),
    username: opts.user,
    password: opts.password(),
    source: "the local registry's password file",
  });
}

/** ECR: GetAuthorizationToken gives base64("AWS:<password>"), the registry endpoint and the expiry. */
export function ecrTokenSource(ecr: EcrApi): TokenSource {
  return async () => {
    const out = await ecr.getAuthorizationToken({});
    const data = out.authorizationData?.[0];
    if (!data?.authorizationToken || !data.proxyEndpoint) {
      throw new FailureError("ECR GetAuthorizationToken answered without a token or registry endpoint.");
    }
    const decoded = Buffer.from(data.authorizationToken, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0)
      throw new FailureError("ECR GetAuthorizationToken answered with a token that is not user:password.");
    return {
      endpoint: data.proxyEndpoint,
      host: registryHost(data.proxyEndpoint),
      username: decoded.slice(0, colon),
      password: decoded.slice(colon + 1),
      ...(data.expiresAt ? { expiresAt: data.expiresAt } : {}),
      source: "ECR GetAuthorizationToken",
    };
  };
}

export interface RegistryLoginOptions {
  /** @default () => new Date() */
  now?: () => Date;
  /** Log in again this long before the token expires. @default 300000 (5 minutes) */
  refreshMarginMs?: number;
  /**
   * Check a fresh token against the registry (a login). Default: GET /v2/ with it; a refusal is a failure
   * that names the token's source.
   */
  verify?: (token: RegistryToken) => Promise<void>;
  events?: EventSink;
}

/** GET /v2/ with the token's credentials: the registry must answer and take them. */
export async function verifyToken(token: RegistryToken): Promise<void> {
  const client = new RegistryClient({
    endpoint: token.endpoint,
    credentials: async () => ({ username: token.username, password: token.password }),
    timeoutMs: 10_000,
  });
  try {
    await client.ping();
  } catch (e) {
    if (e instanceof RegistryUnauthorizedError) {
      throw new UsageError(`The registry ${token.host} refused the credentials from ${token.source}.`, {
        fix: "Check the registry's credentials (local: scripts/setup writes them; aws: the caller's ecr:* rights).",
        cause: e,
      });
    }
    if (e instanceof RegistryUnreachableError) {
      throw new FailureError(`The registry ${token.host} does not answer: ${e.message}`, {
        fix: "Is the registry running? `imgtool doctor` checks it (local: scripts/setup starts it).",
        cause: e,
      });
    }
    throw e;
  }
}

/** The login to one registry. */
export class RegistryLogin {
  private current: RegistryToken | undefined;
  private pending: Promise<RegistryToken> | undefined;
  /** Logins made so far (token fetched and checked). */
  count = 0;
  private readonly now: () => Date;
  private readonly margin: number;
  private readonly verify: (t: RegistryToken) => Promise<void>;
  private readonly events: EventSink;

  constructor(
    private readonly source: TokenSource,
    opts: RegistryLoginOptions = {},
  ) {
    this.now = opts.now ?? (() => new Date());
    this.margin = opts.refreshMarginMs ?? 300_000;
    this.verify = opts.verify ?? verifyToken;
    this.events = opts.events ?? ignoreEvents;
  }

  private fresh(t: RegistryToken | undefined): t is RegistryToken {
    return t !== undefined && (!t.expiresAt || t.expiresAt.getTime() - this.margin > this.now().getTime());
  }

  /** A valid token: the cached one, the login in flight, or a new login. */
  get(): Promise<RegistryToken> {
    if (this.fresh(this.current)) return Promise.resolve(this.current);
    return this.login("");
  }

  /**
   * Log in again because the registry refused `stale` (a 401 mid-push). When another caller already replaced
   * that token, answers with the newer one instead of logging in twice.
   */
  refresh(stale: RegistryToken | undefined): Promise<RegistryToken> {
    if (this.pending) return this.pending;
    if (this.current && this.current !== stale && this.fresh(this.current))
      return Promise.resolve(this.current);
    return this.login(" again: the registry refused the last token");
  }

  private login(why: string): Promise<RegistryToken> {
    this.pending ??= (async () => {
      try {
        let token: RegistryToken;
        try {
          token = await this.source();
        } catch (e) {
          if (errorName(e) === "CredentialsProviderError") {
            throw new UsageError("No AWS credentials found for ECR GetAuthorizationToken.", { cause: e });
          }
          throw e;
        }
        await this.verify(token);
        this.count++;
        this.current = token;
        this.events({
          type: "push",
          message:
            `logged in to ${token.host}${why} (${token.source}` +
            (token.expiresAt ? `, valid until ${token.expiresAt.toISOString()})` : ")"),
          data: {
            registry: token.host,
            expiresAt: token.expiresAt?.toISOString() ?? null,
            login: this.count,
          },
        });
        return token;
      } finally {
        this.pending = undefined;
      }
    })();
    return this.pending;
  }
}
