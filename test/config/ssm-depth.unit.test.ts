// SSM allows at most 15 levels in a parameter name. A secret's parameter (aws.api_key_parameter,
// secrets.<name>.aws_parameter) deeper than that is a config error naming the key, before any AWS call; the AWS
// stand-in answers such a name with SSM's own HierarchyLevelLimitExceededException, so the bound is the one SSM enforces.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { PutParameterCommand } from "@aws-sdk/client-ssm";
import { makeAwsClients } from "../../src/aws/clients.js";
import { parseConfig } from "../../src/config/load.js";
import { startAwsStandin, type AwsStandin } from "../support/aws-standin/index.js";

const levels = (n: number) => Array.from({ length: n }, (_, i) => `/l${i + 1}`).join("");

describe("SSM parameter hierarchy depth: config errors, and SSM's answer (AWS stand-in)", () => {
  let standin: AwsStandin;
  before(async () => {
    standin = await startAwsStandin();
  });
  after(() => standin.close());

  test("a secret parameter deeper than 15 levels is a config error naming the key; 15 levels fit", () => {
    for (const [yaml, key] of [
      [`aws:\n  api_key_parameter: ${levels(16)}\n`, "aws.api_key_parameter"],
      [`secrets:\n  seed-token:\n    aws_parameter: ${levels(16)}\n`, "secrets.seed-token.aws_parameter"],
    ] as const) {
      const r = parseConfig(yaml, { baseDir: "/p" });
      assert.equal(r.config, undefined, key);
      assert.ok(
        r.errors.some((e) => e.includes(key) && /too many levels: SSM allows at most 15/.test(e)),
        r.errors.join("\n"),
      );
    }
    assert.ok(parseConfig(`aws:\n  api_key_parameter: ${levels(15)}\n`, { baseDir: "/p" }).config);
  });

  test("the stand-in, like SSM, refuses 16 levels and takes 15", async () => {
    const { ssm } = makeAwsClients({
      region: "us-east-1",
      endpoint: standin.endpoint,
      credentials: async () => ({ accessKeyId: "AKID", secretAccessKey: "s" }),
      maxAttempts: 1,
    });
    const put = (Name: string) =>
      ssm.send(new PutParameterCommand({ Name, Value: "v", Type: "SecureString", Overwrite: true }));
    await assert.rejects(
      put(levels(16)),
      (e: unknown) =>
        (e as Error).name === "HierarchyLevelLimitExceededException" &&
        /maximum of 15 levels/.test((e as Error).message),
    );
    assert.equal((await put(levels(15))).Version, 1);
    ssm.destroy();
  });
});
