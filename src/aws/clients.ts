/**
 * The one place where AWS SDK clients are constructed: from region, profile and endpoint.
 * Every other module receives clients (or the narrow interfaces in ./types.ts) as dependencies.
 *
 * This module imports the SDK: import it lazily (`await import(...)`) from commands that need AWS,
 * so that `imgtool --help` and the local target never pay for loading it.
 */
import { EC2Client } from "@aws-sdk/client-ec2";
import { ECRClient } from "@aws-sdk/client-ecr";
import { SSMClient } from "@aws-sdk/client-ssm";
import { STSClient, GetCallerIdentityCommand } from "@aws-sdk/client-sts";
import { fromNodeProviderChain } from "@aws-sdk/credential-providers";
import type { AwsCredentialIdentityProvider } from "@smithy/types";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { ConfiguredRetryStrategy } from "@smithy/util-retry";
import { UsageError, errorName } from "../errors.js";
import { expiredCredentialsMiddleware, renewableCredentials } from "./credentials.js";

export interface AwsClientOptions {
  /** Region of every client made by this factory (one factory per region). */
  region: string;
  /** Named profile from ~/.aws/config; default: the SDK's default chain (AWS_PROFILE, then "default"). */
  profile?: string;
  /** Endpoint override, e.g. `http://127.0.0.1:4566`. Default: the SDK's (which honours AWS_ENDPOINT_URL). */
  endpoint?: string;
  /** Attempts per call, retries of throttling, 5xx and timeouts included. @default 5 */
  maxAttempts?: number;
  /** First retry delay; doubles each attempt (capped at 20 s). @default 100 */
  retryBaseDelayMs?: number;
  /** Time allowed for one HTTP answer before the attempt counts as timed out. @default 30000 */
  requestTimeoutMs?: number;
  /** Credentials provider; default: the SDK's Node provider chain for `profile`. */
  credentials?: AwsCredentialIdentityProvider;
}

export interface AwsClients {
  readonly region: string;
  readonly ec2: EC2Client;
  readonly ssm: SSMClient;
  readonly ecr: ECRClient;
  readonly sts: STSClient;
}

/** Where the SDK looks for credentials, in order: named in the error when none are found. */
export const CREDENTIAL_CHAIN =
  "environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), SSO and shared files (~/.aws/credentials, ~/.aws/config for " +
  "AWS_PROFILE or --profile), web identity (AWS_WEB_IDENTITY_TOKEN_FILE), credential_process, container and " +
  "instance metadata (IMDS)";

export function makeAwsClients(opts: AwsClientOptions): AwsClients {
  const maxAttempts = opts.maxAttempts ?? 5;
  const base = opts.retryBaseDelayMs ?? 100;
  // One cache for the four clients; renewed before expiry, and once more when a service says it expired.
  const credentials = renewableCredentials(
    opts.credentials ?? fromNodeProviderChain(opts.profile ? { profile: opts.profile } : {}),
  );
  const renewing = <C extends { middlewareStack: { add(mw: never, o: object): void } }>(client: C): C => {
    client.middlewareStack.add(expiredCredentialsMiddleware(credentials) as never, {
      step: "initialize",
      name: "imgtoolExpiredCredentials",
    });
    return client;
  };
  const common = {
    region: opts.region,
    credentials,
    ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
    retryStrategy: new ConfiguredRetryStrategy(maxAttempts, (attempt: number) =>
      Math.min(base * 2 ** (attempt - 1), 20_000),
    ),
    requestHandler: new NodeHttpHandler({
      requestTimeout: opts.requestTimeoutMs ?? 30_000,
      // Without this, the handler only warns when the timeout passes and keeps waiting.
      throwOnRequestTimeout: true,
      connectionTimeout: Math.min(opts.requestTimeoutMs ?? 30_000, 10_000),
    }),
  };
  let ec2: EC2Client | undefined;
  let ssm: SSMClient | undefined;
  let ecr: ECRClient | undefined;
  let sts: STSClient | undefined;
  return {
    region: opts.region,
    get ec2() {
      return (ec2 ??= renewing(new EC2Client(common)));
    },
    get ssm() {
      return (ssm ??= renewing(new SSMClient(common)));
    },
    get ecr() {
      return (ecr ??= renewing(new ECRClient(common)));
    },
    get sts() {
      return (sts ??= renewing(new STSClient(common)));
    },
  };
}

/**
 * Resolve credentials before any real call, so a missing credential is a usage error (exit 2) that names
 * the chain, not a failure halfway through a bake.
 */
export async function assertCredentials(clients: AwsClients): Promise<{ account: string; arn: string }> {
  try {
    const id = await clients.sts.send(new GetCallerIdentityCommand({}));
    return { account: id.Account ?? "", arn: id.Arn ?? "" };
  } catch (e) {
    if (errorName(e) === "CredentialsProviderError") {
      throw new UsageError(`No AWS credentials found for the aws target (region ${clients.region}).`, {
        fix: `Provide credentials through one of: ${CREDENTIAL_CHAIN}. Or use --target local.`,
        cause: e,
      });
    }
    throw e;
  }
}
