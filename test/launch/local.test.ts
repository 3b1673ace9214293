// `imgtool launch` end to end on the local target, through the compiled CLI: each instance is a container of
// the twin that `imgtool bake ami` produced, with its own Docker engine, booting through imgtool-boot and
// cloud-init (seeded through NoCloud with the exact rendered user-data, gzipped here). The twin is baked once for
// this file by the real bake flow; the two example images and their pre-load volumes are made by the fixture
// (test/launch/fixtures/local.ts).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { gzipSync } from "node:zlib";
import path from "node:path";
import { machineArch } from "../../src/config/arch.js";
import { DOCKER_LABEL } from "../../src/config/tags.js";
import { FailureError, UsageError } from "../../src/errors.js";
import { logProblems } from "../../src/launch/cloud-init.js";
import { demux, execIn, localBackend } from "../../src/launch/local.js";
import { parseCpuList, type WorkerCpuState } from "../../src/launch/cpus.js";
import type { GroupRequest, LaunchBackend } from "../../src/launch/types.js";
import { runCli } from "../support/cli.js";
import { makeLocalFixture, type LocalFixture } from "./fixtures/local.js";

interface LaunchJson {
  runId: string;
  orchestrator: { id: string; url: string; reused: boolean; healthy: boolean; checks: number };
  instances: {
    role: string;
    id: string;
    workers: { name: string; cpus: string; cpu?: WorkerCpuState }[];
    bootToReadySeconds: number;
    startToReadySeconds: number;
    pulled: boolean;
    reused: boolean;
  }[];
  plan?: {
    orchestrator: { group: { instanceCpus: string[] } };
    taskRunners: { instanceCpus: string[]; workerCpus: string[][]; userData: { text: string } }[];
  };
}

let fx: LocalFixture;
const RUN_A = `e2e-a-${process.pid}`;
const RUN_B = `e2e-b-${process.pid}`;
const RUN_M = `e2e-m-${process.pid}`;
const RUN_U = `e2e-u-${process.pid}`;
const RUN_S = `e2e-s-${process.pid}`;
const RUN_X = `e2e-x-${process.pid}`;

async function imgtool(args: string[]) {
  const r = await runCli([...args, "--config", fx.configFile], { timeoutMs: 900_000 });
  return r;
}

/** Run a shell script inside a local instance (a container of the outer engine). */
async function inInstance(id: string, script: string): Promise<string> {
  const r = await execIn(fx.docker.getContainer(id), script, 30_000);
  assert.equal(r.exitCode, 0, r.output);
  return r.output.trim();
}

function registryLogSince(offset: number): string {
  return readFileSync(fx.registryLog).subarray(offset).toString("utf8");
}

async function http(
  method: string,
  url: string,
  body?: unknown,
): Promise<{ status: number; doc: Record<string, unknown> }> {
  const res = await fetch(url, {
    method,
    ...(body ? { body: JSON.stringify(body), headers: { "content-type": "application/json" } } : {}),
  });
  const text = await res.text();
  return { status: res.status, doc: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** The instance's console (docker logs). */
async function consoleOf(id: string): Promise<string> {
  return demux((await fx.docker.getContainer(id).logs({ stdout: true, stderr: true })) as unknown as Buffer);
}

const count = (text: string, re: RegExp) => text.match(new RegExp(re.source, "g"))?.length ?? 0;

/** Wait (bounded) until a file exists. */
async function fileAppears(file: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(file)) {
    if (Date.now() > deadline) throw new Error(`${file} did not appear within ${timeoutMs / 1000} s`);
    await new Promise((res) => setTimeout(res, 200));
  }
}

/** The local backend of the CLI's launch, for user-data the CLI never renders (MIME, undecodable). */
function backend(): LaunchBackend {
  return localBackend({
    config: fx.config,
    docker: fx.docker,
    registry: { user: fx.stack.registry.user, passwordFile: fx.stack.registry.passwordFile },
    events: () => undefined,
    stateDir: fx.stateDir,
  });
}

/** The task runner's rendered script (plain text) for a run, from the dry-run plan. */
async function taskRunnerScript(runId: string): Promise<string> {
  const plan = await imgtool([
    "launch",
    "--dry-run",
    "--json",
    "--run-id",
    runId,
    "--workers-per-instance",
    "1",
  ]);
  assert.equal(plan.code, 0, plan.stderr);
  return (JSON.parse(plan.stdout) as LaunchJson).plan!.taskRunners[0]!.userData.text;
}

/** The task runner's script and a MIME multipart user-data of its parts, with a boundary of our own. */
function mimeOf(parts: { type: string; filename: string; body: string }[]): string {
  return [
    'Content-Type: multipart/mixed; boundary="==imgtool-test=="',
    "MIME-Version: 1.0",
    "",
    ...parts.flatMap((p) => [
      "--==imgtool-test==",
      `Content-Type: ${p.type}; charset="us-ascii"`,
      `Content-Disposition: attachment; filename="${p.filename}"`,
      "",
      p.body,
    ]),
    "--==imgtool-test==--",
    "",
  ].join("\n");
}

function taskRunnerRequest(bytes: Buffer, text: string): GroupRequest {
  return {
    role: "task-runner",
    instanceType: "local",
    arch: machineArch(),
    count: 1,
    market: "on-demand",
    imageId: fx.twinId,
    preloadVolume: fx.preloadVolumes["task-runner"],
    userData: { role: "task-runner", text, bytes, compression: "none" },
    tags: {},
  };
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((n) => {
    const p = path.join(dir, n);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

describe("launch on the local target (containers with their own engine, through the CLI)", () => {
  before(async () => {
    fx = await makeLocalFixture({ configExtra: "launch:\n  user_data_compression: gzip\n" });
  });
  after(async () => {
    await imgtool(["terminate", "--run-id", RUN_A]).catch(() => undefined);
    await imgtool(["terminate", "--run-id", RUN_B]).catch(() => undefined);
    await imgtool(["terminate", "--run-id", RUN_M]).catch(() => undefined);
    await imgtool(["terminate", "--run-id", RUN_U]).catch(() => undefined);
    await imgtool(["terminate", "--run-id", RUN_S]).catch(() => undefined);
    await imgtool(["terminate", "--run-id", RUN_X]).catch(() => undefined);
    await fx?.cleanup();
  });

  test("--dry-run: the plan with this machine's CPUs and the rendered user-data; nothing is created", async () => {
    const r = await imgtool([
      "launch",
      "--dry-run",
      "--json",
      "--run-id",
      RUN_A,
      "--workers-per-instance",
      "2",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as LaunchJson;
    const runner = doc.plan!.taskRunners[0]!;
    assert.deepEqual(runner.workerCpus, [["0", "1"]]);
    assert.match(runner.userData.text, /^ORCHESTRATOR_URL=http:\/\/127\.0\.0\.1:\d+$/m);
    assert.equal(doc.instances.length, 0);
    const made = await fx.docker.listContainers({
      all: true,
      filters: { label: [`imgtool.pipeline=${fx.pipeline}`] },
    });
    assert.equal(made.length, 0);
    const human = await imgtool(["launch", "--dry-run", "--run-id", RUN_A]);
    assert.match(human.stdout, /nothing was changed/);
    assert.match(human.stdout, /----- user-data of task-runner/);
  });

  test("one orchestrator and one task runner with two workers: pinned to different CPUs (seen from inside), an example task completes, no pull, the secret in no file, log or request", async () => {
    const logOffset = statSync(fx.registryLog).size;
    const r = await imgtool([
      "launch",
      "--json",
      "--run-id",
      RUN_A,
      "--task-runners",
      "1",
      "--workers-per-instance",
      "2",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as LaunchJson;
    assert.equal(doc.runId, RUN_A);
    assert.equal(doc.orchestrator.healthy, true);
    const runner = doc.instances.find((i) => i.role === "task-runner")!;
    const orch = doc.instances.find((i) => i.role === "orchestrator")!;
    assert.ok(runner && orch);
    assert.equal(runner.workers.length, 2);
    assert.ok(runner.bootToReadySeconds > 0, `${runner.bootToReadySeconds} s`);
    for (const inst of doc.instances) {
      assert.ok(
        inst.startToReadySeconds >= inst.bootToReadySeconds,
        `${inst.id}: start to ready ${inst.startToReadySeconds} s, boot to ready ${inst.bootToReadySeconds} s`,
      );
    }

    // cloud-init ran the gzipped user-data, seeded exactly as sent to EC2, as its part-001 (its own log says so).
    for (const inst of doc.instances) {
      const seed = readFileSync(path.join(fx.stateDir, "launch", RUN_A, inst.id, "seed", "user-data"));
      assert.deepEqual([...seed.subarray(0, 2)], [0x1f, 0x8b], "the seed is gzipped");
      const log = await inInstance(inst.id, "cat /var/log/cloud-init.log");
      assert.match(log, /Running command \['\/var\/lib\/cloud\/instance\/scripts\/part-001'\]/);
      const bootConsole = await consoleOf(inst.id);
      assert.match(bootConsole, /Cloud-init v\. [\d.]+ running 'modules:final'/);
      // A clean boot: cloud-init said nothing at WARNING or above (the twin's own settings pass its schema).
      assert.deepEqual(logProblems(bootConsole), [], `${inst.id}: cloud-init's warnings`);
    }

    // Pinned to different CPUs, as the workers themselves see it.
    const seen = [];
    for (const w of runner.workers) {
      const cpus = await inInstance(
        runner.id,
        `docker exec ${w.name} awk '/^Cpus_allowed_list/ { print $2 }' /proc/self/status`,
      );
      assert.equal(cpus, w.cpus, `${w.name} runs on ${cpus}`);
      seen.push(cpus);
    }
    assert.equal(new Set(seen).size, 2, `workers share a CPU: ${seen.join(", ")}`);

    // Each worker's CPU state, read back from the (host's, shared) sysfs: in launch --json, its label and its
    // environment alike. The twin can read but not set it: no isolation of its own, the host's governor/turbo.
    const sysCpu = "/sys/devices/system/cpu";
    const host = (f: string) => (existsSync(f) ? readFileSync(f, "utf8").trim() : "");
    const listed = (list: string, cpu: number) => list !== "" && parseCpuList(list).includes(cpu);
    const turbo = existsSync(`${sysCpu}/intel_pstate/no_turbo`)
      ? host(`${sysCpu}/intel_pstate/no_turbo`) === "1"
        ? "off"
        : "on"
      : existsSync(`${sysCpu}/cpufreq/boost`)
        ? host(`${sysCpu}/cpufreq/boost`) === "0"
          ? "off"
          : "on"
        : "unknown";
    const workerCpus = runner.workers.map((w) => Number(w.cpus));
    for (const w of runner.workers) {
      const cpu = Number(w.cpus);
      const sibs = parseCpuList(
        host(`${sysCpu}/cpu${cpu}/topology/thread_siblings_list`) || String(cpu),
      ).filter((c) => c !== cpu);
      const expected: WorkerCpuState = {
        cpu,
        sibling: sibs.length ? sibs.join(",") : null,
        siblingIdle: sibs.length ? !sibs.some((c) => workerCpus.includes(c)) : null,
        isolated: listed(host(`${sysCpu}/isolated`), cpu),
        governor: host(`${sysCpu}/cpu${cpu}/cpufreq/scaling_governor`) || "unknown",
        turbo,
      };
      assert.deepEqual(w.cpu, expected, `${w.name} in launch --json`);
      const label = await inInstance(
        runner.id,
        `docker inspect -f '{{ index .Config.Labels "${DOCKER_LABEL.cpuState}" }}' ${w.name}`,
      );
      assert.deepEqual(JSON.parse(label), expected, `${w.name}'s label`);
      const env = await inInstance(runner.id, `docker exec ${w.name} printenv IMGTOOL_CPU_STATE`);
      assert.deepEqual(JSON.parse(env), expected, `${w.name}'s IMGTOOL_CPU_STATE`);
    }
    // The boot's own record, setting by setting, in the ready marker too. This fixture's twin is the orchestrator's
    // bake (one bake for both roles), which asks for no CPU setting: each is recorded unchanged, nothing written.
    // (A task runner's twin, asked for them, gets not-allowed/applied: test/packer/twin-build.test.ts.)
    const setup = JSON.parse(await inInstance(runner.id, "cat /run/imgtool/cpu.json")) as Record<
      string,
      { status: string }
    >;
    const statuses = Object.fromEntries(
      ["governor", "turbo", "services", "kernel_args", "irq_affinity"].map((k) => [k, setup[k]?.status]),
    );
    assert.deepEqual(statuses, {
      governor: "unchanged",
      turbo: "unchanged",
      services: "unchanged",
      kernel_args: "unchanged",
      irq_affinity: "unchanged",
    });
    const marker = JSON.parse(await inInstance(runner.id, "cat /run/imgtool/ready")) as { cpuSetup: unknown };
    assert.deepEqual(marker.cpuSetup, setup);

    // One example task, queued at the orchestrator, claimed and run by a worker, reported back.
    const created = await http("POST", `${doc.orchestrator.url}/tasks`, { benchmark: "fib" });
    assert.equal(created.status, 201);
    let task: Record<string, unknown> = created.doc;
    const deadline = Date.now() + 60_000;
    while (!["done", "failed"].includes(String(task.status)) && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 250));
      task = (await http("GET", `${doc.orchestrator.url}/tasks/${String(created.doc.id)}`)).doc;
    }
    assert.equal(task.status, "done", JSON.stringify(task));
    const result = task.result as {
      status: string;
      runner: string;
      results: { cpus: string; times: number[] };
    };
    assert.equal(result.status, "ok");
    assert.match(result.runner, /-task-runner-[12]$/);
    assert.ok(seen.includes(result.results.cpus), `the benchmark ran on CPU ${result.results.cpus}`);
    assert.equal(result.results.times.length, 5);

    // No network pull: the registry saw no request for these images, and the instances say so.
    const log = registryLogSince(logOffset);
    assert.doesNotMatch(
      log,
      new RegExp(`imgtool-launch-test-${fx.id}/`),
      "the registry was asked for the image",
    );
    assert.equal(runner.pulled, false);
    assert.equal(orch.pulled, false);

    // The secret: reached the workers' environment, and nothing else.
    const secret = readFileSync(
      path.join(fx.stateDir, "secrets", `${fx.pipeline}-orchestrator-api-key`),
      "utf8",
    );
    assert.ok(secret.length >= 32);
    assert.equal(
      await inInstance(runner.id, "docker exec task-runner-1 printenv ORCHESTRATOR_API_KEY"),
      secret,
    );
    assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret), "CLI output");
    const runFiles = filesUnder(path.join(fx.stateDir, "launch", RUN_A));
    assert.ok(runFiles.some((f) => f.endsWith("user-data")));
    for (const f of runFiles) assert.ok(!readFileSync(f, "utf8").includes(secret), f);
    for (const inst of doc.instances) {
      const c = fx.docker.getContainer(inst.id);
      assert.ok(!JSON.stringify(await c.inspect()).includes(secret), `docker inspect ${inst.id}`);
      const logs = demux((await c.logs({ stdout: true, stderr: true })) as unknown as Buffer);
      assert.match(logs, /imgtool-user-data\[\S+\]: ready: /);
      assert.ok(!logs.includes(secret), `docker logs ${inst.id}`);
    }
    assert.ok(!log.includes(secret), "registry requests");
  });

  test("restarting a local instance boots cloud-init again but does not run the user-data again (per instance id)", async () => {
    const id = `imgtool-${fx.pipeline}-${RUN_A}-task-runner-1`;
    const result = path.join(fx.stateDir, "launch", RUN_A, id, "cloud-init", "result.json");
    assert.ok(existsSync(result), "cloud-init finished its first boot");
    const before = await consoleOf(id);
    const userDataRuns = count(before, /imgtool-user-data\[task-runner\]: ready: /);
    assert.equal(userDataRuns, 1);
    const finals = count(before, /running 'modules:final'/);
    rmSync(result);
    await fx.docker.getContainer(id).restart({ t: 2 });
    await fileAppears(result, 600_000);
    const after = await consoleOf(id);
    assert.equal(count(after, /running 'modules:final'/), finals + 1, "cloud-init's final stage ran again");
    assert.equal(
      count(after, /imgtool-user-data\[task-runner\]: ready: /),
      userDataRuns,
      "the user-data ran again",
    );
    // /var/lib/cloud kept the instance's record, so cloud-init knew it (a reboot, not a new instance).
    const log = await inInstance(id, "cat /var/log/cloud-init.log");
    assert.ok(log.includes(`previous iid found to be ${id}`), "cloud-init saw the same instance id again");
  });

  test("a MIME multipart user-data (a #cloud-config part and our script) runs through cloud-init and reaches ready", async () => {
    const script = await taskRunnerScript(RUN_M);
    const mime = mimeOf([
      {
        type: "text/cloud-config",
        filename: "cloud-config.yaml",
        body: [
          "#cloud-config",
          "write_files:",
          "  - path: /etc/imgtool-test/from-cloud-config",
          '    content: "written by the cloud-config part\\n"',
          "",
        ].join("\n"),
      },
      { type: "text/x-shellscript", filename: "imgtool-user-data.sh", body: script },
    ]);
    const b = backend();
    await b.prepare();
    const [inst] = await b.start(taskRunnerRequest(gzipSync(mime), mime), RUN_M);
    const ready = await b.waitReady!(inst!, 600_000);
    assert.equal(ready.workers.length, 1);
    assert.ok(ready.startToReadySeconds! >= ready.bootToReadySeconds);
    assert.equal(
      await inInstance(inst!.id, "cat /etc/imgtool-test/from-cloud-config"),
      "written by the cloud-config part",
    );
    const log = await inInstance(inst!.id, "cat /var/log/cloud-init.log");
    assert.match(log, /Running command \['\/var\/lib\/cloud\/instance\/scripts\/imgtool-user-data\.sh'\]/);
    await b.terminate([inst!.id]);
  });

  test("user-data that cloud-init cannot decode: the launch fails with cloud-init's own words", async () => {
    const junk = Buffer.concat([Buffer.from([0x1f, 0x8b, 0x08, 0x00]), Buffer.from("not gzip at all\n")]);
    const b = backend();
    const [inst] = await b.start(taskRunnerRequest(junk, ""), RUN_U);
    await assert.rejects(b.waitReady!(inst!, 600_000), (e: unknown) => {
      assert.ok(e instanceof FailureError, String(e));
      assert.match(e.message, /cloud-init finished without the user-data reaching ready/);
      assert.match(
        e.message,
        /cloud-init's own words:\n {2}__init__\.py\[WARNING\]: Unhandled non-multipart \(text\/x-not-multipart\) userdata/,
      );
      return true;
    });
    await b.terminate([inst!.id]);
  });

  test("a MIME part of type text/x-sh (not cloud-init's text/x-shellscript): cloud-init does not run it, and the launch fails with cloud-init's own words", async () => {
    const script = await taskRunnerScript(RUN_X);
    const mime = mimeOf([{ type: "text/x-sh", filename: "imgtool-user-data.sh", body: script }]);
    const b = backend();
    const [inst] = await b.start(taskRunnerRequest(Buffer.from(mime), mime), RUN_X);
    await assert.rejects(b.waitReady!(inst!, 600_000), (e: unknown) => {
      assert.ok(e instanceof FailureError, String(e));
      assert.match(
        e.message,
        /cloud-init's own words:\n {2}__init__\.py\[WARNING\]: Unhandled unknown content-type \(text\/x-sh\) userdata/,
      );
      return true;
    });
    assert.doesNotMatch(await consoleOf(inst!.id), /imgtool-user-data\[task-runner\]/, "the script ran");
    await b.terminate([inst!.id]);
  });

  test("user-data of exactly 16384 bytes boots through cloud-init to ready; 16385 bytes are refused with EC2's own error, before any container exists", async () => {
    const script = await taskRunnerScript(RUN_S);
    // The script, then one comment line that brings it to the size wanted.
    const sized = (size: number) => {
      const body = script.endsWith("\n") ? script : `${script}\n`;
      const text = `${body}#${"x".repeat(size - Buffer.byteLength(body) - 2)}\n`;
      assert.equal(Buffer.byteLength(text), size);
      return text;
    };
    const b = backend();
    const over = sized(16_385);
    await assert.rejects(b.start(taskRunnerRequest(Buffer.from(over), over), RUN_S), (e: unknown) => {
      assert.ok(e instanceof UsageError, String(e));
      assert.match(e.message, /EC2's error InvalidParameterValue: User data is limited to 16384 bytes/);
      return true;
    });
    const made = await fx.docker.listContainers({
      all: true,
      filters: { label: [`imgtool.run-id=${RUN_S}`] },
    });
    assert.equal(made.length, 0, "a container was made for refused user-data");

    const limit = sized(16_384);
    const [inst] = await b.start(taskRunnerRequest(Buffer.from(limit), limit), RUN_S);
    const ready = await b.waitReady!(inst!, 600_000);
    assert.equal(ready.workers.length, 1);
    assert.equal(
      readFileSync(path.join(fx.stateDir, "launch", RUN_S, inst!.id, "seed", "user-data")).length,
      16_384,
    );
    const log = await inInstance(inst!.id, "cat /var/log/cloud-init.log");
    assert.match(log, /Running command \['\/var\/lib\/cloud\/instance\/scripts\/part-001'\]/);
    await b.terminate([inst!.id]);
  });

  test("a newer image than the baked one: the instance logs in and pulls it by digest; --reuse-orchestrator keeps the running one (checked once)", async () => {
    const ref = await fx.publishNewImage("task-runner");
    const digest = ref.split("@")[1]!;
    const logOffset = statSync(fx.registryLog).size;
    const r = await imgtool([
      "launch",
      "--json",
      "--run-id",
      RUN_B,
      "--reuse-orchestrator",
      "--workers-per-instance",
      "1",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as LaunchJson;
    assert.equal(doc.orchestrator.reused, true);
    assert.equal(doc.orchestrator.id, `imgtool-${fx.pipeline}-${RUN_A}-orchestrator-1`);
    assert.equal(doc.orchestrator.checks, 1, "already healthy: one check");
    const runner = doc.instances.find((i) => i.role === "task-runner" && !i.reused)!;
    assert.equal(runner.pulled, true);
    const log = registryLogSince(logOffset);
    assert.match(
      log,
      new RegExp(
        `GET /v2/imgtool-launch-test-${fx.id}/task-runner/manifests/${digest} HTTP/1\\.1" 200 .*docker/`,
      ),
      "pulled by digest",
    );
    assert.equal(
      await inInstance(runner.id, `docker inspect --format '{{.Config.Image}}' task-runner-1`),
      ref,
    );
    assert.equal(doc.instances.filter((i) => !i.reused && i.role === "orchestrator").length, 0);
  });

  test("terminate --run-id removes that run's instances, their volumes, run folders and cgroups, and no other run's", async () => {
    const r = await imgtool(["terminate", "--run-id", RUN_B, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { instances: unknown[] }).instances.length, 1);
    const left = async (run: string) =>
      fx.docker.listContainers({ all: true, filters: { label: [`imgtool.run-id=${run}`] } });
    assert.equal((await left(RUN_B)).length, 0);
    assert.equal((await left(RUN_A)).length, 2, "run A is untouched");
    const r2 = await imgtool(["terminate", "--run-id", RUN_A]);
    assert.equal(r2.code, 0, r2.stderr);
    assert.match(r2.stdout, /terminated/);
    assert.equal((await left(RUN_A)).length, 0);
    const vols = ((await fx.docker.listVolumes()).Volumes ?? []).map((v) => v.Name);
    assert.deepEqual(
      vols.filter((v) => v.startsWith(`imgtool-${fx.pipeline}-e2e`)),
      [],
      "the instances' own store volumes are gone",
    );
    assert.ok(vols.includes(fx.preloadVolumes["task-runner"]), "the baked pre-load volume stays");
    assert.ok(
      !existsSync(path.join(fx.stateDir, "launch", RUN_A, `imgtool-${fx.pipeline}-${RUN_A}-task-runner-1`)),
    );
    const cgroups = readdirSync("/sys/fs/cgroup/cpuset").filter((n) =>
      n.startsWith(`imgtool-${fx.pipeline}-`),
    );
    assert.deepEqual(cgroups, []);
  });

  test("the host's docker0 bridge survived every instance engine (they run without NET_ADMIN)", () => {
    assert.ok(
      existsSync("/sys/class/net/docker0"),
      "an engine with --bridge=none deleted the host's docker0",
    );
  });
});
