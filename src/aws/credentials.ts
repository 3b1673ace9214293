/**
 * Credentials that outlive a long run. Session credentials (a CI role session, SSO, an assumed role, instance
 * metadata) expire; a pipeline may run longer than the session. Every client of one factory shares one
 * {@link renewableCredentials} provider: it renews credentials shortly before their known expiry, and when a
 * service still refuses them as expired (EC2 `RequestExpired`, STS `ExpiredToken`, SSM/ECR
 * `ExpiredTokenException`) the {@link expiredCredentialsMiddleware} renews them once and repeats the call. When
 * the source cannot renew (the same, expired, credentials come back: environment variables, a static profile),
 * the call fails with a clear error that names the fix instead of the service's bare code.
 */
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from "@smithy/types";
import { FailureError, errorName } from "../errors.js";

/** The codes AWS services answer for expired credentials (as the AWS SDK for Java v2 lists them). */
export const EXPIRED_CREDENTIAL_ERRORS = ["ExpiredToken", "ExpiredTokenException", "RequestExpired"];

/** Renew credentials this long before their expiry (the AWS SDK's own margin). */
const RENEW_BEFORE_MS = 5 * 60_000;

export type RenewableCredentials = AwsCredentialIdentityProvider & {
  /** Tells the SDK not to wrap it in its own cache (which could not be told to renew). */
  memoized: true;
};

/**
 * One cache over `source` for every client of a factory: the identity is asked for once, again when it is
 * within 5 minutes of its expiry, and whenever a caller passes `{ forceRefresh: true }` (passed on to `source`,
 * so the SDK's own chain renews too).
 */
export function renewableCredentials(
  source: AwsCredentialIdentityProvider,
  now: () => number = Date.now,
): RenewableCredentials {
  let current: Promise<AwsCredentialIdentity> | undefined;
  const provider = ((options?: { forceRefresh?: boolean }) => {
    const stale = async (p: Promise<AwsCredentialIdentity>) => {
      const id = await p.catch(() => undefined);
      return !id || (id.expiration !== undefined && id.expiration.getTime() - now() < RENEW_BEFORE_MS);
    };
    const fetch = () => {
      const p = (source as (o?: { forceRefresh?: boolean }) => Promise<AwsCredentialIdentity>)(
        options?.forceRefresh ? { forceRefresh: true } : undefined,
      );
      current = p;
      p.catch(() => {
        if (current === p) current = undefined;
      });
      return p;
    };
    if (!current || options?.forceRefresh) return fetch();
    const cached = current;
    return stale(cached).then((renew) => (renew ? fetch() : cached));
  }) as RenewableCredentials;
  provider.memoized = true;
  return provider;
}

interface MiddlewareContext {
  clientName?: string;
  commandName?: string;
}

/**
 * A client middleware (initialize step: around retries and signing): a call refused for expired credentials
 * renews them and is made once more; if the renewal brings nothing new, or the repeat is refused too, it fails
 * with a {@link FailureError} that says so and names the fix.
 */
export function expiredCredentialsMiddleware(credentials: RenewableCredentials) {
  return <Output extends object>(next: (args: unknown) => Promise<Output>, context: MiddlewareContext) =>
    async (args: unknown): Promise<Output> => {
      try {
        return await next(args);
      } catch (e) {
        if (!EXPIRED_CREDENTIAL_ERRORS.includes(errorName(e) ?? "")) throw e;
        const used = await credentials().catch(() => undefined);
        const fresh = await credentials({ forceRefresh: true }).catch(() => undefined);
        const renewed =
          fresh !== undefined &&
          (fresh.accessKeyId !== used?.accessKeyId || fresh.sessionToken !== used?.sessionToken);
        if (!renewed) throw expiredError(e, context, used);
        try {
          return await next(args);
        } catch (again) {
          if (EXPIRED_CREDENTIAL_ERRORS.includes(errorName(again) ?? ""))
            throw expiredError(again, context, fresh);
          throw again;
        }
      }
    };
}

function expiredError(e: unknown, context: MiddlewareContext, used: AwsCredentialIdentity | undefined) {
  const name = errorName(e) ?? "expired";
  const call = `${(context.clientName ?? "AWS").replace(/Client$/, "")} ${(context.commandName ?? "call").replace(/Command$/, "")}`;
  const ended = used?.expiration ? ` (the session ended at ${used.expiration.toISOString()})` : "";
  const clock =
    name === "RequestExpired" ? " (or this machine's clock is more than 5 minutes off: check NTP)" : "";
  return new FailureError(
    `The AWS credentials expired${ended}: ${call} was refused (${name}: ${(e as Error).message})${clock}, and imgtool could not renew them.`,
    {
      fix:
        "They come from a source that does not renew (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN in the " +
        "environment, or static keys in a profile). In the workflow, make the role session as long as the job " +
        "(role-duration-seconds of aws-actions/configure-aws-credentials, at most the role's MaxSessionDuration); " +
        "locally, use a source the SDK renews (an SSO or role_arn profile with --profile). Then run again: what was " +
        "already published stays published.",
      cause: e,
    },
  );
}
