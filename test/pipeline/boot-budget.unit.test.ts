// The boot budget's judgement and its words, pure: a new version's boot-to-ready against the role's budget and
// the previous version's, the slowest step and the step that grew, and the config's defaults and bad values.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { BOOT_BUDGET_DEFAULTS } from "../../src/config/boot-budget.js";
import { parseConfig } from "../../src/config/load.js";
import { bootStepsOf, slowestStep } from "../../src/launch/boot-steps.js";
import {
  budgetFailureFix,
  budgetFailureMessage,
  judgeBoot,
  verdictDetail,
  verdictLine,
  verdictStatus,
} from "../../src/pipeline/boot-budget.js";
import { parseBootRecord } from "../../src/pipeline/boot-records.js";

const budget = {
  seconds: { "task-runner": 10, orchestrator: 20 },
  max_ratio: 1.5,
  min_slowdown_seconds: 1,
  pre_warm: { seconds: 300, in_budget: false },
};
const steps = { "engine-wait": 0.01, "secret-read": 0.003, "image-check": 0.04, "worker-start": 0.5 };
const boot = (seconds: number, s: Record<string, number> = steps) => ({
  role: "task-runner" as const,
  arch: "x86_64",
  version: "v20261203-120000-bbbbbbbb",
  instanceId: "lt1-task-runner-1",
  seconds,
  steps: s,
});
const previous = { version: "v20261202-120000-aaaaaaaa", seconds: 0.6, steps };

describe("boot budget: the judgement", () => {
  test("within the budget and the ratio: ok, with the slowest step", () => {
    const v = judgeBoot(boot(0.62), previous, budget);
    assert.equal(v.ok, true);
    assert.equal(v.overBudget, false);
    assert.equal(v.slowerThanPrevious, false);
    assert.equal(v.ratio, 1.033);
    assert.deepEqual(v.slowest, { name: "worker-start", seconds: 0.5 });
    assert.equal(
      verdictDetail(v, budget),
      "budget 10 s, prev 0.600 s (1.03x, max 1.5x); slowest worker-start 0.500 s",
    );
  });

  test("over the role's budget: refused, naming both numbers and the slowest step", () => {
    const slow = { ...steps, "image-check": 2.04 };
    const v = judgeBoot(boot(12.3, slow), { ...previous, seconds: 11 }, budget);
    assert.equal(v.ok, false);
    assert.equal(v.overBudget, true);
    assert.equal(v.slowerThanPrevious, false, "1.12x is within the ratio");
    assert.deepEqual(v.slowest, { name: "image-check", seconds: 2.04 });
    assert.deepEqual(v.grewMost, { name: "image-check", by: 2 });
    assert.equal(
      verdictLine(v, budget),
      "task-runner v20261203-120000-bbbbbbbb (lt1-task-runner-1): boot-to-ready 12.300 s, over its budget of 10 s " +
        "(boot_budget.seconds.task-runner); previous version v20261202-120000-aaaaaaaa: 11.000 s, 1.12x (max 1.5x); " +
        "slowest boot step: image-check 2.040 s (+2.000 s since v20261202-120000-aaaaaaaa)",
    );
  });

  test("more than the ratio slower than the previous version (and by at least min_slowdown_seconds): refused", () => {
    const slow = { ...steps, "secret-read": 2.003 };
    const v = judgeBoot(boot(2.6, slow), previous, budget);
    assert.equal(v.ok, false);
    assert.equal(v.overBudget, false);
    assert.equal(v.slowerThanPrevious, true);
    assert.equal(v.ratio, 4.333);
    const line = verdictLine(v, budget);
    assert.match(
      line,
      /boot-to-ready 2\.600 s, budget 10 s, more than 1\.5x slower than the previous version;/,
    );
    assert.match(line, /previous version v20261202-120000-aaaaaaaa: 0\.600 s, 4\.33x \(max 1\.5x\)/);
    assert.match(
      line,
      /slowest boot step: secret-read 2\.003 s \(\+2\.000 s since v20261202-120000-aaaaaaaa\)$/,
    );
  });

  test("slower by the ratio but by less than min_slowdown_seconds: noise, ok", () => {
    const v = judgeBoot(boot(1.4), previous, budget);
    assert.equal(v.ratio, 2.333);
    assert.equal(v.slowerThanPrevious, false);
    assert.equal(v.ok, true);
    assert.equal(judgeBoot(boot(1.4), previous, { ...budget, min_slowdown_seconds: 0 }).ok, false);
  });

  test("exactly at the budget passes; a thousandth over fails", () => {
    assert.equal(judgeBoot(boot(10), undefined, budget).ok, true);
    assert.equal(judgeBoot(boot(10.001), undefined, budget).ok, false);
  });

  test("no previous record (the first run): judged by the budget alone, and the line says so", () => {
    const v = judgeBoot(boot(0.7), undefined, budget);
    assert.equal(v.ok, true);
    assert.equal(v.previous, null);
    assert.equal(v.ratio, null);
    assert.equal(v.grewMost, null);
    assert.match(
      verdictLine(v, budget),
      /no previous version's boot recorded; slowest boot step: worker-start 0\.500 s$/,
    );
    assert.match(verdictDetail(v, budget), /budget 10 s, no previous; slowest worker-start/);
  });

  test("the slowest step and the step that grew most differ: both are named", () => {
    const now = { ...steps, "worker-start": 3, "image-check": 1.5 };
    const prev = { ...previous, steps: { ...steps, "worker-start": 2.9 } };
    const v = judgeBoot(boot(30, now), prev, budget);
    assert.match(
      verdictLine(v, budget),
      /slowest boot step: worker-start 3\.000 s; grew most: image-check \(\+1\.460 s since v20261202-120000-aaaaaaaa\)$/,
    );
  });

  test("a step the previous version did not have (a new boot step) counts from zero", () => {
    const v = judgeBoot(boot(3, { ...steps, "cache-fill": 2.4 }), previous, budget);
    assert.deepEqual(v.grewMost, { name: "cache-fill", by: 2.4 });
    assert.equal(v.slowest?.name, "cache-fill");
  });

  test("the orchestrator has its own budget", () => {
    const v = judgeBoot({ ...boot(15), role: "orchestrator" }, undefined, budget);
    assert.equal(v.budgetSeconds, 20);
    assert.equal(v.ok, true);
  });

  test("an instance that did not time its steps (an older user-data): judged, and the line says why no step is named", () => {
    const v = judgeBoot(boot(11, {}), undefined, budget);
    assert.equal(v.ok, false);
    assert.equal(v.slowest, null);
    assert.match(verdictLine(v, budget), /the boot steps were not timed/);
  });

  test("the failure's message lists every refused boot; the fix names the roles' budget keys", () => {
    const a = judgeBoot(boot(12), undefined, budget);
    const b = judgeBoot(
      { ...boot(25), role: "orchestrator", instanceId: "lt1-orchestrator-1" },
      undefined,
      budget,
    );
    const msg = budgetFailureMessage([a, b], budget);
    assert.match(
      msg,
      /^The new versions are too slow to boot; `stable` was not moved:\n {2}task-runner .*\n {2}orchestrator /,
    );
    assert.match(budgetFailureMessage([a], budget), /^The new version is too slow/);
    const fix = budgetFailureFix([a, b]);
    assert.match(fix, /boot_budget\.seconds\.task-runner or boot_budget\.seconds\.orchestrator/);
    assert.match(fix, /bootSteps/);
  });
});

describe("boot budget: the pre-warm step, judged apart by default", () => {
  // A task runner on a fresh aws volume: the rest of its boot takes 1.2 s, its pre-warm reads from S3 for minutes.
  const warm = (prewarm: number, rest = 1.2) => ({
    ...steps,
    "image-check": 0.04,
    "pre-warm": prewarm,
    "worker-start": round(rest - 0.053),
  });
  const round = (n: number) => Math.round(n * 1000) / 1000;
  const prevWarm = { ...previous, seconds: 1.4, steps: warm(0.2) };

  test("the first real night: minutes of pre-warm and no previous version pass the 10 s budget (the ceiling is 300 s)", () => {
    const v = judgeBoot(boot(241.2, warm(240)), undefined, budget);
    assert.equal(v.ok, true, verdictLine(v, budget));
    assert.equal(v.judgedSeconds, 1.2);
    assert.equal(v.seconds, 241.2, "the measured boot-to-ready is kept");
    assert.equal(v.prewarmApart, true);
    assert.deepEqual(v.prewarm, { seconds: 240, ceiling: 300, over: false });
    assert.equal(v.steps["pre-warm"], 240, "every step is kept in the verdict");
    assert.equal(v.slowest?.name, "worker-start", "the slowest of the judged steps");
    assert.equal(
      verdictDetail(v, budget),
      "budget 10 s without pre-warm, no previous; slowest worker-start 1.147 s; pre-warm 240.000 s (ceiling 300 s)",
    );
  });

  test("the ratio compares both versions without their pre-warm: a slower pre-warm is not a slower boot", () => {
    const v = judgeBoot(boot(61.2, warm(60)), prevWarm, budget);
    assert.equal(v.previous?.judgedSeconds, 1.2);
    assert.equal(v.ratio, 1);
    assert.equal(v.slowerThanPrevious, false);
    assert.equal(v.grewMost, null, "the pre-warm's growth is not the boot's");
    assert.equal(v.ok, true);
  });

  test("a slower boot besides the pre-warm is still refused by the ratio", () => {
    const v = judgeBoot(boot(4.2, warm(0.2, 4)), prevWarm, budget);
    assert.equal(v.judgedSeconds, 4);
    assert.equal(v.ratio, 3.333);
    assert.equal(v.slowerThanPrevious, true);
    assert.deepEqual(v.grewMost, { name: "worker-start", by: 2.8 });
  });

  test("over the budget without the pre-warm: the line names both numbers and the whole boot", () => {
    const v = judgeBoot(boot(12.5, warm(0.5, 12)), undefined, budget);
    assert.equal(v.overBudget, true);
    assert.match(
      verdictLine(v, budget),
      /: boot-to-ready without pre-warm 12\.000 s \(12\.500 s with it\), over its budget of 10 s \(boot_budget\.seconds\.task-runner\), pre-warm 0\.500 s \(ceiling 300 s\); no previous/,
    );
  });

  test("the pre-warm over its own ceiling: refused, naming the step, both numbers and the key; the fix names FSR", () => {
    const v = judgeBoot(boot(301.2, warm(300.001)), undefined, budget);
    assert.equal(v.ok, false);
    assert.equal(v.overBudget, false);
    assert.equal(v.slowerThanPrevious, false);
    assert.deepEqual(v.prewarm, { seconds: 300.001, ceiling: 300, over: true });
    assert.equal(verdictStatus(v), "pre-warm-over-ceiling");
    assert.match(
      budgetFailureMessage([v], budget),
      /boot-to-ready without pre-warm 1\.199 s \(301\.200 s with it\), budget 10 s, pre-warm 300\.001 s, over its ceiling of 300 s \(boot_budget\.pre_warm\.seconds\);/,
    );
    const fix = budgetFailureFix([v]);
    assert.match(fix, /raise boot_budget\.pre_warm\.seconds and run/);
    assert.doesNotMatch(fix, /boot_budget\.seconds\.|max_ratio/, "the boot itself was within its budget");
    assert.match(fix, /aws\.fast_snapshot_restore: true/);
    assert.equal(
      judgeBoot(boot(301.2, warm(300)), undefined, budget).ok,
      true,
      "exactly at the ceiling passes",
    );
  });

  test("pre_warm.in_budget: the budget and the ratio judge the whole boot again; the ceiling still holds", () => {
    const whole = { ...budget, pre_warm: { seconds: 300, in_budget: true } };
    const v = judgeBoot(boot(241.2, warm(240)), prevWarm, whole);
    assert.equal(v.prewarmApart, false);
    assert.equal(v.judgedSeconds, 241.2);
    assert.equal(v.previous?.judgedSeconds, 1.4);
    assert.equal(v.overBudget, true);
    assert.equal(v.slowerThanPrevious, true);
    assert.deepEqual(v.grewMost, { name: "pre-warm", by: 239.8 });
    assert.equal(v.slowest?.name, "pre-warm");
    assert.match(verdictLine(v, whole), /: boot-to-ready 241\.200 s, over its budget of 10 s/);
    assert.match(verdictDetail(v, whole), /^budget 10 s, prev 1\.400 s/);
    assert.equal(
      judgeBoot(boot(400, warm(399)), undefined, {
        ...whole,
        seconds: { ...whole.seconds, "task-runner": 500 },
      }).prewarm?.over,
      true,
    );
  });

  test("a boot without a pre-warm step (an orchestrator, an older user-data) is judged whole, nothing apart", () => {
    const v = judgeBoot(boot(0.62), previous, budget);
    assert.equal(v.prewarm, null);
    assert.equal(v.prewarmApart, false);
    assert.equal(v.judgedSeconds, 0.62);
    assert.doesNotMatch(verdictLine(v, budget), /pre-warm/);
  });
});

describe("boot steps and records: what the instances and the catalog hold", () => {
  test("bootSteps keeps the user-data's order and drops what is not a time", () => {
    const s = bootStepsOf({
      "engine-wait": 0.01,
      "image-check": 2.5,
      bad: "x",
      neg: -1,
      "worker-start": 0.4,
    });
    assert.deepEqual(Object.keys(s!), ["engine-wait", "image-check", "worker-start"]);
    assert.deepEqual(slowestStep(s), { name: "image-check", seconds: 2.5 });
    assert.equal(bootStepsOf(undefined), undefined);
    assert.equal(bootStepsOf([1, 2]), undefined);
    assert.equal(slowestStep({}), undefined);
  });

  test("a stored record parses back; a value imgtool cannot have written does not", () => {
    const rec = {
      schema: 1,
      role: "task-runner",
      arch: "x86_64",
      version: "v1",
      imageVersion: "v2",
      target: "local",
      instanceId: "i",
      seconds: 0.6,
      steps,
      measuredAt: "2026-12-03T12:00:00.000Z",
    };
    assert.deepEqual(parseBootRecord(JSON.stringify(rec)), rec);
    assert.equal(parseBootRecord("not json"), undefined);
    assert.equal(parseBootRecord(JSON.stringify({ ...rec, schema: 2 })), undefined);
    assert.equal(parseBootRecord(JSON.stringify({ ...rec, seconds: "0.6" })), undefined);
  });
});

describe("boot budget: config", () => {
  const parse = (text: string) => parseConfig(text, { baseDir: "/tmp" });

  test("defaults: 60 s for a task runner, 120 s for an orchestrator, 1.5x and 1 s of noise; pre-warm apart, 900 s", () => {
    const c = parse("").config!;
    assert.deepEqual(c.boot_budget, BOOT_BUDGET_DEFAULTS);
    assert.deepEqual(c.boot_budget.seconds, { "task-runner": 60, orchestrator: 120 });
    assert.deepEqual(c.boot_budget.pre_warm, { seconds: 900, in_budget: false });
  });

  test("pre_warm: one key set, the other keeps its default; bad values named with their path", () => {
    const c = parse("boot_budget:\n  pre_warm: { in_budget: true }\n").config!;
    assert.deepEqual(c.boot_budget.pre_warm, { seconds: 900, in_budget: true });
    const r = parse("boot_budget:\n  pre_warm: { seconds: 0, in_budget: yes please, typo: 1 }\n");
    const all = r.errors.join("\n");
    assert.match(
      all,
      /boot_budget\.pre_warm\.seconds: 0 is not allowed: must be a number of seconds above 0/,
    );
    assert.match(all, /boot_budget\.pre_warm\.in_budget: /);
    assert.match(all, /boot_budget\.pre_warm\.typo: unknown key; allowed here: seconds, in_budget/);
  });

  test("one role's budget set, the other keeps its default", () => {
    const c = parse("boot_budget:\n  seconds: { task-runner: 2 }\n").config!;
    assert.deepEqual(c.boot_budget.seconds, { "task-runner": 2, orchestrator: 120 });
  });

  test("bad values are named with their path", () => {
    const r = parse(
      "boot_budget:\n  seconds: { orchestrator: 0 }\n  max_ratio: 0.5\n  min_slowdown_seconds: -1\n  typo: 1\n",
    );
    assert.equal(r.config, undefined);
    const all = r.errors.join("\n");
    assert.match(
      all,
      /boot_budget\.seconds\.orchestrator: 0 is not allowed: must be a number of seconds above 0/,
    );
    assert.match(all, /boot_budget\.max_ratio: 0\.5 is not allowed: must be at least 1/);
    assert.match(all, /boot_budget\.min_slowdown_seconds: -1 is not allowed: must be 0 or more/);
    assert.match(
      all,
      /boot_budget\.typo: unknown key; allowed here: seconds, max_ratio, min_slowdown_seconds, pre_warm/,
    );
  });
});
