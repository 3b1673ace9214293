// Readiness records and checks through AWS, judged by the independent IAM evaluator (iam-simulate with AWS's
// data): instances publish only run records and serve Run Command; the launcher runs AWS-RunShellScript only on
// its own pipeline's instances, reads and removes run records, never catalog entries; prune removes run records.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { parseConfig } from "../../src/config/load.js";
import { policyFor, type Actor } from "../../src/iam/policies.js";
import { SSM_AGENT_ACTIONS } from "../../src/iam/records-policy.js";
import { evaluate, policyProblems, type IamRequest } from "../support/iam-referee.js";

const ACCOUNT = "123456789012";
const config = parseConfig(
  ["pipeline: nightly", "aws:", "  regions: [us-east-1]", "  ssm_prefix: /teams/perf"].join("\n"),
  { baseDir: "/" },
).config!;

const param = (name: string) => `arn:aws:ssm:us-east-1:${ACCOUNT}:parameter/${name.replace(/^\//, "")}`;
const instance = (id: string) => `arn:aws:ec2:us-east-1:${ACCOUNT}:instance/${id}`;
// AWS-owned documents have no account in their ARN; the evaluator resolves resource types only with one, so it is
// asked with the account (the policy's `*:*` matches both).
const document = (name: string) => `arn:aws:ssm:us-east-1:${ACCOUNT}:document/${name}`;
const tagged = (pipeline: string) => ({ "aws:ResourceTag/imgtool:pipeline": pipeline });
const RECORD = "/teams/perf/runs/run-1/i-0123456789abcdef0";

async function allowed(actor: Actor, req: IamRequest): Promise<boolean> {
  return (await evaluate(policyFor(actor, config), req, ACCOUNT)).allowed;
}

describe("IAM referee: readiness records and Run Command", () => {
  test("the policies stay sound with the new statements (actions, condition keys, resources)", async () => {
    for (const actor of ["launch", "prune", "instance"] as const)
      assert.deepEqual(await policyProblems(policyFor(actor, config)), [], actor);
  });

  test("instance: puts its run record and runs the SSM agent; writes nothing else under the prefix or outside it", async () => {
    assert.ok(await allowed("instance", { action: "ssm:PutParameter", resource: param(RECORD) }));
    for (const action of SSM_AGENT_ACTIONS)
      assert.ok(await allowed("instance", { action, resource: "*" }), action);
    for (const name of [
      "/teams/perf/task-runner/image/x86_64",
      "/teams/perf/runs",
      "/teams/other/runs/run-1/i-0123456789abcdef0",
      "/imgtool/bench/runs/run-1/i-0123456789abcdef0",
    ]) {
      assert.equal(
        await allowed("instance", { action: "ssm:PutParameter", resource: param(name) }),
        false,
        name,
      );
    }
    for (const action of ["ssm:DeleteParameters", "ssm:GetParametersByPath", "ssm:SendCommand"])
      assert.equal(await allowed("instance", { action, resource: param(RECORD) }), false, action);
    assert.equal(
      await allowed("instance", { action: "ssm:GetParameter", resource: param("/teams/perf/other-secret") }),
      false,
      "the agent's statements do not open the parameters (unlike AmazonSSMManagedInstanceCore)",
    );
  });

  test("launch: AWS-RunShellScript on its own pipeline's instances only; command results", async () => {
    assert.ok(
      await allowed("launch", {
        action: "ssm:SendCommand",
        resource: instance("i-0123456789abcdef0"),
        context: tagged("nightly"),
      }),
    );
    assert.ok(
      await allowed("launch", { action: "ssm:SendCommand", resource: document("AWS-RunShellScript") }),
    );
    assert.ok(await allowed("launch", { action: "ssm:GetCommandInvocation", resource: "*" }));
    assert.equal(
      await allowed("launch", {
        action: "ssm:SendCommand",
        resource: instance("i-0fedcba9876543210"),
        context: tagged("other"),
      }),
      false,
      "another pipeline's instance",
    );
    assert.equal(
      await allowed("launch", { action: "ssm:SendCommand", resource: instance("i-0fedcba9876543210") }),
      false,
      "an untagged instance",
    );
    for (const doc of ["AWS-RunPowerShellScript", "AWS-StartInteractiveCommand", "Custom-Admin"])
      assert.equal(
        await allowed("launch", { action: "ssm:SendCommand", resource: document(doc) }),
        false,
        doc,
      );
  });

  for (const actor of ["launch", "prune"] as const) {
    test(`${actor}: reads and removes run records, never catalog entries or another prefix's records`, async () => {
      assert.ok(
        await allowed(actor, {
          action: "ssm:GetParametersByPath",
          resource: param("/teams/perf/runs/run-1"),
        }),
      );
      assert.ok(
        await allowed(actor, { action: "ssm:GetParametersByPath", resource: param("/teams/perf/runs") }),
      );
      assert.ok(await allowed(actor, { action: "ssm:DeleteParameters", resource: param(RECORD) }));
      for (const name of [
        "/teams/perf/task-runner/image/x86_64",
        "/teams/perf/secrets/orchestrator-api-key",
        "/teams/other/runs/run-1/i-0123456789abcdef0",
      ]) {
        assert.equal(
          await allowed(actor, { action: "ssm:DeleteParameters", resource: param(name) }),
          false,
          name,
        );
      }
    });
  }
});
