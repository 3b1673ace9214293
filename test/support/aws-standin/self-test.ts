/**
 * Shared harness of the AWS stand-in's self-tests (test/support/aws-standin/*.unit.test.ts, one file per
 * service): a stand-in per test file, reset before each test, SDK clients from the project's client factory.
 */
import { before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { makeAwsClients } from "../../../src/aws/clients.js";
import type { AwsClientOptions, AwsClients } from "../../../src/aws/clients.js";
import { startAwsStandin } from "./index.js";
import type { AwsStandin } from "./index.js";

export const REGION = "us-east-1";
export const OTHER = "eu-west-1";

/** The running stand-in (a live binding: set by useStandin's `before`). */
export let standin: AwsStandin;
const made: AwsClients[] = [];

/** Start a stand-in for this test file, reset it before each test, stop it and every client afterwards. */
export function useStandin(): void {
  // These protocol tests call every operation the stand-in knows, not just those imgtool makes: keep them out of
  // the log that test/iam/coverage.check.ts compares with the IAM policies. Per test file, in its hooks (not when
  // this module is imported: in a unit shard it is imported once for several files), and given back after.
  let callsLog: string | undefined;
  before(async () => {
    callsLog = process.env.IMGTOOL_AWS_CALLS_LOG;
    delete process.env.IMGTOOL_AWS_CALLS_LOG;
    standin = await startAwsStandin();
  });
  after(async () => {
    if (callsLog !== undefined) process.env.IMGTOOL_AWS_CALLS_LOG = callsLog;
    for (const c of made) {
      c.ec2.destroy();
      c.ssm.destroy();
      c.ecr.destroy();
      c.sts.destroy();
    }
    await standin.close();
  });
  beforeEach(() => standin.reset());
}

export function clients(region = REGION, extra: Partial<AwsClientOptions> = {}): AwsClients {
  const c = makeAwsClients({
    region,
    endpoint: standin.endpoint,
    credentials: async () => ({ accessKeyId: "AKIDTEST", secretAccessKey: "secret" }),
    retryBaseDelayMs: 5,
    ...extra,
  });
  made.push(c);
  return c;
}

/** Assert that a call fails with the given AWS error name (and, optionally, message pattern and status). */
export async function rejectsWith(
  p: Promise<unknown>,
  name: string,
  message?: RegExp,
  status?: number,
): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof Error, `expected an Error, got ${String(e)}`);
    assert.equal(e.name, name, `expected ${name}, got ${e.name}: ${e.message}`);
    if (message) assert.match(e.message, message);
    if (status !== undefined) {
      const meta = (e as { $metadata?: { httpStatusCode?: number } }).$metadata;
      assert.equal(meta?.httpStatusCode, status);
    }
    return true;
  });
}

export function sha256(text: string): string {
  return `sha256:${createHash("sha256").update(text).digest("hex")}`;
}

export function manifest(n: number): string {
  return JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.docker.distribution.manifest.v2+json",
    config: {
      mediaType: "application/vnd.docker.container.image.v1+json",
      size: 100,
      digest: `sha256:${"c".repeat(63)}${n}`,
    },
    layers: [
      {
        mediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip",
        size: 1000 + n,
        digest: `sha256:${"d".repeat(63)}${n}`,
      },
    ],
  });
}
