// The calibrate flow with its edges replaced: the run is always ended once launched (a failing benchmark, an
// interrupt), nothing is recorded then, and a missing benchmark is the user's mistake, named.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { calibrate, type CalibrateDeps, type CalibrateOptions } from "../../src/calibrate/run.js";
import { parseConfig } from "../../src/config/load.js";
import { InterruptedError, UsageError } from "../../src/errors.js";
import type { LaunchOptions, LaunchResult } from "../../src/launch/types.js";

const config = parseConfig("", { baseDir: "/tmp" }).config!;
const opts: CalibrateOptions = {
  target: "local",
  runId: "calib-unit",
  instanceTypes: ["c7i.large"],
  workers: [1, 2],
  benchmarks: ["fib"],
  label: "latest",
  dryRun: false,
  settings: { ...config.calibration, repetitions: 1 },
};

function fakes(script: (lines: string[]) => { exitCode: number; stdout: string; stderr: string }) {
  const calls = { terminated: [] as string[], launched: 0, scripts: 0, recorded: 0 };
  const deps: CalibrateDeps = {
    launch: async (o: LaunchOptions) => {
      if (o.dryRun) {
        return {
          plan: {
            taskRunners: [{ instanceType: "c7i.large", amiVersion: "v1-x", image: "img", workers: 2 }],
          },
        } as unknown as LaunchResult;
      }
      calls.launched++;
      return {
        instances: [
          {
            role: "task-runner",
            id: "inst-1",
            instanceType: "c7i.large",
            reused: false,
            workers: [
              { name: "task-runner-1", cpus: "0" },
              { name: "task-runner-2", cpus: "1" },
            ],
          },
        ],
      } as unknown as LaunchResult;
    },
    terminate: async (id) => {
      calls.terminated.push(id);
    },
    runScript: async (_id, lines) => {
      calls.scripts++;
      return script(lines);
    },
    catalog: async () => {
      calls.recorded++;
      throw new Error("nothing is recorded in these cases");
    },
    events: () => {},
  };
  return { deps, calls };
}

const quietOk = (lines: string[]) =>
  lines.join("\n").includes("docker stop")
    ? { exitCode: 0, stdout: "imgtool-calibrate quiet\n", stderr: "" }
    : undefined;

describe("calibrate flow", () => {
  test("a failing benchmark fails with its layout and output; the run is ended", async () => {
    const { deps, calls } = fakes(
      (l) => quietOk(l) ?? { exitCode: 1, stdout: "imgtool-calibrate-failed 1 1 exit 1\nboom", stderr: "" },
    );
    await assert.rejects(calibrate(opts, deps), /fib \(1 alone\) failed on inst-1 \(exit 1\):[\s\S]*boom/);
    assert.deepEqual(calls.terminated, ["calib-unit"]);
    assert.equal(calls.recorded, 0);
  });

  test("results longer than SSM returns (stdout cut at 24,000 characters): a usage error naming the layout and the settings to lower; the run is ended", async () => {
    const { deps, calls } = fakes(
      (l) =>
        quietOk(l) ?? {
          exitCode: 0,
          stdout: `imgtool-calibrate 1 1 {"bench":[${"0.1,".repeat(5_999)}0.1]`,
          stderr: "",
          stdoutCut: true,
        },
    );
    const err = await calibrate(opts, deps).then(
      () => assert.fail("should fail"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof UsageError, String(err));
    assert.match(
      err.message,
      /^fib \(1 alone\) on inst-1: its results \(1 worker\(s\) x 1 repetition\(s\)\) are longer than the 24,000 characters of output SSM Run Command returns: the end of them is lost\.$/,
    );
    assert.match(err.fix ?? "", /calibration\.repetitions/);
    assert.deepEqual(calls.terminated, ["calib-unit"]);
  });

  test("a benchmark the cache lacks is a usage error naming it", async () => {
    const { deps, calls } = fakes(
      (l) => quietOk(l) ?? { exitCode: 1, stdout: "no benchmark fib in /opt/ruby-bench (...)", stderr: "" },
    );
    const err = await calibrate(opts, deps).then(
      () => assert.fail("should fail"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof UsageError, String(err));
    assert.match(err.message, /The benchmark fib is not in the ruby-bench cache of img/);
    assert.deepEqual(calls.terminated, ["calib-unit"]);
  });

  test("an interrupt starts no further layout and ends the run", async () => {
    const ac = new AbortController();
    const { deps, calls } = fakes((l) => {
      ac.abort("SIGTERM");
      return quietOk(l) ?? assert.fail("no layout after the interrupt");
    });
    const err = await calibrate(opts, { ...deps, signal: ac.signal }).then(
      () => assert.fail("should fail"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof InterruptedError, String(err));
    assert.equal(err.exitCode, 143);
    assert.equal(calls.scripts, 1);
    assert.deepEqual(calls.terminated, ["calib-unit"]);
  });

  test("a launch that fails ends nothing more (the launch cleans up after itself)", async () => {
    const { deps, calls } = fakes(() => assert.fail("nothing runs"));
    const failing: CalibrateDeps = {
      ...deps,
      launch: async (o) => {
        if (o.dryRun) return deps.launch(o);
        throw new Error("capacity");
      },
    };
    await assert.rejects(calibrate(opts, failing), /capacity/);
    assert.deepEqual(calls.terminated, []);
  });
});
