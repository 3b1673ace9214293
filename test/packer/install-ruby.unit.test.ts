// install-ruby.sh's tarball and ruby-build methods, offline: the downloads come from a loopback HTTP server
// that fails each first request (so the retries are exercised). The script runs on this machine with its
// folders pointed into a temporary directory. The tarball holds a stand-in Ruby, and the ruby-build release
// a stand-in ruby-build (the real one would download and compile Ruby's source, which is out of reach here):
// what is exercised is the script's own work, download, unpack, install, version check, default ruby, and
// a second run that changes nothing.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { existsSync, mkdirSync, readFileSync, readlinkSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { machineArch } from "../../src/config/arch.js";
import { projectPath } from "../../src/paths.js";
import { run, runAsync, tempDir } from "../render/helpers.js";

const SCRIPT = projectPath("packer", "scripts", "install-ruby.sh");
const ARCH = machineArch();

/** A stand-in ruby that reports VERSION the way install-ruby.sh and validate.sh ask. */
const fakeRuby = (version: string) =>
  `#!/bin/sh\nif [ "$1" = -e ]; then printf '%s' '${version}'; else echo 'ruby ${version} (stand-in)'; fi\n`;

function makeTarball(dir: string, name: string, files: Record<string, string>, top?: string): string {
  const root = path.join(dir, `${name}.src`);
  for (const [rel, content] of Object.entries(files)) {
    const f = path.join(root, top ?? "", rel);
    mkdirSync(path.dirname(f), { recursive: true });
    writeFileSync(f, content);
    chmodSync(f, 0o755);
  }
  const out = path.join(dir, `${name}.tar.gz`);
  const r = run(["tar", "-czf", out, "-C", root, "."]);
  assert.equal(r.code, 0, r.out);
  return out;
}

describe("install-ruby.sh, offline against a loopback server", () => {
  let work: string;
  let server: Server;
  let base: string;
  const files = new Map<string, string>();
  const hits = new Map<string, number>();

  before(async () => {
    work = tempDir("install-ruby");
    const t = path.join(work, "tarballs");
    mkdirSync(t);
    files.set(
      `/rubies/ruby-3.3.6-${ARCH}.tar.gz`,
      makeTarball(t, "r336", { "bin/ruby": fakeRuby("3.3.6") }, "ruby-3.3.6"),
    );
    files.set(`/rubies/ruby-3.2.5-${ARCH}.tar.gz`, makeTarball(t, "r325", { "bin/ruby": fakeRuby("3.2.5") }));
    files.set(`/rubies/ruby-3.4.0-${ARCH}.tar.gz`, makeTarball(t, "r340", { "bin/ruby": fakeRuby("3.3.9") }));
    files.set(`/rubies/ruby-3.1.0-${ARCH}.tar.gz`, makeTarball(t, "r310", { "lib/nothing": "" }));
    // A ruby-build release: install.sh copies bin/ruby-build under $PREFIX, like the real one.
    const rubyBuild = [
      "#!/bin/sh",
      'case "$1" in',
      "  --version) echo 'ruby-build 20241225' ;;",
      "  --definitions) printf '%s\\n' 3.2.4 3.2.5 3.3.5 3.3.6 3.3.10 3.4.1 ;;",
      `  *) mkdir -p "$2/bin" && printf '#!/bin/sh\\nif [ "$1" = -e ]; then printf %s %s; fi\\n' "'%s'" "$1" >"$2/bin/ruby" && chmod +x "$2/bin/ruby" && echo "$1 $2" >>"\${RUBY_BUILD_LOG:-/dev/null}" ;;`,
      "esac",
      "",
    ].join("\n");
    const install =
      '#!/bin/sh\nset -e\nmkdir -p "$PREFIX/bin"\ncp "$(dirname "$0")/bin/ruby-build" "$PREFIX/bin/ruby-build"\n';
    files.set(
      "/ruby-build/v20241225.tar.gz",
      makeTarball(t, "rb", { "bin/ruby-build": rubyBuild, "install.sh": install }, "ruby-build-20241225"),
    );
    server = createServer((req, res) => {
      const p = req.url ?? "";
      const n = (hits.get(p) ?? 0) + 1;
      hits.set(p, n);
      const file = files.get(p);
      if (!file) return void res.writeHead(404).end("not found");
      if (n === 1) return void res.writeHead(503).end("try again"); // every first request fails
      res.writeHead(200, { "content-type": "application/gzip" }).end(readFileSync(file));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(() => {
    server?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /** Run the script with its folders under a fresh prefix; returns the prefix and the result. */
  async function install(env: Record<string, string>, prefix = tempDir("ruby-prefix")) {
    const r = await runAsync([SCRIPT], {
      env: {
        IMGTOOL_STATE_DIR: path.join(prefix, "state"),
        IMGTOOL_RUBIES_DIR: path.join(prefix, "rubies"),
        IMGTOOL_BIN_DIR: path.join(prefix, "bin"),
        IMGTOOL_RUBY_BUILD_PREFIX: path.join(prefix, "rb"),
        // A failed request is retried at once by the script's own loop, not after curl's 1 s (its shortest).
        IMGTOOL_DOWNLOAD_CURL_RETRIES: "0",
        IMGTOOL_DOWNLOAD_DELAY: "0",
        ...env,
      },
    });
    return { prefix, ...r };
  }

  test("tarball: each version from its URL (a failed first request is retried), the first one is `ruby`", async () => {
    const env = {
      IMGTOOL_RUBY_METHOD: "tarball",
      IMGTOOL_RUBY_VERSIONS: "3.3.6 3.2.5",
      IMGTOOL_RUBY_TARBALL_URL: `${base}/rubies/ruby-{version}-{arch}.tar.gz`,
    };
    const first = await install(env);
    try {
      assert.equal(first.code, 0, first.out);
      const p = first.prefix;
      assert.equal(run([path.join(p, "rubies/3.3.6/bin/ruby"), "-e", "print RUBY_VERSION"]).out, "3.3.6");
      assert.equal(run([path.join(p, "rubies/3.2.5/bin/ruby"), "-e", "print RUBY_VERSION"]).out, "3.2.5");
      assert.equal(readlinkSync(path.join(p, "rubies/default")), path.join(p, "rubies/3.3.6"));
      assert.equal(run([path.join(p, "bin/ruby"), "-e", "print RUBY_VERSION"]).out, "3.3.6");
      assert.equal(
        readFileSync(path.join(p, "state/rubies.tsv"), "utf8"),
        `tarball\n3.3.6\t3.3.6\t${p}/rubies/3.3.6/bin/ruby\n3.2.5\t3.2.5\t${p}/rubies/3.2.5/bin/ruby\n`,
      );
      assert.equal(hits.get(`/rubies/ruby-3.3.6-${ARCH}.tar.gz`), 2, "one 503, one retry");
      // Idempotent: a second run downloads nothing and changes nothing.
      const before = [...hits.values()].reduce((a, b) => a + b, 0);
      const again = await install(env, p);
      assert.equal(again.code, 0, again.out);
      assert.match(again.out, /Ruby 3\.3\.6 already in/);
      assert.equal(
        [...hits.values()].reduce((a, b) => a + b, 0),
        before,
      );
    } finally {
      rmSync(first.prefix, { recursive: true, force: true });
    }
  });

  test("tarball: a Ruby that reports another version, or no bin/ruby, fails the step and says why", async () => {
    const url = `${base}/rubies/ruby-{version}-{arch}.tar.gz`;
    const wrong = await install({
      IMGTOOL_RUBY_METHOD: "tarball",
      IMGTOOL_RUBY_VERSIONS: "3.4.0",
      IMGTOOL_RUBY_TARBALL_URL: url,
    });
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.out, /Ruby 3\.4\.0 .* reports 3\.3\.9/);
    const empty = await install({
      IMGTOOL_RUBY_METHOD: "tarball",
      IMGTOOL_RUBY_VERSIONS: "3.1.0",
      IMGTOOL_RUBY_TARBALL_URL: url,
    });
    assert.notEqual(empty.code, 0);
    assert.match(empty.out, /holds no bin\/ruby/);
    const missing = await install({
      IMGTOOL_RUBY_METHOD: "tarball",
      IMGTOOL_RUBY_VERSIONS: "9.9.9",
      IMGTOOL_RUBY_TARBALL_URL: url,
    });
    assert.notEqual(missing.code, 0);
    assert.match(missing.out, /download failed: .*ruby-9\.9\.9/);
    for (const r of [wrong, empty, missing]) rmSync(r.prefix, { recursive: true, force: true });
  });

  test("ruby-build: installs the pinned ruby-build release, resolves 3.3 to the newest 3.3.x, builds each version once", async () => {
    const env = {
      IMGTOOL_RUBY_METHOD: "ruby-build",
      IMGTOOL_RUBY_VERSIONS: "3.3 3.2.5",
      IMGTOOL_RUBY_BUILD_REF: "v20241225",
      IMGTOOL_RUBY_BUILD_URL: `${base}/ruby-build/v20241225.tar.gz`,
      // The build dependencies are apt packages; this machine's apt is not the script's to change.
      IMGTOOL_RUBY_BUILD_PACKAGES_APT: "",
      IMGTOOL_RUBY_BUILD_PACKAGES_DNF: "",
    };
    const prefix = tempDir("ruby-build");
    const log = path.join(prefix, "ruby-build.log");
    try {
      const first = await install({ ...env, RUBY_BUILD_LOG: log }, prefix);
      assert.equal(first.code, 0, first.out);
      assert.ok(existsSync(path.join(prefix, "rb/bin/ruby-build")));
      assert.equal(
        readFileSync(log, "utf8"),
        `3.3.10 ${prefix}/rubies/3.3\n3.2.5 ${prefix}/rubies/3.2.5\n`,
        "3.3 is the newest 3.3.x (version order, not text order)",
      );
      assert.equal(run([path.join(prefix, "bin/ruby"), "-e", "print RUBY_VERSION"]).out, "3.3.10");
      const again = await install({ ...env, RUBY_BUILD_LOG: log }, prefix);
      assert.equal(again.code, 0, again.out);
      assert.match(again.out, /ruby-build 20241225 already installed/);
      assert.equal(readFileSync(log, "utf8").split("\n").filter(Boolean).length, 2, "nothing rebuilt");
    } finally {
      rmSync(prefix, { recursive: true, force: true });
    }
  });

  test("an unknown method or no version is refused", async () => {
    const bad = await install({ IMGTOOL_RUBY_METHOD: "brew", IMGTOOL_RUBY_VERSIONS: "3.3" });
    assert.notEqual(bad.code, 0);
    assert.match(bad.out, /IMGTOOL_RUBY_METHOD=brew: must be distro, ruby-build or tarball/);
    const none = await install({ IMGTOOL_RUBY_METHOD: "tarball", IMGTOOL_RUBY_VERSIONS: "" });
    assert.notEqual(none.code, 0);
    assert.match(none.out, /IMGTOOL_RUBY_VERSIONS is required/);
    for (const r of [bad, none]) rmSync(r.prefix, { recursive: true, force: true });
  });
});
