// The aws target through the AWS stand-in (the real SDK over HTTP): ECR's control plane (repository created
// with immutable tags, scan on push, encryption and the lifecycle policy; one GetAuthorizationToken for both
// roles), the push itself going to the real local registry that GetAuthorizationToken names, DescribeImages
// deciding "up to date" with no build and no login, and a 401 mid-push answered by logging in again.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { makeAwsClients } from "../../src/aws/clients.js";
import { ecrApi } from "../../src/aws/ecr.js";
import { lifecyclePolicy } from "../../src/push/ecr-repository.js";
import { RegistryLogin, ecrTokenSource } from "../../src/push/login.js";
import { pushImages } from "../../src/push/push.js";
import { startAwsStandin, type AwsStandin } from "../support/aws-standin/index.js";
import { actorCredentials, actorPolicies } from "../support/iam-referee.js";
import { makeBenchRepo } from "../support/fixtures/bench-repo.js";
import { isBlobUpload, startRegistryProxy } from "../support/registry-proxy.js";
import {
  engine,
  localDeps,
  password,
  registryAuth,
  stack,
  tempProject,
  type TempProject,
} from "./support.js";

const REGION = "us-east-1";
const repo = makeBenchRepo();
const closers: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c().catch(() => {});
});

async function awsSetup(registryEndpoint = `http://${stack.registry.endpoint}`, yaml = "") {
  // The aws target builds from base_image.aws: here the local base, since nothing can be pulled.
  const p = tempProject(
    "roles:\n" +
      `  task-runner:\n    ruby_bench:\n      repository: ${repo.path}\n    app:\n      base_image:\n        aws: imgtool/ruby:bookworm\n` +
      "  orchestrator:\n    app:\n      base_image:\n        aws: imgtool/ruby:bookworm\n" +
      `aws:\n  regions: [${REGION}]\n  ecr:\n    keep_images: 7\n${yaml}`,
  );
  // Every ECR call judged with `imgtool iam-policy --for push`.
  const standin = await startAwsStandin({
    registry: { endpoint: registryEndpoint, user: "AWS", password },
    iam: { policies: actorPolicies(p.config) },
  });
  closers.push(() => standin.close());
  const clients = makeAwsClients({
    region: REGION,
    endpoint: standin.endpoint,
    credentials: actorCredentials("push"),
    maxAttempts: 2,
  });
  const ecr = ecrApi(clients.ecr);
  const deps = () => {
    const base = localDeps(p);
    return { ...base, ecr, login: new RegistryLogin(ecrTokenSource(ecr), { events: base.events }) };
  };
  return { standin, p, deps };
}

const ecrRepo = (s: AwsStandin, p: TempProject, role: string) =>
  s.state.region(REGION).ecr.repositories.get(`${p.pipeline}/${role}`);

describe("push image, aws target (ECR through the AWS stand-in, pushes to the real registry)", () => {
  test("repositories created with immutable tags, scan on push, encryption and the lifecycle policy; one login; pull by the published digest", async () => {
    const { standin, p, deps } = await awsSetup();
    const d = deps();
    const { results } = await pushImages(
      { config: p.config, target: "aws", roles: ["task-runner", "orchestrator"] },
      d,
    );
    for (const r of results) {
      assert.equal(r.status, "pushed", r.error?.message);
      const ecr = ecrRepo(standin, p, r.role);
      assert.ok(ecr, `ECR repository for ${r.role}`);
      assert.equal(ecr.imageTagMutability, "IMMUTABLE");
      assert.equal(ecr.scanOnPush, true);
      assert.equal(ecr.encryption.encryptionType, "AES256");
      assert.equal(ecr.lifecyclePolicy?.text, lifecyclePolicy(7), "keep_images from config");
      assert.equal(r.uri, ecr.uri, "the URI is ECR's repositoryUri");
      // The stand-in answered GetAuthorizationToken with the real registry: the image is really there.
      await engine.removeImage(`${r.uri}:${r.tag}`);
      await engine.pull(r.reference!, { auth: registryAuth() });
      assert.equal(
        (await engine.inspectImage(r.reference!))?.labels["org.imgtool.inputs-hash"],
        r.inputsHash,
      );
    }
    assert.equal(standin.count("CreateRepository"), 2);
    assert.equal(standin.count("PutLifecyclePolicy"), 2);
    assert.equal(standin.count("GetAuthorizationToken"), 1, "both roles in parallel, one login");
    const { found } = await d.catalog.resolve([{ role: "orchestrator", kind: "image" }], { meta: true });
    assert.equal(found[0]?.value, results.find((r) => r.role === "orchestrator")?.reference);
    assert.equal(found[0]?.meta?.["target"], "aws");

    // Nothing changed: DescribeImages decides, with no build, no push and no login at all.
    standin.addEcrImage(REGION, `${p.pipeline}/orchestrator`, {
      digest: results.find((r) => r.role === "orchestrator")!.digest!,
      tags: [results.find((r) => r.role === "orchestrator")!.tag],
    });
    const before = standin.count("GetAuthorizationToken");
    const again = deps();
    const second = await pushImages({ config: p.config, target: "aws", roles: ["orchestrator"] }, again);
    assert.equal(second.results[0]!.status, "up-to-date");
    assert.equal(again.docker.builds, 0);
    assert.equal(again.docker.pushes, 0);
    assert.equal(standin.count("GetAuthorizationToken"), before, "no login needed");
    assert.ok(
      standin.requests.some(
        (r) => r.operation === "DescribeImages" && JSON.stringify(r.params).includes(second.results[0]!.tag),
      ),
    );
    assert.equal(standin.count("CreateRepository"), 2, "the repository was found, not created again");
    assert.equal(standin.count("PutLifecyclePolicy"), 2, "the policy was already right");
  });

  test("DescribeImages finds the tag: no build at all, even for a first run (and the catalog learns the digest)", async () => {
    const { standin, p, deps } = await awsSetup();
    const dry = await pushImages(
      { config: p.config, target: "aws", roles: ["orchestrator"], dryRun: true },
      deps(),
    );
    assert.equal(dry.results[0]!.status, "would-push");
    assert.equal(standin.count("CreateRepository"), 0, "--dry-run creates nothing");
    const digest = `sha256:${"ab".repeat(32)}`;
    standin.addEcrImage(REGION, `${p.pipeline}/orchestrator`, { digest, tags: [dry.results[0]!.tag] });
    const d = deps();
    const { results } = await pushImages({ config: p.config, target: "aws", roles: ["orchestrator"] }, d);
    assert.equal(results[0]!.status, "up-to-date");
    assert.equal(results[0]!.digest, digest);
    assert.equal(d.docker.builds, 0);
    assert.equal(results[0]!.published, true, "in the registry but not in the catalog: published now");
    assert.equal(
      (await d.catalog.resolve([{ role: "orchestrator", kind: "image" }])).found[0]?.value,
      results[0]!.reference,
    );
  });

  test("a loopback proxy standing in for an expiring token answers 401 once mid-push: imgtool gets a new ECR token and the push completes", async () => {
    const proxy = await startRegistryProxy(stack.registry.endpoint);
    closers.push(() => proxy.close());
    const { standin, p, deps } = await awsSetup(proxy.endpoint);
    // Refuse the first blob upload of the push (after the login check and the first HEADs have passed).
    proxy.unauthorizedOnce(isBlobUpload);
    const d = deps();
    const { results } = await pushImages({ config: p.config, target: "aws", roles: ["orchestrator"] }, d);
    const r = results[0]!;
    assert.equal(r.status, "pushed", r.error?.message);
    assert.equal(
      proxy.requests.filter((x) => x.faulted && x.status === 401).length,
      1,
      "the proxy refused once",
    );
    assert.equal(standin.count("GetAuthorizationToken"), 2, "logged in again after the 401");
    assert.equal(d.login.count, 2);
    assert.ok(d.events.events.some((e) => e.type === "warn" && /refused the token mid-push/.test(e.message)));
    assert.ok(r.published);
  });
});
