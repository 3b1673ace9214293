// A real bake of the task-runner's local twin: the rendered HCL and the real provisioning scripts, run by
// Packer's docker builder against the local engine (scripts/setup's, from stack.json), with a local git
// repository as ruby-bench (GitHub is not reachable). apt talks to Debian's archive. Then the image is
// inspected: Ruby, Docker (its engine starts at boot), /opt/ruby-bench at the commit, the validate step and its
// version manifest, the CPU and pre-load records, the cleanup.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { artifactsFromManifest, renderBake, type RenderedBake } from "../../src/render/packer.js";
import { makeRubyBenchRepo, type RubyBenchFixture } from "../support/fixtures/ruby-bench.js";
import { configFrom, localEngine, packerVersion, run, writeTemp } from "../render/helpers.js";
import { unavailable } from "../support/unavailable.js";

const engine = localEngine();
const PV = packerVersion();
const skip = unavailable(engine.skip ?? (PV ? false : "packer is not installed (scripts/setup installs it)"));
const env = (engine as { env?: NodeJS.ProcessEnv }).env ?? {};
// Debian 12's Ruby: the twin uses what the machine can reach, the distribution's package.
const RUBY = "3.1";
// What `docker run --privileged` would give, which these machines refuse (see ../shared/notes/machine.md).
const ENGINE_FLAGS = [
  "--cap-add=SYS_ADMIN",
  "--cap-add=NET_ADMIN",
  "--cap-add=SYS_PTRACE",
  "--cap-add=MKNOD",
  "--security-opt=seccomp=unconfined",
  "--security-opt=apparmor=unconfined",
  "-v=/sys/fs/cgroup:/sys/fs/cgroup",
  "--tmpfs=/var/lib/docker:exec",
];

/**
 * imgtool-cpu-setup's record on a twin, setting by setting: no writable cpufreq or turbo control in a container
 * (absent, or read-only /sys), the noisy units masked (a file system it owns), kernel arguments and interrupts
 * the host's.
 */
const TWIN_CPU_STATUSES = {
  governor: "not-allowed",
  turbo: "not-allowed",
  services: "applied",
  kernel_args: "not-allowed",
  irq_affinity: "not-allowed",
};
const statuses = (record: Record<string, unknown>) =>
  Object.fromEntries(
    Object.keys(TWIN_CPU_STATUSES).map((k) => [k, (record[k] as { status?: unknown } | undefined)?.status]),
  );

/** Run a command in a fresh container of the image, bypassing its entrypoint: its stdout (and all output). */
function inImage(image: string, argv: string[], extra: string[] = []): string {
  return inImageFull(image, argv, extra).stdout;
}

function inImageFull(image: string, argv: string[], extra: string[] = []): { stdout: string; out: string } {
  const r = run(["docker", "run", "--rm", ...extra, "--entrypoint", argv[0]!, image, ...argv.slice(1)], {
    env,
  });
  assert.equal(r.code, 0, `${argv.join(" ")}:\n${r.out}`);
  return r;
}

describe("twin bake of task-runner: real Packer, real scripts, then the image inspected", { skip }, () => {
  let fx: RubyBenchFixture;
  let r: RenderedBake;
  let dir: string;
  let log = "";
  let image = "";
  let seconds = 0;

  before(
    async () => {
      fx = makeRubyBenchRepo();
      const cfg = configFrom(
        [
          "roles:",
          "  task-runner:",
          "    ruby:",
          `      versions: ["${RUBY}"]`,
          "    ruby_bench:",
          `      repository: ${JSON.stringify(fx.path)}`,
          `      ref: ${fx.ref}`,
        ].join("\n"),
      );
      r = renderBake(cfg, "task-runner", "local", {
        version: "v20261129-171500-0badcafe",
        inputsHash: "0badcafe",
        gitRevision: "0123456789abcdef0123456789abcdef01234567",
        rubyBenchCommit: fx.commit,
        packerVersion: PV!,
      });
      dir = await writeTemp(r, "twin-bake");
      const t0 = Date.now();
      const res = run(["packer", ...r.buildArgs], { cwd: dir, env });
      seconds = (Date.now() - t0) / 1000;
      log = res.out;
      writeFileSync(path.join(dir, "packer.log"), log);
      assert.equal(res.code, 0, `packer build failed (log: ${dir}/packer.log):\n${log.slice(-6000)}`);
      const [art] = artifactsFromManifest(r, readFileSync(path.join(dir, r.manifestFile), "utf8"));
      image = art!.id;
    },
    { timeout: 900_000 },
  );

  after(() => {
    if (image) run(["docker", "rmi", "-f", image], { env });
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (fx) rmSync(path.dirname(fx.path), { recursive: true, force: true });
  });

  test("the bake succeeded; the image ID comes from packer-manifest.json, and the image is the twin", (t) => {
    t.diagnostic(`packer build of the task-runner twin took ${seconds.toFixed(1)} s`);
    assert.match(image, /^sha256:[0-9a-f]{64}$/);
    const cfg = JSON.parse(run(["docker", "image", "inspect", image], { env }).out)[0].Config;
    assert.deepEqual(cfg.Entrypoint, ["/usr/local/sbin/imgtool-boot"]);
    assert.deepEqual(cfg.Cmd, ["sleep", "infinity"]);
    assert.equal(cfg.Labels["org.imgtool.role"], "task-runner");
    // One shell provisioner per script, in order: each step logged its own name.
    let at = -1;
    for (const step of [
      "update-os",
      "install-packages",
      "install-docker",
      "install-ruby",
      "install-ruby-bench",
      "preload-image",
      "configure-cpu",
      "cleanup",
      "validate",
      "write-manifest",
    ]) {
      const i = log.indexOf(`imgtool[${step}]: ok`);
      const skipped = log.indexOf(`imgtool[${step}]: skipped`);
      const seen = i >= 0 ? i : skipped;
      assert.ok(seen > at, `step ${step} did not finish in order`);
      at = seen;
    }
  });

  test("validate ran, then write-manifest: the version manifest is in the image and in the build folder", () => {
    assert.match(log, /imgtool\[validate\]: ok: every promise holds/);
    assert.match(log, /imgtool\[write-manifest\]: ok: version manifest written/);
    const inside = JSON.parse(inImage(image, ["cat", "/etc/imgtool/manifest.json"]));
    const downloaded = JSON.parse(readFileSync(path.join(dir, r.sources[0]!.versionManifestFile), "utf8"));
    assert.deepEqual(inside, downloaded);
    assert.equal(inside.imgtool.role, "task-runner");
    assert.equal(inside.imgtool.version, "v20261129-171500-0badcafe");
    assert.equal(inside.imgtool.inputs_hash, "0badcafe");
    assert.equal(inside.os.id, "debian");
    assert.match(inside.kernel, /\S/);
    assert.match(inside.packages["docker.io"], /^\d/);
    assert.equal(inside.ruby.method, "distro");
    assert.match(inside.ruby.versions[0].version, new RegExp(`^${RUBY.replace(".", "\\.")}\\.`));
    assert.match(inside.docker.engine, /^Docker version /);
    assert.equal(inside.ruby_bench.commit, fx.commit);
    assert.deepEqual(inside.images, [
      { status: "skipped", image: "", reason: "no image published for task-runner" },
    ]);
    assert.equal(inside.cpu.governor, "performance");
    assert.equal(inside.cpu.turbo, "off");
    assert.equal(inside.cpu.quiet_services, true);
    // What a twin can and cannot do (a container without --privileged: /sys is read-only, the kernel is the
    // host's): the same at bake as at boot (see the entrypoint's test below).
    assert.deepEqual(statuses(inside.cpu.at_bake), TWIN_CPU_STATUSES);
  });

  test(`the configured Ruby (${RUBY}) runs`, () => {
    assert.match(
      inImage(image, ["ruby", "-e", "print RUBY_VERSION"]),
      new RegExp(`^${RUBY.replace(".", "\\.")}\\.\\d+$`),
    );
  });

  test("Docker is installed, and the twin's entrypoint starts its engine like systemd would", () => {
    assert.match(inImage(image, ["docker", "--version"]), /^Docker version /);
    assert.match(inImage(image, ["dockerd", "--version"]), /^Docker version /);
    // Through the entrypoint: imgtool-boot starts dockerd, then runs the command (user-data).
    // And before that it applied the CPU settings, or recorded why this platform does not allow them.
    const cmd = "docker info --format 'engine {{.ServerVersion}}' && cat /run/imgtool/cpu.json";
    const r2 = run(["docker", "run", "--rm", ...ENGINE_FLAGS, image, "sh", "-c", cmd], { env });
    assert.equal(r2.code, 0, r2.out);
    assert.match(r2.out, /^engine \d+\.\d+/m);
    const line = r2.stdout.split("\n").find((l) => l.startsWith("{"));
    assert.ok(line, r2.out);
    const record = JSON.parse(line) as Record<string, unknown>;
    assert.deepEqual(statuses(record), TWIN_CPU_STATUSES);
  });

  test("cloud-init is installed (as on Amazon Linux 2023), with the twin's NoCloud settings", () => {
    const out = inImage(image, [
      "sh",
      "-c",
      "cloud-init --version; cat /etc/cloud/cloud.cfg.d/90-imgtool-twin.cfg; ls -A /var/lib/cloud 2>/dev/null || true",
    ]);
    assert.match(out, /cloud-init 2\d\.\d/);
    assert.match(out, /^datasource_list: \[NoCloud, None\]$/m);
    assert.match(out, /^network: \{ config: disabled \}$/m);
    // The cleanup left no instance behind: the first boot of every instance is a first boot.
    assert.doesNotMatch(out, /^instances?$/m);
  });

  test("/opt/ruby-bench is at the configured commit, clean, with the configured origin", () => {
    const out = inImage(image, [
      "sh",
      "-c",
      "git -C /opt/ruby-bench rev-parse HEAD; git -C /opt/ruby-bench status --porcelain; git -C /opt/ruby-bench remote get-url origin",
    ]);
    assert.deepEqual(out.trim().split("\n"), [fx.commit, fx.path]);
  });

  test("cleanup left no package indexes, host keys, machine id or uploads", () => {
    const out = inImage(image, [
      "sh",
      "-c",
      "ls /var/lib/apt/lists | grep -c _Packages; cat /etc/machine-id 2>/dev/null | wc -c; ls /etc/ssh 2>/dev/null | grep -c ssh_host_; ls /tmp",
    ]);
    const [lists, machineId, hostKeys, ...tmp] = out.trim().split("\n");
    assert.equal(lists, "0");
    assert.equal(machineId, "0");
    assert.equal(hostKeys, "0");
    assert.deepEqual(
      tmp.filter((f) => f.startsWith("imgtool")),
      [],
    );
  });

  test("install-ruby-bench.sh again in the image: fetch and reset to a newer pinned commit (idempotent)", () => {
    writeFileSync(path.join(fx.path, "NEWS"), "a third commit\n");
    const git = (...args: string[]) =>
      execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@t.invalid", "-C", fx.path, ...args], {
        encoding: "utf8",
      }).trim();
    git("add", ".");
    git("commit", "--quiet", "-m", "third");
    const newer = git("rev-parse", "HEAD");
    const mounts = [
      `-v=${fx.path}:/tmp/imgtool-ruby-bench-src:ro`,
      `-v=${path.join(dir, "scripts")}:/imgtool/scripts:ro`,
      `-v=${path.join(dir, "build.env")}:/imgtool/build.env:ro`,
      "-e=IMGTOOL_ENV_FILE=/imgtool/build.env",
      `-e=IMGTOOL_RUBY_BENCH_COMMIT=${newer}`,
    ];
    const script = "/imgtool/scripts/install-ruby-bench.sh && git -C /opt/ruby-bench rev-parse HEAD";
    // The read-only mount cannot be chowned: copy it, as Packer's upload would have.
    const r2 = inImageFull(
      image,
      [
        "sh",
        "-c",
        `cp -a /tmp/imgtool-ruby-bench-src /tmp/rb && IMGTOOL_RUBY_BENCH_SOURCE=/tmp/rb ${script}`,
      ],
      mounts,
    );
    assert.match(r2.out, /present: fetching main/);
    assert.equal(r2.stdout.trim(), newer);
  });
});
