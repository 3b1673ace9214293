// Runs after the whole suite (see package.json "test"): every AWS call that the suite's code made through the
// AWS stand-in (logged to IMGTOOL_AWS_CALLS_LOG) is allowed for the actor that made it.
//
// Calls made with an actor's key (test/support/iam-referee.ts: AKIDBAKE, AKIDPUSH, ...) were judged by the IAM
// evaluator with that actor's own generated policy, its resource ARNs and request context: the stand-in logs
// each judgement as a JSON line, and none may be a denial. Calls made by tests that do not act as an actor
// (plain `service:Operation` lines) must at least be allowed by some policy.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { allActions } from "../../src/iam/policies.js";
import { parseConfig } from "../../src/config/load.js";

interface Judged {
  actor: string;
  call: string;
  action: string;
  resource: string;
  allowed: boolean;
}

function readLog(): { judged: Judged[]; plain: Set<string> } {
  const log = process.env.IMGTOOL_AWS_CALLS_LOG;
  assert.ok(log, "IMGTOOL_AWS_CALLS_LOG is not set: run through `npm test`");
  const lines = readFileSync(log, "utf8").split("\n").filter(Boolean);
  return {
    judged: lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Judged),
    plain: new Set(lines.filter((l) => !l.startsWith("{"))),
  };
}

test("every call an actor made during the suite was allowed by that actor's own policy", () => {
  const { judged } = readLog();
  const actors = new Set(judged.map((j) => j.actor));
  for (const a of ["bake", "push", "launch", "prune", "pipeline"])
    assert.ok(actors.has(a), `no call was made as ${a}: did the suite run with per-actor credentials?`);
  const denied = [
    ...new Set(judged.filter((j) => !j.allowed).map((j) => `${j.actor}: ${j.action} on ${j.resource}`)),
  ].sort();
  assert.deepEqual(denied, [], `calls denied to the actor that made them:\n${denied.join("\n")}`);
});

test("calls made outside an actor's identity are allowed by at least one policy", () => {
  const { plain, judged } = readLog();
  assert.ok(plain.size + judged.length >= 10, "too few AWS calls were logged: did the suite run?");
  const allowed = allActions(parseConfig("", { baseDir: "/" }).config!);
  const missing = [...plain].filter((c) => !allowed.has(c)).sort();
  assert.deepEqual(missing, [], `calls no policy allows: ${missing.join(", ")}`);
});
