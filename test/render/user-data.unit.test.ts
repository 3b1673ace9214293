// The user-data as rendered for both roles and targets: shellcheck over it, and the script itself run by bash
// against stand-ins for `docker` and `aws` (small shell programs that record their argv, stdin and environment)
// and a fake sysfs, so hostile values, the secret's path, the pull decision and CPU pinning are checked on the
// real script, byte for byte.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import { parseConfig } from "../../src/config/load.js";
import { DOCKER_LABEL } from "../../src/config/tags.js";
import { projectPath } from "../../src/paths.js";
import { UsageError } from "../../src/errors.js";
import { orderCpus, parseCpuList, readCpuTopology, workerCpus } from "../../src/launch/cpus.js";
import { localSecretMount } from "../../src/launch/secret-files.js";
import { parseRecord } from "../../src/launch/aws-ready.js";
import { instanceWaitSeconds, readyTimeoutSeconds, userDataValues } from "../../src/launch/plan.js";
import type { BootContext, LaunchOptions } from "../../src/launch/types.js";
import {
  USER_DATA_LIMIT,
  checkUserDataSize,
  renderUserData,
  renderUserDataText,
  worstCaseSize,
  type UserDataValues,
} from "../../src/render/user-data.js";

const SECRET = "planted-secret-e3b0c442-not-in-any-file";
const REGISTRY_PASSWORD = "registry-password-5f2c-not-in-any-file";
const HOSTILE = `it's "q" $(touch CANARY) \`touch CANARY\` \${HOME} \\ ; touch CANARY
second line\ttab %s {{x}} '$'`;

function config(extra = "") {
  const r = parseConfig(extra, { baseDir: "/tmp" });
  if (!r.config) throw new Error(r.errors.join("\n"));
  return r.config;
}

const opts = (o: Partial<LaunchOptions> = {}): LaunchOptions => ({
  target: "aws",
  runId: "ud-1",
  taskRunners: 1,
  instanceTypes: ["c7i.large"],
  spot: false,
  workersPerInstance: "auto",
  reuseOrchestrator: false,
  keepOnFailure: false,
  wait: true,
  dryRun: false,
  label: "latest",
  ...o,
});

const awsCtx: BootContext = {
  region: "us-east-1",
  registry: { user: "AWS", auth: "ecr", passwordFile: "" },
  secret: { source: "ssm", parameter: "/imgtool/bench/secrets/orchestrator-api-key" },
  orchestratorPort: 8080,
};
const localCtx: BootContext = {
  region: "local",
  registry: { user: "AWS", auth: "file", passwordFile: "/run/secrets/imgtool-registry-password" },
  secret: { source: "file", parameter: "/run/secrets/imgtool-orchestrator-api-key" },
  orchestratorPort: 8080,
  orchestratorHost: "127.0.0.1",
};
const IMAGE = `127.0.0.1:5000/bench/task-runner@sha256:${"c".repeat(64)}`;
const SANDBOX_INSTANCE = "i-0123456789abcdef0";
const realCurl =
  spawnSync("bash", ["-c", "type -P curl"], { encoding: "utf8" }).stdout.trim() || "/usr/bin/curl";

function values(
  role: "task-runner" | "orchestrator",
  o: Partial<UserDataValues> = {},
  extra = "",
  ctx = awsCtx,
) {
  const v = userDataValues(config(extra), opts({ target: ctx === awsCtx ? "aws" : "local" }), ctx, role, {
    version: "v20261129-000000-abcd",
    image: IMAGE,
    bakedImage: IMAGE,
    workers: role === "task-runner" ? "auto" : 1,
    ...(role === "task-runner" ? { orchestratorUrl: "http://10.0.0.5:8080" } : {}),
  });
  // A short settle window (the default is a second): the stand-in docker's workers never exit, so each boot
  // would only wait it out. The window's loop (inspect until it ends, then the restart policy) is the same.
  return {
    ...v,
    workload: { ...v.workload, run: { ...v.workload.run, settle_seconds: SETTLE_SECONDS } },
    ...o,
  };
}

const SETTLE_SECONDS = 0.05;
/** A sandbox's script is killed after this long (a hang guard: the scripts run side by side on a busy machine). */
const SANDBOX_TIMEOUT_MS = 60_000;
/** How many sandbox scripts run at once: their waits (settle window, engine wait, slow image check) overlap. */
const SANDBOXES_AT_ONCE = 4;

const tempDirs: string[] = [];
const tempDir = (prefix: string) => {
  const d = mkdtempSync(path.join(tmpdir(), prefix));
  tempDirs.push(d);
  return d;
};
after(() => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

/**
 * shellcheck's findings for each text, "" when clean: every text the rendering tests check goes to one shellcheck
 * process (one start-up instead of eight), its findings split back by file.
 */
async function shellcheckAll(texts: string[]): Promise<string[]> {
  const dir = tempDir("imgtool-ud-sc-");
  const files = texts.map((text, i) => {
    const file = path.join(dir, `user-data-${i}.sh`);
    writeFileSync(file, text);
    return file;
  });
  const r = await runProcess("shellcheck", ["--shell=bash", "--format=gcc", ...files], {});
  if (r.status !== 0 && r.stdout === "") throw new Error(`shellcheck did not run: ${r.stderr}`);
  const lines = r.stdout.split("\n").filter(Boolean);
  return files.map((f) => lines.filter((l) => l.startsWith(`${f}:`)).join("\n"));
}

/** A program's exit, signal and output, without blocking: the sandboxes' scripts run side by side. */
function runProcess(
  command: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeout?: number },
): Promise<{ status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...opts, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
    child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    child.on("error", reject);
    child.on("close", (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
}

/** A sandbox with stand-ins for docker and aws, a fake sysfs and /proc/self/status, and a marker folder. */
function sandbox(opts: {
  cpus: string;
  siblings: Record<number, string>;
  baked: boolean;
  engineAnswers?: boolean;
  /** More files of the fake sysfs, relative to sys/devices/system/cpu. */
  cpuFiles?: Record<string, string>;
  /** The record imgtool-cpu-setup left at boot (/run/imgtool/cpu.json), if any. */
  cpuSetup?: string;
  /** Seconds `docker image inspect` (the image check) takes: a slow boot step. */
  imageCheckSeconds?: number;
  /** The boot process's own CPU list (/proc/self/status), when it is not `cpus`. */
  allowed?: string;
  /** A stand-in imgtool-prewarm (its script's body); without it, none is baked in. */
  prewarm?: string;
}) {
  const dir = tempDir("imgtool-ud-run-");
  const bin = path.join(dir, "bin");
  const sys = path.join(dir, "sys");
  mkdirSync(bin);
  mkdirSync(path.join(dir, "calls"));
  // The real reader of a worker's CPU, baked into the image beside imgtool-cpu-setup.
  symlinkSync(
    projectPath("packer", "scripts", "lib", "imgtool-cpu-state"),
    path.join(bin, "imgtool-cpu-state"),
  );
  mkdirSync(path.join(sys, "devices/system/cpu"), { recursive: true });
  writeFileSync(path.join(sys, "devices/system/cpu/online"), `${opts.cpus}\n`);
  for (const [cpu, sib] of Object.entries(opts.siblings)) {
    mkdirSync(path.join(sys, `devices/system/cpu/cpu${cpu}/topology`), { recursive: true });
    writeFileSync(path.join(sys, `devices/system/cpu/cpu${cpu}/topology/thread_siblings_list`), `${sib}\n`);
  }
  for (const [f, content] of Object.entries(opts.cpuFiles ?? {})) {
    mkdirSync(path.dirname(path.join(sys, "devices/system/cpu", f)), { recursive: true });
    writeFileSync(path.join(sys, "devices/system/cpu", f), content);
  }
  if (opts.cpuSetup !== undefined) {
    mkdirSync(path.join(dir, "marker"));
    writeFileSync(path.join(dir, "marker", "cpu.json"), opts.cpuSetup);
  }
  writeFileSync(path.join(dir, "status"), `Name:\tbash\nCpus_allowed_list:\t${opts.allowed ?? opts.cpus}\n`);
  if (opts.prewarm !== undefined) {
    writeFileSync(path.join(bin, "imgtool-prewarm"), `#!/bin/bash\n${opts.prewarm}\n`, { mode: 0o755 });
  }
  writeFileSync(path.join(dir, "secret"), SECRET);
  writeFileSync(path.join(dir, "registry-password"), REGISTRY_PASSWORD);
  // Stand-in for the docker CLI: records each call's argv (NUL-separated), stdin for login, and whether the
  // API key reached its environment. Each call's file is named by its start time in microseconds (bash's own
  // clock, no process spawned) and the caller's pid, so the calls sort in the order they were made.
  writeFileSync(
    path.join(bin, "docker"),
    `#!/bin/bash
log=${JSON.stringify(dir)}/calls
n=\${EPOCHREALTIME/./}-$$
printf '%s\\0' "$@" >"$log/$n-$1"
case $1 in
  version) ${opts.engineAnswers === false ? "exit 1" : "exit 0"} ;;
  image) ${opts.imageCheckSeconds ? `sleep ${opts.imageCheckSeconds}; ` : ""}${opts.baked ? "exit 0" : "exit 1"} ;;
  login) cat >"$log/login-stdin"; printf '%s' "\${DOCKER_CONFIG:-}" >"$log/login-docker-config" ;;
  pull) [ -n "\${DOCKER_CONFIG:-}" ] || exit 9 ;;
  run) printf '%s' "\${ORCHESTRATOR_API_KEY:-}" >"$log/run-env-$n"; echo 0123abcd ;;
  inspect) for c in "\${@:4}"; do echo "$c running 0 0 none"; done ;;
esac
exit 0
`,
    { mode: 0o755 },
  );
  writeFileSync(
    path.join(bin, "aws"),
    `#!/bin/bash
printf '%s\\0' "$@" >>${JSON.stringify(dir)}/aws-calls
[ "\${AWS_EC2_METADATA_V1_DISABLED:-}" = true ] || exit 7
printf '%s %s %s %s\\n' "$1" "\${AWS_METADATA_SERVICE_NUM_ATTEMPTS:-}" "\${AWS_RETRY_MODE:-}" "\${AWS_MAX_ATTEMPTS:-}" >>${JSON.stringify(dir)}/aws-env
case "$1 $2" in
  "ssm get-parameter") cat ${JSON.stringify(path.join(dir, "secret"))} ;;
  "ecr get-login-password") cat ${JSON.stringify(path.join(dir, "registry-password"))} ;;
esac
`,
    { mode: 0o755 },
  );
  // Stand-in for IMDSv2 (the instance id, for the readiness record's name); anything else goes to the real curl.
  writeFileSync(
    path.join(bin, "curl"),
    `#!/bin/bash
case "$*" in
  *latest/api/token*) echo imds-token ;;
  *meta-data/instance-id*) echo ${SANDBOX_INSTANCE} ;;
  *) exec ${JSON.stringify(realCurl)} "$@" ;;
esac
`,
    { mode: 0o755 },
  );
  const run = (text: string) => {
    const file = path.join(dir, "user-data");
    writeFileSync(file, text, { mode: 0o700 });
    return runProcess("bash", [file], {
      cwd: dir,
      timeout: SANDBOX_TIMEOUT_MS,
      env: {
        PATH: `${bin}:${process.env.PATH}`,
        HOME: dir,
        IMGTOOL_SYSFS: sys,
        IMGTOOL_PROC_STATUS: path.join(dir, "status"),
        IMGTOOL_MARKER_DIR: path.join(dir, "marker"),
      },
    });
  };
  const calls = () =>
    existsSync(path.join(dir, "calls"))
      ? readdirSync(path.join(dir, "calls"))
          .filter((f) => /^\d+-\d+-/.test(f))
          .sort()
          .map((f) =>
            readFileSync(path.join(dir, "calls", f), "utf8")
              .split("\0")
              .slice(0, -1),
          )
      : [];
  const marker = (name: string) => {
    const f = path.join(dir, "marker", name);
    return existsSync(f) ? (JSON.parse(readFileSync(f, "utf8")) as Record<string, unknown>) : undefined;
  };
  return { dir, run, calls, marker };
}

/** `--env VALUE` pairs of a docker run argv. */
function envOf(argv: string[]): string[] {
  return argv.flatMap((a, i) => (argv[i - 1] === "--env" ? [a] : []));
}

describe("user-data: rendering", () => {
  const cases = (["task-runner", "orchestrator"] as const).flatMap((role) =>
    (
      [
        ["aws", awsCtx],
        ["local", localCtx],
      ] as const
    ).map(([target, ctx]) => ({ role, target, ctx })),
  );
  /** Each case's plain and hostile user-data, all shellchecked in one run (started by the first test to ask). */
  let findings: Promise<string[]> | undefined;
  const shellcheckFindings = () =>
    (findings ??= shellcheckAll(
      cases.flatMap(({ role, ctx }) => [
        renderUserDataText(values(role, {}, "", ctx)),
        renderUserDataText(
          values(
            role,
            { version: HOSTILE, image: `${IMAGE}${HOSTILE}`, bakedImage: HOSTILE },
            `launch:\n  worker_env:\n    ${role}:\n      EVIL: ${JSON.stringify(HOSTILE)}\n`,
            ctx,
          ),
        ),
      ]),
    ));
  cases.forEach(({ role, target }, i) => {
    test(`${role} on ${target}: shellcheck-clean, also with hostile values`, async () => {
      const all = await shellcheckFindings();
      assert.equal(all[2 * i], "", "plain values");
      assert.equal(all[2 * i + 1], "", "hostile values");
    });
  });

  test("installs, clones and builds nothing; no secret, only where to read it at boot", () => {
    for (const role of ["task-runner", "orchestrator"] as const) {
      const text = renderUserDataText(values(role));
      assert.doesNotMatch(text, /\b(dnf|yum|apt-get|apt) (update|install|upgrade)\b/);
      assert.doesNotMatch(text, /\bgit clone\b|\bdocker build\b/);
      assert.ok(!text.includes(SECRET));
      assert.match(text, /^SECRET_LOCATIONS=\(\/imgtool\/bench\/secrets\/orchestrator-api-key\)$/m);
    }
  });

  test("the instance's own wait (workers, stack) ends before launch's: by 120 s and the engine wait, at most a quarter of launch.ready_timeout_seconds", () => {
    assert.deepEqual(
      [600, 60, 20, 5, 3600].map((t) => instanceWaitSeconds(t, 60)),
      [450, 45, 15, 4, 3420],
    );
    assert.equal(instanceWaitSeconds(3600, 10), 3470);
    for (const [extra, wait] of [
      ["", 450],
      ["launch:\n  ready_timeout_seconds: 60\n", 45],
    ] as const) {
      const text = renderUserDataText(values("orchestrator", {}, extra));
      assert.match(text, new RegExp(`^HEALTH_WAIT_SECONDS=${wait}$`, "m"));
      // The stack's helper gets the same wait (its own default is 600 s).
      assert.match(text, /IMGTOOL_STACK_WAIT_SECONDS=\$HEALTH_WAIT_SECONDS \\\n\s+exec imgtool-stack up /);
    }
  });

  test("a task runner's pre-warm is bounded by boot_budget.pre_warm.seconds, and launch waits that much longer for task runners (the orchestrator: launch.ready_timeout_seconds)", () => {
    for (const [extra, limit, rendered] of [
      ["", 900, "900\\.000"],
      ["boot_budget:\n  pre_warm:\n    seconds: 120.25\n", 120.25, "120\\.250"],
      // To the millisecond, at least one: `timeout 0` would mean no limit at all.
      ["boot_budget:\n  pre_warm:\n    seconds: 0.0001\n", 0.0001, "0\\.001"],
    ] as const) {
      assert.match(
        renderUserDataText(values("task-runner", {}, extra)),
        new RegExp(`^PREWARM_LIMIT_SECONDS=${rendered}$`, "m"),
      );
      assert.equal(readyTimeoutSeconds(config(extra), "task-runner"), 600 + limit);
      assert.equal(readyTimeoutSeconds(config(extra), "orchestrator"), 600);
    }
    assert.doesNotMatch(renderUserDataText(values("orchestrator")), /PREWARM_LIMIT_SECONDS/);
  });

  test("16 KB edge: 16384 bytes pass, 16385 fail naming the size and the fix", () => {
    assert.doesNotThrow(() => checkUserDataSize("task-runner", USER_DATA_LIMIT, { compression: "none" }));
    assert.throws(
      () => checkUserDataSize("task-runner", USER_DATA_LIMIT + 1, { compression: "none" }),
      (e: unknown) =>
        e instanceof UsageError &&
        /is 16385 bytes, over EC2's limit of 16384 bytes \(by 1\)/.test(e.message) &&
        /user_data_compression: gzip/.test(e.fix ?? ""),
    );
    const gz = renderUserData(values("task-runner"), "gzip");
    assert.deepEqual([...gz.bytes.subarray(0, 2)], [0x1f, 0x8b]);
    assert.ok(gz.bytes.length < gz.text.length / 2);
  });
});

describe("user-data: the bound checked before any API call", () => {
  // Real digests are random hex: values drawn the same way (a seeded SHA-256 chain, so the test is repeatable),
  // as long as the catalog allows, for every value the bound stands in for.
  const randomHex = (n: number, seed: string) => {
    let out = "";
    for (let i = 0; out.length < n; i++) out += createHash("sha256").update(`${seed}/${i}`).digest("hex");
    return out.slice(0, n);
  };
  for (const compression of ["gzip", "none"] as const) {
    test(`${compression}: worstCaseSize is never beaten by the longest real values (random digests, 250-character registry, 100-character version)`, () => {
      for (const role of ["task-runner", "orchestrator"] as const) {
        const v = values(role);
        const bound = worstCaseSize(v, compression);
        for (let k = 0; k < 200; k++) {
          const host = `${randomHex(250, `host-${k}`)}.io`;
          const image = `${host}/x@sha256:${randomHex(64, `image-${k}`)}`;
          const baked = `${randomHex(250, `baked-host-${k}`)}.io/x@sha256:${randomHex(64, `baked-${k}`)}`;
          const real = renderUserData(
            {
              ...v,
              version: `v${randomHex(99, `version-${k}`)}`,
              image,
              bakedImage: baked,
              registry: { ...v.registry, host },
            },
            compression,
          );
          assert.ok(real.bytes.length <= bound, `${role}: ${real.bytes.length} bytes sent, bound ${bound}`);
        }
      }
    });
  }

  test("gzip is the default, both targets: the bytes sent are the gzip of the script", () => {
    for (const ctx of [awsCtx, localCtx]) {
      const c = config();
      assert.equal(c.launch.user_data_compression, "gzip");
      const v = values("task-runner", {}, "", ctx);
      const ud = renderUserData(v, c.launch.user_data_compression);
      assert.deepEqual([...ud.bytes.subarray(0, 2)], [0x1f, 0x8b]);
      assert.equal(gunzipSync(ud.bytes).toString("utf8"), ud.text);
    }
  });
});

describe(
  "user-data: the script run by bash against stand-ins for docker and aws",
  { concurrency: SANDBOXES_AT_ONCE },
  () => {
    /**
     * A boot that several tests check, each only reading its result (exit, output, calls, markers): run once, by
     * the first test to ask. Every boot costs dozens of processes.
     */
    const sharedBoot = (make: () => { sb: ReturnType<typeof sandbox>; text: string }) => {
      let boot: Promise<{ sb: ReturnType<typeof sandbox>; r: Awaited<ReturnType<typeof runProcess>> }>;
      return () =>
        (boot ??= (async () => {
          const { sb, text } = make();
          return { sb, r: await sb.run(text) };
        })());
    };
    /** The task runner's default boot on 2 CPUs without SMT. */
    const twoCpus = sharedBoot(() => ({
      sb: sandbox({ cpus: "0-1", siblings: { 0: "0", 1: "1" }, baked: true }),
      text: renderUserDataText(values("task-runner")),
    }));
    /** The task runner's default boot on 2 cores with SMT (0/2 and 1/3), as on a 2-core, 4-thread instance. */
    const smtSiblings = { 0: "0,2", 1: "1,3", 2: "0,2", 3: "1,3" };
    const twoCoresSmt = sharedBoot(() => ({
      sb: sandbox({ cpus: "0-3", siblings: smtSiblings, baked: true }),
      text: renderUserDataText(values("task-runner")),
    }));
    /** 3 workers asked for on 2 CPUs: a failed boot. */
    const tooManyWorkers = sharedBoot(() => ({
      sb: sandbox({ cpus: "0-1", siblings: { 0: "0", 1: "1" }, baked: true }),
      text: renderUserDataText(values("task-runner", { workers: 3 })),
    }));

    test("hostile values arrive byte-for-byte in docker's argv and execute nothing", async () => {
      const sb = sandbox({ cpus: "0-1", siblings: { 0: "0", 1: "1" }, baked: true });
      const text = renderUserDataText(
        values(
          "task-runner",
          { version: HOSTILE },
          `launch:\n  worker_env:\n    task-runner:\n      EVIL: ${JSON.stringify(HOSTILE)}\n`,
        ),
      );
      const r = await sb.run(text);
      assert.equal(r.status, 0, r.stderr);
      assert.ok(!existsSync(path.join(sb.dir, "CANARY")), "a hostile value ran a command");
      const runs = sb.calls().filter((c) => c[0] === "run");
      assert.equal(runs.length, 2);
      for (const argv of runs) {
        assert.ok(envOf(argv).includes(`EVIL=${HOSTILE}`), "the value arrived as it was");
        assert.equal(argv.at(-1), IMAGE);
      }
      assert.ok(r.stderr.includes(`image version ${HOSTILE})`), "the version is logged as it was");
    });

    test("the secret is read at boot (SSM, through the aws CLI with IMDSv1 off) into the workers' environment, never into argv, logs or markers", async () => {
      const { sb, r } = await twoCpus();
      assert.equal(r.status, 0, r.stderr);
      const aws = readFileSync(path.join(sb.dir, "aws-calls"), "utf8").split("\0");
      assert.deepEqual(aws.slice(0, 2), ["ssm", "get-parameter"]);
      assert.ok(aws.includes("--with-decryption"));
      const envs = readdirSync(path.join(sb.dir, "calls")).filter((f) => f.startsWith("run-env-"));
      assert.equal(envs.length, 2);
      for (const f of envs) assert.equal(readFileSync(path.join(sb.dir, "calls", f), "utf8"), SECRET);
      for (const argv of sb.calls())
        assert.ok(!argv.join("\0").includes(SECRET), `${argv[0]} argv carries it`);
      assert.ok(!r.stdout.includes(SECRET) && !r.stderr.includes(SECRET));
      assert.ok(!JSON.stringify(sb.marker("ready")).includes(SECRET));
    });

    test("baked digest = the one to run: no login, no pull; otherwise login (password on stdin, temporary config) and pull by digest", async () => {
      const baked = sandbox({ cpus: "0", siblings: { 0: "0" }, baked: true });
      assert.equal((await baked.run(renderUserDataText(values("orchestrator")))).status, 0);
      // run, then inspect through the settle window (as often as it takes), then the restart policy.
      assert.deepEqual(
        baked
          .calls()
          .map((c) => c[0])
          .filter((c, i, all) => c !== all[i - 1]),
        ["version", "image", "run", "inspect", "update"],
      );
      assert.equal(baked.marker("ready")!.pulled, false);
      assert.equal(baked.marker("ready")!.registryLogin, false);

      const other = sandbox({ cpus: "0", siblings: { 0: "0" }, baked: false });
      const r = await other.run(
        renderUserDataText(values("orchestrator", { bakedImage: "older@sha256:" + "d".repeat(64) })),
      );
      assert.equal(r.status, 0, r.stderr);
      const calls = other.calls();
      const login = calls.find((c) => c[0] === "login")!;
      assert.deepEqual(login, ["login", "--username", "AWS", "--password-stdin", "127.0.0.1:5000"]);
      assert.equal(readFileSync(path.join(other.dir, "calls", "login-stdin"), "utf8"), REGISTRY_PASSWORD);
      assert.deepEqual(
        calls.find((c) => c[0] === "pull"),
        ["pull", "--quiet", IMAGE],
      );
      const cfg = readFileSync(path.join(other.dir, "calls", "login-docker-config"), "utf8");
      assert.ok(cfg && !existsSync(cfg), "the login's config folder is removed after the pull");
      assert.equal(other.marker("ready")!.pulled, true);
    });

    test("the ECR login asks the region of the image's registry, not the instance's (a launch with --region)", async () => {
      const sb = sandbox({ cpus: "0", siblings: { 0: "0" }, baked: false });
      const host = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
      const image = `${host}/bench/orchestrator@sha256:${"e".repeat(64)}`;
      const v = values("orchestrator", {
        image,
        bakedImage: "older@sha256:" + "d".repeat(64),
        region: "ap-south-1",
      });
      const r = await sb.run(renderUserDataText({ ...v, registry: { ...v.registry, host } }));
      assert.equal(r.status, 0, r.stderr);
      const aws = readFileSync(path.join(sb.dir, "aws-calls"), "utf8").split("\0");
      const login = aws.indexOf("get-login-password");
      assert.ok(login > 0, aws.join(" "));
      assert.deepEqual(aws.slice(login - 1, login + 3), [
        "ecr",
        "get-login-password",
        "--region",
        "eu-west-1",
      ]);
      assert.deepEqual(
        sb.calls().find((c) => c[0] === "login"),
        ["login", "--username", "AWS", "--password-stdin", host],
      );
      // The secret is still read in the instance's own region.
      const ssm = aws.indexOf("get-parameter");
      assert.equal(aws[aws.indexOf("--region", ssm)], "--region");
      assert.equal(aws[aws.indexOf("--region", ssm) + 1], "ap-south-1");
    });

    test("auto = one worker per physical core from the real topology (SMT siblings last), each pinned with --cpuset-cpus, restart policy and orchestrator URL", async () => {
      // 4 CPUs: 0 and 2 are siblings, 1 and 3 are siblings (as on a 2-core, 4-thread instance).
      const siblings = smtSiblings;
      const { sb, r } = await twoCoresSmt();
      assert.equal(r.status, 0, r.stderr);
      const runs = sb.calls().filter((c) => c[0] === "run");
      const pin = (argv: string[]) => argv[argv.indexOf("--cpuset-cpus") + 1];
      assert.deepEqual(runs.map(pin).sort(), ["0", "1"], "started at once, so in any order");
      // Started without a restart policy (a worker that exits in the settle window stays exited, with its exit
      // code); the configured policy is set once they all stayed up.
      assert.deepEqual(
        sb.calls().find((c) => c[0] === "update"),
        ["update", "--restart", "unless-stopped", "task-runner-1", "task-runner-2"],
      );
      for (const argv of runs) {
        assert.equal(argv[argv.indexOf("--restart") + 1], "no");
        assert.ok(envOf(argv).includes("ORCHESTRATOR_URL=http://10.0.0.5:8080"));
        // Every worker carries its image version, so a benchmark result ties to the exact image it ran on.
        const version = values("task-runner").version;
        assert.ok(envOf(argv).includes(`IMGTOOL_VERSION=${version}`), argv.join(" "));
        assert.equal(argv[argv.indexOf(`imgtool.version=${version}`) - 1], "--label");
      }
      assert.deepEqual(
        (sb.marker("ready")!.workers as { name: string; cpus: string }[]).map(({ name, cpus }) => ({
          name,
          cpus,
        })),
        [
          { name: "task-runner-1", cpus: "0" },
          { name: "task-runner-2", cpus: "1" },
        ],
      );
      // The TypeScript planner picks the same CPUs for the same topology.
      const topo = {
        allowed: parseCpuList("0-3"),
        siblings: new Map(Object.entries(siblings).map(([k, v]) => [Number(k), parseCpuList(v)])),
      };
      assert.deepEqual(workerCpus(orderCpus(topo), "auto"), [0, 1]);
      assert.deepEqual(workerCpus(orderCpus(topo), 3), [0, 1, 2]);

      const three = sandbox({ cpus: "0-3", siblings, baked: true });
      assert.equal((await three.run(renderUserDataText(values("task-runner", { workers: 3 })))).status, 0);
      assert.deepEqual(
        three
          .calls()
          .filter((c) => c[0] === "run")
          .map(pin)
          .sort(),
        ["0", "1", "2"],
      );
    });

    test("each worker carries its own CPU's state (sibling and whether it is idle, isolated, governor, turbo) in its label, environment and the ready record", async () => {
      // 2 cores with SMT (0/2 and 1/3); CPUs 0 and 3 are still on powersave; turbo is off.
      const siblings = { 0: "0,2", 1: "1,3", 2: "0,2", 3: "1,3" };
      const cpuFiles = {
        "cpu0/cpufreq/scaling_governor": "powersave\n",
        "cpu1/cpufreq/scaling_governor": "performance\n",
        "cpu2/cpufreq/scaling_governor": "performance\n",
        "cpu3/cpufreq/scaling_governor": "powersave\n",
        "intel_pstate/no_turbo": "1\n",
      };
      const state = (
        cpu: number,
        sibling: string,
        siblingIdle: boolean,
        isolated: boolean,
        governor: string,
      ) => ({
        cpu,
        sibling,
        siblingIdle,
        isolated,
        governor,
        turbo: "off",
      });
      /** Boot 3 workers; each one's state in the ready record, its label and its environment, by pinned CPU. */
      const boot = async (files: Record<string, string>, cpuSetup?: string) => {
        const sb = sandbox({ cpus: "0-3", siblings, baked: true, cpuFiles: files, cpuSetup });
        const r = await sb.run(renderUserDataText(values("task-runner", { workers: 3 })));
        assert.equal(r.status, 0, r.stderr);
        const ready = sb.marker("ready")!;
        const fromRecord = Object.fromEntries(
          (ready.workers as { cpus: string; cpu: unknown }[]).map((w) => [w.cpus, w.cpu]),
        );
        for (const argv of sb.calls().filter((c) => c[0] === "run")) {
          const cpu = argv[argv.indexOf("--cpuset-cpus") + 1]!;
          const label = argv.find((a) => a.startsWith(`${DOCKER_LABEL.cpuState}=`))!;
          assert.equal(argv[argv.indexOf(label) - 1], "--label");
          assert.deepEqual(JSON.parse(label.slice(DOCKER_LABEL.cpuState.length + 1)), fromRecord[cpu]);
          const env = envOf(argv).find((e) => e.startsWith("IMGTOOL_CPU_STATE="))!;
          assert.deepEqual(JSON.parse(env.slice("IMGTOOL_CPU_STATE=".length)), fromRecord[cpu]);
        }
        return { ready, states: fromRecord, sb };
      };

      // Four boots, side by side; each checked below.
      const setupRecord = '{"governor": {"wanted": "performance", "status": "failed"}, "root": "/"}';
      const auto = sandbox({
        cpus: "0-3",
        siblings,
        baked: true,
        cpuFiles: { ...cpuFiles, isolated: "1-3\n" },
      });
      const plain = sandbox({ cpus: "0", siblings: { 0: "0" }, baked: true });
      const [plainBoot, isolatedBoot, autoRun, plainRun] = await Promise.all([
        boot(cpuFiles, setupRecord),
        boot({ ...cpuFiles, isolated: "1-3\n" }),
        auto.run(renderUserDataText(values("task-runner"))),
        plain.run(renderUserDataText(values("task-runner"))),
      ]);

      // No isolation: CPUs 0, 1 and 2 (cores first); 0 and 2 are each other's busy sibling, 3 is left idle.
      assert.deepEqual(plainBoot.states, {
        "0": state(0, "2", false, false, "powersave"),
        "1": state(1, "3", true, false, "performance"),
        "2": state(2, "0", false, false, "performance"),
      });
      // The boot's per-setting record rides along, as it was.
      assert.deepEqual(plainBoot.ready.cpuSetup, JSON.parse(setupRecord));

      // The kernel isolates 1-3: the workers go there, CPU 0 is left to the system (and is CPU 2's idle sibling).
      assert.deepEqual(isolatedBoot.states, {
        "1": state(1, "3", false, true, "performance"),
        "2": state(2, "0", true, true, "performance"),
        "3": state(3, "1", false, true, "powersave"),
      });
      assert.equal(isolatedBoot.ready.cpuSetup, null);
      // auto with isolation: one per core among the isolated CPUs, and the TypeScript planner reads the same.
      assert.equal(autoRun.status, 0, autoRun.stderr);
      assert.deepEqual(
        (auto.marker("ready")!.workers as { cpus: string }[]).map((w) => w.cpus),
        ["1", "2"],
      );
      mkdirSync(path.join(auto.dir, "proc/self"), { recursive: true });
      writeFileSync(path.join(auto.dir, "proc/self/status"), "Cpus_allowed_list:\t0-3\n");
      assert.deepEqual(workerCpus(orderCpus(readCpuTopology(auto.dir)), "auto"), [1, 2]);

      // No SMT, no cpufreq, no isolation: said so, not guessed.
      assert.equal(plainRun.status, 0, plainRun.stderr);
      assert.deepEqual((plain.marker("ready")!.workers as { cpu: unknown }[])[0]!.cpu, {
        cpu: 0,
        sibling: null,
        siblingIdle: null,
        isolated: false,
        governor: "unknown",
        turbo: "unknown",
      });
    });

    test("isolcpus as an AMI boots with it: the boot's own CPU list is the system's (init was moved off the isolated CPUs), and the workers still go to the isolated ones; a local instance keeps to its container's own list", async () => {
      const siblings = { 0: "0,2", 1: "1,3", 2: "0,2", 3: "1,3" };
      const ami = { cpus: "0-3", allowed: "0", siblings, baked: true, cpuFiles: { isolated: "1-3\n" } };
      const pins = (sb: ReturnType<typeof sandbox>) =>
        (sb.marker("ready")!.workers as { cpus: string }[]).map((w) => w.cpus);
      const three = sandbox(ami);
      const auto = sandbox(ami);
      // Local instances are containers: the own list is the container's cpuset (the host's cgroup files say all).
      const local = sandbox({ ...ami, allowed: "2-3" });
      const localNone = sandbox({ ...ami, allowed: "0" });
      /** The local target's user-data, its secret read from the sandbox's file (not the instance's mount). */
      const localText = (sb: ReturnType<typeof sandbox>, workers: number) =>
        renderUserDataText(values("task-runner", { workers }, "", localCtx)).replaceAll(
          localSecretMount("orchestrator-api-key"),
          path.join(sb.dir, "secret"),
        );
      const [r3, rAuto, rLocal, rLocalNone] = await Promise.all([
        three.run(renderUserDataText(values("task-runner", { workers: 3 }))),
        auto.run(renderUserDataText(values("task-runner"))),
        local.run(localText(local, 2)),
        localNone.run(localText(localNone, 1)),
      ]);
      assert.equal(r3.status, 0, r3.stderr);
      assert.deepEqual(pins(three), ["1", "2", "3"]);
      assert.equal(rAuto.status, 0, rAuto.stderr);
      assert.deepEqual(pins(auto), ["1", "2"], "one per core among the isolated CPUs");
      assert.equal(rLocal.status, 0, rLocal.stderr);
      assert.deepEqual(pins(local), ["2", "3"]);
      assert.equal(rLocalNone.status, 0, rLocalNone.stderr);
      assert.deepEqual(pins(localNone), ["0"], "never a CPU outside the container's own");
      // The TypeScript planner (on the machine itself, like an AMI's boot) reads the same.
      mkdirSync(path.join(auto.dir, "proc/self"), { recursive: true });
      writeFileSync(path.join(auto.dir, "proc/self/status"), "Cpus_allowed_list:\t0\n");
      assert.deepEqual(workerCpus(orderCpus(readCpuTopology(auto.dir)), "auto"), [1, 2]);
      assert.deepEqual(workerCpus(orderCpus(readCpuTopology(auto.dir)), 3), [1, 2, 3]);
    });

    test("more workers than CPUs: the boot fails with a marker that says why, and starts nothing", async () => {
      const { sb, r } = await tooManyWorkers();
      assert.notEqual(r.status, 0);
      assert.match(
        String(sb.marker("failed")!.reason),
        /3 workers asked for, but this instance has 2 CPU\(s\)/,
      );
      assert.equal(sb.calls().filter((c) => c[0] === "run").length, 0);
    });

    test("the wait for the engine is bounded (stand-in docker whose engine never answers)", async () => {
      const sb = sandbox({ cpus: "0", siblings: { 0: "0" }, baked: true, engineAnswers: false });
      const text = renderUserDataText(values("orchestrator", { engineWaitSeconds: 1 }));
      // Bounded: it ends by itself (not killed by the sandbox's time limit), failing with the bound it was given.
      const r = await sb.run(text);
      assert.equal(r.signal, null, "the user-data ended by itself");
      assert.notEqual(r.status, 0);
      assert.match(String(sb.marker("failed")!.reason), /did not answer within 1s/);
      assert.match(r.stderr, /imgtool-user-data\[orchestrator\]: error: the Docker engine/);
    });

    test("one log line with the seconds from the first line of user-data to all workers running", async () => {
      const { sb, r } = await twoCpus();
      const lines = r.stderr.split("\n").filter((l) => /: ready: /.test(l));
      assert.equal(lines.length, 1);
      assert.match(
        lines[0]!,
        /^imgtool-user-data\[task-runner\]: ready: 2 worker\(s\) running on CPU\(s\) 0 1 in \d+\.\d{3} s from the first line of user-data$/,
      );
      assert.equal(typeof sb.marker("ready")!.bootToReadySeconds, "number");
    });

    /** The `aws ssm put-parameter` calls (argv) the script made. */
    const putCalls = (dir: string): string[][] => {
      const f = path.join(dir, "aws-calls");
      if (!existsSync(f)) return [];
      const words = readFileSync(f, "utf8").split("\0").slice(0, -1);
      const calls: string[][] = [];
      for (let i = 0; i < words.length; i++) {
        if (words[i] === "ssm" && words[i + 1] === "put-parameter") {
          const end = words.findIndex((w, j) => j > i + 1 && w === "ssm");
          calls.push(words.slice(i, end === -1 ? undefined : end));
        }
      }
      return calls;
    };
    const flag = (argv: string[], name: string) => argv[argv.indexOf(name) + 1];

    test("each boot step's seconds in the ready record (marker and SSM record, in boot order): a slow image check is named", async () => {
      const sb = sandbox({ cpus: "0-1", siblings: { 0: "0", 1: "1" }, baked: true, imageCheckSeconds: 0.3 });
      const r = await sb.run(renderUserDataText(values("task-runner")));
      assert.equal(r.status, 0, r.stderr);
      const steps = sb.marker("ready")!.bootSteps as Record<string, number>;
      assert.deepEqual(Object.keys(steps), [
        "engine-wait",
        "secret-read",
        "image-check",
        "pre-warm",
        "worker-start",
      ]);
      for (const s of Object.values(steps)) assert.equal(typeof s, "number");
      assert.ok(steps["image-check"]! >= 0.3, JSON.stringify(steps));
      assert.ok(
        Object.values(steps).reduce((a, b) => a + b, 0) <= Number(sb.marker("ready")!.bootToReadySeconds),
        "the steps are parts of the boot",
      );
      const raw = flag(putCalls(sb.dir)[0]!, "--value")!;
      assert.deepEqual((JSON.parse(raw) as { bootSteps: unknown }).bootSteps, steps);
      const parsed = parseRecord({ name: "/x", key: "x", value: raw }, "task-runner");
      assert.ok(parsed.ok);
      assert.deepEqual(parsed.report.bootSteps, steps);
    });

    // Each case: the stand-in imgtool-prewarm, and what the boot says of it. A reader that ignores TERM (ignored
    // signals are inherited) is KILLed 5 s later (exit 137, after the limit: still "stopped at its limit"); a
    // pre-warm that fails on its own is a failure, not a limit.
    for (const c of [
      { what: "reads past the limit", body: 'sleep 120 & echo $! >"$HOME/reader.pid"; wait', stopped: true },
      {
        what: "ignores TERM past the limit",
        body: "trap '' TERM; sleep 120 & echo $! >\"$HOME/reader.pid\"; wait",
        stopped: true,
      },
      { what: "exits 3 before the limit", body: "exit 3", stopped: false },
    ]) {
      test(`a pre-warm that ${c.what}: ${c.stopped ? "stopped at boot_budget.pre_warm.seconds, its readers with it" : "a failure (exit 3), not the limit"}; the workers start`, async () => {
        const sb = sandbox({ cpus: "0-1", siblings: { 0: "0", 1: "1" }, baked: true, prewarm: c.body });
        const r = await sb.run(
          renderUserDataText(values("task-runner", {}, "boot_budget:\n  pre_warm:\n    seconds: 1\n")),
        );
        assert.equal(r.status, 0, r.stderr);
        const ready = sb.marker("ready")!;
        const warm = Number(ready.prewarmSeconds);
        assert.equal((ready.workers as unknown[]).length, 2, "the workers started after it");
        if (!c.stopped) {
          assert.match(r.stderr, /pre-warm failed \(exit 3; see /);
          assert.doesNotMatch(r.stderr, /stopped at its limit/);
          assert.ok(warm < 1, `pre-warm ${warm} s`);
          return;
        }
        assert.match(r.stderr, /pre-warm stopped at its limit \(1\.000s\)/);
        assert.ok(warm >= 1 && warm < 15, `pre-warm ${warm} s`);
        assert.deepEqual(sb.marker("prewarm.json"), { stopped: true });
        const reader = Number(readFileSync(path.join(sb.dir, "reader.pid"), "utf8"));
        // Gone, or a zombie its new parent has not reaped yet (this machine's PID 1 reaps none).
        const stat = path.join("/proc", String(reader), "stat");
        const state = existsSync(stat) ? readFileSync(stat, "utf8").replace(/^.*\) /s, "")[0] : "gone";
        assert.ok(state === "gone" || state === "Z", `the reader was stopped with it (state ${state})`);
      });
    }

    test("aws: every AWS CLI call (the stand-in's) is asked to retry: IMDS credentials 5 times, adaptive retries up to 8 attempts", async () => {
      const sb = sandbox({ cpus: "0-1", siblings: { 0: "0", 1: "1" }, baked: false });
      const r = await sb.run(renderUserDataText(values("task-runner")));
      assert.equal(r.status, 0, r.stderr);
      const calls = readFileSync(path.join(sb.dir, "aws-env"), "utf8").trim().split("\n");
      // The secret, the ECR login (the image was not baked) and the ready record.
      assert.deepEqual(
        [...new Set(calls.map((l) => l.split(" ")[0]))].sort(),
        ["ecr", "ssm"],
        calls.join("\n"),
      );
      assert.ok(calls.length >= 3, calls.join("\n"));
      for (const l of calls) assert.match(l, /^\S+ 5 adaptive 8$/);
    });

    test("aws: the ready record goes to SSM <ssm_prefix>/runs/<run id>/<instance id> (instance id from IMDSv2), with the workers' CPUs", async () => {
      const { sb, r } = await twoCoresSmt();
      assert.equal(r.status, 0, r.stderr);
      const puts = putCalls(sb.dir);
      assert.equal(puts.length, 1);
      const put = puts[0]!;
      assert.equal(flag(put, "--name"), `/imgtool/bench/runs/ud-1/${SANDBOX_INSTANCE}`);
      assert.equal(flag(put, "--region"), "us-east-1");
      assert.equal(flag(put, "--type"), "String");
      assert.ok(put.includes("--overwrite"));
      const record = JSON.parse(flag(put, "--value")!) as Record<string, unknown>;
      const marker = sb.marker("ready")!;
      assert.equal(record.status, "ready");
      assert.equal(record.role, "task-runner");
      assert.equal(record.runId, "ud-1");
      assert.deepEqual(record.workerCpus, ["0", "1"], "one worker per physical core");
      assert.deepEqual(
        (marker.workers as { cpus: string }[]).map((w) => w.cpus),
        record.workerCpus,
        "the marker's workers, in order",
      );
      assert.equal(record.bootToReadySeconds, marker.bootToReadySeconds);
      assert.equal(record.pulled, false);
    });

    test("aws: the SSM record carries every worker's CPU state (compact) and the boot's CPU record; the launcher reads back what the marker, the labels and the environment say", async () => {
      // 2 cores with SMT (0/2 and 1/3), the kernel isolates 1-3, CPU 0 on powersave, the rest performance, turbo off.
      const siblings = { 0: "0,2", 1: "1,3", 2: "0,2", 3: "1,3" };
      const cpuFiles = {
        isolated: "1-3\n",
        "cpu1/cpufreq/scaling_governor": "powersave\n",
        "cpu2/cpufreq/scaling_governor": "performance\n",
        "cpu3/cpufreq/scaling_governor": "performance\n",
        "intel_pstate/no_turbo": "1\n",
      };
      const setup = '{"governor": {"wanted": "performance", "status": "failed"}, "root": "/"}';
      for (const workers of [3, "auto"] as const) {
        const sb = sandbox({ cpus: "0-3", siblings, baked: true, cpuFiles, cpuSetup: setup });
        const r = await sb.run(renderUserDataText(values("task-runner", { workers })));
        assert.equal(r.status, 0, r.stderr);
        const raw = flag(putCalls(sb.dir)[0]!, "--value")!;
        const record = JSON.parse(raw) as Record<string, unknown>;
        assert.deepEqual(record.cpuSetup, JSON.parse(setup));
        const parsed = parseRecord({ name: "/x", key: "x", value: raw }, "task-runner");
        assert.ok(parsed.ok);
        const fromMarker = (sb.marker("ready")!.workers as { cpu: unknown }[]).map((w) => w.cpu);
        assert.deepEqual(
          parsed.report.workers.map((w) => w.cpu),
          fromMarker,
        );
        const fromLabels = sb
          .calls()
          .filter((c) => c[0] === "run")
          .map((argv) =>
            JSON.parse(argv.find((a) => a.startsWith(`${DOCKER_LABEL.cpuState}=`))!.split("=")[1]!),
          );
        assert.deepEqual(
          fromLabels.sort((a: { cpu: number }, b: { cpu: number }) => a.cpu - b.cpu),
          [...fromMarker].sort((a, b) => (a as { cpu: number }).cpu - (b as { cpu: number }).cpu),
        );
      }
      // Isolated CPUs only (1-3): 3 workers on 1, 3, 2 (cores first); auto is one per core among them: 1, 2.
      const sb = sandbox({ cpus: "0-3", siblings, baked: true, cpuFiles });
      assert.equal((await sb.run(renderUserDataText(values("task-runner", { workers: 3 })))).status, 0);
      const parsed = parseRecord(
        { name: "/x", key: "x", value: flag(putCalls(sb.dir)[0]!, "--value")! },
        "task-runner",
      );
      assert.ok(parsed.ok);
      assert.deepEqual(
        parsed.report.workers.map((w) => w.cpu),
        [
          { cpu: 1, sibling: "3", siblingIdle: false, isolated: true, governor: "powersave", turbo: "off" },
          { cpu: 2, sibling: "0", siblingIdle: true, isolated: true, governor: "performance", turbo: "off" },
          { cpu: 3, sibling: "1", siblingIdle: false, isolated: true, governor: "performance", turbo: "off" },
        ],
      );
    });

    test("aws: a boot record too long for SSM's 4 KB gives way in the SSM record (the marker keeps it); the workers' CPUs stay", async () => {
      const longSetup = `{"services": {"status": "failed", "detail": "${"could not mask x.timer ".repeat(200)}"}}`;
      const sb = sandbox({ cpus: "0-1", siblings: { 0: "0", 1: "1" }, baked: true, cpuSetup: longSetup });
      const r = await sb.run(renderUserDataText(values("task-runner")));
      assert.equal(r.status, 0, r.stderr);
      const raw = flag(putCalls(sb.dir)[0]!, "--value")!;
      assert.ok(Buffer.byteLength(raw) <= 4096, `${Buffer.byteLength(raw)} bytes`);
      assert.equal((JSON.parse(raw) as Record<string, unknown>).cpuSetup, null);
      assert.deepEqual(sb.marker("ready")!.cpuSetup, JSON.parse(longSetup));
      const parsed = parseRecord({ name: "/x", key: "x", value: raw }, "task-runner");
      assert.ok(parsed.ok);
      assert.deepEqual(
        parsed.report.workers.map((w) => w.cpu),
        [0, 1].map((cpu) => ({
          cpu,
          sibling: null,
          siblingIdle: null,
          isolated: false,
          governor: "unknown",
          turbo: "unknown",
        })),
      );
    });

    test("aws: a failed boot publishes a failed record with the reason (shortened for SSM's 4 KB), the marker keeps it all", async () => {
      const { sb, r } = await tooManyWorkers();
      assert.notEqual(r.status, 0);
      const puts = putCalls(sb.dir);
      assert.equal(puts.length, 1);
      const record = JSON.parse(flag(puts[0]!, "--value")!) as Record<string, unknown>;
      assert.equal(record.status, "failed");
      assert.match(String(record.reason), /3 workers asked for, but this instance has 2 CPU\(s\)/);

      const long = sandbox({ cpus: "0", siblings: { 0: "0" }, baked: true, engineAnswers: false });
      await long.run(
        renderUserDataText(values("orchestrator", { engineWaitSeconds: 1, version: "v".repeat(5000) })),
      );
      const value = flag(putCalls(long.dir)[0]!, "--value")!;
      assert.ok(Buffer.byteLength(value) <= 4096, `${Buffer.byteLength(value)} bytes`);
      assert.match(String((JSON.parse(value) as { reason: string }).reason), /did not answer within 1s/);
    });

    test("local: no record is published (the launcher reads the marker)", async () => {
      assert.equal(values("task-runner", {}, "", localCtx).recordPrefix, "");
      assert.match(renderUserDataText(values("orchestrator", {}, "", localCtx)), /^RECORD_PREFIX=''$/m);
      // The script with an empty prefix (as local renders it) publishes nothing.
      const sb = sandbox({ cpus: "0-1", siblings: { 0: "0", 1: "1" }, baked: true });
      const r = await sb.run(renderUserDataText(values("task-runner", { recordPrefix: "" })));
      assert.equal(r.status, 0, r.stderr);
      assert.equal(putCalls(sb.dir).length, 0);
      assert.equal(sb.marker("ready")!.status, "ready");
    });
  },
);
