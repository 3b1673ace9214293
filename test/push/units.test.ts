// The push flow's parts without the engine: the tar writer, build contexts and .dockerignore, Dockerfile
// reading and rendering (with the linter), platforms, daemon streams, manifest lists, the registry client's
// auth, the login cache, ECR's lifecycle policy, and the ruby-bench source against a local git fixture.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync, existsSync, chmodSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { validate } from "dockerfile-utils";
import { listContext } from "../../src/docker/context.js";
import { DaemonStreamError } from "../../src/docker/errors.js";
import { BuildStreamParser, PushStreamParser, readDaemonStream } from "../../src/docker/progress.js";
import { tarBuffer } from "../../src/docker/tar.js";
import { exec } from "../../src/exec.js";
import {
  baseImagesOf,
  checkDockerfile,
  parseDockerfile,
  renderDockerfile,
  DockerfileSyntaxError,
} from "../../src/push/dockerfile.js";
import { lifecyclePolicy } from "../../src/push/ecr-repository.js";
import { archVariant } from "../../src/push/inputs.js";
import { RegistryLogin, type RegistryToken } from "../../src/push/login.js";
import { instanceArch } from "../../src/config/arch.js";
import { platformsOf } from "../../src/push/platforms.js";
import { gitRubyBench } from "../../src/push/ruby-bench.js";
import { RegistryClient, parseChallenge, MEDIA_TYPES } from "../../src/registry/client.js";
import { manifestList, parseManifestList } from "../../src/registry/manifest.js";
import { makeBenchRepo } from "../support/fixtures/bench-repo.js";

const tmp = (p: string) => mkdtempSync(path.join(tmpdir(), `imgtool-${p}-`));

describe("tar writer", () => {
  test("GNU tar reads back every entry, long names (PAX) and modes included", async () => {
    const long = `${"d".repeat(120)}/${"f".repeat(120)}.rb`;
    const buf = await tarBuffer([
      { path: "app", type: "dir", mode: 0o755 },
      { path: "app/run", type: "file", mode: 0o755, content: Buffer.from("#!/bin/sh\necho hi\n") },
      { path: long, type: "file", mode: 0o644, content: async () => Buffer.from("x".repeat(1000)) },
      { path: "app/link", type: "symlink", mode: 0o777, linkname: "run" },
      { path: "empty", type: "file", mode: 0o600, content: Buffer.alloc(0) },
    ]);
    assert.equal(buf.length % 512, 0);
    const dir = tmp("tar");
    writeFileSync(path.join(dir, "a.tar"), buf);
    const list = execFileSync("tar", ["-tvf", "a.tar"], { cwd: dir, encoding: "utf8" });
    assert.match(list, /^-rwxr-xr-x root\/root\s+18 2000-01-01 00:00 app\/run$/m);
    assert.match(list, /^lrwxrwxrwx .* app\/link -> run$/m);
    assert.match(list, new RegExp(`${long.replace(/\./g, "\\.")}$`, "m"));
    assert.match(list, /^-rw------- .* empty$/m);
    execFileSync("tar", ["-xf", "a.tar"], { cwd: dir });
    assert.equal(execFileSync("sh", [path.join(dir, "app/run")], { encoding: "utf8" }), "hi\n");
  });

  test("the same entries always give the same bytes", async () => {
    const entries = () => [{ path: "a", type: "file" as const, mode: 0o644, content: Buffer.from("1") }];
    assert.deepEqual(await tarBuffer(entries()), await tarBuffer(entries()));
  });
});

describe("build contexts honour .dockerignore as Docker does", () => {
  test("patterns, exceptions, folders, symlinks; sorted", async () => {
    const dir = tmp("ctx");
    for (const f of [
      "a.rb",
      "b.log",
      "keep.log",
      "lib/x.rb",
      "node_modules/m/i.js",
      "docs/a/b.md",
      "sub/node_modules/k",
    ]) {
      mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
      writeFileSync(path.join(dir, f), f);
    }
    symlinkSync("a.rb", path.join(dir, "link.rb"));
    writeFileSync(path.join(dir, ".dockerignore"), "# comment\n*.log\n!keep.log\nnode_modules\ndocs\n\n");
    const files = await listContext(dir);
    assert.deepEqual(
      files.map((f) => `${f.type}:${f.rel}`),
      [
        "file:.dockerignore",
        "file:a.rb",
        "file:keep.log",
        "dir:lib",
        "file:lib/x.rb",
        "symlink:link.rb",
        "dir:sub",
        "dir:sub/node_modules",
        "file:sub/node_modules/k",
      ],
    );
    assert.equal(files.find((f) => f.rel === "link.rb")?.linkname, "a.rb");
    const all = await listContext(dir, { dockerignore: false });
    assert.ok(
      all.some((f) => f.rel === "b.log"),
      "dockerignore: false keeps everything",
    );
  });
});

describe("Dockerfiles", () => {
  test("instructions with their lines: directives, comments, continuations", () => {
    const text = [
      "# escape=`",
      "# a comment",
      "ARG BASE=imgtool/base:bookworm",
      "FROM ${BASE} AS build",
      "RUN echo one `",
      "  # inside",
      "  two",
      "",
      "FROM build",
      "COPY . /src",
    ].join("\n");
    const ins = parseDockerfile(text);
    assert.deepEqual(
      ins.map((i) => [i.line, i.keyword]),
      [
        [3, "ARG"],
        [4, "FROM"],
        [5, "RUN"],
        [9, "FROM"],
        [10, "COPY"],
      ],
    );
    assert.equal(ins[2]!.args, "echo one    two");
    assert.deepEqual(baseImagesOf(ins, {}), ["imgtool/base:bookworm"], "stage names are not images");
    assert.deepEqual(baseImagesOf(ins, { BASE: "ruby:3.3" }), ["ruby:3.3"], "build args win over defaults");
    assert.deepEqual(baseImagesOf(parseDockerfile("FROM scratch\nCOPY a /a\n"), {}), []);
  });

  test("an unknown instruction is refused with its line, before any build", () => {
    assert.throws(
      () => checkDockerfile(parseDockerfile("FROM imgtool/base:bookworm\n\nFORM x\n")),
      (e: unknown) =>
        e instanceof DockerfileSyntaxError && e.line === 3 && /unknown instruction: FORM/.test(e.message),
    );
    assert.throws(() => checkDockerfile(parseDockerfile("RUN true\n")), /before the first FROM/);
  });

  for (const role of ["task-runner", "orchestrator"] as const) {
    test(`the rendered ${role} Dockerfile passes the Dockerfile linter (dockerfile-utils) with no finding`, () => {
      const text = renderDockerfile({ role, buildArgNames: ["FOO", "BAR_2"] });
      assert.deepEqual(validate(text), []);
      checkDockerfile(parseDockerfile(text));
      const keywords = parseDockerfile(text).map((i) => i.keyword);
      assert.ok(
        keywords.includes("HEALTHCHECK") && keywords.includes("USER"),
        "healthcheck and non-root user",
      );
      // Rarely-changing layers first: the application is the last COPY.
      const copies = parseDockerfile(text).filter((i) => i.keyword === "COPY");
      assert.match(copies.at(-1)!.args, /^app\/ \/app\/$/);
    });
  }

  test("the linter does find problems (so a clean result means something)", () => {
    assert.ok(validate("FROM x\nEXPOSE notaport\nHEALTHCHECK --interval=x CMD true\n").length > 0);
  });

  test("config values never reach the Dockerfile text: only build-arg names do, and they are checked", () => {
    const a = renderDockerfile({ role: "task-runner", buildArgNames: ["GREETING"] });
    const b = renderDockerfile({ role: "task-runner", buildArgNames: ["GREETING"] });
    assert.equal(a, b);
    assert.doesNotMatch(a, /ruby:3\.3|imgtool\/ruby:/, "the base image is a build arg, not text");
    for (const hostile of ["A\nRUN rm -rf /", "A B", "$(id)", "A=1"]) {
      assert.throws(
        () => renderDockerfile({ role: "orchestrator", buildArgNames: [hostile] }),
        /build-arg name/,
      );
    }
  });
});

describe("platforms from instance types", () => {
  test("Graviton families are arm64, the rest x86_64; one platform per architecture", () => {
    for (const t of [
      "c7g.large",
      "m6gd.xlarge",
      "t4g.micro",
      "c7gn.large",
      "im4gn.large",
      "is4gen.large",
      "a1.medium",
      "g5g.xlarge",
      "r8g.large",
    ]) {
      assert.equal(instanceArch(t), "arm64", t);
    }
    for (const t of [
      "c7i.large",
      "t3.medium",
      "m7a.large",
      "g4dn.xlarge",
      "p5.48xlarge",
      "m7i-flex.large",
      "c5n.large",
    ]) {
      assert.equal(instanceArch(t), "x86_64", t);
    }
    assert.deepEqual(
      platformsOf(["c7g.large", "c7i.large", "t4g.small"]).map((p) => p.platform),
      ["linux/amd64", "linux/arm64"],
    );
    assert.equal(archVariant("imgtool/ruby:bookworm", "arm64"), "imgtool/ruby:bookworm-arm64");
    assert.equal(archVariant("127.0.0.1:5000/ruby", "arm64"), "127.0.0.1:5000/ruby:latest-arm64");
    assert.equal(archVariant("ruby@sha256:abc", "arm64"), undefined);
  });
});

describe("daemon streams: an errorDetail inside a 200 stream is a failure", () => {
  const feed = (chunks: string[], end = true) => {
    const s = new PassThrough();
    setImmediate(() => {
      for (const c of chunks) s.write(c);
      if (end) s.end();
      else s.destroy();
    });
    return s;
  };

  test("messages split across chunks and sharing one are all read", async () => {
    const p = new BuildStreamParser();
    await readDaemonStream(
      feed([
        '{"stream":"Step 1/2 : FROM x"}\r\n{"str',
        'eam":" ---> Using cache\\n"}\n{"aux":{"ID":"sha256:ab"}}\n',
      ]),
      p.message,
    );
    assert.equal(p.imageId, "sha256:ab");
    assert.deepEqual(p.steps, [{ step: 1, total: 2, instruction: "FROM x", cached: true }]);
  });

  test("errorDetail in a build stream rejects, and the current step is known", async () => {
    const p = new BuildStreamParser();
    await assert.rejects(
      readDaemonStream(
        feed([
          '{"stream":"Step 2/3 : RUN exit 3"}\n{"stream":"oops\\n"}\n',
          '{"errorDetail":{"code":3,"message":"returned a non-zero code: 3"},"error":"returned a non-zero code: 3"}\n',
          '{"aux":{"ID":"sha256:never"}}\n',
        ]),
        p.message,
      ),
      (e: unknown) => e instanceof DaemonStreamError && e.code === 3,
    );
    assert.equal(p.current?.step, 2);
    assert.equal(p.imageId, undefined, "nothing after the error is taken as success");
  });

  test("errorDetail in a push stream rejects; layer statuses are tracked", async () => {
    const p = new PushStreamParser();
    await assert.rejects(
      readDaemonStream(
        feed([
          '{"status":"Preparing","id":"l1"}\n{"status":"Layer already exists","id":"l1"}\n',
          '{"status":"Pushing","id":"l2","progressDetail":{"current":5,"total":10}}\n',
          '{"errorDetail":{"message":"unauthorized: authentication required"},"error":"unauthorized"}\n',
        ]),
        p.message,
      ),
      /unauthorized: authentication required/,
    );
    assert.equal(p.count("exists"), 1);
    assert.equal(p.digest, undefined);
  });

  test("a stream cut before its end is a failure, not a success", async () => {
    await assert.rejects(
      readDaemonStream(feed(['{"status":"Preparing","id":"l1"}\n'], false), () => {}),
      DaemonStreamError,
    );
  });
});

describe("manifest lists", () => {
  test("one entry per platform, Docker media type; parsed back", () => {
    const entries = [
      {
        digest: "sha256:a",
        size: 10,
        mediaType: MEDIA_TYPES.dockerManifest,
        platform: { os: "linux", architecture: "amd64" },
      },
      {
        digest: "sha256:b",
        size: 11,
        mediaType: MEDIA_TYPES.dockerManifest,
        platform: { os: "linux", architecture: "arm64", variant: "v8" },
      },
    ];
    const list = manifestList(entries);
    assert.equal(list.mediaType, MEDIA_TYPES.dockerManifestList);
    assert.deepEqual(parseManifestList(list.body), entries);
  });
});

describe("registry client auth", () => {
  test("WWW-Authenticate challenges are parsed", () => {
    assert.deepEqual(
      parseChallenge(
        'Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull"',
      ),
      {
        scheme: "bearer",
        params: { realm: "https://auth.example/token", service: "registry", scope: "repository:a/b:pull" },
      },
    );
    assert.equal(parseChallenge('Basic realm="x"')?.scheme, "basic");
    assert.equal(parseChallenge(null), undefined);
  });

  test("Bearer token flow against a registry that wants tokens; 404 is 'not there'", async () => {
    const seen: string[] = [];
    const server = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers.authorization ?? "-"}`);
      const port = (server.address() as AddressInfo).port;
      if (req.url?.startsWith("/token")) {
        assert.equal(req.headers.authorization, `Basic ${Buffer.from("u:p").toString("base64")}`);
        res.end(JSON.stringify({ token: "T1" }));
        return;
      }
      if (req.headers.authorization !== "Bearer T1") {
        res.writeHead(401, {
          "www-authenticate": `Bearer realm="http://127.0.0.1:${port}/token",service="reg"`,
        });
        res.end();
        return;
      }
      if (req.url === "/v2/a/b/manifests/t1") {
        res.writeHead(200, {
          "docker-content-digest": "sha256:d1",
          "content-type": MEDIA_TYPES.dockerManifest,
          "content-length": "7",
        });
        res.end();
        return;
      }
      res.writeHead(404);
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const port = (server.address() as AddressInfo).port;
      const c = new RegistryClient({
        endpoint: `http://127.0.0.1:${port}`,
        credentials: async () => ({ username: "u", password: "p" }),
      });
      assert.deepEqual(await c.headManifest("a/b", "t1"), {
        digest: "sha256:d1",
        mediaType: MEDIA_TYPES.dockerManifest,
        size: 7,
      });
      assert.equal(await c.headManifest("a/b", "nope"), undefined);
      assert.ok(
        seen.some((s) => s.startsWith("GET /token?service=reg&scope=repository%3Aa%2Fb%3Apull")),
        seen.join("\n"),
      );
    } finally {
      server.close();
    }
  });
});

describe("registry login: cached, single-flight, refreshed", () => {
  const source = () => {
    let n = 0;
    const s = async (): Promise<RegistryToken> => {
      n++;
      await new Promise((r) => setTimeout(r, 5));
      return {
        endpoint: "http://127.0.0.1:1",
        host: "127.0.0.1:1",
        username: "AWS",
        password: `p${n}`,
        expiresAt: new Date(Date.parse("2026-01-01T12:00:00Z")),
        source: "test",
      };
    };
    return Object.assign(s, { calls: () => n });
  };

  test("concurrent callers share one login; the token is reused until shortly before it expires", async () => {
    const src = source();
    let now = new Date("2026-01-01T10:00:00Z");
    const login = new RegistryLogin(src, { now: () => now, verify: async () => {} });
    const [a, b, c] = await Promise.all([login.get(), login.get(), login.get()]);
    assert.equal(src.calls(), 1);
    assert.ok(a === b && b === c);
    now = new Date("2026-01-01T11:54:00Z");
    assert.equal((await login.get()).password, "p1", "6 minutes before expiry: still cached");
    now = new Date("2026-01-01T11:56:00Z");
    assert.equal((await login.get()).password, "p2", "4 minutes before expiry: logged in again");
    assert.equal(login.count, 2);
  });

  test("a 401 seen by many callers logs in again once", async () => {
    const src = source();
    const login = new RegistryLogin(src, {
      now: () => new Date("2026-01-01T10:00:00Z"),
      verify: async () => {},
    });
    const stale = await login.get();
    const [x, y] = await Promise.all([login.refresh(stale), login.refresh(stale)]);
    assert.equal(x.password, "p2");
    assert.equal(y, x);
    assert.equal((await login.refresh(stale)).password, "p2", "a stale token that was already replaced");
    assert.equal(src.calls(), 2);
  });
});

describe("ECR lifecycle policy", () => {
  test("keeps the newest N images", () => {
    const p = JSON.parse(lifecyclePolicy(7)) as {
      rules: { selection: { countNumber: number; countType: string }; action: { type: string } }[];
    };
    assert.equal(p.rules[0]!.selection.countType, "imageCountMoreThan");
    assert.equal(p.rules[0]!.selection.countNumber, 7);
    assert.equal(p.rules[0]!.action.type, "expire");
  });
});

describe("the ruby-bench source: a pinned ref resolved on the host, checked out once", () => {
  test("branches, tags and commits resolve; a moved branch resolves anew; checkouts are cached and shallow", async () => {
    const repo = makeBenchRepo();
    const cache = tmp("rb-cache");
    const src = gitRubyBench({ cacheDir: cache, exec });
    assert.equal(await src.resolve(repo.path, "main"), repo.commit);
    assert.equal(await src.resolve(repo.path, "v1"), repo.commit);
    assert.equal(await src.resolve(repo.path, "other"), repo.otherCommit);
    assert.equal(await src.resolve(repo.path, repo.otherCommit), repo.otherCommit);
    assert.equal(await src.resolve(repo.path, repo.otherCommit.slice(0, 10)), repo.otherCommit);
    await assert.rejects(
      src.resolve(repo.path, "nope"),
      /ruby_bench\.ref: "nope" is not a branch, tag or commit/,
    );
    await assert.rejects(src.resolve("/nonexistent/repo", "main"), /ruby_bench\.repository: cannot read/);

    const dir = await src.checkout(repo.path, repo.commit);
    assert.ok(existsSync(path.join(dir, "benchmarks", "fib.rb")));
    const git = (...a: string[]) => execFileSync("git", ["-C", dir, ...a], { encoding: "utf8" }).trim();
    assert.equal(git("rev-parse", "HEAD"), repo.commit);
    assert.equal(git("rev-list", "--count", "HEAD"), "1", "shallow");
    assert.equal(git("remote", "get-url", "origin"), repo.path, "origin is the configured repository");
    chmodSync(dir, 0o555);
    assert.equal(await src.checkout(repo.path, repo.commit), dir, "cached: not made again");
    chmodSync(dir, 0o755);

    const moved = repo.advance("benchmarks/new.rb", "1\n");
    assert.equal(await src.resolve(repo.path, "main"), moved);
  });
});
