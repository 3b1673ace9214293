// imgtool iam-policy: valid documents, scoped to the pipeline's SSM prefix, ECR repositories and tags.
// (Coverage of every AWS call the suite made is checked after the suite: test/iam/coverage.check.ts.)
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { runCli } from "../support/cli.js";
import { ACTORS, type PolicyDocument } from "../../src/iam/policies.js";
import { SSM_AGENT_ACTIONS } from "../../src/iam/records-policy.js";

describe("iam-policy", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "imgtool-iam-"));
  const cfg = path.join(dir, "c.yaml");
  writeFileSync(
    cfg,
    "pipeline: nightly\naws:\n  ssm_prefix: /teams/perf\n  ecr:\n    repositories:\n      task-runner: perf/runner\n",
  );

  for (const actor of ACTORS) {
    test(`--for ${actor} prints one valid policy document`, async () => {
      const r = await runCli(["iam-policy", "--for", actor, "--config", cfg]);
      assert.equal(r.code, 0, r.stderr);
      const doc = JSON.parse(r.stdout) as PolicyDocument;
      assert.equal(doc.Version, "2012-10-17");
      assert.ok(doc.Statement.length > 0);
      const sids = doc.Statement.map((s) => s.Sid);
      assert.equal(new Set(sids).size, sids.length, "Sids are unique");
      for (const s of doc.Statement) {
        assert.equal(s.Effect, "Allow");
        for (const a of s.Action) assert.match(a, /^[a-z0-9-]+:[A-Za-z]+$/, `${a} is an IAM action`);
        for (const res of [s.Resource].flat()) {
          if (res.includes(":ssm:") && !res.endsWith(":*:document/AWS-RunShellScript"))
            assert.match(res, /parameter\/teams\/perf(\/|$)/, `${actor}: SSM scoped to the prefix`);
          if (res.includes(":ecr:"))
            assert.match(res, /repository\/(perf\/runner|nightly\/orchestrator)$/, `${actor}: ECR scoped`);
        }
      }
    });
  }

  test("the instance role can pull, read its own secret, publish its run record and serve Run Command, nothing else", async () => {
    const doc = JSON.parse(
      (await runCli(["iam-policy", "--for", "instance", "--config", cfg])).stdout,
    ) as PolicyDocument;
    const actions = doc.Statement.flatMap((s) => s.Action).sort();
    assert.deepEqual(
      actions,
      [
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetAuthorizationToken",
        "ecr:GetDownloadUrlForLayer",
        "kms:Decrypt",
        "ssm:GetParameter",
        "ssm:PutParameter",
        // The SSM agent's (Run Command's part of AmazonSSMManagedInstanceCore; no parameter reads).
        ...SSM_AGENT_ACTIONS,
      ].sort(),
    );
    assert.ok(
      SSM_AGENT_ACTIONS.every((a) => /^(ssm:UpdateInstanceInformation|ssmmessages:|ec2messages:)/.test(a)),
    );
    const put = doc.Statement.filter((s) => s.Action.includes("ssm:PutParameter"));
    assert.deepEqual(
      put.flatMap((s) => [s.Resource].flat()),
      ["arn:aws:ssm:*:*:parameter/teams/perf/runs/*"],
      "it writes nothing but run records",
    );
  });

  test("terminate and prune deletions are limited to the pipeline's tagged resources", async () => {
    for (const actor of ["launch", "prune"] as const) {
      const doc = JSON.parse(
        (await runCli(["iam-policy", "--for", actor, "--config", cfg])).stdout,
      ) as PolicyDocument;
      const destructive = doc.Statement.filter((s) =>
        s.Action.some((a) => /Terminate|Deregister|DeleteSnapshot/.test(a)),
      );
      assert.ok(destructive.length > 0);
      for (const s of destructive)
        assert.equal(s.Condition?.StringEquals?.["aws:ResourceTag/imgtool:pipeline"], "nightly");
    }
  });

  test("an unknown actor is a usage error", async () => {
    const r = await runCli(["iam-policy", "--for", "admin"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /Choices: "bake", "push", "launch", "prune", "instance"/);
  });
});
