// Finding 1 of issue 10: the aws bake's pre-load pull inside the build instance must be authenticated. The real
// SDK against the AWS stand-in (every call judged with the bake actor's generated policy), a recording Packer
// stand-in that RUNS the provisioning step packer/scripts/preload-image.sh with the environment build.pkr.hcl
// gives it, a Docker CLI stand-in (test/bake/fixtures/docker-standin.mjs) and a loopback registry that requires
// the ECR token's credentials and lets the IAM referee decide the pull (ecr:BatchGetImage for the bake actor).
import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { makeAwsClients } from "../../src/aws/clients.js";
import { Ec2Images } from "../../src/aws/ec2.js";
import { ecrApi } from "../../src/aws/ecr.js";
import { bakeRole, type BakeDeps } from "../../src/bake/bake.js";
import { ecrPreloadLogin, makeAwsBakeOps } from "../../src/bake/aws-ops.js";
import { Catalog } from "../../src/catalog/catalog.js";
import { SsmStore } from "../../src/catalog/ssm-store.js";
import { parseConfig, type Config } from "../../src/config/load.js";
import type { Role } from "../../src/config/schema.js";
import { stackRepositories } from "../../src/bake/stack-images.js";
import type { ImgtoolEvent } from "../../src/events.js";
import { policyFor } from "../../src/iam/policies.js";
import { makePackerRunner } from "../../src/packer/runner.js";
import { ecrRegionOf } from "../../src/config/registry.js";
import { renderBake, writeRendered } from "../../src/render/packer.js";
import { startAwsStandin, type AwsStandin } from "../support/aws-standin/index.js";
import { startAuthRegistry, type AuthRegistry } from "../support/auth-registry.js";
import { SETUP_KEY, actorCredentials, actorPolicies, evaluate } from "../support/iam-referee.js";

const HOME = "us-east-1";
const ACCOUNT = "123456789012";
const FAKE_PACKER = new URL("./fixtures/recording-packer.mjs", import.meta.url).pathname;
const FAKE_DOCKER = new URL("./fixtures/docker-standin.mjs", import.meta.url).pathname;
const PASSWORD = "ecr-token-password-9f8e7d6c5b4a";
const OTHER_ACCOUNT = "210987654321";

describe("aws bake pre-load: an ECR token reaches the pull (recording Packer stand-in runs preload-image.sh, Docker CLI stand-in, loopback registry)", () => {
  // The orchestrator is a Compose stack whose third-party image comes from stack.registry.aws: another registry
  // host (a pull-through cache, or another account's ECR, in the same region), served by a second loopback registry.
  const dir = mkdtempSync(path.join(tmpdir(), "imgtool-bake-preload-config-"));
  writeFileSync(
    path.join(dir, "compose.yaml"),
    "services:\n  db:\n    image: postgres:15\n  web:\n    build: .\n    depends_on: [db]\n",
  );
  let config: Config;
  let repo: string;
  let cache: AuthRegistry;
  let standin: AwsStandin;
  let registry: AuthRegistry;
  let tmp: string;

  before(async () => {
    // The cache decides a pull as ECR would for its account: the bake actor's policy for this config (with the
    // stack's repositories, as `iam-policy --for bake` writes it), judged by the referee.
    cache = await startAuthRegistry({
      user: "AWS",
      password: PASSWORD,
      authorize: async (repository) =>
        (
          await evaluate(policyFor("bake", config, { stackRepositories: await stackRepositories(config) }), {
            action: "ecr:BatchGetImage",
            resource: `arn:aws:ecr:${HOME}:${OTHER_ACCOUNT}:repository/${repository}`,
          })
        ).allowed,
    });
    const base = `      aws: { owner: "${ACCOUNT}", name: { x86_64: "al2023-ami-*-x86_64", arm64: "al2023-ami-*-arm64" } }`;
    config = parseConfig(
      [
        "pipeline: bench",
        "roles:",
        "  task-runner:",
        "    instance_types: [c7i.large]",
        "    ruby_bench: { repository: https://example.invalid/ruby-bench.git, ref: main }",
        "    base:",
        base,
        "  orchestrator:",
        "    ruby_bench: { repository: https://example.invalid/ruby-bench.git, ref: main }",
        "    base:",
        base,
        `    stack: { file: compose.yaml, app_services: [web], registry: { aws: "${cache.host}/docker-hub" } }`,
        "aws:",
        `  regions: [${HOME}]`,
      ].join("\n"),
      { baseDir: dir },
    ).config!;
    repo = config.aws.ecr.repositories["task-runner"];
    // ECR decides a pull by the token's principal: here, the bake actor's generated policy, judged by the referee.
    registry = await startAuthRegistry({
      user: "AWS",
      password: PASSWORD,
      authorize: async (repository) =>
        (
          await evaluate(policyFor("bake", config), {
            action: "ecr:BatchGetImage",
            resource: `arn:aws:ecr:${HOME}:${ACCOUNT}:repository/${repository}`,
          })
        ).allowed,
    });
    standin = await startAwsStandin({
      iam: { policies: actorPolicies(config), setupKey: SETUP_KEY },
      registry: { endpoint: registry.endpoint, user: "AWS", password: PASSWORD },
    });
  });
  after(async () => {
    await standin.close();
    await registry.close();
    await cache.close();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    standin.reset();
    tmp = mkdtempSync(path.join(tmpdir(), "imgtool-bake-preload-"));
  });

  const clients = (region: string, actor: "bake" | "setup") =>
    makeAwsClients({
      region,
      endpoint: standin.endpoint,
      credentials: actorCredentials(actor),
      retryBaseDelayMs: 5,
    });
  const catalog = (actor: "bake" | "setup") =>
    new Catalog({
      store: new SsmStore(clients(HOME, actor).ssm),
      prefix: "/imgtool/bench",
      readBack: { attempts: 3, delayMs: 5 },
    });

  async function setUp(imageRepo = repo, role: Role = "task-runner") {
    standin.addImage(HOME, { name: "al2023-ami-2026.1-x86_64", architecture: "x86_64" });
    const built = standin.addImage(HOME, { name: "built-x86_64", architecture: "x86_64" }).imageId;
    const digest = registry.addManifest(
      imageRepo,
      JSON.stringify({ schemaVersion: 2, layers: [], repo: imageRepo }),
    );
    const imageRef = `${registry.host}/${imageRepo}@${digest}`;
    await catalog("setup").publish({ role, kind: "image" }, imageRef, {
      version: "v20261201-000000-aaaaaaaa",
      inputsHash: "a",
      builtAt: "2026-12-01T00:00:00Z",
    });
    const bin = path.join(tmp, "bin");
    mkdirSync(bin);
    symlinkSync(FAKE_DOCKER, path.join(bin, "docker"));
    const events: ImgtoolEvent[] = [];
    const deps: BakeDeps = {
      config,
      events: (e) => events.push(e),
      packer: makePackerRunner(FAKE_PACKER),
      packerVersion: "Packer v1.11.2",
      render: renderBake,
      writeRendered,
      catalog: async () => catalog("bake"),
      resolveCommit: async () => "c".repeat(40),
      gitRevision: async () => "0123456789abcdef",
      ops: makeAwsBakeOps({
        config,
        events: () => {},
        ec2: async (r) => new Ec2Images(clients(r, "bake").ec2, r),
        wait: { consecutive: 1, intervalMs: 1, sleep: async () => {} },
      }),
      // What src/cli/deps.ts hands the aws bake.
      registryLogin: ecrPreloadLogin({
        ecr: async (r) => ecrApi(clients(r, "bake").ecr),
        homeRegion: HOME,
        events: (e) => events.push(e),
      }),
      buildRoot: tmp,
      packerEnv: {
        FAKE_PACKER_LOG: path.join(tmp, "packer.log"),
        FAKE_PACKER_AMIS: `x86_64=${built}`,
        FAKE_PACKER_RUN_STEPS: "preload-image",
        FAKE_DOCKER_LOG: path.join(tmp, "docker.log"),
        AWS_REGION: HOME,
        PATH: `${bin}:${process.env.PATH}`,
      },
    };
    return { deps, events, imageRef, digest };
  }

  test("the bake gets an ECR token with its own credentials; the step logs in on stdin, pulls by digest, leaves no credentials", async () => {
    const { deps, events, imageRef } = await setUp();
    const r = await bakeRole("task-runner", deps);
    assert.equal(r.status, "built");
    assert.equal(r.preloadedImage, imageRef);

    // The token came from GetAuthorizationToken, asked (and allowed) as the bake actor.
    const tokenCalls = standin.requests.filter((q) => q.operation === "GetAuthorizationToken");
    assert.equal(tokenCalls.length, 1);
    assert.match(tokenCalls[0]!.headers["authorization"] ?? "", /Credential=AKIDBAKE\//);

    // The step pulled with the token: every manifest request carried the credentials, and was answered 200.
    const pulls = registry.requests.filter((q) => q.path.includes("/manifests/"));
    assert.deepEqual(
      pulls.map((q) => [q.status, q.authenticated]),
      [[200, true]],
    );
    const dir = path.join(tmp, `task-runner-${r.version}`);
    const preload = JSON.parse(
      readFileSync(path.join(dir, "instance-root/etc/imgtool/preload.json"), "utf8"),
    );
    assert.equal(preload.status, "pulled");
    assert.equal(preload.image, imageRef);
    assert.ok(
      !existsSync(path.join(dir, "instance-root/root/.docker/config.json")),
      "no credentials stay on the image",
    );

    // Docker was called with the password on stdin only; the password is in no file of the build folder and in
    // no line of Packer's output.
    const dockerCalls = readFileSync(path.join(tmp, "docker.log"), "utf8");
    assert.match(dockerCalls, /"login","--username","AWS","--password-stdin"/);
    assert.ok(!dockerCalls.includes(PASSWORD));
    for (const f of ["build.env", "variables.pkr.hcl", "build.pkr.hcl", "imgtool.pkrvars.hcl"])
      assert.ok(!readFileSync(path.join(dir, f), "utf8").includes(PASSWORD), f);
    assert.ok(!JSON.stringify(events).includes(PASSWORD), "never in an event (Packer's output included)");
    assert.ok(
      readFileSync(path.join(tmp, "packer.log"), "utf8").includes('{"step":"preload-image","exit":0}'),
      "the step ran",
    );
  });

  test("an orchestrator stack: its image is resolved in the stack's registry (another host) and pre-loaded with the same token; the referee judges each pull", async () => {
    const orchestratorRepo = config.aws.ecr.repositories.orchestrator;
    const pg = cache.addManifest(
      "docker-hub/library/postgres",
      JSON.stringify({ schemaVersion: 2, layers: [], repo: "postgres" }),
      "15",
    );
    const pgRef = `${cache.host}/docker-hub/library/postgres@${pg}`;
    const { deps, imageRef } = await setUp(orchestratorRepo, "orchestrator");
    const r = await bakeRole("orchestrator", deps);
    assert.equal(r.status, "built");
    assert.equal(r.preloadedImage, imageRef);

    // The bake resolved postgres:15 in the cache (with the token), and the step pulled it by that digest: every
    // manifest request carried the credentials and was allowed.
    assert.deepEqual(
      cache.requests
        .filter((q) => q.path.includes("/manifests/") && q.authenticated)
        .map((q) => [q.method, q.path, q.status]),
      [
        ["HEAD", "/v2/docker-hub/library/postgres/manifests/15", 200],
        ["GET", `/v2/docker-hub/library/postgres/manifests/${pg}`, 200],
      ],
    );
    const dockerCalls = readFileSync(path.join(tmp, "docker.log"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as string[]);
    const login = (host: string) => ["login", "--username", "AWS", "--password-stdin", host];
    assert.deepEqual(
      dockerCalls.filter((c) => c[0] === "login" || c[0] === "logout"),
      [login(registry.endpoint), login(cache.host), ["logout", registry.endpoint], ["logout", cache.host]],
    );
    assert.deepEqual(
      dockerCalls.filter((c) => c[0] === "pull").map((c) => c.at(-1)),
      [imageRef, pgRef],
    );
    const build = path.join(tmp, `orchestrator-${r.version}`);
    assert.ok(
      !existsSync(path.join(build, "instance-root/root/.docker/config.json")),
      "no credentials stay on the image",
    );

    // The referee's own word on that policy: the stack's repository at the cache, nothing else there.
    const bake = policyFor("bake", config, { stackRepositories: await stackRepositories(config) });
    const at = (r: string) => `arn:aws:ecr:${HOME}:${OTHER_ACCOUNT}:repository/${r}`;
    const pull = async (r: string) =>
      (await evaluate(bake, { action: "ecr:BatchGetImage", resource: at(r) })).allowed;
    assert.equal(await pull("docker-hub/library/postgres"), true);
    assert.equal(await pull("docker-hub/library/redis"), false);
  });

  test("the referee: the bake actor may get a token and pull its own repositories, not another pipeline's", async () => {
    const bake = policyFor("bake", config);
    const arn = (r: string) => `arn:aws:ecr:${HOME}:${ACCOUNT}:repository/${r}`;
    const allowed = async (action: string, resource: string) =>
      (await evaluate(bake, { action, resource })).allowed;
    assert.equal(await allowed("ecr:GetAuthorizationToken", "*"), true);
    for (const action of [
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
      "ecr:BatchCheckLayerAvailability",
    ]) {
      assert.equal(await allowed(action, arn(repo)), true, action);
      assert.equal(await allowed(action, arn("other-pipeline/task-runner")), false, action);
    }
  });

  test("the token is asked in the region of the image's registry", () => {
    assert.equal(
      ecrRegionOf(`${ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/bench/task-runner@sha256:00`),
      "eu-west-1",
    );
    assert.equal(ecrRegionOf(`https://${ACCOUNT}.dkr.ecr.cn-north-1.amazonaws.com.cn`), "cn-north-1");
    assert.equal(ecrRegionOf("127.0.0.1:5000/bench/task-runner@sha256:00"), undefined);
  });
});
