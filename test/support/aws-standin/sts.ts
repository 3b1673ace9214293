/**
 * STS (awsQuery protocol, XML answers) operations of the AWS stand-in: GetCallerIdentity; and the session
 * credentials the stand-in issues, which expire as STS's do: a request signed with an expired session token is
 * refused by every service with its own error (EC2 `RequestExpired`, STS `ExpiredToken`, SSM and ECR
 * `ExpiredTokenException`), one with an unknown token as an invalid token.
 */
import { randomUUID } from "node:crypto";
import { ServiceError } from "./errors.js";
import type { QueryParams } from "./params.js";
import type { HandlerContext } from "./state.js";
import type { Service } from "./types.js";
import type { XmlObject } from "./xml.js";

/** Returns the children of `<ActionResult>`. */
export type StsHandler = (ctx: HandlerContext, params: QueryParams) => XmlObject;

export function callerArn(accountId: string): string {
  return `arn:aws:iam::${accountId}:user/standin`;
}

export const stsHandlers: Readonly<Record<string, StsHandler>> = {
  GetCallerIdentity: (ctx) => ({
    Arn: callerArn(ctx.options.accountId),
    UserId: "AIDASTANDINEXAMPLE01",
    Account: ctx.options.accountId,
  }),
};

export interface SessionCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  /** On the stand-in's clock (`options.now`). */
  expiration: Date;
}

/** Session credentials issued by the stand-in, by session token. */
export class Sessions {
  private readonly byToken = new Map<string, { accessKeyId: string; expiresAt: number }>();

  /** Credentials acting as `accessKeyId` (an actor's key: its policy applies) for `ttlSeconds` from `now`. */
  issue(accessKeyId: string, ttlSeconds: number, now: Date): SessionCredentials {
    const sessionToken = `FwoGZXIvYXdzEStandin${randomUUID().replace(/-/g, "")}`;
    const expiration = new Date(now.getTime() + ttlSeconds * 1000);
    this.byToken.set(sessionToken, { accessKeyId, expiresAt: expiration.getTime() });
    return { accessKeyId, secretAccessKey: "secret", sessionToken, expiration };
  }

  /** Why a request signed by `accessKeyId` with `token` is refused at `now`; undefined when it is not. */
  refusal(
    service: Service,
    accessKeyId: string,
    token: string | undefined,
    now: Date,
  ): ServiceError | undefined {
    if (token === undefined) return undefined; // long-term keys do not expire
    const session = this.byToken.get(token);
    if (!session || session.accessKeyId !== accessKeyId) {
      if (service === "ec2")
        return new ServiceError(
          "AuthFailure",
          "AWS was not able to validate the provided access credentials",
          401,
        );
      if (service === "sts")
        return new ServiceError(
          "InvalidClientTokenId",
          "The security token included in the request is invalid.",
          403,
        );
      return new ServiceError(
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
      );
    }
    if (now.getTime() < session.expiresAt) return undefined;
    if (service === "ec2") return new ServiceError("RequestExpired", "Request has expired.", 400);
    if (service === "sts")
      return new ServiceError("ExpiredToken", "The security token included in the request is expired", 403);
    return new ServiceError("ExpiredTokenException", "The security token included in the request is expired");
  }

  clear(): void {
    this.byToken.clear();
  }
}
