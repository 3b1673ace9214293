// imgtool doctor: against the real local stack that scripts/setup started, and against a stopped engine.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { runCli } from "../support/cli.js";
import { ownStateDir } from "../support/twin-bake.js";
import { runDoctor, type DoctorProbes } from "../../src/doctor/doctor.js";
import { startAwsStandin } from "../support/aws-standin/index.js";

interface DoctorDoc {
  ok: boolean;
  checks: { part: string; ok: boolean; version: string | null; state: string; fix: string | null }[];
}

const part = (doc: DoctorDoc, name: string) => {
  const c = doc.checks.find((x) => x.part === name);
  assert.ok(c, `no ${name} line in ${JSON.stringify(doc.checks.map((x) => x.part))}`);
  return c;
};

/**
 * A state folder of its own that knows the real stack (its stack.json): runs other tests left in the shared
 * state folder (a test killed mid-run leaves a dead run) must not turn these "all ok" checks red.
 */
function ownState(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "imgtool-doctor-ok-"));
  writeFileSync(path.join(dir, "c.yaml"), `local:\n  state_dir: ${ownStateDir(dir)}\n`);
  return path.join(dir, "c.yaml");
}

describe("doctor with the real local stack (started by scripts/setup)", () => {
  test("every part is ok, with versions", async () => {
    const r = await runCli(["doctor", "--json", "--config", ownState()], { env: { DOCKER_HOST: "" } });
    const doc = JSON.parse(r.stdout) as DoctorDoc;
    assert.equal(r.code, 0, `doctor failed:\n${r.stdout}\n${r.stderr}`);
    assert.equal(doc.ok, true);
    assert.match(part(doc, "docker engine").version ?? "", /^\d+\.\d+/);
    assert.match(part(doc, "packer").version ?? "", /Packer v1\./);
    assert.match(part(doc, "registry").state, /htpasswd auth, user AWS/);
    assert.ok(doc.checks.some((c) => c.part.startsWith("base image imgtool/base:")));
    assert.match(part(doc, "leftovers").state, /^none \(no dead run in .*imgtool-doctor-ok-/);
  });

  test("the human table has one line per part", async () => {
    const r = await runCli(["doctor", "--config", ownState()], { env: { DOCKER_HOST: "" } });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^PART\s+VERSION\s+STATE\s+FIX$/m);
    assert.match(r.stdout, /^docker engine\s+\d+\.\d+\S*\s+ok/m);
    assert.match(r.stdout, /All parts ok\./);
  });
});

describe("doctor against a stopped engine", () => {
  test("the engine line fails with the fix; exit 1", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "imgtool-doctor-"));
    const sock = `unix://${path.join(dir, "stopped.sock")}`;
    writeFileSync(path.join(dir, "c.yaml"), `local:\n  state_dir: ${path.join(dir, "state")}\n`);
    const r = await runCli(["doctor", "--json", "--config", path.join(dir, "c.yaml")], {
      env: { DOCKER_HOST: sock },
    });
    assert.equal(r.code, 1);
    const doc = JSON.parse(r.stdout) as DoctorDoc;
    const engine = part(doc, "docker engine");
    assert.equal(engine.ok, false);
    assert.match(engine.state, /not answering at unix:\/\/.*stopped\.sock/);
    assert.match(engine.fix ?? "", /DOCKER_HOST=.* does not answer: unset DOCKER_HOST.*scripts\/setup/);
    const reg = part(doc, "registry");
    assert.equal(reg.ok, false);
    assert.equal(reg.fix, "scripts/setup");
    assert.ok(
      doc.checks
        .filter((c) => c.part.startsWith("base image"))
        .every((c) => !c.ok && c.state === "unknown (engine down)"),
    );
  });

  test("runDoctor with probes that fail (no setup record, no packer)", async () => {
    const probes: DoctorProbes = {
      nodeVersion: () => "v18.0.0",
      dockerVersion: async () => {
        throw new Error("connect ENOENT /run/x.sock");
      },
      imageExists: async () => false,
      registry: async () => ({ anonymous: 401, authenticated: 200, api: "registry/2.0" }),
      packerVersion: async () => null,
      awsIdentity: async () => ({ account: "1", arn: "arn" }),
    };
    const checks = await runDoctor(
      {
        target: "local",
        stack: undefined,
        dockerHost: "unix:///run/x.sock",
        baseImages: ["imgtool/base:bookworm"],
        setupCommand: "scripts/setup",
      },
      probes,
    );
    const by = Object.fromEntries(checks.map((c) => [c.part, c]));
    assert.equal(by.node!.ok, false);
    assert.match(by.node!.state, /too old/);
    assert.equal(by.packer!.ok, false);
    assert.match(by.packer!.fix ?? "", /apt-get install -y packer/);
    assert.equal(by["docker engine"]!.fix, "scripts/setup");
    assert.equal(by.registry!.state, "not set up");
    assert.equal(by["aws credentials"], undefined, "the local target does not check AWS");
  });

  test("aws target: credentials line from the identity probe; Packer older than 1.7 fails the packer line", async () => {
    const probes: DoctorProbes = {
      nodeVersion: () => "v20.1.0",
      dockerVersion: async () => "20.10",
      imageExists: async () => true,
      registry: async () => ({ anonymous: 401, authenticated: 200, api: null }),
      packerVersion: async () => "Packer v1.6.6",
      awsIdentity: async () => {
        throw Object.assign(new Error("No AWS credentials found"), {
          fix: "Provide credentials through one of: environment",
        });
      },
    };
    const checks = await runDoctor(
      { target: "aws", stack: undefined, dockerHost: "", baseImages: [], setupCommand: "scripts/setup" },
      probes,
    );
    const aws = checks.find((c) => c.part === "aws credentials")!;
    assert.equal(aws.ok, false);
    assert.match(aws.fix ?? "", /Provide credentials/);
    // Debian's Packer 1.6.6 bakes the local twin only: on aws it is too old (no packer init), with the fix.
    const packer = checks.find((c) => c.part === "packer")!;
    assert.equal(packer.ok, false);
    assert.match(
      packer.state,
      /^too old: the aws bake needs Packer 1\.7\.0 or later .*found Packer v1\.6\.6$/,
    );
    assert.match(packer.fix ?? "", /Packer 1\.7\.0 or later from HashiCorp/);
    const local = await runDoctor(
      { target: "local", stack: undefined, dockerHost: "", baseImages: [], setupCommand: "scripts/setup" },
      probes,
    );
    assert.equal(local.find((c) => c.part === "packer")!.ok, true, "the same Packer bakes the local twin");
    const modern = await runDoctor(
      { target: "aws", stack: undefined, dockerHost: "", baseImages: [], setupCommand: "scripts/setup" },
      { ...probes, packerVersion: async () => "Packer v1.11.2" },
    );
    assert.equal(modern.find((c) => c.part === "packer")!.state, "ok");
    assert.equal(
      checks.find((c) => c.part === "docker engine"),
      undefined,
    );
  });
});

describe("doctor --target aws: the launch network (the AWS stand-in, reached through AWS_ENDPOINT_URL)", () => {
  test("a security group without the orchestrator port fails with the command that opens it; with the rule: ok", async () => {
    const standin = await startAwsStandin();
    const dir = mkdtempSync(path.join(tmpdir(), "imgtool-doctor-aws-"));
    try {
      const vpcId = "vpc-0f00000000000002";
      const subnet = standin.addSubnet("eu-west-1", {
        availabilityZone: "eu-west-1b",
        vpcId,
        cidrBlock: "10.9.0.0/24",
      });
      const group = standin.addSecurityGroup("eu-west-1", {
        groupName: "fleet",
        vpcId,
        ingress: [{ protocol: "tcp", fromPort: 22, toPort: 22, cidrs: ["0.0.0.0/0"] }],
      });
      const config = path.join(dir, "c.yaml");
      writeFileSync(
        config,
        [
          "aws:",
          "  regions: [eu-west-1]",
          `  subnet_id: ${subnet}`,
          `  security_group_ids: [${group}]`,
          "launch:",
          "  orchestrator_port: 9090",
          "",
        ].join("\n"),
      );
      const env = {
        AWS_ENDPOINT_URL: standin.endpoint,
        AWS_ACCESS_KEY_ID: "AKIADOCTORTEST",
        AWS_SECRET_ACCESS_KEY: "secret",
        AWS_PROFILE: "",
      };
      const closed = await runCli(["doctor", "--target", "aws", "--json", "--config", config], { env });
      assert.equal(closed.code, 1, closed.stderr);
      const net = part(JSON.parse(closed.stdout) as DoctorDoc, "aws launch network");
      assert.equal(net.ok, false);
      assert.match(net.state, new RegExp(`aws\\.security_group_ids \\(${group}\\).*tcp 9090`));
      assert.equal(
        net.fix,
        `aws ec2 authorize-security-group-ingress --region eu-west-1 --group-id ${group} --protocol tcp --port 9090 --source-group ${group}`,
      );
      standin.state
        .region("eu-west-1")
        .ec2.securityGroups.get(group)!
        .ingress.push({
          protocol: "tcp",
          fromPort: 9090,
          toPort: 9090,
          groups: [group],
        });
      const open = await runCli(["doctor", "--target", "aws", "--config", config], { env });
      assert.match(
        open.stdout,
        new RegExp(
          `aws launch network .*ok \\(task runners reach the orchestrator on tcp 9090: ${group} allows it from ${group}`,
        ),
      );
      assert.equal(standin.count("DescribeSecurityGroups"), 2);
    } finally {
      await standin.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
