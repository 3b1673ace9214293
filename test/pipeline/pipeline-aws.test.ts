// `imgtool pipeline --target aws` through the CLI: the real SDK against the AWS stand-in (ECR answering with
// the real local registry's credentials, SSM, EC2), and a recording stand-in for Packer on PATH
// (test/bake/fixtures/recording-packer.mjs: there is no AWS to build on). A new base AMI in DescribeImages
// causes a rebake; nothing else changed causes none.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { registryPassword } from "../../src/local/stack.js";
import { startAwsStandin, type AwsStandin } from "../support/aws-standin/index.js";
import { runCli } from "../support/cli.js";
import { copyProject } from "../support/project-copy.js";
import { actorPolicies, PIPELINE_KEY } from "../support/iam-referee.js";
import { makeBenchRepo } from "../support/fixtures/bench-repo.js";
import { stack, tempProject } from "../push/support.js";

const ACCOUNT = "123456789012";
const REGION = "us-east-1";
const RECORDING_PACKER = new URL("../bake/fixtures/recording-packer.mjs", import.meta.url).pathname;

interface PipelineJson {
  ok: boolean;
  stages: { role: string; stage: string; status: string; version: string | null }[];
}

describe("imgtool pipeline --target aws (AWS stand-in + recording Packer stand-in)", () => {
  let standin: AwsStandin;
  const bin = mkdtempSync(path.join(tmpdir(), "imgtool-fake-bin-"));
  symlinkSync(RECORDING_PACKER, path.join(bin, "packer"));
  const log = path.join(bin, "packer.log");
  writeFileSync(log, "");
  const repo = makeBenchRepo();
  const role = (r: string) =>
    [
      `  ${r}:`,
      `    base: { aws: { owner: "${ACCOUNT}", name: { x86_64: "al2023-ami-*-x86_64", arm64: "al2023-ami-*-arm64" } } }`,
      `    ruby_bench: { repository: ${repo.path}, ref: main }`,
      "    app: { base_image: { aws: imgtool/ruby:bookworm } }",
    ].join("\n");
  const p = tempProject(
    [
      "roles:",
      role("task-runner"),
      role("orchestrator"),
      "aws:",
      `  regions: [${REGION}]`,
      "  ami_wait: { consecutive: 2, interval_seconds: 0 }",
    ].join("\n") + "\n",
  );
  let env: NodeJS.ProcessEnv;

  before(async () => {
    standin = await startAwsStandin({
      registry: {
        endpoint: `http://${stack.registry.endpoint}`,
        user: "AWS",
        password: registryPassword(stack),
      },
      // Every call judged with the workflow role's policies (bake, push, launch and prune side by side).
      iam: { policies: actorPolicies(p.config) },
    });
    env = {
      PATH: `${bin}:${process.env.PATH}`,
      AWS_ENDPOINT_URL: standin.endpoint,
      AWS_ACCESS_KEY_ID: PIPELINE_KEY,
      AWS_SECRET_ACCESS_KEY: "secret",
      AWS_REGION: REGION,
      AWS_PROFILE: "",
      FAKE_PACKER_LOG: log,
    };
  });
  after(async () => {
    await standin.close();
  });

  const seedBase = (day: number) =>
    standin.addImage(REGION, {
      name: `al2023-ami-2026.${day}-x86_64`,
      architecture: "x86_64",
      ownerId: ACCOUNT,
      creationDate: new Date(Date.UTC(2026, 10, day)).toISOString(),
    }).imageId;
  const seedBuilt = (n: number) =>
    standin.addImage(REGION, { name: `imgtool-built-${n}`, architecture: "x86_64" }).imageId;
  const builds = () =>
    readFileSync(log, "utf8")
      .split("\n")
      .filter((l) => l.startsWith('["build"')).length;
  const run = async (built: string, root?: string) => {
    const r = await runCli(
      ["pipeline", "--target", "aws", "--no-smoke", "--json", "--config", p.configFile],
      {
        env: { ...env, FAKE_PACKER_AMIS: `x86_64=${built}` },
        timeoutMs: 600_000,
        root,
      },
    );
    assert.equal(r.code, 0, r.stderr.slice(-3000));
    return JSON.parse(r.stdout) as PipelineJson;
  };
  /**
   * The stand-in's ECR control plane does not watch the registry that its GetAuthorizationToken points at;
   * real ECR's DescribeImages sees what was pushed. Record the pushed tags in it, as ECR would.
   */
  const recordPushesInEcr = async () => {
    const auth = {
      authorization: `Basic ${Buffer.from(`AWS:${registryPassword(stack)}`).toString("base64")}`,
    };
    for (const r of ["task-runner", "orchestrator"]) {
      const repoName = `${p.pipeline}/${r}`;
      const tags = (
        (await (
          await fetch(`http://${stack.registry.endpoint}/v2/${repoName}/tags/list`, { headers: auth })
        ).json()) as { tags: string[] }
      ).tags;
      for (const tag of tags) {
        const head = await fetch(`http://${stack.registry.endpoint}/v2/${repoName}/manifests/${tag}`, {
          method: "HEAD",
          headers: {
            ...auth,
            accept:
              "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json",
          },
        });
        const digest = head.headers.get("docker-content-digest")!;
        if (!standin.state.region(REGION).ecr.repositories.get(repoName)?.images.has(digest)) {
          standin.addEcrImage(REGION, repoName, { digest, tags: [tag] });
        }
      }
    }
  };
  const bakeStatus = (doc: PipelineJson) => doc.stages.filter((s) => s.stage === "bake").map((s) => s.status);
  const baseStatus = (doc: PipelineJson) =>
    doc.stages.filter((s) => s.stage === "bake-base").map((s) => s.status);

  test("the network, checked before any push or bake (exit 2, the fix named): a bake subnet without a route to an internet gateway; with the smoke launch, a security group that does not open the orchestrator's port, or does not exist", async () => {
    const vpcId = "vpc-0f00000000000003";
    const subnet = standin.addSubnet(REGION, {
      availabilityZone: `${REGION}b`,
      vpcId,
      cidrBlock: "10.3.0.0/24",
    });
    const group = standin.addSecurityGroup(REGION, {
      groupName: "fleet-no-port",
      vpcId,
      ingress: [{ protocol: "tcp", fromPort: 22, toPort: 22, cidrs: ["0.0.0.0/0"] }],
    });
    const withNetwork = (groups: string) => {
      const file = path.join(path.dirname(p.configFile), `net-${groups}.yaml`);
      writeFileSync(
        file,
        readFileSync(p.configFile, "utf8") + `  subnet_id: ${subnet}\n  security_group_ids: [${groups}]\n`,
      );
      return file;
    };
    const before = { builds: builds(), requests: standin.requests.length };
    // The new VPC's main route table has its local route only: a private subnet, where Packer's SSH never gets in.
    const closedBake = await runCli(
      ["pipeline", "--target", "aws", "--no-smoke", "--config", withNetwork(group)],
      {
        env,
      },
    );
    assert.equal(closedBake.code, 2, closedBake.stderr.slice(-3000));
    assert.match(
      closedBake.stderr,
      new RegExp(
        `aws bake subnet: aws\\.subnet_id ${subnet}: it has no route 0\\.0\\.0\\.0/0 to an internet gateway`,
      ),
    );
    assert.match(closedBake.stderr, /Set aws\.bake_subnet_id to a public subnet of vpc-0f00000000000003/);
    standin.addRouteTable(REGION, {
      vpcId,
      subnetIds: [subnet],
      routes: [{ destination: "0.0.0.0/0", target: "igw-0f00000000000003a" }],
    });
    const closed = await runCli(["pipeline", "--target", "aws", "--config", withNetwork(group)], { env });
    assert.equal(closed.code, 2, closed.stderr.slice(-3000));
    assert.match(closed.stderr, /aws launch network: no inbound rule of aws\.security_group_ids/);
    assert.match(closed.stderr, /Nothing was pushed or baked/);
    assert.match(closed.stderr, /--no-network-check to skip this check/);
    assert.match(
      closed.stderr,
      new RegExp(
        `authorize-security-group-ingress --region ${REGION} --group-id ${group} --protocol tcp --port 8080`,
      ),
    );
    const missing = await runCli(
      ["pipeline", "--target", "aws", "--config", withNetwork("sg-0deadbeef0000000")],
      { env },
    );
    assert.equal(missing.code, 2, missing.stderr.slice(-3000));
    assert.match(
      missing.stderr,
      /aws\.security_group_ids: .*sg-0deadbeef0000000.*InvalidGroup\.NotFound.*Nothing was pushed or baked/,
    );
    // Only the credentials check and the two reads, judged by the IAM referee with the workflow role's policies:
    // nothing pushed or baked.
    const requests = standin.requests.slice(before.requests);
    const made = requests.map((r) => r.operation);
    assert.deepEqual(
      [...new Set(made)].sort(),
      ["DescribeRouteTables", "DescribeSecurityGroups", "DescribeSubnets", "GetCallerIdentity"],
      made.join(" "),
    );
    assert.deepEqual(
      requests.filter((r) => r.operation !== "GetCallerIdentity" && r.status !== 200).map((r) => r.operation),
      ["DescribeSecurityGroups"],
      "the workflow role may read the network (the one refusal: the group that does not exist)",
    );
    assert.equal(builds(), before.builds);
  });

  test("a Packer too old for the aws bake (Debian's 1.6.6: no packer init) is refused before any push or bake (exit 2, the fix named)", async () => {
    const before = { builds: builds(), requests: standin.requests.length };
    const r = await runCli(["pipeline", "--target", "aws", "--config", p.configFile], {
      env: { ...env, FAKE_PACKER_VERSION: "Packer v1.6.6" },
    });
    assert.equal(r.code, 2, r.stderr.slice(-3000));
    assert.match(
      r.stderr,
      /The aws bake needs Packer 1\.7\.0 or later .*found Packer v1\.6\.6\. Nothing was pushed or baked\./,
    );
    assert.match(r.stderr, /Install Packer 1\.7\.0 or later from HashiCorp/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
    assert.deepEqual(
      standin.requests.slice(before.requests).map((q) => q.operation),
      [],
      "no AWS request at all",
    );
    assert.equal(builds(), before.builds);
  });

  test("first run pushes to ECR and bakes both roles; a second run with nothing changed bakes nothing", async () => {
    seedBase(1);
    const first = await run(seedBuilt(1));
    assert.deepEqual(
      first.stages.filter((s) => s.stage === "push").map((s) => s.status),
      ["pushed", "pushed"],
    );
    assert.deepEqual(bakeStatus(first), ["built", "built"]);
    assert.deepEqual(baseStatus(first), ["built", "built"]);
    assert.equal(builds(), 4, "each role: its base stage, then its role stage");
    assert.ok(standin.count("PutParameter", "ssm") > 0, "published to the SSM catalog");
    await recordPushesInEcr();

    const second = await run(seedBuilt(2));
    assert.deepEqual(bakeStatus(second), ["up-to-date", "up-to-date"]);
    assert.deepEqual(baseStatus(second), ["up-to-date", "up-to-date"]);
    assert.deepEqual(
      second.stages.filter((s) => s.stage === "push").map((s) => s.status),
      ["up-to-date", "up-to-date"],
    );
    assert.equal(builds(), 4, "no Packer build when nothing changed");
  });

  test("a new base AMI matching the filter causes a rebake", async () => {
    seedBase(2);
    const third = await run(seedBuilt(3));
    assert.deepEqual(baseStatus(third), ["built", "built"], "the base stage starts from the base AMI");
    assert.deepEqual(bakeStatus(third), ["built", "built"], "a new base rebakes the role stage on it");
    assert.equal(builds(), 8);
  });

  test("a one-byte change to a provisioning script rebakes the AMIs and rebuilds no image", async () => {
    await recordPushesInEcr();
    // The change is made in a copy of the project, whose CLI runs: no tracked file is touched.
    const copy = copyProject();
    const script = copy.path("packer", "scripts", "cleanup.sh");
    writeFileSync(script, `${readFileSync(script, "utf8")}\n`);
    try {
      const doc = await run(seedBuilt(4), copy.root);
      assert.deepEqual(
        doc.stages.filter((x) => x.stage === "push").map((x) => x.status),
        ["up-to-date", "up-to-date"],
        "images do not depend on the provisioning scripts",
      );
      assert.deepEqual(baseStatus(doc), ["built", "built"], "cleanup.sh runs in the base stage too");
      assert.deepEqual(bakeStatus(doc), ["built", "built"], "both roles run cleanup.sh");
      assert.equal(builds(), 12);
    } finally {
      copy.remove();
    }
  });
});
