// The generated IAM policies judged by an evaluator we did not write (@cloud-copilot/iam-simulate with AWS's
// action, resource and condition-key data): every action exists, every condition key is valid for every action
// of its statement, every resource fits its actions; what each actor does is allowed, and a list of things no
// actor needs is denied to every actor.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { loadConfig, parseConfig } from "../../src/config/load.js";
import { projectPath } from "../../src/paths.js";
import { ACTORS, policyFor, type Actor } from "../../src/iam/policies.js";
import { evaluate, policyProblems, type IamRequest } from "../support/iam-referee.js";
import { stackRepositories } from "../../src/bake/stack-images.js";

const ACCOUNT = "123456789012";
const config = parseConfig(
  [
    "pipeline: nightly",
    "aws:",
    "  regions: [us-east-1, eu-west-1]",
    "  ssm_prefix: /teams/perf",
    "  instance_profile: imgtool-nightly-instance",
    "  api_key_parameter: /vault/nightly/api-key",
    "  ecr:",
    "    repositories:",
    "      task-runner: perf/runner",
  ].join("\n"),
  { baseDir: "/" },
).config!;

const ec2 = (type: string, id: string, region = "us-east-1") =>
  `arn:aws:ec2:${region}:${ACCOUNT}:${type}/${id}`;
const ours = { "aws:ResourceTag/imgtool:pipeline": "nightly" };
const theirs = { "aws:ResourceTag/imgtool:pipeline": "other" };
const requestTags = (pipeline: string) => ({
  "aws:RequestTag/imgtool:pipeline": pipeline,
  "aws:TagKeys": ["imgtool:pipeline"],
});

async function allowed(actor: Actor, req: IamRequest): Promise<boolean> {
  return (await evaluate(policyFor(actor, config), req, ACCOUNT)).allowed;
}

describe("IAM referee: the generated policies", () => {
  for (const actor of ACTORS) {
    test(`${actor}: every action exists, every condition key and resource fits its actions`, async () => {
      assert.deepEqual(await policyProblems(policyFor(actor, config)), []);
    });
  }

  test("the default config's policies are sound too", async () => {
    const defaults = parseConfig("pipeline: bench\n", { baseDir: "/" }).config!;
    for (const actor of ACTORS) assert.deepEqual(await policyProblems(policyFor(actor, defaults)), [], actor);
  });

  test("with no secret declared (secrets: {}), no statement is left without a resource (IAM refuses one)", async () => {
    const none = parseConfig("pipeline: bench\nsecrets: {}\n", { baseDir: "/" }).config!;
    assert.deepEqual(none.secrets, {});
    for (const actor of ACTORS) {
      const policy = policyFor(actor, none);
      assert.deepEqual(await policyProblems(policy), [], actor);
      for (const st of policy.Statement)
        assert.ok(
          !Array.isArray(st.Resource) || st.Resource.length > 0,
          `${actor} ${st.Sid}: an empty Resource`,
        );
    }
  });

  test("ARNs use the regions' partition", async () => {
    const china = parseConfig("pipeline: bench\naws:\n  regions: [cn-north-1]\n", { baseDir: "/" }).config!;
    for (const actor of ACTORS) {
      const arns = policyFor(actor, china)
        .Statement.flatMap((s) => [s.Resource].flat())
        .filter((r) => r !== "*");
      assert.ok(arns.length > 0);
      for (const arn of arns) assert.match(arn, /^arn:aws-cn:/, `${actor}: ${arn}`);
    }
    assert.ok(
      await allowed("push", {
        action: "ecr:PutImage",
        resource: `arn:aws:ecr:us-east-1:${ACCOUNT}:repository/perf/runner`,
      }),
    );
  });

  test("the referee itself rejects an unknown action, a misplaced condition key and a misfit resource", async () => {
    const problems = await policyProblems({
      Version: "2012-10-17",
      Statement: [
        {
          Sid: "Bad",
          Effect: "Allow",
          Action: ["ec2:TerminateInstance", "ec2:TerminateInstances"],
          Resource: "arn:aws:ssm:*:*:parameter/x",
          Condition: { StringEquals: { "ec2:CreateAction": "RunInstances" } },
        },
      ],
    });
    assert.equal(problems.length, 4, problems.join("\n"));
  });
});

describe("IAM referee: what the actors need is allowed", () => {
  test("launch: an on-demand and a spot launch, tagged with the pipeline, with the instance role", async () => {
    const run = (resource: string, context: Record<string, string | string[]> = {}): IamRequest => ({
      action: "ec2:RunInstances",
      resource,
      context,
    });
    for (const req of [
      run(ec2("instance", "*"), requestTags("nightly")),
      run(ec2("volume", "*"), requestTags("nightly")),
      run(ec2("spot-instances-request", "*"), requestTags("nightly")),
      run(ec2("network-interface", "*")),
      run(`arn:aws:ec2:us-east-1::image/ami-0123456789abcdef0`),
      run(ec2("subnet", "subnet-0123abcd")),
      run(ec2("security-group", "sg-0123abcd")),
      {
        action: "ec2:CreateTags",
        resource: ec2("spot-instances-request", "*"),
        context: { ...requestTags("nightly"), "ec2:CreateAction": "RunInstances" },
      },
      {
        action: "iam:PassRole",
        resource: `arn:aws:iam::${ACCOUNT}:role/imgtool-nightly-instance`,
        context: { "iam:PassedToService": "ec2.amazonaws.com" },
      },
      { action: "ec2:TerminateInstances", resource: ec2("instance", "i-0123456789abcdef0"), context: ours },
      // The existence check of the secrets, in the catalog's batched call: one kept outside ssm_prefix too.
      {
        action: "ssm:GetParameters",
        resource: `arn:aws:ssm:us-east-1:${ACCOUNT}:parameter/vault/nightly/api-key`,
      },
    ]) {
      assert.ok(await allowed("launch", req), JSON.stringify(req));
    }
    // Known to exist, never read: the launcher cannot decrypt it.
    assert.equal(
      await allowed("launch", {
        action: "kms:Decrypt",
        resource: `arn:aws:kms:us-east-1:${ACCOUNT}:key/0123abcd-0000-0000-0000-000000000000`,
        context: { "kms:ViaService": "ssm.us-east-1.amazonaws.com" },
      }),
      false,
    );
  });

  test("launch: an instance role with an IAM path (aws.instance_role ci/imgtool-instance) may be passed; the same name at another path may not", async () => {
    for (const role of ["ci/imgtool-instance", "/ci/imgtool-instance"]) {
      const pathed = parseConfig(
        ["pipeline: nightly", "aws:", "  instance_profile: imgtool-profile", `  instance_role: ${role}`].join(
          "\n",
        ),
        { baseDir: "/" },
      ).config!;
      const pass = async (arn: string) =>
        (
          await evaluate(
            policyFor("launch", pathed),
            {
              action: "iam:PassRole",
              resource: arn,
              context: { "iam:PassedToService": "ec2.amazonaws.com" },
            },
            ACCOUNT,
          )
        ).allowed;
      assert.equal(await pass(`arn:aws:iam::${ACCOUNT}:role/ci/imgtool-instance`), true, role);
      assert.equal(await pass(`arn:aws:iam::${ACCOUNT}:role/imgtool-instance`), false, role);
      assert.equal(await pass(`arn:aws:iam::${ACCOUNT}:role/other/imgtool-instance`), false, role);
      assert.deepEqual(await policyProblems(policyFor("launch", pathed)), [], role);
    }
  });

  test("bake: what Packer's amazon plugin asks of EC2, its temporary key pair and security group tagged with run_tags as they are created", async () => {
    // The plugin (builder/common step_key_pair.go, step_security_group.go) sends run_tags as TagSpecifications of
    // CreateKeyPair and CreateSecurityGroup; EC2 then also evaluates ec2:CreateTags with ec2:CreateAction.
    const tagged = (type: string, createAction: string): IamRequest => ({
      action: "ec2:CreateTags",
      resource: ec2(type, "*"),
      context: { ...requestTags("nightly"), "ec2:CreateAction": createAction },
    });
    for (const req of [
      {
        action: "ec2:CreateKeyPair",
        resource: ec2("key-pair", "packer_0123"),
        context: requestTags("nightly"),
      },
      tagged("key-pair", "CreateKeyPair"),
      {
        action: "ec2:CreateSecurityGroup",
        resource: ec2("security-group", "*"),
        context: requestTags("nightly"),
      },
      { action: "ec2:CreateSecurityGroup", resource: ec2("vpc", "vpc-0123abcd") },
      tagged("security-group", "CreateSecurityGroup"),
      { action: "ec2:AuthorizeSecurityGroupIngress", resource: ec2("security-group", "sg-0123abcd") },
      { action: "ec2:RunInstances", resource: ec2("instance", "*"), context: requestTags("nightly") },
      tagged("instance", "RunInstances"),
      tagged("volume", "RunInstances"),
      { action: "ec2:DeleteKeyPair", resource: ec2("key-pair", "packer_0123") },
      { action: "ec2:DeleteSecurityGroup", resource: ec2("security-group", "sg-0123abcd") },
    ]) {
      assert.ok(await allowed("bake", req), JSON.stringify(req));
    }
    // Only at create, and only with the pipeline's tag: no tagging of another's group, or of one that exists.
    assert.ok(!(await allowed("bake", tagged("security-group", "RunInstances"))));
    assert.ok(
      !(await allowed("bake", {
        action: "ec2:CreateTags",
        resource: ec2("security-group", "sg-0123abcd"),
        context: requestTags("nightly"),
      })),
    );
    assert.ok(
      !(await allowed("bake", {
        action: "ec2:CreateTags",
        resource: ec2("key-pair", "*"),
        context: { ...requestTags("other"), "ec2:CreateAction": "CreateKeyPair" },
      })),
    );
  });

  test("bake: a stack's third-party images, exactly their repositories (read from compose.yaml), also through a pull-through cache", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "imgtool-iam-stack-"));
    try {
      writeFileSync(
        path.join(dir, "compose.yaml"),
        "services:\n  db: { image: postgres:15 }\n  cache: { image: bitnami/redis:7.2 }\n  web: { build: . }\n",
      );
      const stackConfig = (registry: string) =>
        parseConfig(
          [
            "pipeline: nightly",
            "roles:",
            "  orchestrator:",
            `    stack: { file: compose.yaml, app_services: [web]${registry} }`,
          ].join("\n"),
          { baseDir: dir },
        ).config!;
      const plain = stackConfig("");
      assert.deepEqual(await stackRepositories(plain), ["bitnami/redis", "library/postgres"]);
      const cached = stackConfig(
        ", registry: { aws: 123456789012.dkr.ecr.us-east-1.amazonaws.com/docker-hub }",
      );
      const repos = await stackRepositories(cached);
      assert.deepEqual(repos, ["docker-hub/bitnami/redis", "docker-hub/library/postgres"]);

      const bake = policyFor("bake", cached, { stackRepositories: repos });
      assert.deepEqual(await policyProblems(bake), []);
      const repo = (r: string) => `arn:aws:ecr:us-east-1:${ACCOUNT}:repository/${r}`;
      const may = async (action: string, r: string) =>
        (await evaluate(bake, { action, resource: repo(r) }, ACCOUNT)).allowed;
      for (const action of [
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
        "ecr:BatchImportUpstreamImage",
        "ecr:CreateRepository",
      ]) {
        assert.ok(await may(action, "docker-hub/library/postgres"), action);
        assert.ok(
          !(await may(action, "docker-hub/library/mysql")),
          `${action} on an image the stack does not use`,
        );
      }
      assert.ok(!(await may("ecr:PutImage", "docker-hub/library/postgres")), "the bake never pushes there");
      // Without the list, no such statement: the policy of a fleet with no stack is as before.
      assert.ok(!policyFor("bake", plain).Statement.some((st) => st.Sid === "StackImagesPull"));
      // No pull-through cache configured: pulls only, nothing is imported or made.
      const pushedThere = policyFor("bake", plain, { stackRepositories: await stackRepositories(plain) });
      const arn = `arn:aws:ecr:us-east-1:${ACCOUNT}:repository/library/postgres`;
      assert.ok(
        (await evaluate(pushedThere, { action: "ecr:BatchGetImage", resource: arn }, ACCOUNT)).allowed,
      );
      for (const action of ["ecr:BatchImportUpstreamImage", "ecr:CreateRepository"])
        assert.ok(!(await evaluate(pushedThere, { action, resource: arn }, ACCOUNT)).allowed, action);

      // The example fleet's own stack (PostgreSQL).
      const seed = loadConfig(projectPath("examples/seed-fleet/imgtool.config.yaml"), {
        explicit: true,
      }).config;
      assert.deepEqual(await stackRepositories(seed), ["library/postgres"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("launch: EC2's use of a customer-managed EBS key, through ec2.<region> of a configured region only, judged with the key policy", async () => {
    const key = (region: string) =>
      `arn:aws:kms:${region}:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
    const keyPolicy = (principal: string) => ({
      Version: "2012-10-17" as const,
      Statement: [
        { Effect: "Allow" as const, Principal: { AWS: principal }, Action: ["kms:*"], Resource: "*" },
      ],
    });
    const trustsAccount = keyPolicy(`arn:aws:iam::${ACCOUNT}:root`);
    const via = (region: string, service = "ec2") => ({
      "kms:ViaService": `${service}.${region}.amazonaws.com`,
      "kms:CallerAccount": ACCOUNT,
    });
    const grant = { "kms:GrantIsForAWSResource": "true" };
    const judge = async (actor: Actor, req: IamRequest, kp = trustsAccount) =>
      (await evaluate(policyFor(actor, config), req, ACCOUNT, kp)).allowed;
    for (const region of ["us-east-1", "eu-west-1"]) {
      for (const req of [
        { action: "kms:CreateGrant", resource: key(region), context: { ...via(region), ...grant } },
        { action: "kms:GenerateDataKeyWithoutPlaintext", resource: key(region), context: via(region) },
        { action: "kms:Decrypt", resource: key(region), context: via(region) },
      ]) {
        assert.ok(await judge("launch", req), JSON.stringify(req));
        // The key policy decides too: one that trusts only another principal leaves the launcher nothing.
        assert.equal(await judge("launch", req, keyPolicy(`arn:aws:iam::${ACCOUNT}:role/key-admin`)), false);
        for (const other of ["push", "prune", "instance"] as const)
          assert.equal(await judge(other, req), false, `${other}: ${req.action}`);
      }
    }
    for (const [what, req] of [
      [
        "a region that is not configured",
        { action: "kms:Decrypt", resource: key("ap-south-1"), context: via("ap-south-1") },
      ],
      [
        "the key of one region through another region's EC2",
        { action: "kms:Decrypt", resource: key("us-east-1"), context: via("ap-south-1") },
      ],
      [
        "directly, not through EC2",
        { action: "kms:Decrypt", resource: key("us-east-1"), context: { "kms:CallerAccount": ACCOUNT } },
      ],
      [
        "through another service",
        { action: "kms:Decrypt", resource: key("us-east-1"), context: via("us-east-1", "ssm") },
      ],
      [
        "a grant for anything but an AWS resource",
        { action: "kms:CreateGrant", resource: key("us-east-1"), context: via("us-east-1") },
      ],
    ] as const) {
      assert.equal(await judge("launch", req), false, what);
    }
  });

  test("instance: reads the configured API key parameter (aws.api_key_parameter), pulls from its repositories", async () => {
    assert.ok(
      await allowed("instance", {
        action: "ssm:GetParameter",
        resource: `arn:aws:ssm:us-east-1:${ACCOUNT}:parameter/vault/nightly/api-key`,
      }),
    );
    assert.ok(
      await allowed("instance", {
        action: "ecr:BatchGetImage",
        resource: `arn:aws:ecr:us-east-1:${ACCOUNT}:repository/perf/runner`,
      }),
    );
  });
});

describe("IAM referee: what no actor needs is denied to every actor", () => {
  const never: [string, IamRequest][] = [
    [
      "tag another pipeline's instance (after launch)",
      {
        action: "ec2:CreateTags",
        resource: ec2("instance", "i-0fedcba9876543210"),
        context: { ...theirs, ...requestTags("nightly") },
      },
    ],
    [
      "tag an existing instance with our pipeline's tag",
      {
        action: "ec2:CreateTags",
        resource: ec2("instance", "i-0fedcba9876543210"),
        context: requestTags("nightly"),
      },
    ],
    [
      "terminate another pipeline's instance",
      { action: "ec2:TerminateInstances", resource: ec2("instance", "i-0fedcba9876543210"), context: theirs },
    ],
    [
      "terminate an untagged instance",
      { action: "ec2:TerminateInstances", resource: ec2("instance", "i-0fedcba9876543210") },
    ],
    [
      "pass an unrelated role",
      {
        action: "iam:PassRole",
        resource: `arn:aws:iam::${ACCOUNT}:role/admin`,
        context: { "iam:PassedToService": "ec2.amazonaws.com" },
      },
    ],
    [
      "read another secret",
      {
        action: "ssm:GetParameter",
        resource: `arn:aws:ssm:us-east-1:${ACCOUNT}:parameter/other/secrets/api-key`,
      },
    ],
    [
      "delete another pipeline's snapshot",
      {
        action: "ec2:DeleteSnapshot",
        resource: "arn:aws:ec2:us-east-1::snapshot/snap-0123456789abcdef0",
        context: theirs,
      },
    ],
    [
      "deregister another pipeline's AMI",
      {
        action: "ec2:DeregisterImage",
        resource: "arn:aws:ec2:us-east-1::image/ami-0123456789abcdef0",
        context: theirs,
      },
    ],
    [
      "delete another pipeline's volume",
      { action: "ec2:DeleteVolume", resource: ec2("volume", "vol-0123456789abcdef0"), context: theirs },
    ],
    [
      "push to another repository",
      { action: "ecr:PutImage", resource: `arn:aws:ecr:us-east-1:${ACCOUNT}:repository/other/app` },
    ],
    [
      "upload layers to another repository",
      {
        action: "ecr:InitiateLayerUpload",
        resource: `arn:aws:ecr:us-east-1:${ACCOUNT}:repository/other/app`,
      },
    ],
    [
      "write outside the catalog prefix",
      { action: "ssm:PutParameter", resource: `arn:aws:ssm:us-east-1:${ACCOUNT}:parameter/other/catalog` },
    ],
  ];
  for (const actor of ACTORS) {
    test(`${actor} is denied every one`, async () => {
      const wrongly: string[] = [];
      for (const [what, req] of never) if (await allowed(actor, req)) wrongly.push(what);
      assert.deepEqual(wrongly, []);
    });
  }
});
