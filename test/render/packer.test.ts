// The rendered Packer bake against the real tools, for the example config, both roles and both targets:
// golden files, `packer fmt -check`, `packer validate` (Debian's Packer 1.6.6), HashiCorp's HCL parser (WASM),
// shellcheck over every script, and bash reading build.env. Set UPDATE_GOLDEN=1 to rewrite the golden files.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { ROLES, TARGETS } from "../../src/config/schema.js";
import { UsageError } from "../../src/errors.js";
import { projectPath } from "../../src/paths.js";
import {
  IMAGE_MANIFEST_PATH,
  ISOLATION_KERNEL_ARGS,
  STEPS,
  artifactsFromManifest,
  renderBake,
  renderedHash,
  versionAtLeast,
  type RenderedBake,
} from "../../src/render/packer.js";
import {
  FIXED_INPUTS,
  configFrom,
  exampleConfig,
  forOldPacker,
  hclJsonString,
  packerVersion,
  parseHcl,
  run,
  sourceBuildEnv,
  writeTemp,
} from "./helpers.js";
import { unavailable } from "../support/unavailable.js";

const PACKER = packerVersion();
const noPacker = unavailable(PACKER ? false : "packer is not installed (scripts/setup installs it)");
const GOLDEN = projectPath("test", "render", "golden");
// Copies of files under packer/: compared with their source instead of a golden copy.
const isCopy = (f: string) => f.startsWith("scripts/") || f === "versions.json";

type Hcl = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe("render: the example config, both roles, both targets", () => {
  const dirs: string[] = [];
  after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  for (const target of TARGETS) {
    for (const role of ROLES) {
      describe(`${role} on ${target}`, () => {
        let r: RenderedBake;
        let dir: string;
        before(async () => {
          r = renderBake(exampleConfig(), role, target, FIXED_INPUTS);
          dir = await writeTemp(r, `render-${target}-${role}`);
          dirs.push(dir);
        });

        test("golden files (UPDATE_GOLDEN=1 rewrites them); copies equal their source under packer/", () => {
          const gdir = path.join(GOLDEN, target, role);
          if (process.env.UPDATE_GOLDEN === "1") {
            rmSync(gdir, { recursive: true, force: true });
            for (const [f, content] of Object.entries(r.files)) {
              if (isCopy(f)) continue;
              mkdirSync(path.dirname(path.join(gdir, f)), { recursive: true });
              writeFileSync(path.join(gdir, f), content);
            }
          }
          const golden = readdirSync(gdir, { recursive: true, withFileTypes: true })
            .filter((e) => e.isFile())
            .map((e) => path.relative(gdir, path.join(e.parentPath, e.name)))
            .sort();
          assert.deepEqual(
            golden,
            Object.keys(r.files)
              .filter((f) => !isCopy(f))
              .sort(),
          );
          for (const f of golden) {
            assert.equal(
              r.files[f],
              readFileSync(path.join(gdir, f), "utf8"),
              `${f} differs from its golden file`,
            );
          }
          for (const f of Object.keys(r.files).filter(isCopy)) {
            assert.equal(
              r.files[f],
              readFileSync(projectPath("packer", f), "utf8"),
              `${f} is not a copy of packer/${f}`,
            );
          }
        });

        test("packer fmt -check: every HCL file is as Packer formats it", { skip: noPacker }, () => {
          const res = run(["packer", "fmt", "-check", "-diff", "."], { cwd: dir });
          assert.equal(res.code, 0, res.out);
          // The plugins file too (fmt needs syntax only, which 1.6.6 parses).
          const p = run(["packer", "fmt", "-check", "-diff", r.pluginsFile], { cwd: dir });
          assert.equal(p.code, 0, p.out);
        });

        test(
          "packer validate (1.6.6: the plugins file and, on aws, the two IMDSv2 settings it does not know are left out)",
          {
            skip: noPacker,
          },
          () => {
            // Packer 1.6.6 rejects `packer { required_plugins }` (added in 1.7), and its built-in amazon-ebs
            // predates `imds_support` and `metadata_options`: the HCL parser checks those below.
            const old = forOldPacker(dir, r);
            try {
              if (target === "aws") {
                const n = r.sources.length;
                assert.deepEqual(
                  old.removed,
                  { imds: n, metadata: n, sshFromBuilder: n },
                  "expected one of each per source",
                );
              }
              const res = run(["packer", "validate", `-var-file=${r.varFile}`, "."], { cwd: old.dir });
              assert.equal(res.code, 0, res.out);
            } finally {
              rmSync(old.dir, { recursive: true, force: true });
            }
          },
        );

        test("the HCL parser reads every file; the blocks say what the issue asks", async () => {
          const cfg = exampleConfig();
          const rc = cfg.roles[role];
          const hcl: Record<string, Hcl> = {};
          for (const f of Object.keys(r.files).filter((x) => x.endsWith(".hcl"))) {
            hcl[f] = await parseHcl(f, r.files[f]!);
          }
          // plugins: required_plugins only, for this target's builder.
          const plugin = target === "aws" ? "amazon" : "docker";
          const req = hcl[r.pluginsFile]!.packer[0].required_plugins[0];
          assert.deepEqual(Object.keys(req), [plugin]);
          assert.equal(req[plugin].source, `github.com/hashicorp/${plugin}`);
          // An exact pin (test/packer/plugin-pins.unit.test.ts says why). imds_support arrived in the amazon
          // plugin 1.2.2: an older one would reject the template.
          assert.match(req[plugin].version, /^= \d+\.\d+\.\d+$/);
          if (target === "aws")
            assert.ok(versionAtLeast(req[plugin].version.slice(2), "1.2.2"), req[plugin].version);
          assert.deepEqual(Object.keys(hcl[r.pluginsFile]!), ["packer"]);
          // variables: the per-build values, with no default; the variables file gives them.
          const vars = hcl["variables.pkr.hcl"]!.variable;
          for (const v of ["version", "inputs_hash", "git_revision"])
            assert.equal(vars[v][0].default, undefined);
          const pkrvars = hcl["imgtool.pkrvars.hcl"]!;
          assert.equal(pkrvars.version, FIXED_INPUTS.version);
          assert.equal(pkrvars.inputs_hash, FIXED_INPUTS.inputsHash);
          assert.equal(pkrvars.git_revision, FIXED_INPUTS.gitRevision);

          const sources = hcl["sources.pkr.hcl"]!.source;
          if (target === "aws") {
            const ebs = sources["amazon-ebs"];
            assert.deepEqual(Object.keys(ebs), ["x86_64"]);
            const s = ebs.x86_64[0];
            assert.equal(s.region, cfg.aws.regions[0]);
            assert.equal(s.instance_type, rc.instance_types[0]);
            assert.deepEqual(s.source_ami_filter[0].owners, [rc.base.aws.owner]);
            assert.equal(s.source_ami_filter[0].most_recent, true);
            assert.equal(s.source_ami_filter[0].filters.name, rc.base.aws.name.x86_64);
            assert.equal(s.source_ami_filter[0].filters.architecture, "x86_64");
            assert.equal(s.metadata_options[0].http_tokens, "required");
            assert.equal(s.imds_support, "v2.0");
            // Encrypted at launch, so the AMI is encrypted once: encrypt_boot would copy it a second time.
            assert.equal(s.encrypt_boot, undefined);
            assert.equal(s.launch_block_device_mappings[0].encrypted, true);
            assert.equal(s.temporary_security_group_source_public_ip, true, "SSH only from the builder");
            assert.equal(s.shutdown_behavior, "terminate");
            assert.equal(s.ami_regions, undefined, "copies are the bake flow's (CopyImage), not Packer's");
            assert.equal(s.subnet_id, "${var.subnet_id}", "a value of the build (imgtool.pkrvars.hcl)");
            for (const k of ["run_tags", "run_volume_tags", "tags", "snapshot_tags"]) {
              assert.match(s[k], /^\$\{merge\(local\.tags, \{ "imgtool:arch" = "x86_64" \}\)\}$/);
            }
            const tags = hcl["sources.pkr.hcl"]!.locals[0].tags;
            assert.deepEqual(tags, {
              Name: "${local.name_prefix}-${var.version}",
              "imgtool:pipeline": cfg.pipeline,
              "imgtool:role": role,
              "imgtool:version": "${var.version}",
              "imgtool:inputs-hash": "${var.inputs_hash}",
              "imgtool:git-revision": "${var.git_revision}",
            });
          } else {
            const twin = sources.docker.twin[0];
            assert.equal(twin.image, rc.base.local.image);
            assert.equal(twin.pull, false);
            assert.equal(twin.commit, true);
            assert.ok(twin.changes.includes('ENTRYPOINT ["/usr/local/sbin/imgtool-boot"]'));
          }

          // build: the scripts in order, one provisioner each, then the manifest post-processor.
          // (HCL's JSON form groups blocks by type: the order of the shell provisioners is kept.)
          const build = hcl["build.pkr.hcl"]!.build[0];
          const shells = (build.provisioner.shell as Hcl[]).filter((p) => p.script);
          assert.deepEqual(
            shells.map((p) => p.script),
            STEPS.map((s) => `scripts/${s}.sh`),
          );
          for (const p of shells) {
            assert.equal(p.execute_command, "${local.execute_command}");
            assert.equal(p.use_env_var_file, true);
          }
          const download = (build.provisioner.file as Hcl[]).find((p) => p.direction === "download");
          assert.equal(download!.source, IMAGE_MANIFEST_PATH);
          assert.equal(download!.destination, r.sources[0]!.versionManifestFile);
          const pp = build["post-processor"].manifest[0];
          assert.equal(pp.output, r.manifestFile);
          assert.equal(pp.strip_path, true);
          // Packer's own template syntax survived Handlebars.
          const exec = hcl["build.pkr.hcl"]!.locals[0].execute_command as string;
          assert.match(
            exec,
            /chmod \+x \{\{ \.Path \}\}; .*\. \{\{ \.EnvVarFile \}\} && exec \{\{ \.Path \}\}/,
          );
          assert.equal(exec.startsWith("chmod +x {{ .Path }}; sudo -n "), target === "aws");
        });

        test("shellcheck over every rendered script", () => {
          const scripts = r.executableFiles.concat(
            Object.keys(r.files).filter((f) => f.endsWith("common.sh")),
          );
          const res = run(["shellcheck", "-x", "--source-path=SCRIPTDIR", ...new Set(scripts)], { cwd: dir });
          assert.equal(res.code, 0, res.out);
          for (const f of r.executableFiles) {
            assert.equal(statSync(path.join(dir, f)).mode & 0o111, 0o111, `${f} is not executable`);
          }
        });

        test("build.env, read by bash, holds the config's values byte for byte", () => {
          const cfg = exampleConfig();
          const rc = cfg.roles[role];
          const env = sourceBuildEnv(dir);
          assert.equal(env.IMGTOOL_ROLE, role);
          assert.equal(env.IMGTOOL_TARGET, target);
          assert.equal(env.IMGTOOL_RUBY_VERSIONS, rc.ruby.versions.join(" "));
          assert.equal(env.IMGTOOL_RUBY_METHOD, rc.ruby.method);
          assert.equal(env.IMGTOOL_RUBY_BENCH_ORIGIN, rc.ruby_bench.repository);
          assert.equal(env.IMGTOOL_RUBY_BENCH_SOURCE, rc.ruby_bench.repository);
          assert.equal(env.IMGTOOL_RUBY_BENCH_REF, rc.ruby_bench.ref);
          assert.equal(env.IMGTOOL_RUBY_BENCH_COMMIT, FIXED_INPUTS.rubyBenchCommit);
          assert.equal(env.IMGTOOL_CPU_GOVERNOR, rc.cpu.governor);
          assert.equal(env.IMGTOOL_CPU_TURBO, rc.cpu.turbo);
          assert.equal(env.IMGTOOL_CPU_QUIET_SERVICES, String(rc.cpu.quiet_services));
          // CPU isolation: task runners only (on the twin, configure-cpu.sh records it as not allowed).
          assert.equal(env.IMGTOOL_CPU_KERNEL_ARGS, role === "task-runner" ? ISOLATION_KERNEL_ARGS : "");
          assert.equal(env.IMGTOOL_IMAGE_REF, "");
          assert.equal(env.IMGTOOL_DOCKER_PACKAGE_APT, "docker.io");
          assert.equal(env.IMGTOOL_BENCH_PACKAGES_APT === "", role === "orchestrator");
        });
      });
    }
  }
});

describe("render: variants beyond the example config", () => {
  const multi = () =>
    configFrom(
      [
        "roles:",
        "  task-runner:",
        "    instance_types: [c7i.large, c7g.large, m6gd.xlarge]",
        "aws:",
        "  regions: [eu-west-1, us-east-1]",
        "  subnet_id: subnet-0123abcd",
      ].join("\n"),
    );
  const withImage = {
    ...FIXED_INPUTS,
    region: "eu-west-1", // the bake passes its first region: the home region
    base: "ami-0123456789abcdef0,ami-0fedcba9876543210",
    image: {
      ref: `127.0.0.1:5000/bench/task-runner@sha256:${"a".repeat(64)}`,
      registry: { endpoint: "127.0.0.1:5000", user: "AWS", passwordEnv: "IMGTOOL_REGISTRY_PASSWORD" },
    },
  };

  test("aws.bake_subnet_id: the build instances' subnet (not aws.subnet_id, the launches'), with a public address, a value of the build outside the inputs hash; Packer formats and validates it", async () => {
    const cfg = configFrom(
      ["aws:", "  subnet_id: subnet-0123abcd", "  bake_subnet_id: subnet-0fedcba9876543210"].join("\n"),
    );
    const r = renderBake(cfg, "task-runner", "aws", FIXED_INPUTS);
    const subnetOf = async (x: RenderedBake) =>
      ((await parseHcl("v", x.files[x.varFile]!)) as Hcl).subnet_id as string;
    assert.equal(await subnetOf(r), "subnet-0fedcba9876543210");
    const ebs = ((await parseHcl("s", r.files["sources.pkr.hcl"]!)).source as Hcl)["amazon-ebs"];
    for (const name of r.sources.map((s) => s.name)) {
      assert.equal(ebs[name][0].subnet_id, "${var.subnet_id}");
      assert.equal(ebs[name][0].associate_public_ip_address, '${var.subnet_id == "" ? null : true}');
    }
    // Without bake_subnet_id, aws.subnet_id serves the bake too; with neither, the value is empty: Packer picks
    // the default VPC's subnet (which assigns public addresses) and no public address is asked for.
    const shared = renderBake(
      configFrom("aws:\n  subnet_id: subnet-0123abcd\n"),
      "task-runner",
      "aws",
      FIXED_INPUTS,
    );
    assert.equal(await subnetOf(shared), "subnet-0123abcd");
    const none = renderBake(exampleConfig(), "task-runner", "aws", FIXED_INPUTS);
    assert.equal(await subnetOf(none), "");
    // Where the build instance runs does not shape the image: no rebake when the subnet changes.
    assert.equal(renderedHash(r), renderedHash(shared));
    assert.equal(renderedHash(r), renderedHash(none));
    if (!PACKER) return;
    for (const x of [r, none]) {
      const dir = await writeTemp(x, "render-aws-bake-subnet");
      try {
        const fmt = run(["packer", "fmt", "-check", "-diff", "."], { cwd: dir });
        assert.equal(fmt.code, 0, fmt.out);
        const old = forOldPacker(dir, x);
        try {
          assert.equal(
            old.removed.imds,
            x.sources.length,
            "the IMDSv2 setting was found (alignment unchanged)",
          );
          const res = run(["packer", "validate", `-var-file=${x.varFile}`, "."], { cwd: old.dir });
          assert.equal(res.code, 0, res.out);
        } finally {
          rmSync(old.dir, { recursive: true, force: true });
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  });

  test("instance types of two architectures: one source each, pinned to the resolved AMIs; per-arch manifests", async () => {
    const r = renderBake(multi(), "task-runner", "aws", withImage);
    assert.deepEqual(
      r.sources.map((s) => [s.name, s.arch, s.instanceType, s.versionManifestFile]),
      [
        ["x86_64", "x86_64", "c7i.large", "version-manifest-x86_64.json"],
        ["arm64", "arm64", "c7g.large", "version-manifest-arm64.json"],
      ],
    );
    const src = (await parseHcl("s", r.files["sources.pkr.hcl"]!)).source as Hcl;
    const ebs = src["amazon-ebs"];
    assert.equal(ebs.x86_64[0].source_ami_filter[0].filters["image-id"], "ami-0123456789abcdef0");
    assert.equal(ebs.arm64[0].source_ami_filter[0].filters["image-id"], "ami-0fedcba9876543210");
    assert.equal(ebs.arm64[0].region, "eu-west-1", "bakes in the first configured region");
    assert.equal(ebs.arm64[0].subnet_id, "${var.subnet_id}");
    assert.equal(((await parseHcl("v", r.files[r.varFile]!)) as Hcl).subnet_id, "subnet-0123abcd");
    const build = ((await parseHcl("b", r.files["build.pkr.hcl"]!)).build as Hcl[])[0]!;
    assert.deepEqual(build.sources, ["source.amazon-ebs.x86_64", "source.amazon-ebs.arm64"]);
    const download = (build.provisioner.file as Hcl[]).find((p) => p.direction === "download");
    assert.equal(download!.destination, "version-manifest-${source.name}.json");
    // The registry password: an environment variable at build time, never in a file; base64 to the step.
    const vars = ((await parseHcl("v", r.files["variables.pkr.hcl"]!)).variable as Hcl).registry_password[0];
    assert.equal(vars.default, '${env("IMGTOOL_REGISTRY_PASSWORD")}');
    assert.equal(vars.sensitive, true);
    const preload = (build.provisioner.shell as Hcl[]).find((p) => p.script === "scripts/preload-image.sh");
    assert.match(
      preload!.environment_vars,
      /IMGTOOL_REGISTRY_PASSWORD_B64=\$\{base64encode\(var\.registry_password\)\}/,
    );
    const dir = await writeTemp(r);
    try {
      const env = sourceBuildEnv(dir);
      assert.equal(env.IMGTOOL_IMAGE_REF, withImage.image.ref);
      assert.equal(env.IMGTOOL_REGISTRY_ENDPOINT, "127.0.0.1:5000");
      assert.equal(env.IMGTOOL_REGISTRY_USER, "AWS");
      assert.equal(Object.values(env).join("\n").includes("IMGTOOL_REGISTRY_PASSWORD="), false);
      if (PACKER) {
        const fmt = run(["packer", "fmt", "-check", "-diff", "."], { cwd: dir });
        assert.equal(fmt.code, 0, fmt.out);
        const old = forOldPacker(dir, r);
        const res = run(["packer", "validate", `-var-file=${r.varFile}`, "."], {
          cwd: old.dir,
          env: { IMGTOOL_REGISTRY_PASSWORD: "secret" },
        });
        rmSync(old.dir, { recursive: true, force: true });
        assert.equal(res.code, 0, res.out);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a local ruby-bench repository is uploaded into the build and cloned from there", async () => {
    const cfg = configFrom(
      "roles:\n  task-runner:\n    ruby_bench:\n      repository: ./fixtures/ruby-bench\n",
      "/srv/p",
    );
    const r = renderBake(cfg, "task-runner", "local", FIXED_INPUTS);
    const build = ((await parseHcl("b", r.files["build.pkr.hcl"]!)).build as Hcl[])[0]!;
    const upload = (build.provisioner.file as Hcl[]).find(
      (p) => p.destination === "/tmp/imgtool-ruby-bench-src/",
    );
    assert.equal(upload!.source, "/srv/p/fixtures/ruby-bench/", "resolved against the config's folder");
    const dir = await writeTemp(r);
    try {
      const env = sourceBuildEnv(dir);
      assert.equal(env.IMGTOOL_RUBY_BENCH_SOURCE, "/tmp/imgtool-ruby-bench-src");
      // The config resolves local paths against its own folder, so the recorded origin is absolute.
      assert.equal(env.IMGTOOL_RUBY_BENCH_ORIGIN, "/srv/p/fixtures/ruby-bench");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // URLs, scp-like remotes and file:// URLs.
    for (const [repo, local] of [
      ["https://github.com/ruby/ruby-bench.git", false],
      ["git@github.com:ruby/ruby-bench.git", false],
      ["ssh://git@example.com/r.git", false],
      ["file:///srv/r", true],
      ["/srv/r", true],
    ] as const) {
      const c = configFrom(`roles:\n  orchestrator:\n    ruby_bench:\n      repository: "${repo}"\n`);
      const rr = renderBake(c, "orchestrator", "aws", FIXED_INPUTS);
      assert.equal(rr.files["build.pkr.hcl"]!.includes("/tmp/imgtool-ruby-bench-src/"), local, repo);
    }
  });

  test(
    "Packer before 1.7: the plugins file moves to plugins/ and `packer build .` validates as it is",
    { skip: noPacker },
    async () => {
      const r = renderBake(exampleConfig(), "task-runner", "local", {
        ...FIXED_INPUTS,
        packerVersion: "Packer v1.6.6",
      });
      assert.equal(r.pluginsFile, "plugins/plugins.pkr.hcl");
      assert.deepEqual(r.buildArgs, ["build", "-color=false", "-var-file=imgtool.pkrvars.hcl", "."]);
      const dir = await writeTemp(r);
      try {
        const res = run(["packer", "validate", `-var-file=${r.varFile}`, "."], { cwd: dir });
        assert.equal(res.code, 0, res.out);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      const modern = renderBake(exampleConfig(), "task-runner", "local", {
        ...FIXED_INPUTS,
        packerVersion: "1.11.2",
      });
      assert.equal(modern.pluginsFile, "plugins.pkr.hcl");
      assert.deepEqual(modern.initArgs, ["init", "plugins.pkr.hcl"]);
    },
  );

  test("the aws bake needs Packer 1.7 or later (init, and the amazon plugin's IMDSv2 settings)", () => {
    assert.throws(
      () =>
        renderBake(exampleConfig(), "task-runner", "aws", {
          ...FIXED_INPUTS,
          packerVersion: "Packer v1.6.6",
        }),
      (e: unknown) =>
        e instanceof UsageError && /needs Packer 1\.7\.0 or later.*imds_support/s.test(e.message),
    );
    assert.equal(renderBake(exampleConfig(), "task-runner", "aws", FIXED_INPUTS).minPackerVersion, "1.7.0");
  });

  test("the inputs hash of the rendered files: same inputs, same hash; the per-build values do not count", () => {
    const cfg = exampleConfig();
    const a = renderBake(cfg, "task-runner", "aws", FIXED_INPUTS);
    const b = renderBake(cfg, "task-runner", "aws", {
      ...FIXED_INPUTS,
      version: "v2",
      inputsHash: "x",
      gitRevision: "y",
    });
    assert.equal(renderedHash(a), renderedHash(b));
    assert.notEqual(a.files[a.varFile], b.files[b.varFile]);
    assert.ok(!a.hashedFiles.includes(a.varFile));
    assert.deepEqual(
      a.hashedFiles,
      Object.keys(a.files)
        .filter((f) => f !== a.varFile)
        .sort(),
    );
    const c = renderBake(cfg, "task-runner", "aws", { ...FIXED_INPUTS, rubyBenchCommit: "f".repeat(40) });
    assert.notEqual(renderedHash(a), renderedHash(c), "the ruby-bench commit shapes the bake");
    const cfg2 = configFrom("roles:\n  task-runner:\n    cpu:\n      turbo: unchanged\n");
    assert.notEqual(renderedHash(a), renderedHash(renderBake(cfg2, "task-runner", "aws", FIXED_INPUTS)));
  });

  test("artifact IDs come from packer-manifest.json (the last run only)", () => {
    const r = renderBake(multi(), "task-runner", "aws", FIXED_INPUTS);
    const manifest = {
      builds: [
        {
          name: "x86_64",
          builder_type: "amazon-ebs",
          artifact_id: "eu-west-1:ami-0aaa",
          packer_run_uuid: "old",
        },
        {
          name: "x86_64",
          builder_type: "amazon-ebs",
          artifact_id: "eu-west-1:ami-0111",
          packer_run_uuid: "new",
        },
        {
          name: "arm64",
          builder_type: "amazon-ebs",
          artifact_id: "eu-west-1:ami-0222",
          packer_run_uuid: "new",
        },
      ],
      last_run_uuid: "new",
    };
    assert.deepEqual(artifactsFromManifest(r, JSON.stringify(manifest)), [
      { source: "x86_64", arch: "x86_64", id: "ami-0111", region: "eu-west-1" },
      { source: "arm64", arch: "arm64", id: "ami-0222", region: "eu-west-1" },
    ]);
    const twin = renderBake(exampleConfig(), "task-runner", "local", FIXED_INPUTS);
    const id = `sha256:${"b".repeat(64)}`;
    assert.deepEqual(
      artifactsFromManifest(twin, JSON.stringify({ builds: [{ name: "twin", artifact_id: id }] })),
      [{ source: "twin", arch: twin.sources[0]!.arch, id }],
    );
  });

  test("every step is a script under packer/scripts/, and every script there is a step", () => {
    const scripts = readdirSync(projectPath("packer", "scripts")).filter((f) => f.endsWith(".sh"));
    assert.deepEqual(scripts.sort(), STEPS.map((s) => `${s}.sh`).sort());
    assert.ok(existsSync(projectPath("packer", "scripts", "lib", "common.sh")));
  });

  test("values Packer reads as its own templates ({{) are refused, naming the config key", () => {
    const cfg = configFrom(
      'roles:\n  task-runner:\n    base:\n      aws:\n        owner: "{{ env `HOME` }}"\n',
    );
    assert.throws(
      () => renderBake(cfg, "task-runner", "aws", FIXED_INPUTS),
      (e: unknown) =>
        e instanceof UsageError &&
        /^roles\.task-runner\.base\.aws\.owner: .* Packer reads as its own template syntax/.test(e.message),
    );
    // ...but only where Packer reads them: build.env is a file Packer copies byte for byte.
    const ok = configFrom(
      'roles:\n  task-runner:\n    ruby_bench:\n      repository: "https://h.invalid/{{x}}.git"\n',
    );
    assert.ok(renderBake(ok, "task-runner", "aws", FIXED_INPUTS).files["build.env"]!.includes("{{x}}"));
  });

  test("hclJsonString (test helper) decodes HCL's JSON template escapes", () => {
    assert.equal(hclJsonString("a $${b} %%{c} $$$${d}"), "a ${b} %{c} $$${d}");
  });
});
