// test/support/unavailable.ts: a missing tool skips a test with its reason on a developer's machine and fails
// the run under CI.
import { test } from "node:test";
import assert from "node:assert/strict";
import { inCi, unavailable } from "./unavailable.js";

test("nothing missing: no skip, with or without CI", () => {
  assert.equal(unavailable(false, { CI: "true" }), false);
  assert.equal(unavailable(undefined, {}), false);
});

test("a missing tool without CI: skipped, with the reason", () => {
  assert.equal(unavailable("packer is not installed", {}), "packer is not installed");
  assert.equal(unavailable("packer is not installed", { CI: "false" }), "packer is not installed");
});

test("a missing tool under CI: it throws, naming the tool", () => {
  assert.throws(
    () => unavailable("no Docker engine answers at unix:///x", { CI: "true" }),
    /no Docker engine.*CI/,
  );
  assert.throws(() => unavailable("packer is not installed", { CI: "1" }), /packer is not installed/);
});

test("CI is read as GitHub Actions and .ci/run set it", () => {
  assert.equal(inCi({ CI: "true" }), true);
  assert.equal(inCi({ CI: "0" }), false);
  assert.equal(inCi({}), false);
});
