// `imgtool push image` as a user runs it (the compiled CLI): --json results, "up to date" on a re-run,
// errorDetail inside a 200 build stream and inside a push stream, bad input (exit 2, nothing pushed or
// published), and the aws target found through AWS_ENDPOINT_URL. (The registry stopped mid-push is in the fault
// suite: test/faults/registry-mid-push.test.ts.)
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Catalog } from "../../src/catalog/catalog.js";
import { SqliteStore } from "../../src/catalog/sqlite-store.js";
import { startAwsStandin } from "../support/aws-standin/index.js";
import { runCli } from "../support/cli.js";
import { makeBenchRepo } from "../support/fixtures/bench-repo.js";
import { isManifestPut, startRegistryProxy } from "../support/registry-proxy.js";
import { password, registryTags, stack, tempProject, type TempProject } from "./support.js";

const closers: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c().catch(() => {});
});

interface JsonResult {
  role: string;
  target: string;
  status: string;
  uri: string | null;
  digest: string | null;
  tag: string;
  reference: string | null;
  published: boolean;
  built: boolean;
  layers: { pushed: number; existed: number; mounted: number };
  error?: { message: string };
}

const push = (p: TempProject, args: string[] = [], env: NodeJS.ProcessEnv = {}) =>
  runCli(["push", "image", "--config", p.configFile, ...args], { timeoutMs: 240_000, env });

const results = (stdout: string) => (JSON.parse(stdout) as { results: JsonResult[] }).results;

async function catalogIsEmpty(p: TempProject) {
  // Read the catalog's database directly: a test with a bad config cannot ask `imgtool status`.
  const store = new SqliteStore(path.join(p.stateDir, "catalog.db"));
  try {
    assert.deepEqual(
      await new Catalog({ store, prefix: `/imgtool/${p.pipeline}` }).status(),
      [],
      "nothing published",
    );
  } finally {
    store.close();
  }
}

const noStack = (s: string) =>
  assert.doesNotMatch(s, /^\s+at .+:\d+:\d+\)?$/m, `unexpected stack trace:\n${s}`);

/** A user's own Dockerfile in a fresh context folder, for the orchestrator role. */
function ownDockerfile(text: string, files: Record<string, string> = {}): string {
  const ctx = mkdtempSync(path.join(tmpdir(), "imgtool-cli-own-"));
  writeFileSync(path.join(ctx, "Dockerfile"), text);
  for (const [f, c] of Object.entries(files)) writeFileSync(path.join(ctx, f), c);
  return `roles:\n  orchestrator:\n    app:\n      context: ${ctx}\n      dockerfile: Dockerfile\n`;
}

describe("imgtool push image (the CLI)", () => {
  test("--json gives role, target, status, uri, digest and tag; a re-run is up to date and builds nothing", async () => {
    const repo = makeBenchRepo();
    const p = tempProject(`roles:\n  task-runner:\n    ruby_bench:\n      repository: ${repo.path}\n`);
    const one = await push(p, ["--json"]);
    assert.equal(one.code, 0, one.stderr);
    const r1 = results(one.stdout);
    assert.deepEqual(r1.map((r) => r.role).sort(), ["orchestrator", "task-runner"]);
    for (const r of r1) {
      assert.equal(r.status, "pushed");
      assert.equal(r.target, "local");
      assert.equal(r.uri, `${stack.registry.endpoint}/${p.pipeline}/${r.role}`);
      assert.match(r.digest!, /^sha256:[0-9a-f]{64}$/);
      assert.equal(r.reference, `${r.uri}@${r.digest}`);
    }
    assert.match(one.stderr, /\[orchestrator\] published \/imgtool\/.*\/orchestrator\/image = /);

    const two = await push(p, ["--json", "--role", "orchestrator"]);
    assert.equal(two.code, 0, two.stderr);
    const [r2] = results(two.stdout);
    assert.equal(r2!.status, "up-to-date");
    assert.equal(r2!.built, false);
    assert.equal(r2!.digest, r1.find((r) => r.role === "orchestrator")!.digest);
    assert.match(two.stderr, /up to date/);
    assert.doesNotMatch(two.stderr, /building /);

    const st = await runCli(["status", "--json", "--config", p.configFile]);
    const artifacts = (
      JSON.parse(st.stdout) as { artifacts: { role: string; kind: string; current: { value: string } }[] }
    ).artifacts;
    assert.deepEqual(
      artifacts
        .filter((a) => a.kind === "image")
        .map((a) => a.current.value)
        .sort(),
      r1.map((r) => r.reference).sort(),
    );
  });

  test("an errorDetail inside the 200 build stream is a failure that names the step and the Dockerfile line", async () => {
    const p = tempProject(
      ownDockerfile(
        "FROM imgtool/base:bookworm\n# a comment\nRUN echo preparing\nRUN echo about to fail && exit 3\nCMD true\n",
      ),
    );
    const r = await push(p, ["--role", "orchestrator"]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /the build failed at step 3\/\d+ \(.*Dockerfile:4: RUN echo about to fail && exit 3\): .*returned a non-zero code: 3/,
    );
    assert.match(r.stderr, /about to fail/, "the last output lines are shown");
    noStack(r.stderr);
    await catalogIsEmpty(p);
    assert.deepEqual(await registryTags(`${p.pipeline}/orchestrator`), []);
  });

  test("an errorDetail inside the push stream (the registry refuses the manifest) is a failure; nothing published", async () => {
    const proxy = await startRegistryProxy(stack.registry.endpoint);
    closers.push(() => proxy.close());
    proxy.fail(isManifestPut, 400, {
      errors: [{ code: "MANIFEST_INVALID", message: "refused by the test proxy" }],
    });
    const p = tempProject(
      ownDockerfile(`FROM imgtool/base:bookworm\nCOPY hello.txt /hello-${Date.now()}.txt\n`, {
        "hello.txt": "hi\n",
      }),
      {
        registry: proxy.host,
      },
    );
    const r = await push(p, ["--role", "orchestrator", "--json"]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /push of .*orchestrator:[0-9a-f]{32} failed: .*(manifest invalid|refused by the test proxy)/i,
    );
    assert.equal(results(r.stdout)[0]!.status, "failed");
    await catalogIsEmpty(p);
    assert.ok(
      proxy.requests.some((x) => x.faulted && x.status === 400),
      "the manifest PUT was refused",
    );
  });

  describe("bad input: a clear error, exit 2, nothing pushed or published", () => {
    const cases: [string, () => string, RegExp][] = [
      [
        "missing context folder",
        () => "roles:\n  orchestrator:\n    app:\n      context: does-not-exist\n",
        /roles\.orchestrator\.app\.context: .*does-not-exist does not exist/,
      ],
      [
        "Dockerfile syntax error (names the line)",
        () => ownDockerfile("FROM imgtool/base:bookworm\n\nFORM oops\nCMD true\n"),
        /Dockerfile:3: unknown instruction: FORM/,
      ],
      [
        "base image not present locally",
        () => "roles:\n  orchestrator:\n    app:\n      base_image:\n        local: imgtool/not-there:1\n",
        /roles\.orchestrator\.app\.base_image\.local: base image "imgtool\/not-there:1" is not present in the Docker engine/,
      ],
      [
        "invalid tag characters from config",
        () => "roles:\n  orchestrator:\n    app:\n      tag_prefix: 'bad tag!'\n",
        /roles\.orchestrator\.app\.tag_prefix: "bad tag!" is not allowed/,
      ],
    ];
    for (const [name, yaml, message] of cases) {
      test(name, async () => {
        const p = tempProject(yaml());
        const r = await push(p, ["--role", "orchestrator"]);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, message);
        assert.match(r.stderr, /fix: /);
        noStack(r.stderr);
        assert.equal(r.stdout, "");
        await catalogIsEmpty(p);
        assert.deepEqual(await registryTags(`${p.pipeline}/orchestrator`), []);
      });
    }
  });

  test("the Docker engine not answering: exit 1, says so and how to fix it, no stack trace", async () => {
    const p = tempProject();
    const r = await push(p, ["--role", "orchestrator"], { DOCKER_HOST: `unix://${p.dir}/no-engine.sock` });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /The Docker engine does not answer \(ENOENT .*no-engine\.sock\)/);
    assert.match(r.stderr, /imgtool doctor/);
    noStack(r.stderr);
  });

  test("the aws target through AWS_ENDPOINT_URL (the stand-in) with credentials from the environment", async () => {
    const standin = await startAwsStandin({
      registry: { endpoint: `http://${stack.registry.endpoint}`, user: "AWS", password },
    });
    closers.push(() => standin.close());
    const p = tempProject(
      "roles:\n  orchestrator:\n    app:\n      base_image:\n        aws: imgtool/ruby:bookworm\n",
    );
    const env = {
      AWS_ENDPOINT_URL: standin.endpoint,
      AWS_ACCESS_KEY_ID: "AKIDTEST",
      AWS_SECRET_ACCESS_KEY: "secret",
      AWS_REGION: "us-east-1",
      AWS_PROFILE: "",
    };
    const r = await push(p, ["--target", "aws", "--role", "orchestrator", "--json"], env);
    assert.equal(r.code, 0, r.stderr);
    const [res] = results(r.stdout);
    assert.equal(res!.status, "pushed");
    assert.equal(res!.target, "aws");
    assert.equal(standin.count("GetAuthorizationToken", "ecr"), 1);
    assert.equal(
      standin.state.region("us-east-1").ecr.repositories.get(`${p.pipeline}/orchestrator`)
        ?.imageTagMutability,
      "IMMUTABLE",
    );
    // Published to the SSM catalog (in the stand-in).
    const st = await runCli(["status", "--target", "aws", "--json", "--config", p.configFile], { env });
    assert.equal(st.code, 0, st.stderr);
    const artifacts = (JSON.parse(st.stdout) as { artifacts: { kind: string; current: { value: string } }[] })
      .artifacts;
    assert.deepEqual(
      artifacts.filter((a) => a.kind === "image").map((a) => a.current.value),
      [res!.reference],
    );
  });
});
