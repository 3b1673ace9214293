// Hostile values (quote, backslash, `${`, `%{`, `$(...)`, backticks, newline, unicode, ...) in every config
// field that reaches a template, and in the bake's inputs: the output parses (HashiCorp's HCL parser, bash,
// Packer itself), every value arrives byte for byte, and nothing executes. The last test runs a real Packer
// build of the rendered twin with hostile values, the scripts swapped for stubs that record what they receive.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Config } from "../../src/config/load.js";
import { parseConfig } from "../../src/config/load.js";
import { hclString, shellWord } from "../../src/render/escape.js";
import { STEPS, artifactsFromManifest, renderBake, type BakeInputs } from "../../src/render/packer.js";
import { makeRubyBenchRepo } from "../support/fixtures/ruby-bench.js";
import {
  FIXED_INPUTS,
  configFrom,
  forOldPacker,
  hclJsonString,
  localEngine,
  packerVersion,
  parseHcl,
  run,
  sourceBuildEnv,
  tempDir,
  writeTemp,
} from "./helpers.js";
import { unavailable } from "../support/unavailable.js";

type Hcl = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const MARK = path.join(tmpdir(), `imgtool-pwned-${process.pid}`);
/** Each piece on its own, and all of them in one value. */
const PIECES = [
  'dq"uote',
  "sq'uote",
  "back\\slash\\",
  "${HOME}",
  "$${escaped}",
  "%{ if true }x%{ endif }",
  "%%{y}",
  `$(touch ${MARK}-dollar)`,
  `\`touch ${MARK}-backtick\``,
  "; touch " + MARK + "-semicolon;",
  "new\nline",
  "cr\rtab\t",
  "ünïcødé ✓ 日本 🚀",
  "trailing\\",
  "{{ .Path }}-not-in-packer-settings",
];
const HOSTILE = PIECES.join(" ");
const noMarks = () =>
  assert.deepEqual(
    readdirSync(tmpdir()).filter((f) => f.startsWith(path.basename(MARK))),
    [],
    "a hostile value was executed",
  );

/** The free-text config fields that reach a template, all set to hostile values (bypassing nothing). */
function hostileConfig(repository: string): Config {
  const yaml = [
    "roles:",
    "  task-runner:",
    "    instance_types: [c7i.large, c7g.large]",
    "    base:",
    "      aws:",
    `        owner: ${JSON.stringify(`owner ${HOSTILE.replaceAll("{{", "{ {")}`)}`,
    "        name:",
    `          x86_64: ${JSON.stringify(`x86 ${HOSTILE.replaceAll("{{", "{ {")}`)}`,
    `          arm64: ${JSON.stringify(`arm ${HOSTILE.replaceAll("{{", "{ {")}`)}`,
    "    ruby:",
    "      method: tarball",
    '      versions: ["3.3.6"]',
    `      tarball_url: ${JSON.stringify(`https://example.invalid/${HOSTILE}/{version}-{arch}.tar.gz`)}`,
    "    ruby_bench:",
    `      repository: ${JSON.stringify(repository)}`,
  ].join("\n");
  const r = parseConfig(yaml, { source: "hostile.yaml", baseDir: "/" });
  assert.deepEqual(r.errors, [], "the schema accepts these free-text fields");
  return r.config!;
}

describe("hostile values: rendering", () => {
  const cleanup: string[] = [];
  after(() => cleanup.forEach((d) => rmSync(d, { recursive: true, force: true })));

  test("the escaping helpers: each piece parses back byte for byte (HCL parser, bash)", async () => {
    for (const v of [...PIECES, HOSTILE, "", "$", "%", "$$", "$${", "%%{", "\u0001\u007f"]) {
      const parsed = await parseHcl("t.hcl", `v = ${hclString(v)}\n`);
      assert.equal(hclJsonString(parsed.v), v, `hclString ${JSON.stringify(v)}`);
      const sh = run(["bash", "-c", `printf '%s' ${shellWord(v)}`]);
      assert.equal(sh.out, v, `shellWord ${JSON.stringify(v)}`);
    }
    noMarks();
  });

  test("aws: owner and name filters arrive byte for byte; the files parse, format and validate", async () => {
    const cfg = hostileConfig(`https://example.invalid/${HOSTILE}.git`);
    const rc = cfg.roles["task-runner"];
    const r = renderBake(cfg, "task-runner", "aws", FIXED_INPUTS);
    for (const f of Object.keys(r.files).filter((x) => x.endsWith(".hcl"))) await parseHcl(f, r.files[f]!);
    const ebs = ((await parseHcl("s", r.files["sources.pkr.hcl"]!)).source as Hcl)["amazon-ebs"];
    for (const arch of ["x86_64", "arm64"] as const) {
      const filter = ebs[arch][0].source_ami_filter[0];
      assert.equal(hclJsonString(filter.owners[0]), rc.base.aws.owner);
      assert.equal(hclJsonString(filter.filters.name), rc.base.aws.name[arch]);
    }
    assert.ok(rc.base.aws.owner.includes(HOSTILE.replaceAll("{{", "{ {")), "the schema kept the value whole");
    const dir = await writeTemp(r, "hostile-aws");
    cleanup.push(dir);
    const env = sourceBuildEnv(dir);
    assert.equal(env.IMGTOOL_RUBY_BENCH_ORIGIN, `https://example.invalid/${HOSTILE}.git`);
    assert.equal(env.IMGTOOL_RUBY_BENCH_SOURCE, `https://example.invalid/${HOSTILE}.git`);
    assert.equal(env.IMGTOOL_RUBY_TARBALL_URL, rc.ruby.tarball_url);
    if (packerVersion()) {
      const fmt = run(["packer", "fmt", "-check", "-diff", "."], { cwd: dir });
      assert.equal(fmt.code, 0, fmt.out);
      const old = forOldPacker(dir, r);
      cleanup.push(old.dir);
      const v = run(["packer", "validate", `-var-file=${r.varFile}`, "."], { cwd: old.dir });
      assert.equal(v.code, 0, v.out);
    }
    noMarks();
  });

  test("every string field of Config that reaches a template, set directly: still inert, byte for byte", async () => {
    // Past the schema (which refuses most of these), rendering alone must still keep them inert.
    const cfg = hostileConfig("/srv/rb");
    const rc = cfg.roles["task-runner"];
    const raw = HOSTILE.replaceAll("{{", "{ {");
    rc.ruby.tarball_url = HOSTILE; // the schema strips \n \r \t from URLs; rendering must not care
    rc.ruby_bench.repository = `/srv/${raw}`;
    rc.ruby_bench.localPath = rc.ruby_bench.repository; // what config load decides for a path
    rc.ruby_bench.ref = HOSTILE;
    rc.ruby.versions = [HOSTILE];
    rc.packages = [HOSTILE];
    const r = renderBake(cfg, "task-runner", "local", { ...FIXED_INPUTS, rubyBenchCommit: HOSTILE });
    const build = ((await parseHcl("b", r.files["build.pkr.hcl"]!)).build as Hcl[])[0]!;
    const upload = (build.provisioner.file as Hcl[]).find(
      (p) => p.destination === "/tmp/imgtool-ruby-bench-src/",
    );
    assert.equal(hclJsonString(upload!.source), `/srv/${raw}/`);
    const dir = await writeTemp(r, "hostile-raw");
    cleanup.push(dir);
    const env = sourceBuildEnv(dir);
    assert.equal(env.IMGTOOL_RUBY_TARBALL_URL, HOSTILE);
    assert.equal(env.IMGTOOL_RUBY_BENCH_ORIGIN, `/srv/${raw}`);
    assert.equal(env.IMGTOOL_RUBY_BENCH_REF, HOSTILE);
    assert.equal(env.IMGTOOL_RUBY_BENCH_COMMIT, HOSTILE);
    assert.equal(env.IMGTOOL_RUBY_VERSIONS, HOSTILE);
    assert.equal(env.IMGTOOL_PACKAGES, HOSTILE);
    noMarks();
  });

  test("the schema refuses hostile values in the constrained fields, naming each key", () => {
    const cases: [string, string][] = [
      ["pipeline", `pipeline: ${JSON.stringify(HOSTILE)}`],
      [
        "roles.task-runner.base.local.image",
        `roles: {task-runner: {base: {local: {image: ${JSON.stringify(HOSTILE)}}}}}`,
      ],
      [
        "roles.task-runner.instance_types[0]",
        `roles: {task-runner: {instance_types: [${JSON.stringify(HOSTILE)}]}}`,
      ],
      [
        "roles.task-runner.ruby.versions[0]",
        `roles: {task-runner: {ruby: {versions: [${JSON.stringify(HOSTILE)}]}}}`,
      ],
      [
        "roles.task-runner.ruby_bench.ref",
        `roles: {task-runner: {ruby_bench: {ref: ${JSON.stringify(HOSTILE)}}}}`,
      ],
      ["roles.task-runner.packages[0]", `roles: {task-runner: {packages: [${JSON.stringify(HOSTILE)}]}}`],
      [
        "roles.task-runner.cpu.governor",
        `roles: {task-runner: {cpu: {governor: ${JSON.stringify(HOSTILE)}}}}`,
      ],
      ["aws.regions[0]", `aws: {regions: [${JSON.stringify(HOSTILE)}]}`],
      ["aws.subnet_id", `aws: {subnet_id: ${JSON.stringify(HOSTILE)}}`],
    ];
    for (const [key, yaml] of cases) {
      const r = parseConfig(yaml, { baseDir: "/" });
      assert.equal(r.config, undefined, key);
      assert.ok(
        r.errors.some((e) => e.startsWith(`${key}: `)),
        `${key}: ${r.errors.join("; ")}`,
      );
    }
  });

  test("the bake's inputs: image and registry arrive byte for byte; names, hashes and ids are checked", async () => {
    const cfg = configFrom("");
    const inputs: BakeInputs = {
      ...FIXED_INPUTS,
      rubyBenchCommit: HOSTILE,
      image: {
        ref: HOSTILE,
        registry: { endpoint: HOSTILE, user: HOSTILE, passwordEnv: "IMGTOOL_REGISTRY_PASSWORD" },
      },
    };
    const r = renderBake(cfg, "task-runner", "aws", inputs);
    const dir = await writeTemp(r, "hostile-inputs");
    cleanup.push(dir);
    const env = sourceBuildEnv(dir);
    for (const k of [
      "IMGTOOL_IMAGE_REF",
      "IMGTOOL_REGISTRY_ENDPOINT",
      "IMGTOOL_REGISTRY_USER",
      "IMGTOOL_RUBY_BENCH_COMMIT",
    ]) {
      assert.equal(env[k], HOSTILE, k);
    }
    for (const bad of [
      { version: HOSTILE },
      { inputsHash: "a b" },
      { gitRevision: "x\ny" },
      { image: { ref: "r", registry: { endpoint: "e", user: "u", passwordEnv: "A-B" } } },
      { base: "ami-1'; touch x" },
    ]) {
      assert.throws(
        () => renderBake(cfg, "task-runner", "aws", { ...FIXED_INPUTS, ...bad }),
        /renderBake: inputs\./,
      );
    }
    assert.throws(
      () => renderBake(cfg, "task-runner", "local", { ...FIXED_INPUTS, base: "{{ .Image }}" }),
      /inputs\.base/,
    );
    noMarks();
  });
});

describe("hostile values: a real Packer build of the twin (scripts swapped for recording stubs)", () => {
  const engine = localEngine();
  const PV = packerVersion();
  const skip = unavailable(engine.skip ?? (PV ? false : "packer is not installed"));
  const cleanup: string[] = [];
  after(() => cleanup.forEach((d) => rmSync(d, { recursive: true, force: true })));

  test(
    "build.env, the uploaded repository and the per-build values reach the scripts byte for byte",
    { skip, timeout: 180_000 },
    async () => {
      const env = (engine as { env: NodeJS.ProcessEnv }).env;
      // A ruby-bench repository in a folder with a hostile name (no "/", which a folder name cannot hold).
      const parent = tempDir("hostile-repo");
      cleanup.push(parent);
      const repoName = PIECES.filter((p) => !p.includes("/") && !p.includes("{{")).join(" ");
      const fx = makeRubyBenchRepo({ parent, name: repoName });
      const cfg = hostileConfig(fx.path);
      const inputs: BakeInputs = { ...FIXED_INPUTS, rubyBenchCommit: fx.commit, packerVersion: PV! };
      const r = renderBake(cfg, "task-runner", "local", inputs);
      const dir = await writeTemp(r, "hostile-build");
      cleanup.push(dir);
      // Each step: load common.sh (the real one: it reads build.env) and record every IMGTOOL_* value.
      const stub = [
        "#!/usr/bin/env bash",
        "set -o errexit -o nounset -o pipefail",
        '. "$IMGTOOL_COMMON"',
        'out=/etc/imgtool/dump/$IMGTOOL_STEP && mkdir -p "$out"',
        'for v in ${!IMGTOOL_@}; do printf "%s" "${!v}" >"$out/$v"; done',
        'if [[ $IMGTOOL_STEP == install-ruby-bench ]]; then cp "$IMGTOOL_RUBY_BENCH_SOURCE/README.md" "$out/README.md"; git -C "$IMGTOOL_RUBY_BENCH_SOURCE" rev-parse HEAD >"$out/HEAD" 2>/dev/null || cat "$IMGTOOL_RUBY_BENCH_SOURCE/.git/refs/heads/main" >"$out/HEAD"; fi',
        `if [[ $IMGTOOL_STEP == write-manifest ]]; then echo '{"stub": true}' >/etc/imgtool/manifest.json; ls -a / /tmp /root >"$out/listing"; fi`,
        "",
      ].join("\n");
      for (const step of STEPS) {
        writeFileSync(path.join(dir, "scripts", `${step}.sh`), stub);
        chmodSync(path.join(dir, "scripts", `${step}.sh`), 0o755);
      }
      const res = run(["packer", ...r.buildArgs], { cwd: dir, env });
      assert.equal(res.code, 0, res.out);
      const [art] = artifactsFromManifest(r, readFileSync(path.join(dir, r.manifestFile), "utf8"));
      const out = tempDir("hostile-dump");
      cleanup.push(out);
      const cid = run(["docker", "create", "--entrypoint", "/bin/true", art!.id], { env }).out.trim();
      try {
        const cp = run(["docker", "cp", `${cid}:/etc/imgtool/dump`, out], { env });
        assert.equal(cp.code, 0, cp.out);
      } finally {
        run(["docker", "rm", "-f", cid], { env });
        run(["docker", "rmi", "-f", art!.id], { env });
      }
      const got = (step: string, name: string) => readFileSync(path.join(out, "dump", step, name), "utf8");
      const rc = cfg.roles["task-runner"];
      for (const step of STEPS) {
        assert.equal(got(step, "IMGTOOL_RUBY_TARBALL_URL"), rc.ruby.tarball_url, `${step}: tarball_url`);
        assert.equal(got(step, "IMGTOOL_RUBY_BENCH_ORIGIN"), fx.path, `${step}: repository`);
        assert.equal(got(step, "IMGTOOL_STEP"), step);
      }
      // The folder with the hostile name was uploaded whole (its README and its git history).
      assert.equal(
        got("install-ruby-bench", "README.md"),
        readFileSync(path.join(fx.path, "README.md"), "utf8"),
      );
      assert.equal(got("install-ruby-bench", "HEAD").trim(), fx.commit);
      // The per-build values, base64 through Packer's environment_vars.
      const b64 = (n: string) => Buffer.from(got("write-manifest", n), "base64").toString("utf8");
      assert.equal(b64("IMGTOOL_VERSION_B64"), FIXED_INPUTS.version);
      assert.equal(b64("IMGTOOL_INPUTS_HASH_B64"), FIXED_INPUTS.inputsHash);
      assert.equal(b64("IMGTOOL_GIT_REVISION_B64"), FIXED_INPUTS.gitRevision);
      // Nothing ran: no marker on this machine, none in the image.
      noMarks();
      assert.doesNotMatch(got("write-manifest", "listing"), /imgtool-pwned/);
      assert.ok(existsSync(path.join(dir, "version-manifest.json")));
    },
  );
});
