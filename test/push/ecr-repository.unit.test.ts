// Finding 9 of issue 10: the ECR repository's lifecycle policy can never expire an image a catalog label
// references (it expires only untagged images; every version imgtool pushes is tagged), an existing policy is
// compared as JSON (ECR may give it back re-formatted), and scanning is read as ECR applies it (repository or
// registry rules, basic or enhanced) through BatchGetRepositoryScanningConfiguration. The real SDK against the
// AWS stand-in, every call judged with the push actor's generated policy.
import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { makeAwsClients } from "../../src/aws/clients.js";
import { ecrApi } from "../../src/aws/ecr.js";
import { parseConfig } from "../../src/config/load.js";
import type { ImgtoolEvent } from "../../src/events.js";
import { ensureEcrRepository, lifecyclePolicy, sameJson } from "../../src/push/ecr-repository.js";
import { startAwsStandin, type AwsStandin } from "../support/aws-standin/index.js";
import { SETUP_KEY, actorCredentials, actorPolicies } from "../support/iam-referee.js";

const REGION = "us-east-1";

describe("ECR repository: lifecycle policy and scanning (AWS stand-in, push actor's policy)", () => {
  const config = parseConfig("pipeline: bench\n", { baseDir: "/p" }).config!;
  const name = config.aws.ecr.repositories["task-runner"];
  let standin: AwsStandin;
  let events: ImgtoolEvent[];

  before(async () => {
    standin = await startAwsStandin({ iam: { policies: actorPolicies(config), setupKey: SETUP_KEY } });
  });
  after(() => standin.close());
  beforeEach(() => {
    standin.reset();
    events = [];
  });
  const ecr = () =>
    ecrApi(
      makeAwsClients({
        region: REGION,
        endpoint: standin.endpoint,
        credentials: actorCredentials("push"),
        retryBaseDelayMs: 1,
      }).ecr,
    );
  const ensure = () =>
    ensureEcrRepository(ecr(), {
      name,
      keepImages: 5,
      pipeline: "bench",
      role: "task-runner",
      events: (e) => events.push(e),
    });
  const repo = () => standin.state.region(REGION).ecr.repositories.get(name)!;
  const scanWarnings = () => events.filter((e) => e.type === "warn" && /not scanned on push/.test(e.message));

  test("the policy selects only untagged images: a labelled (tagged) version can never expire", async () => {
    await ensure();
    const rules = (
      JSON.parse(repo().lifecyclePolicy!.text) as { rules: { selection: { tagStatus: string } }[] }
    ).rules;
    assert.ok(rules.length > 0);
    assert.deepEqual(
      rules.map((r) => r.selection.tagStatus),
      rules.map(() => "untagged"),
    );
  });

  test("an equal policy that ECR gives back re-formatted is not put again; a different one is replaced", async () => {
    await ensure();
    const puts = () => standin.count("PutLifecyclePolicy", "ecr");
    assert.equal(puts(), 1);
    // The same policy, keys in another order, indented: as JSON it is equal.
    const parsed = JSON.parse(lifecyclePolicy(5)) as { rules: Record<string, unknown>[] };
    const reordered = JSON.stringify(
      { rules: parsed.rules.map((r) => Object.fromEntries(Object.entries(r).reverse())) },
      null,
      2,
    );
    assert.notEqual(reordered, lifecyclePolicy(5));
    repo().lifecyclePolicy = { text: reordered, updatedAt: new Date() };
    await ensure();
    assert.equal(puts(), 1, "no put: the policy is already the wanted one");
    // The old policy (any image, tagged ones included): replaced.
    repo().lifecyclePolicy = {
      text: JSON.stringify({
        rules: [
          {
            rulePriority: 1,
            selection: { tagStatus: "any", countType: "imageCountMoreThan", countNumber: 5 },
            action: { type: "expire" },
          },
        ],
      }),
      updatedAt: new Date(),
    };
    await ensure();
    assert.equal(puts(), 2);
    assert.ok(sameJson(repo().lifecyclePolicy!.text, lifecyclePolicy(5)));
    assert.equal(sameJson("not json", lifecyclePolicy(5)), false);
  });

  test("scanning by a registry rule (basic or enhanced) counts; none at all is a warning", async () => {
    await ensure(); // created with scan on push
    standin.addEcrImage(REGION, "bench/other", { digest: `sha256:${"1".repeat(64)}` });
    repo().scanOnPush = false;
    const ecrState = standin.state.region(REGION).ecr;

    ecrState.registryScanning = {
      scanType: "BASIC",
      rules: [{ scanFrequency: "SCAN_ON_PUSH", filters: ["bench/*"] }],
    };
    await ensure();
    ecrState.registryScanning = {
      scanType: "ENHANCED",
      rules: [{ scanFrequency: "CONTINUOUS_SCAN", filters: ["*"] }],
    };
    await ensure();
    assert.equal(scanWarnings().length, 0, "scanned through the registry's rules");
    assert.ok(standin.count("BatchGetRepositoryScanningConfiguration", "ecr") >= 2);

    delete ecrState.registryScanning;
    await ensure();
    assert.equal(scanWarnings().length, 1);
    assert.match(scanWarnings()[0]!.message, new RegExp(name));
  });
});
