// packer/scripts/lib/imgtool-cpu-setup, the real script run by bash against fake sysfs/procfs trees (one per
// case, IMGTOOL_SYSFS_ROOT): allowed and applied, not allowed (absent paths, a folder where a file should be),
// failing writes (a write the "kernel" refuses: /dev/full; one it ignores: /dev/null reads back empty), and
// nothing asked. The tests may run as root, where chmod does not stop a write: so no case relies on modes.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { projectPath } from "../../src/paths.js";
import { workerCpuStates } from "../../src/launch/cpu-record.js";
import { runAsync, tempDir } from "../render/helpers.js";

const SCRIPT = projectPath("packer", "scripts", "lib", "imgtool-cpu-setup");
const ARGS = "isolcpus=domain,managed_irq,1-N nohz_full=1-N rcu_nocbs=1-N irqaffinity=0";

interface Setting {
  wanted: string;
  status: string;
  detail: string;
  value: string;
}
type Record_ = Record<"governor" | "turbo" | "services" | "kernel_args" | "irq_affinity", Setting> & {
  root: string;
};

/** A fake root: `files` (path -> content), `dirs`, `links` (path -> target), relative to the root. */
function tree(spec: { files?: Record<string, string>; dirs?: string[]; links?: Record<string, string> }) {
  const root = tempDir("cpu-setup");
  for (const [f, content] of Object.entries(spec.files ?? {})) {
    mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
    writeFileSync(path.join(root, f), content);
  }
  for (const d of spec.dirs ?? []) mkdirSync(path.join(root, d), { recursive: true });
  for (const [l, target] of Object.entries(spec.links ?? {})) {
    mkdirSync(path.dirname(path.join(root, l)), { recursive: true });
    symlinkSync(target, path.join(root, l));
  }
  return root;
}

/** Run the script with `conf` against `root`; the record it wrote. */
async function setup(root: string, conf: string | undefined) {
  const dir = tempDir("cpu-setup-run");
  const confFile = path.join(dir, "cpu.conf");
  if (conf !== undefined) writeFileSync(confFile, conf);
  const recordFile = path.join(dir, "run", "cpu.json");
  const r = await runAsync(["bash", SCRIPT], {
    env: { IMGTOOL_SYSFS_ROOT: root, IMGTOOL_CPU_CONF: confFile, IMGTOOL_CPU_RECORD: recordFile },
  });
  assert.equal(r.code, 0, r.out);
  return { record: JSON.parse(readFileSync(recordFile, "utf8")) as Record_, out: r.out };
}

const ALL = [
  "GOVERNOR=performance",
  "TURBO=off",
  "QUIET_UNITS=apt-daily.timer logrotate.timer",
  `KERNEL_ARGS=${ARGS}`,
  "KERNEL_ARGS_STATUS=applied",
  "KERNEL_ARGS_DETAIL=in every boot entry (grubby)",
  "",
].join("\n");
const CPU = "sys/devices/system/cpu";
const gov = (n: number) => `${CPU}/cpu${n}/cpufreq/scaling_governor`;

describe("imgtool-cpu-setup against fake sysfs/procfs trees", { concurrency: true }, () => {
  test("allowed: every setting written, read back and recorded applied", async () => {
    const root = tree({
      files: {
        [gov(0)]: "powersave\n",
        [gov(1)]: "powersave\n",
        [gov(2)]: "schedutil\n",
        [`${CPU}/intel_pstate/no_turbo`]: "0\n",
        [`${CPU}/isolated`]: "1-2\n",
        "proc/cmdline": `BOOT_IMAGE=/vmlinuz root=UUID=x ro ${ARGS} console=ttyS0\n`,
        "proc/irq/default_smp_affinity": "7\n",
        "proc/irq/1/smp_affinity_list": "0-2\n",
        "proc/irq/24/smp_affinity_list": "0-2\n",
        "usr/lib/systemd/system/apt-daily.timer": "[Timer]\n",
      },
      dirs: ["etc/systemd/system"],
    });
    const { record } = await setup(root, ALL);
    const { at, ...settings } = record as Record_ & { at: string };
    assert.match(at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.deepEqual(
      Object.fromEntries(Object.entries(settings).map(([k, v]) => [k, typeof v === "string" ? v : v.status])),
      {
        governor: "applied",
        turbo: "applied",
        services: "applied",
        kernel_args: "applied",
        irq_affinity: "applied",
        root,
      },
    );
    // Read back from the tree, not assumed: the files hold what was written.
    for (const n of [0, 1, 2]) assert.equal(readFileSync(path.join(root, gov(n)), "utf8"), "performance\n");
    assert.equal(record.governor.value, "performance");
    assert.match(record.governor.detail, /on 3 CPU\(s\)/);
    assert.equal(readFileSync(path.join(root, CPU, "intel_pstate/no_turbo"), "utf8"), "1\n");
    assert.equal(record.turbo.value, "off");
    assert.equal(readlinkSync(path.join(root, "etc/systemd/system/apt-daily.timer")), "/dev/null");
    assert.ok(
      !existsSync(path.join(root, "etc/systemd/system/logrotate.timer")),
      "an absent unit is left alone",
    );
    assert.equal(record.kernel_args.value, "1-2");
    assert.equal(readFileSync(path.join(root, "proc/irq/default_smp_affinity"), "utf8"), "1\n");
    assert.equal(readFileSync(path.join(root, "proc/irq/24/smp_affinity_list"), "utf8"), "0\n");
    assert.match(record.irq_affinity.detail, /2 of 2 interrupt/);
  });

  test("AMD-style boost: cpufreq/boost written 0 (off)", async () => {
    const root = tree({ files: { [`${CPU}/cpufreq/boost`]: "1\n" } });
    const { record } = await setup(root, "TURBO=off\n");
    assert.equal(record.turbo.status, "applied");
    assert.equal(readFileSync(path.join(root, CPU, "cpufreq/boost"), "utf8"), "0\n");
  });

  test("not allowed: absent files, a folder in place of a file, kernel arguments not the image's (a twin)", async () => {
    const root = tree({
      // No cpufreq at all; no_turbo is a folder; the unit is installed but /etc/systemd/system is missing.
      dirs: [`${CPU}/cpu0/topology`, `${CPU}/intel_pstate/no_turbo`],
      files: { "lib/systemd/system/apt-daily.timer": "[Timer]\n", "proc/cmdline": "ro\n" },
    });
    const conf = ALL.replace(
      /KERNEL_ARGS_STATUS=applied\nKERNEL_ARGS_DETAIL=.*\n/,
      "KERNEL_ARGS_STATUS=not-allowed\nKERNEL_ARGS_DETAIL=a Docker twin shares its host's kernel\n",
    );
    const { record } = await setup(root, conf);
    for (const k of ["governor", "turbo", "services", "kernel_args", "irq_affinity"] as const) {
      assert.equal(record[k].status, "not-allowed", `${k}: ${JSON.stringify(record[k])}`);
    }
    assert.match(record.governor.detail, /no cpufreq scaling_governor here/);
    assert.match(record.turbo.detail, /intel_pstate\/no_turbo is not writable here/);
    assert.match(record.services.detail, /not masked: apt-daily\.timer/);
    assert.equal(record.kernel_args.detail, "a Docker twin shares its host's kernel");
    assert.equal(record.kernel_args.wanted, ARGS);

    // One CPU of two offers no governor file (a folder there): not allowed, and the other CPU is still set.
    const half = tree({ files: { [gov(0)]: "powersave\n" }, dirs: [gov(1)] });
    const r2 = (await setup(half, "GOVERNOR=performance\n")).record;
    assert.equal(r2.governor.status, "not-allowed");
    assert.match(r2.governor.detail, /1 of 2 CPU\(s\)/);
    assert.equal(readFileSync(path.join(half, gov(0)), "utf8"), "performance\n");
  });

  test("failing writes: refused (/dev/full), ignored (/dev/null reads back empty), a kernel booted without the arguments", async () => {
    const root = tree({
      files: {
        [gov(0)]: "powersave\n",
        "proc/cmdline": "BOOT_IMAGE=/vmlinuz ro isolcpus=domain,managed_irq,1-N\n",
        "proc/irq/default_smp_affinity": "3\n",
        "usr/lib/systemd/system/apt-daily.timer": "[Timer]\n",
      },
      // The mask's place is taken by a folder: masking cannot succeed.
      dirs: ["etc/systemd/system/apt-daily.timer/keep"],
      links: {
        [gov(1)]: "/dev/full",
        [gov(2)]: "/dev/null",
        [`${CPU}/intel_pstate/no_turbo`]: "/dev/null",
      },
    });
    const { record } = await setup(root, ALL);
    assert.equal(record.governor.status, "failed");
    assert.match(record.governor.detail, /^2 of 3 CPU\(s\) refused performance/);
    assert.equal(record.turbo.status, "failed");
    assert.match(record.turbo.detail, /wrote 1, read back ''/);
    assert.equal(record.services.status, "failed");
    assert.match(record.services.detail, /could not mask: apt-daily\.timer/);
    assert.equal(record.kernel_args.status, "failed");
    assert.match(record.kernel_args.detail, /lacks: nohz_full=1-N rcu_nocbs=1-N irqaffinity=0$/);

    // An interrupt that takes the write but keeps its old CPU list; a kernel that took the arguments but isolates
    // nothing.
    const irq = tree({
      files: { "proc/cmdline": ARGS, "proc/irq/default_smp_affinity": "3\n" },
      links: { "proc/irq/9/smp_affinity_list": "/dev/null" },
    });
    const r2 = (await setup(irq, ALL)).record;
    assert.equal(r2.irq_affinity.status, "failed");
    // Every argument is in the command line, yet nothing is isolated: read back, so failed.
    assert.equal(r2.kernel_args.status, "failed");
    assert.match(r2.kernel_args.detail, /the kernel isolates no CPU/);
    assert.match(r2.irq_affinity.detail, /1 of 1 interrupt\(s\) accepted CPU 0 but read back/);
  });

  test("nothing asked (an orchestrator, or no cpu.conf): every setting unchanged, nothing written", async () => {
    const files = { [gov(0)]: "powersave\n", [`${CPU}/intel_pstate/no_turbo`]: "0\n" };
    for (const conf of ["GOVERNOR=unchanged\nTURBO=unchanged\nQUIET_UNITS=\nKERNEL_ARGS=\n", undefined]) {
      const root = tree({ files });
      const { record, out } = await setup(root, conf);
      for (const k of ["governor", "turbo", "services", "kernel_args", "irq_affinity"] as const) {
        assert.equal(record[k].status, "unchanged", k);
      }
      assert.equal(readFileSync(path.join(root, gov(0)), "utf8"), "powersave\n");
      if (conf === undefined) assert.match(out, /cpu\.conf is missing: nothing is asked for/);
    }
  });
});

describe("imgtool-cpu-state (a worker's CPU, read by the user-data at boot)", { concurrency: true }, () => {
  const STATE = projectPath("packer", "scripts", "lib", "imgtool-cpu-state");
  const state = (root: string, ...args: string[]) =>
    runAsync(["bash", STATE, ...args], { env: { IMGTOOL_SYSFS: path.join(root, "sys") } });

  test("SMT sibling busy or idle, isolation, governor and boost as the fake sysfs says", async () => {
    const root = tree({
      files: {
        [`${CPU}/cpu5/topology/thread_siblings_list`]: "1,5\n",
        [gov(5)]: "performance\n",
        [`${CPU}/isolated`]: "2-7\n",
        [`${CPU}/cpufreq/boost`]: "1\n",
      },
    });
    const idle = await state(root, "5", "5", "6");
    assert.equal(idle.code, 0, idle.out);
    assert.deepEqual(JSON.parse(idle.stdout), {
      cpu: 5,
      sibling: "1",
      siblingIdle: true,
      isolated: true,
      governor: "performance",
      turbo: "on",
    });
    const busy = JSON.parse((await state(root, "5", "1", "5")).stdout) as { siblingIdle: boolean };
    assert.equal(busy.siblingIdle, false);
    const bare = JSON.parse((await state(root, "1", "1")).stdout) as Record<string, unknown>;
    assert.deepEqual(bare, {
      cpu: 1,
      sibling: null,
      siblingIdle: null,
      isolated: false,
      governor: "unknown",
      turbo: "on",
    });
  });

  test("--record: every worker's CPU in the compact form the SSM ready record carries, read back by the launcher; 192 workers fit", async () => {
    const root = tree({
      files: {
        [`${CPU}/cpu1/topology/thread_siblings_list`]: "1,5\n",
        [`${CPU}/cpu5/topology/thread_siblings_list`]: "1,5\n",
        [`${CPU}/cpu2/topology/thread_siblings_list`]: "2,6\n",
        [gov(1)]: "performance\n",
        [gov(2)]: "powersave\n",
        [`${CPU}/isolated`]: "1-3\n",
        [`${CPU}/intel_pstate/no_turbo`]: "1\n",
      },
    });
    const workers = ["1", "2", "3", "5"];
    const r = await state(root, "--record", ...workers);
    assert.equal(r.code, 0, r.out);
    const record = JSON.parse(r.stdout) as unknown;
    assert.deepEqual(record, {
      siblings: "5 6 - 1",
      siblingIdle: "2",
      isolated: "1-3",
      governors: { performance: "1", powersave: "2", unknown: "3,5" },
      turbo: "off",
    });
    // The launcher's reading is what the one-CPU form says, worker by worker.
    assert.deepEqual(
      workerCpuStates(workers, record),
      (await Promise.all(workers.map((w) => state(root, w, ...workers)))).map(
        (r) => JSON.parse(r.stdout) as unknown,
      ),
    );

    // 192 workers on 384 CPUs with SMT: the record's CPU part stays small (the record's budget is SSM's 4 KB,
    // with the 192 workerCpus ~1.3 KB of it).
    const files: Record<string, string> = {};
    for (let c = 0; c < 384; c++) {
      files[`${CPU}/cpu${c}/topology/thread_siblings_list`] = `${c % 192},${(c % 192) + 192}\n`;
      files[gov(c)] = "performance\n";
    }
    const big = tree({ files });
    const many = Array.from({ length: 192 }, (_, c) => String(c));
    const out = await state(big, "--record", ...many);
    assert.equal(out.code, 0, out.out);
    assert.ok(Buffer.byteLength(out.stdout) <= 1_200, `${Buffer.byteLength(out.stdout)} bytes`);
    const states = workerCpuStates(many, JSON.parse(out.stdout))!;
    assert.equal(states.length, 192);
    assert.deepEqual(states[191], {
      cpu: 191,
      sibling: "383",
      siblingIdle: true,
      isolated: false,
      governor: "performance",
      turbo: "unknown",
    });
    assert.equal((await state(big, "--record")).code, 2, "no worker: usage error");
  });

  test("a CPU that is not a number is a usage error (exit 2)", async () => {
    const r = await state(tree({}), "x");
    assert.equal(r.code, 2);
    assert.match(r.out, /usage: imgtool-cpu-state CPU/);
  });
});
