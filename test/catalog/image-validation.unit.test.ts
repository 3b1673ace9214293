// Finding 4 of issue 10: SSM validates an aws:ec2:image value after PutParameter has answered; until then the
// new version cannot be read. The publish's read-back waits with doubling backoff (about 90 s in all) instead
// of failing, and fails only when the value is still missing after that. The AWS stand-in keeps the version
// unreadable for `imageValidationMs` of its clock; the catalog's sleeper advances that clock (no real waiting).
import { after, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { makeAwsClients } from "../../src/aws/clients.js";
import { Catalog } from "../../src/catalog/catalog.js";
import { SsmStore } from "../../src/catalog/ssm-store.js";
import { FailureError } from "../../src/errors.js";
import { startAwsStandin, type AwsStandin } from "../support/aws-standin/index.js";

const REGION = "us-east-1";
const key = { role: "task-runner", kind: "ami" as const, arch: "x86_64" as const };
const meta = (n: number) => ({
  version: `v20261201-00000${n}-abcdef0${n}`,
  inputsHash: `h${n}`,
  builtAt: "2026-12-01T00:00:00Z",
});

describe("catalog read-back of aws:ec2:image through SSM's asynchronous validation (AWS stand-in, injected clock)", () => {
  let standin: AwsStandin | undefined;
  let clock = Date.UTC(2026, 11, 1);
  let sleeps: number[] = [];

  after(() => standin?.close());
  beforeEach(() => {
    sleeps = [];
  });
  /** A stand-in whose SSM takes `ms` (of the shared clock) to validate an aws:ec2:image value. */
  async function withValidation(ms: number): Promise<AwsStandin> {
    await standin?.close();
    standin = await startAwsStandin({ now: () => new Date(clock), imageValidationMs: ms });
    return standin;
  }

  // The catalog as src/catalog/open.ts makes it: the default read-back; only the sleeper is injected.
  const catalog = () =>
    new Catalog({
      store: new SsmStore(
        makeAwsClients({
          region: REGION,
          endpoint: standin!.endpoint,
          credentials: async () => ({ accessKeyId: "AKID", secretAccessKey: "s" }),
          retryBaseDelayMs: 1,
        }).ssm,
      ),
      prefix: "/imgtool/bench",
      sleep: async (ms) => {
        sleeps.push(ms);
        clock += ms;
      },
    });
  test("a value that becomes readable after 40 s is waited for (1, 2, 4, 8, 16, 32 s) and labelled", async () => {
    const standin = await withValidation(40_000);
    const ami = standin.addImage(REGION, { name: "built", architecture: "x86_64" }).imageId;
    const cat = catalog();
    await cat.publish(key, ami, meta(1), { dataType: "aws:ec2:image" });
    assert.deepEqual(sleeps, [1000, 2000, 4000, 8000, 16000, 32000]);
    const { found } = await cat.resolve([key], { meta: true });
    assert.equal(found[0]!.value, ami);
    assert.equal(found[0]!.meta?.version, meta(1).version);
  });

  test("still unreadable after about 90 s: a clear failure, nothing labelled", async () => {
    const standin = await withValidation(120_000);
    const ami = standin.addImage(REGION, { name: "built", architecture: "x86_64" }).imageId;
    await assert.rejects(
      catalog().publish(key, ami, meta(2), { dataType: "aws:ec2:image" }),
      (e: unknown) =>
        e instanceof FailureError &&
        e.message.includes(`did not keep ${ami}`) &&
        /not readable after 90 s/.test(e.message) &&
        /available in this region/.test(e.fix ?? ""),
    );
    assert.equal(
      sleeps.reduce((a, b) => a + b, 0),
      90_000,
      "bounded: the waits add up to 90 s",
    );
    assert.equal(standin.count("LabelParameterVersion", "ssm"), 0);
  });

  test("an AMI that is not available when the validation runs is dropped (the stand-in as SSM)", async () => {
    const standin = await withValidation(10_000);
    const ami = standin.addImage(REGION, { name: "built", architecture: "x86_64" }).imageId;
    Object.assign(standin.state.region(REGION).ec2.images.get(ami)!, {
      state: "pending",
      pendingReads: 1000,
    });
    await assert.rejects(catalog().publish(key, ami, meta(3), { dataType: "aws:ec2:image" }), FailureError);
    assert.match(
      standin.state.region(REGION).ssm.droppedWrites[0]?.reason ?? "",
      /is pending, not available/,
    );
  });
});
