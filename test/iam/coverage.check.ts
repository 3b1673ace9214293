// Runs after the whole suite (see package.json "test"): every AWS call that the suite's code made through the
// AWS stand-in (logged to IMGTOOL_AWS_CALLS_LOG) is allowed by at least one of imgtool's IAM policies.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { allActions } from "../../src/iam/policies.js";
import { parseConfig } from "../../src/config/load.js";

test("the IAM policies cover every AWS call the project made during the suite", () => {
  const log = process.env.IMGTOOL_AWS_CALLS_LOG;
  assert.ok(log, "IMGTOOL_AWS_CALLS_LOG is not set: run through `npm test`");
  const calls = new Set(readFileSync(log, "utf8").split("\n").filter(Boolean));
  assert.ok(calls.size >= 10, `only ${calls.size} distinct AWS calls were logged: did the suite run?`);
  const allowed = allActions(parseConfig("", { baseDir: "/" }).config!);
  const missing = [...calls].filter((c) => !allowed.has(c)).sort();
  assert.deepEqual(missing, [], `calls no policy allows: ${missing.join(", ")}`);
});
