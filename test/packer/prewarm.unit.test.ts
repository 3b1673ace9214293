// packer/scripts/lib/imgtool-prewarm, the real script run by bash against a fake tree: an engine store with the
// image's overlay2 layer folders and a layer of another image, a ruby-bench cache, a Ruby of its own prefix and a
// distribution's Ruby, and files nobody reads. A stand-in `docker` answers the image's GraphDriver data, and a
// stand-in `cat` (the reader xargs runs) logs every file it is given before reading it: what was read is exactly
// what the workers touch.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { projectPath } from "../../src/paths.js";
import { run, tempDir } from "../render/helpers.js";

const SCRIPT = projectPath("packer", "scripts", "lib", "imgtool-prewarm");
const IMAGE = "127.0.0.1:5000/bench/task-runner@sha256:" + "a".repeat(64);

function write(root: string, rel: string, content = "x", mode?: number) {
  const f = path.join(root, rel);
  mkdirSync(path.dirname(f), { recursive: true });
  writeFileSync(f, content);
  if (mode !== undefined) chmodSync(f, mode);
  return f;
}

/** The fake machine: returns its root and the files the pre-warm must read (absolute paths). */
function machine(opts: { imageInStore?: boolean } = {}) {
  const root = tempDir("prewarm");
  const store = path.join(root, "var/lib/docker/overlay2");
  const want: string[] = [];
  const read = (rel: string, content?: string, mode?: number) => want.push(write(root, rel, content, mode));
  // The image's layers (L1 lowest, L3 upper) and a layer of another image.
  read("var/lib/docker/overlay2/L1/diff/bin/sh", "#!", 0o755);
  read("var/lib/docker/overlay2/L1/diff/usr/lib/libc.so.6", "elf".repeat(1000));
  read("var/lib/docker/overlay2/L2/diff/app/with space.rb");
  read("var/lib/docker/overlay2/L2/diff/app/new\nline.rb");
  read("var/lib/docker/overlay2/L3/diff/app/Gemfile.lock");
  write(root, "var/lib/docker/overlay2/L9/diff/other-image/file");
  write(root, "var/lib/docker/image/overlay2/repositories.json", "{}");
  // The ruby-bench cache.
  read("opt/ruby-bench/benchmarks/fib.rb");
  read("opt/ruby-bench/.git/HEAD");
  // A tarball Ruby (its own prefix), and the distribution's Ruby (prefix /usr: only its own folders).
  read("opt/rubies/3.3.6/bin/ruby", "#!/bin/sh\n", 0o755);
  read("opt/rubies/3.3.6/lib/ruby/3.3.0/set.rb");
  write(root, "opt/rubies/3.2.0/lib/ruby/3.2.0/not-configured.rb");
  const distro = write(
    root,
    "usr/bin/ruby3.1",
    [
      "#!/bin/sh",
      `echo '${root}/usr/lib/ruby'`,
      `echo '${root}/usr/lib/x86_64-linux-gnu/ruby/3.1.0'`,
      `echo '${root}/usr/lib/x86_64-linux-gnu/libruby-3.1.so.3.1'`,
    ].join("\n") + "\n",
    0o755,
  );
  want.push(distro);
  read("usr/lib/ruby/3.1.0/json.rb");
  read("usr/lib/ruby/gems/3.1.0/specifications/rake.gemspec");
  read("usr/lib/x86_64-linux-gnu/ruby/3.1.0/json/ext/parser.so");
  read("usr/lib/x86_64-linux-gnu/libruby-3.1.so.3.1");
  write(root, "usr/lib/x86_64-linux-gnu/libssl.so.3");
  write(root, "usr/bin/perl");
  // The bake's records.
  write(
    root,
    "etc/imgtool/ruby-bench.json",
    JSON.stringify({ repository: "https://example.invalid/rb.git", path: `${root}/opt/ruby-bench` }),
  );
  write(
    root,
    "etc/imgtool/rubies.tsv",
    `tarball\n3.3\t3.3.6\t${root}/opt/rubies/3.3.6/bin/ruby\n3.1\t3.1.2\t${root}/usr/bin/ruby3.1\n`,
  );
  // Stand-ins on PATH: docker (the image's GraphDriver) and cat (logs what it is given, then reads it).
  const bin = path.join(root, "fake-bin");
  const log = path.join(root, "cat-log");
  mkdirSync(log);
  const inStore = opts.imageInStore ?? true;
  write(
    root,
    "fake-bin/docker",
    [
      "#!/bin/bash",
      `[[ $1 == image && $2 == inspect && \${!#} == '${IMAGE}' && ${inStore} == true ]] || exit 1`,
      `echo 'overlay2 ${store}/L3/diff ${store}/L2/diff:${store}/L1/diff'`,
    ].join("\n") + "\n",
    0o755,
  );
  write(root, "fake-bin/cat", `#!/bin/bash\nprintf '%s\\0' "$@" >"${log}/$$"\nexec /bin/cat "$@"\n`, 0o755);
  return { root, want: want.sort(), bin, log };
}

function prewarm(m: ReturnType<typeof machine>, args = [IMAGE]) {
  return run(["bash", SCRIPT, ...args], {
    env: {
      PATH: `${m.bin}:${process.env.PATH}`,
      IMGTOOL_STATE_DIR: path.join(m.root, "etc/imgtool"),
      IMGTOOL_RUBIES_DIR: path.join(m.root, "opt/rubies"),
      IMGTOOL_PREWARM_JOBS: "3",
    },
  });
}

/** Every file the stand-in cat was given, sorted (the `--` that ends its options left out). */
function readFiles(log: string): string[] {
  return readdirSync(log)
    .flatMap((f) => readFileSync(path.join(log, f), "utf8").split("\0"))
    .filter((a) => a !== "" && a !== "--")
    .sort();
}

interface Record_ {
  seconds: number;
  files: number;
  readErrors: number;
  roots: string[];
  layers: string;
}

describe("imgtool-prewarm (the task runner's boot reads what its workers will read)", () => {
  test("reads exactly the image's layer folders, the ruby-bench cache and the Rubies, each file once, and records its time", () => {
    const m = machine();
    const r = prewarm(m);
    assert.equal(r.code, 0, r.out);
    assert.deepEqual(readFiles(m.log), m.want);
    const rec = JSON.parse(r.stdout) as Record_;
    assert.equal(rec.files, m.want.length);
    assert.equal(rec.readErrors, 0);
    assert.equal(rec.layers, "overlay2");
    assert.equal(typeof rec.seconds, "number");
    assert.ok(rec.seconds >= 0);
    const store = path.join(m.root, "var/lib/docker/overlay2");
    assert.deepEqual(rec.roots, [
      `${store}/L3/diff`,
      `${store}/L2/diff`,
      `${store}/L1/diff`,
      `${m.root}/opt/ruby-bench`,
      `${m.root}/opt/rubies/3.3.6`,
      `${m.root}/usr/bin/ruby3.1`,
      `${m.root}/usr/lib/ruby`,
      `${m.root}/usr/lib/x86_64-linux-gnu/ruby/3.1.0`,
      `${m.root}/usr/lib/x86_64-linux-gnu/libruby-3.1.so.3.1`,
    ]);
  });

  test("an image not in the engine's store: the cache and the Rubies are still read, and the record says so", () => {
    const m = machine({ imageInStore: false });
    const r = prewarm(m);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /is not in the engine's store: its layers are not read/);
    const rec = JSON.parse(r.stdout) as Record_;
    assert.equal(rec.layers, "image not in the engine's store");
    assert.deepEqual(
      readFiles(m.log),
      m.want.filter((f) => !f.includes("/var/lib/docker/")),
    );
  });

  test("wrong usage is exit 2 naming the usage; a bad number of readers names the variable", () => {
    const m = machine();
    const none = prewarm(m, []);
    assert.equal(none.code, 2);
    assert.match(none.out, /usage: imgtool-prewarm IMAGE/);
    const bad = run(["bash", SCRIPT, IMAGE], { env: { IMGTOOL_PREWARM_JOBS: "0" } });
    assert.equal(bad.code, 2);
    assert.match(bad.out, /IMGTOOL_PREWARM_JOBS=0/);
  });
});
