// The publish leases' IAM (judged by the independent evaluator): bake and push (and so the nightly workflow
// role, which has both) create, read and delete `<ssm_prefix>/leases/*`, and delete nothing else under the prefix
// or outside it; launch, prune and the instances cannot touch leases.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { parseConfig } from "../../src/config/load.js";
import { policyFor, type Actor } from "../../src/iam/policies.js";
import { evaluate, pipelinePolicy } from "../support/iam-referee.js";

const ACCOUNT = "123456789012";
const config = parseConfig("pipeline: nightly\naws:\n  ssm_prefix: /teams/perf\n", { baseDir: "/" }).config!;
const param = (name: string) => `arn:aws:ssm:us-east-1:${ACCOUNT}:parameter${name}`;
const LEASE = "/teams/perf/leases/task-runner-ami";
const MARKER = `${LEASE}/takeover-0123456789abcdef`;

const allowed = async (actor: Actor | "pipeline", action: string, name: string) =>
  (
    await evaluate(
      actor === "pipeline" ? pipelinePolicy(config) : policyFor(actor, config),
      { action, resource: param(name) },
      ACCOUNT,
    )
  ).allowed;

describe("IAM referee: publish leases", () => {
  for (const actor of ["bake", "push", "pipeline"] as const) {
    test(`${actor}: creates, reads and deletes leases and takeover markers; deletes no catalog entry`, async () => {
      for (const name of [LEASE, MARKER, "/teams/perf/leases/pipeline"]) {
        for (const action of ["ssm:PutParameter", "ssm:GetParameters", "ssm:DeleteParameter"])
          assert.ok(await allowed(actor, action, name), `${action} ${name}`);
      }
      for (const name of [
        "/teams/perf/task-runner/image",
        "/teams/perf/task-runner/ami/x86_64/meta",
        "/teams/other/leases/pipeline",
      ])
        assert.equal(await allowed(actor, "ssm:DeleteParameter", name), false, name);
    });
  }

  for (const actor of ["launch", "prune", "instance"] as const) {
    test(`${actor}: cannot take or remove a lease`, async () => {
      assert.equal(await allowed(actor, "ssm:DeleteParameter", LEASE), false);
      assert.equal(await allowed(actor, "ssm:PutParameter", LEASE), false);
    });
  }
});
