// The nightly rebake workflow: the promises it makes (actionlint, the real linter, judges it in
// nightly-rebake-lint.test.ts: it takes seconds, too slow for the unit layer).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import { parse } from "yaml";
import { projectPath } from "../../src/paths.js";

const file = projectPath(".github", "workflows", "nightly-rebake.yml");

interface Step {
  uses?: string;
  run?: string;
  env?: Record<string, string>;
  with?: Record<string, unknown>;
}
interface Workflow {
  on: { schedule?: { cron: string }[]; workflow_dispatch?: unknown };
  permissions: Record<string, string>;
  concurrency: { group: string; "cancel-in-progress": boolean };
  env: Record<string, string>;
  jobs: Record<string, { steps: Step[]; "timeout-minutes": number }>;
}

describe("nightly-rebake workflow", () => {
  const wf = parse(readFileSync(file, "utf8")) as Workflow;
  const steps = Object.values(wf.jobs).flatMap((j) => j.steps);

  test("runs on a schedule and by hand, never two at once", () => {
    assert.ok(wf.on.schedule?.[0]?.cron);
    assert.ok("workflow_dispatch" in wf.on);
    assert.equal(wf.concurrency["cancel-in-progress"], false);
    assert.ok(wf.concurrency.group);
  });

  test("AWS credentials through OIDC role assumption, no stored keys", () => {
    assert.equal(wf.permissions["id-token"], "write");
    const aws = steps.find((s) => s.uses?.startsWith("aws-actions/configure-aws-credentials@"));
    assert.ok(aws?.with?.["role-to-assume"]);
    assert.doesNotMatch(
      readFileSync(file, "utf8"),
      /aws-access-key-id|aws-secret-access-key|AWS_SECRET_ACCESS_KEY/,
    );
  });

  test("the role session lasts as long as the job may run (the default hour is too short)", () => {
    const aws = steps.find((s) => s.uses?.startsWith("aws-actions/configure-aws-credentials@"));
    const seconds = Number(aws?.with?.["role-duration-seconds"]);
    const timeout = Math.max(...Object.values(wf.jobs).map((j) => j["timeout-minutes"]));
    assert.ok(seconds >= timeout * 60, `role-duration-seconds ${seconds} < the job's ${timeout} minutes`);
    assert.ok(seconds <= 43_200, "IAM's MaxSessionDuration is at most 12 hours");
    assert.match(readFileSync(file, "utf8"), /--max-session-duration/, "documents the role setting it needs");
  });

  test("the pinned Node satisfies engines.node of every installed dependency", () => {
    // semver comes with npm's toolchain in node_modules (a dependency of several dev tools).
    const semver = createRequire(projectPath("package.json"))("semver") as {
      satisfies(v: string, range: string): boolean;
    };
    const node = wf.env.NODE_VERSION ?? "";
    const refused: string[] = [];
    const walk = (dir: string): void => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (e.name.startsWith(".") || !(e.isDirectory() || e.isSymbolicLink())) continue;
        const p = path.join(dir, e.name);
        if (e.name.startsWith("@")) {
          walk(p);
          continue;
        }
        const pj = path.join(p, "package.json");
        if (existsSync(pj)) {
          const j = JSON.parse(readFileSync(pj, "utf8")) as { name?: string; engines?: { node?: unknown } };
          const range = j.engines?.node;
          if (typeof range === "string" && !semver.satisfies(node, range))
            refused.push(`${j.name}: ${range}`);
        }
        if (existsSync(path.join(p, "node_modules"))) walk(path.join(p, "node_modules"));
      }
    };
    walk(projectPath("node_modules"));
    assert.deepEqual(refused, [], `Node ${node} is refused by`);
    const own = (
      JSON.parse(readFileSync(projectPath("package.json"), "utf8")) as { engines: { node: string } }
    ).engines.node;
    assert.ok(semver.satisfies(node, own), `package.json engines.node ${own} accepts ${node}`);
  });

  test("every action is pinned by commit SHA, Node and Packer versions are pinned", () => {
    for (const s of steps.filter((x) => x.uses))
      assert.match(s.uses!, /^[\w.-]+\/[\w.-]+@[0-9a-f]{40}$/, `${s.uses} is not pinned`);
    const text = readFileSync(file, "utf8");
    assert.match(text, /NODE_VERSION: "\d+\.\d+\.\d+"/);
    assert.match(text, /PACKER_VERSION: "\d+\.\d+\.\d+"/);
  });

  test("runs the same script as `scripts/nightly-rebake --target local`, with a job summary and artefacts", () => {
    const run = steps.map((s) => s.run ?? "").join("\n");
    assert.match(run, /scripts\/nightly-rebake --target aws .*--summary "\$GITHUB_STEP_SUMMARY"/);
    // With the repository's config, never the built-in defaults.
    assert.match(run, /--target aws --config "\$IMGTOOL_CONFIG"/);
    const step = steps.find((s) => s.run?.includes("scripts/nightly-rebake"))!;
    assert.equal(step.env?.IMGTOOL_CONFIG, "${{ vars.IMGTOOL_CONFIG || 'imgtool.config.yaml' }}");
    // packer init's GitHub API calls carry the job's token (the anonymous limit is shared per address).
    assert.equal(step.env?.PACKER_GITHUB_API_TOKEN, "${{ secrets.GITHUB_TOKEN }}");
  });

  test("the repository variables it needs are checked first, each named when missing", () => {
    const check = steps[0]!;
    assert.match(check.run ?? "", /IMGTOOL_ROLE_ARN/);
    assert.match(check.run ?? "", /IMGTOOL_REGION/);
    const run = (env: Record<string, string>) =>
      spawnSync("bash", ["-c", check.run!], { encoding: "utf8", env: { PATH: process.env.PATH, ...env } });
    const none = run({ ROLE_ARN: "", REGION: "" });
    assert.equal(none.status, 2);
    assert.match(none.stdout, /::error::repository variable IMGTOOL_ROLE_ARN .*is not set/);
    assert.match(none.stdout, /::error::repository variable IMGTOOL_REGION .*is not set/);
    assert.equal(run({ ROLE_ARN: "arn:aws:iam::123456789012:role/n", REGION: "us-east-1" }).status, 0);
    assert.ok(steps.some((s) => s.uses?.startsWith("actions/upload-artifact@")));
  });
});
