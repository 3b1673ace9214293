// Finding 6 of issue 10: a launch in a region other than home (--region) resolves the image reference from that
// region's own catalog. The push publishes the reference (the image stays in its home registry) in the catalog
// of every configured region, home first; a re-run after an interrupted publish finishes the regions that miss
// it, and leaves alone a region whose catalog knows it (a rollback there is respected). The real Catalog over
// SSM in the AWS stand-in, every call judged with the push actor's generated policy.
import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { makeAwsClients } from "../../src/aws/clients.js";
import { Catalog } from "../../src/catalog/catalog.js";
import { SsmStore } from "../../src/catalog/ssm-store.js";
import { parseConfig } from "../../src/config/load.js";
import type { RoleInputs } from "../../src/push/inputs.js";
import { Publisher, type Publishable } from "../../src/push/publish.js";
import { startAwsStandin, type AwsStandin } from "../support/aws-standin/index.js";
import { SETUP_KEY, actorCredentials, actorPolicies } from "../support/iam-referee.js";

const HOME = "us-east-1";
const OTHER = "eu-west-1";
const REF = `123456789012.dkr.ecr.${HOME}.amazonaws.com/bench/task-runner@sha256:${"a".repeat(64)}`;
const key = { role: "task-runner" as const, kind: "image" as const };

describe("push publishes the image reference in every region's catalog (AWS stand-in, push actor)", () => {
  const config = parseConfig(`pipeline: bench\naws:\n  regions: [${HOME}, ${OTHER}]\n`, {
    baseDir: "/p",
  }).config!;
  let standin: AwsStandin;
  let t = Date.UTC(2026, 11, 1, 3, 0, 0);
  before(async () => {
    standin = await startAwsStandin({ iam: { policies: actorPolicies(config), setupKey: SETUP_KEY } });
  });
  after(() => standin.close());
  beforeEach(() => standin.reset());

  const catalog = (region: string) =>
    new Catalog({
      store: new SsmStore(
        makeAwsClients({
          region,
          endpoint: standin.endpoint,
          credentials: actorCredentials("push"),
          retryBaseDelayMs: 1,
        }).ssm,
      ),
      prefix: config.aws.ssm_prefix,
      readBack: { attempts: 2, delayMs: 1 },
    });
  const inputs = (hash: string) =>
    ({
      role: "task-runner",
      inputsHash: hash,
      tag: `h-${hash}`,
      platforms: [{ platform: { platform: "linux/amd64" }, bases: [{ id: "sha256:base" }] }],
    }) as unknown as RoleInputs;
  const result = (reference: string): Publishable => ({
    role: "task-runner",
    reference,
    platforms: ["linux/amd64"],
    published: false,
  });
  const publisher = (regions: string[]) =>
    new Publisher({
      target: "aws",
      region: HOME,
      catalog: catalog(regions[0]!),
      otherCatalogs: regions.slice(1).map(catalog),
      now: () => new Date((t += 1000)),
    });
  const latestIn = async (region: string) => (await catalog(region).resolve([key])).found[0]?.value;
  const puts = (region: string) =>
    standin.requests.filter((q) => q.operation === "PutParameter" && q.region === region).length;

  test("a publish reaches home and the other region: a launch there resolves it from its own catalog", async () => {
    const r = result(REF);
    await publisher([HOME, OTHER]).publish(inputs("1111aaaa"), r, new Date(t), "rev");
    assert.equal(r.published, true);
    assert.equal(await latestIn(HOME), REF);
    assert.equal(await latestIn(OTHER), REF);
    const homeFirst = standin.requests.findIndex((q) => q.operation === "PutParameter" && q.region === HOME);
    const otherFirst = standin.requests.findIndex(
      (q) => q.operation === "PutParameter" && q.region === OTHER,
    );
    assert.ok(homeFirst >= 0 && homeFirst < otherFirst, "home first");
  });

  test("interrupted after home: the re-run publishes only where it is missing", async () => {
    await publisher([HOME]).publish(inputs("2222bbbb"), result(REF), new Date(t), "rev");
    assert.equal(await latestIn(OTHER), undefined, "the other region was not reached");
    const homePuts = puts(HOME);

    const again = result(REF);
    await publisher([HOME, OTHER]).publishIfMissing(inputs("2222bbbb"), again);
    assert.equal(await latestIn(OTHER), REF);
    assert.equal(puts(HOME), homePuts, "home already had it: no new version there");
    assert.equal(again.published, true);
  });

  test("a region whose catalog knows the reference (rolled back from it) is left as it is", async () => {
    const newer = REF.replace(/a{64}$/, "b".repeat(64));
    await publisher([HOME, OTHER]).publish(inputs("3333cccc"), result(REF), new Date(t), "rev");
    await publisher([OTHER]).publish(inputs("4444dddd"), result(newer), new Date(t), "rev");
    await catalog(OTHER).rollback(key);
    const otherPuts = puts(OTHER);
    await publisher([HOME, OTHER]).publishIfMissing(inputs("4444dddd"), result(newer));
    assert.equal(puts(OTHER), otherPuts, "known in the other region's history: not published again");
    assert.equal(await latestIn(HOME), newer, "home had never known it: published");
  });
});
