// The push flow on the local target, with the real Docker engine and the real htpasswd registry: both roles
// built and pushed and published by digest (and the images work together); nothing built or uploaded when
// nothing changed; a code change rebuilds only the last layers; a user's own Dockerfile used as it is;
// multi-arch manifest lists; the content tag follows its inputs.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, cpSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { prepareRole } from "../../src/push/inputs.js";
import { projectPath } from "../../src/paths.js";
import { pushImages, type RoleResult } from "../../src/push/push.js";
import { gitRubyBench } from "../../src/push/ruby-bench.js";
import { exec } from "../../src/exec.js";
import { isImgtoolError } from "../../src/errors.js";
import { makeBenchRepo } from "../support/fixtures/bench-repo.js";
import { startRegistryProxy } from "../support/registry-proxy.js";
import {
  copyExample,
  dockerCli,
  engine,
  localDeps,
  manifestLayers,
  registryAuth,
  registryTags,
  stack,
  tempProject,
} from "./support.js";

const repo = makeBenchRepo();
const runnerYaml = (extra = "") =>
  `roles:\n  task-runner:\n    ruby_bench:\n      repository: ${repo.path}\n${extra}`;

const byRole = (results: RoleResult[], role: string) => {
  const r = results.find((x) => x.role === role);
  assert.ok(r, `no result for ${role}`);
  return r;
};

const cleanup: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
});

describe("push image, local target (real engine, real registry)", () => {
  test("build and push of both roles; published by digest; a pull by that digest gives the same image, and the images work together", async () => {
    const p = tempProject(runnerYaml());
    const deps = localDeps(p);
    const { results } = await pushImages(
      { config: p.config, target: "local", roles: ["task-runner", "orchestrator"] },
      deps,
    );
    const refs: Record<string, string> = {};
    for (const role of ["task-runner", "orchestrator"]) {
      const r = byRole(results, role);
      assert.equal(r.status, "pushed", r.error?.message);
      assert.ok(r.built && r.published);
      const uri = `${stack.registry.endpoint}/${p.pipeline}/${role}`;
      assert.equal(r.uri, uri);
      assert.match(r.reference!, new RegExp(`^${uri.replace(/\./g, "\\.")}@sha256:[0-9a-f]{64}$`));
      assert.match(r.tag, /^[0-9a-f]{32}$/);
      const { found } = await deps.catalog.resolve([{ role, kind: "image" }], { meta: true });
      assert.equal(found[0]?.value, r.reference, "the catalog points at URI@digest");
      assert.equal(found[0]?.meta?.inputsHash, r.inputsHash);
      assert.equal(found[0]?.meta?.tag, r.tag);
      assert.ok(await registryTags(`${p.pipeline}/${role}`).then((t) => t.includes(r.tag)));
      refs[role] = r.reference!;
      // Remove the built image, then pull it by the published digest: the same image comes back.
      const built = await engine.inspectImage(`${uri}:${r.tag}`);
      assert.ok(built);
      assert.equal(built.labels["org.imgtool.inputs-hash"], r.inputsHash);
      await engine.removeImage(`${uri}:${r.tag}`);
      assert.equal(await engine.inspectImage(built.id), undefined, "the local image is gone");
      await engine.pull(r.reference!, { auth: registryAuth() });
      assert.equal((await engine.inspectImage(r.reference!))?.id, built.id);
    }
    // One login for both roles, pushed in parallel.
    assert.equal(deps.login.count, 1);

    // The two images together: an orchestrator, a task submitted, a task runner that claims and runs it.
    const name = `orch-${p.pipeline}`;
    await dockerCli(["run", "-d", "--rm", "--name", name, refs["orchestrator"]!]);
    cleanup.push(() => dockerCli(["rm", "-f", name]));
    const ip = (await dockerCli(["inspect", "-f", "{{.NetworkSettings.IPAddress}}", name])).trim();
    const api = `http://${ip}:8080`;
    let healthy = false;
    for (let i = 0; i < 100 && !healthy; i++) {
      healthy =
        (
          await exec(["docker", "exec", name, "imgtool-healthcheck"], {
            env: { ...process.env, DOCKER_HOST: stack.docker.host },
          })
        ).exitCode === 0;
      if (!healthy) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(healthy, "the orchestrator's HEALTHCHECK command passes");
    // Healthy inside the container is not yet reachable from here: wait until the host's connection is
    // answered too (connection errors retried, bounded), so a slow bridge does not fail the test.
    let lastError: unknown;
    let reachable = false;
    for (let i = 0; i < 300 && !reachable; i++) {
      try {
        reachable = (await fetch(`${api}/health`)).status < 500;
      } catch (e) {
        lastError = e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    assert.ok(
      reachable,
      `the orchestrator at ${api} answers from the host: ${String((lastError as Error)?.cause ?? lastError)}`,
    );
    const submit = async (doc: object) =>
      (
        (await (await fetch(`${api}/tasks`, { method: "POST", body: JSON.stringify(doc) })).json()) as {
          id: string;
        }
      ).id;
    const task = (id: string) =>
      fetch(`${api}/tasks/${id}`).then((r) => r.json()) as Promise<{
        status: string;
        result: { ruby_bench_commit: string; results: { bench: number[] } };
      }>;

    // The baked ref needs no network: the repository is not even reachable from the container.
    const t1 = await submit({ benchmark: "fib", env: { MIN_BENCH_ITRS: "2" } });
    await dockerCli([
      "run",
      "--rm",
      "-e",
      `ORCHESTRATOR_URL=${api}`,
      "-e",
      "MAX_TASKS=1",
      "-e",
      "POLL_INTERVAL=0.2",
      refs["task-runner"]!,
    ]);
    const done1 = await task(t1);
    assert.equal(done1.status, "done", JSON.stringify(done1));
    assert.equal(done1.result.ruby_bench_commit, repo.commit);
    assert.equal(done1.result.results.bench.length, 2);

    // Another ref: fetched from the repository (mounted at its configured path, owned by the image's user).
    const copy = path.join(mkdtempSync(path.join(tmpdir(), "imgtool-rb-mount-")), "rb");
    cpSync(repo.path, copy, { recursive: true });
    await exec(["chown", "-R", "10001:10001", copy]);
    const t2 = await submit({ benchmark: "other", ruby_bench_ref: repo.otherRef });
    await dockerCli([
      "run",
      "--rm",
      "-v",
      `${copy}:${repo.path}:ro`,
      "-e",
      `ORCHESTRATOR_URL=${api}`,
      "-e",
      "MAX_TASKS=1",
      "-e",
      "POLL_INTERVAL=0.2",
      refs["task-runner"]!,
    ]);
    const done2 = await task(t2);
    assert.equal(done2.status, "done", JSON.stringify(done2));
    assert.equal(done2.result.ruby_bench_commit, repo.otherCommit);
  });

  test("a second push with no change builds nothing and uploads nothing (counted at a proxy in front of the registry)", async () => {
    const proxy = await startRegistryProxy(stack.registry.endpoint);
    cleanup.push(() => proxy.close());
    const p = tempProject(runnerYaml(), { registry: proxy.host });
    const first = await pushImages(
      { config: p.config, target: "local", roles: ["task-runner", "orchestrator"] },
      localDeps(p, proxy.host),
    );
    assert.deepEqual(
      first.results.map((r) => r.status),
      ["pushed", "pushed"],
    );
    assert.ok(proxy.uploadedBytes() > 0 || proxy.writes().length > 0, "the first push wrote to the registry");

    proxy.reset();
    const deps = localDeps(p, proxy.host);
    const second = await pushImages(
      { config: p.config, target: "local", roles: ["task-runner", "orchestrator"] },
      deps,
    );
    for (const r of second.results) {
      assert.equal(r.status, "up-to-date");
      assert.equal(r.built, false);
      assert.equal(r.published, false, "the catalog already points at it");
      assert.equal(r.reference, byRole(first.results, r.role).reference);
    }
    assert.equal(deps.docker.builds, 0, "no build");
    assert.equal(deps.docker.pushes, 0, "no push");
    assert.equal(proxy.uploadedBytes(), 0, "no byte uploaded");
    assert.deepEqual(proxy.writes(), [], "nothing written to the registry");
    assert.deepEqual(
      proxy.requests.map((r) => `${r.method} ${r.path.replace(/manifests\/.*/, "manifests/TAG")}`).sort(),
      [
        "GET /v2/",
        `HEAD /v2/${p.pipeline}/orchestrator/manifests/TAG`,
        `HEAD /v2/${p.pipeline}/task-runner/manifests/TAG`,
      ],
      "one login check and one manifest HEAD per role",
    );
    assert.ok(deps.events.events.some((e) => e.type === "found" && /up to date/.test(e.message)));
  });

  test("a change in one application file rebuilds only the layers after the application's COPY", async () => {
    const p = tempProject();
    const app = copyExample("orchestrator", p.dir);
    const config = {
      ...p.config,
      roles: {
        ...p.config.roles,
        orchestrator: {
          ...p.config.roles.orchestrator,
          app: { ...p.config.roles.orchestrator.app, context: app },
        },
      },
    };
    const run = async () => {
      const deps = localDeps(p);
      const { results } = await pushImages({ config, target: "local", roles: ["orchestrator"] }, deps);
      const steps = new Map<number, { instruction?: string; cached: boolean }>();
      for (const e of deps.events.events) {
        const step = e.data?.["step"];
        if (typeof step !== "number") continue;
        const s = steps.get(step) ?? { cached: false };
        if (typeof e.data?.["instruction"] === "string") s.instruction = e.data["instruction"];
        if (e.data?.["cached"] === true) s.cached = true;
        steps.set(step, s);
      }
      return { r: results[0]!, steps, deps };
    };
    const one = await run();
    assert.equal(one.r.status, "pushed", one.r.error?.message);

    // Unique content: the builder's cache must not know it from an earlier test run.
    appendFileSync(path.join(app, "lib", "orchestrator", "task_queue.rb"), `# a change in ${p.pipeline}\n`);
    const two = await run();
    assert.equal(two.r.status, "pushed", two.r.error?.message);
    assert.notEqual(two.r.tag, one.r.tag, "a new content tag");
    const ordered = [...two.steps.entries()].sort((a, b) => a[0] - b[0]).map(([, s]) => s);
    const appCopy = ordered.findIndex((s) => s.instruction === "COPY app/ /app/");
    assert.ok(appCopy > 0, `the application COPY step: ${JSON.stringify(ordered)}`);
    const before = ordered.slice(0, appCopy).filter((s) => !/^(ARG|FROM)\b/.test(s.instruction ?? ""));
    assert.ok(
      before.length >= 4 && before.every((s) => s.cached),
      `every step before it from cache: ${JSON.stringify(ordered)}`,
    );
    assert.equal(ordered[appCopy]!.cached, false, "the application COPY ran again");

    const repoName = `${p.pipeline}/orchestrator`;
    const l1 = await manifestLayers(stack.registry.endpoint, repoName, one.r.tag);
    const l2 = await manifestLayers(stack.registry.endpoint, repoName, two.r.tag);
    assert.equal(l2.length, l1.length);
    assert.deepEqual(l2.slice(0, -1), l1.slice(0, -1), "every layer but the application's is the same blob");
    assert.notEqual(l2.at(-1), l1.at(-1));
    assert.ok(
      two.r.layers.existed + two.r.layers.mounted >= l1.length - 1 && two.r.layers.pushed === 1,
      JSON.stringify(two.r.layers),
    );

    // A file that .dockerignore leaves out (test/) changes nothing: same tag, up to date.
    appendFileSync(path.join(app, "test", "task_queue_test.rb"), "# not in the image\n");
    const three = await run();
    assert.equal(three.r.status, "up-to-date");
    assert.equal(three.r.tag, two.r.tag);
  });

  test("a user's own Dockerfile is used as it is, with build args from config (a hostile value stays a value)", async () => {
    const ctx = mkdtempSync(path.join(tmpdir(), "imgtool-own-"));
    mkdirSync(path.join(ctx, "docker"));
    const dockerfile = [
      "# A team's existing Dockerfile: imgtool must not rewrite it.",
      "FROM imgtool/base:bookworm",
      "ARG GREETING=hi",
      'RUN printf "%s" "$GREETING" > /greeting',
      "COPY . /src",
      'CMD ["cat", "/greeting"]',
      "",
    ].join("\n");
    writeFileSync(path.join(ctx, "docker", "Dockerfile"), dockerfile);
    writeFileSync(path.join(ctx, "hello.txt"), "hello\n");
    writeFileSync(path.join(ctx, "secret.txt"), "do not ship\n");
    writeFileSync(path.join(ctx, ".dockerignore"), "secret.txt\n");
    const hostile = 'x"\nRUN touch /pwned\n$(touch /pwned2)';
    const p = tempProject(
      `roles:\n  orchestrator:\n    app:\n      context: ${ctx}\n      dockerfile: docker/Dockerfile\n      build_args:\n        GREETING: ${JSON.stringify(hostile)}\n`,
    );
    const deps = localDeps(p);
    const { results } = await pushImages(
      { config: p.config, target: "local", roles: ["orchestrator"] },
      deps,
    );
    const r = results[0]!;
    assert.equal(r.status, "pushed", r.error?.message);
    const img = await engine.inspectImage(`${r.uri}:${r.tag}`);
    assert.ok(img);
    const cfg = JSON.parse(await dockerCli(["inspect", "-f", "{{json .Config}}", `${r.uri}:${r.tag}`])) as {
      User?: string;
      Healthcheck?: unknown;
      Cmd: string[];
    };
    assert.deepEqual(cfg.Cmd, ["cat", "/greeting"]);
    assert.ok(!cfg.User, "no user added");
    assert.ok(!cfg.Healthcheck, "no healthcheck added");
    assert.equal(
      await dockerCli(["run", "--rm", "--network", "none", r.reference!]),
      hostile,
      "the build arg arrived byte for byte",
    );
    const ls = await dockerCli([
      "run",
      "--rm",
      "--network",
      "none",
      "--entrypoint",
      "sh",
      r.reference!,
      "-c",
      "ls -a /src /src/docker; ls /pwned /pwned2 2>&1 || true",
    ]);
    assert.match(ls, /hello\.txt/);
    assert.match(ls, /Dockerfile/);
    assert.doesNotMatch(ls, /secret\.txt/, ".dockerignore honoured");
    assert.match(ls, /'\/pwned': No such file/);
    assert.match(ls, /'\/pwned2': No such file/);
  });

  test("instance types of two architectures: one image per architecture and a manifest list that both pull", async () => {
    const ctx = mkdtempSync(path.join(tmpdir(), "imgtool-multi-"));
    // FROM scratch needs no emulation to build for arm64 here (RUN steps would; see the report).
    writeFileSync(path.join(ctx, "Dockerfile"), "FROM scratch\nCOPY hello.txt /hello.txt\n");
    writeFileSync(path.join(ctx, "hello.txt"), "hello\n");
    const p = tempProject(
      `roles:\n  orchestrator:\n    instance_types: [c7i.large, c7g.large]\n    app:\n      context: ${ctx}\n      dockerfile: Dockerfile\n`,
    );
    const deps = localDeps(p);
    const { results } = await pushImages(
      { config: p.config, target: "local", roles: ["orchestrator"] },
      deps,
    );
    const r = results[0]!;
    assert.equal(r.status, "pushed", r.error?.message);
    assert.deepEqual(r.platforms, ["linux/amd64", "linux/arm64"]);
    const auth = `Basic ${Buffer.from(`${stack.registry.user}:${registryAuth().password}`).toString("base64")}`;
    const repoName = `${p.pipeline}/orchestrator`;
    const list = await fetch(`http://${stack.registry.endpoint}/v2/${repoName}/manifests/${r.tag}`, {
      headers: { authorization: auth, accept: "application/vnd.docker.distribution.manifest.list.v2+json" },
    });
    assert.equal(
      list.headers.get("content-type"),
      "application/vnd.docker.distribution.manifest.list.v2+json",
    );
    assert.equal(list.headers.get("docker-content-digest"), r.digest, "the published digest is the list's");
    const doc = (await list.json()) as {
      manifests: { digest: string; platform: { architecture: string; variant?: string } }[];
    };
    assert.deepEqual(
      doc.manifests.map((m) => m.platform.architecture),
      ["amd64", "arm64"],
    );
    assert.equal(doc.manifests[1]!.platform.variant, "v8");
    for (const [i, arch] of (["amd64", "arm64"] as const).entries()) {
      const head = await fetch(
        `http://${stack.registry.endpoint}/v2/${repoName}/manifests/${r.tag}-${arch}`,
        {
          method: "HEAD",
          headers: { authorization: auth, accept: "application/vnd.docker.distribution.manifest.v2+json" },
        },
      );
      assert.equal(head.headers.get("docker-content-digest"), doc.manifests[i]!.digest);
      // Pull the one reference as each architecture would.
      await engine.removeImage(`${r.uri}:${r.tag}-${arch}`);
      await engine.pull(r.reference!, { platform: `linux/${arch}`, auth: registryAuth() });
      assert.equal((await engine.inspectImage(r.reference!))?.architecture, arch);
      await engine.removeImage(r.reference!);
    }
  });

  test("a multi-arch push that stopped before its manifest list resumes without building again (the per-architecture tags are reused)", async () => {
    const proxy = await startRegistryProxy(stack.registry.endpoint);
    cleanup.push(() => proxy.close());
    const ctx = mkdtempSync(path.join(tmpdir(), "imgtool-multi-resume-"));
    writeFileSync(path.join(ctx, "Dockerfile"), `FROM scratch\nCOPY hello.txt /hello-${Date.now()}.txt\n`);
    writeFileSync(path.join(ctx, "hello.txt"), "hello\n");
    const p = tempProject(
      `roles:\n  orchestrator:\n    instance_types: [c7i.large, c7g.large]\n    app:\n      context: ${ctx}\n      dockerfile: Dockerfile\n`,
      { registry: proxy.host },
    );
    // The list goes under the bare content tag; the per-architecture images under <tag>-amd64 / <tag>-arm64.
    proxy.fail((m, path) => m === "PUT" && /\/manifests\/[0-9a-f]{32}$/.test(path), 503, {
      errors: [{ code: "UNAVAILABLE", message: "the test proxy refuses manifest lists" }],
    });
    const first = localDeps(p, proxy.host);
    const one = await pushImages({ config: p.config, target: "local", roles: ["orchestrator"] }, first);
    assert.equal(one.results[0]!.status, "failed");
    assert.match(one.results[0]!.error!.message, /503/);
    assert.ok(first.docker.builds >= 2, "both architectures were built");
    assert.deepEqual(
      (await first.catalog.resolve([{ role: "orchestrator", kind: "image" }])).found,
      [],
      "nothing published",
    );

    proxy.clearFaults();
    const again = localDeps(p, proxy.host);
    const two = await pushImages({ config: p.config, target: "local", roles: ["orchestrator"] }, again);
    assert.equal(two.results[0]!.status, "pushed", two.results[0]!.error?.message);
    assert.equal(again.docker.builds, 0, "both architectures were reused");
    assert.equal(again.docker.pushes, 0);
    assert.equal(
      again.events.events.filter((e) => e.type === "skip" && /already pushed/.test(e.message)).length,
      2,
    );
    assert.ok(two.results[0]!.published);
  });

  test("two architectures without a base image for the second: a clear error before any build, nothing pushed or published", async () => {
    const p = tempProject(
      "roles:\n  orchestrator:\n    instance_types: [c7i.large, c7g.large]\n    app:\n      base_image:\n        local: imgtool/base:bookworm\n",
    );
    const deps = localDeps(p);
    await assert.rejects(
      pushImages({ config: p.config, target: "local", roles: ["orchestrator"] }, deps),
      (e: unknown) =>
        isImgtoolError(e) &&
        e.exitCode === 2 &&
        /roles\.orchestrator\.app\.base_image\.local: base image imgtool\/base:bookworm is amd64/.test(
          e.message,
        ) &&
        /linux\/arm64/.test(e.message) &&
        /imgtool\/base:bookworm-arm64/.test(e.fix ?? ""),
    );
    assert.equal(deps.docker.builds, 0);
    assert.deepEqual(await registryTags(`${p.pipeline}/orchestrator`), []);
    assert.deepEqual((await deps.catalog.resolve([{ role: "orchestrator", kind: "image" }])).found, []);
  });

  test("app.packages on a bare Debian base: the image gets them from Debian's archive (the seed example's aws route: Debian's Ruby with WEBrick and pg)", async () => {
    const p = tempProject(
      [
        "roles:",
        "  orchestrator:",
        `    app: { context: ${projectPath("examples/seed-fleet/orchestrator")}, base_image: { local: imgtool/base:bookworm }, packages: [ruby, ruby-webrick, ruby-pg] }`,
        "",
      ].join("\n"),
    );
    const { results } = await pushImages(
      { config: p.config, target: "local", roles: ["orchestrator"] },
      localDeps(p),
    );
    const r = byRole(results, "orchestrator");
    assert.equal(r.status, "pushed", r.error?.message);
    const out = await dockerCli([
      "run",
      "--rm",
      r.reference!,
      "ruby",
      "-e",
      'require "webrick"; require "pg"; puts "ruby #{RUBY_VERSION} pg #{PG::VERSION}"',
    ]);
    assert.match(out, /^ruby 3\.\d+\.\d+ pg \d+\.\d+/);
  });

  test("the content tag: the same inputs give the same tag; the ruby-bench commit, a build arg or the base change it", async () => {
    const local = makeBenchRepo();
    const p = tempProject(`roles:\n  task-runner:\n    ruby_bench:\n      repository: ${local.path}\n`);
    const deps = { docker: engine, rubyBench: gitRubyBench({ cacheDir: path.join(p.stateDir, "rb"), exec }) };
    const tag = async (config = p.config) => (await prepareRole("task-runner", config, "local", deps)).tag;
    const t1 = await tag();
    assert.equal(await tag(), t1, "same inputs, same tag");
    local.advance("benchmarks/more.rb", "1\n");
    const t2 = await tag();
    assert.notEqual(t2, t1, "the ruby-bench branch moved");
    const rc = p.config.roles["task-runner"];
    const withArg = {
      ...p.config,
      roles: { ...p.config.roles, "task-runner": { ...rc, app: { ...rc.app, build_args: { X: "1" } } } },
    };
    assert.notEqual(await tag(withArg), t2, "a build arg");
    const otherBase = {
      ...p.config,
      roles: {
        ...p.config.roles,
        "task-runner": {
          ...rc,
          app: { ...rc.app, base_image: { ...rc.app.base_image, local: "imgtool/base:bookworm" } },
        },
      },
    };
    assert.notEqual(await tag(otherBase), t2, "another base image");

    // app.packages: the image's own packages, after the role's (which go on the AMI too), in the one build arg.
    const appPackages = (app: Partial<typeof rc.app>, packages = rc.packages) => ({
      ...p.config,
      roles: { ...p.config.roles, "task-runner": { ...rc, packages, app: { ...rc.app, ...app } } },
    });
    const withPackages = await prepareRole(
      "task-runner",
      appPackages({ packages: ["jq", "curl"] }, ["curl", "make"]),
      "local",
      deps,
    );
    assert.equal(withPackages.buildArgs.IMGTOOL_PACKAGES, "curl make jq");
    // app.packages alone changes the tag.
    const roleOnly = await prepareRole("task-runner", appPackages({}, ["curl", "make"]), "local", deps);
    assert.equal(roleOnly.buildArgs.IMGTOOL_PACKAGES, "curl make");
    assert.notEqual(withPackages.tag, roleOnly.tag, "an image package");
    await assert.rejects(
      prepareRole(
        "task-runner",
        appPackages({ packages: ["jq"], dockerfile: "Dockerfile.own" }),
        "local",
        deps,
      ),
      (e: unknown) => {
        assert.ok(isImgtoolError(e) && e.exitCode === 2, String(e));
        assert.match(e.message, /roles\.task-runner\.app\.packages \(jq\) is for the rendered Dockerfile/);
        return true;
      },
    );
  });
});
