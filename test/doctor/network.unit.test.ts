// `imgtool doctor --target aws` checks the launch network: can task runners reach the orchestrator on
// launch.orchestrator_port through the security groups both carry, and are those groups in the launch subnet's
// VPC? The pure check (src/doctor/network.ts) on hand-made rules, and the reads (src/aws/ec2-network.ts) through
// the SDK's own deserializer against the AWS stand-in's DescribeSubnets and DescribeSecurityGroups answers.
import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { makeAwsClients, type AwsClients } from "../../src/aws/clients.js";
import { Ec2Network } from "../../src/aws/ec2-network.js";
import { runDoctor, type DoctorProbes } from "../../src/doctor/doctor.js";
import {
  bakeSubnetCheck,
  cidrHolds,
  launchNetworkCheck,
  networkReadProblem,
  type LaunchNetwork,
} from "../../src/doctor/network.js";
import { startAwsStandin, type AwsStandin } from "../support/aws-standin/index.js";

const REGION = "us-east-1";

const net = (ingress: LaunchNetwork["groups"][number]["ingress"], extra: Partial<LaunchNetwork> = {}) =>
  ({
    subnetId: "subnet-0123abcd",
    vpcId: "vpc-1",
    subnetCidrs: ["10.0.1.0/24"],
    groups: [{ groupId: "sg-0aaa1111", vpcId: "vpc-1", ingress }],
    groupsFromConfig: true,
    ...extra,
  }) satisfies LaunchNetwork;
const rule = (over: Partial<LaunchNetwork["groups"][number]["ingress"][number]>) => ({
  protocol: "tcp",
  fromPort: 8080,
  toPort: 8080,
  groups: [],
  cidrs: [],
  prefixLists: [],
  ...over,
});

describe("doctor's launch network check (pure)", () => {
  test("cidrHolds: a range holds a block inside it, not one that leaves it", () => {
    assert.equal(cidrHolds("10.0.0.0/16", "10.0.1.0/24"), true);
    assert.equal(cidrHolds("10.0.1.0/24", "10.0.1.0/24"), true);
    assert.equal(cidrHolds("0.0.0.0/0", "172.31.16.0/20"), true);
    assert.equal(cidrHolds("10.0.1.0/25", "10.0.1.0/24"), false, "smaller than the subnet");
    assert.equal(cidrHolds("10.0.2.0/24", "10.0.1.0/24"), false);
    assert.equal(cidrHolds("10.0.1.128/25", "10.0.1.0/24"), false);
    assert.equal(cidrHolds("not-a-cidr", "10.0.1.0/24"), false);
  });

  test("open from the group itself, from a range that holds the subnet, or all traffic: ok", () => {
    for (const r of [
      rule({ groups: ["sg-0aaa1111"] }),
      rule({ fromPort: 8000, toPort: 9000, cidrs: ["10.0.0.0/16"] }),
      rule({ protocol: "-1", fromPort: undefined, toPort: undefined, groups: ["sg-0aaa1111"] }),
      rule({ protocol: "6", groups: ["sg-0aaa1111"] }),
    ]) {
      const c = launchNetworkCheck(net([r]), 8080, REGION);
      assert.equal(c.ok, true, JSON.stringify(r));
      assert.match(c.state, /^ok \(task runners reach the orchestrator on tcp 8080/);
    }
  });

  test("no rule for the port, another port, udp, a range that misses the subnet, another group: fails with the fix", () => {
    for (const r of [
      rule({ fromPort: 22, toPort: 22, groups: ["sg-0aaa1111"] }),
      rule({ protocol: "udp", groups: ["sg-0aaa1111"] }),
      rule({ cidrs: ["10.0.2.0/24"] }),
      rule({ groups: ["sg-0bbb2222"] }),
    ]) {
      const c = launchNetworkCheck(net([r]), 8080, REGION);
      assert.equal(c.ok, false, JSON.stringify(r));
      assert.match(
        c.state,
        /no inbound rule of aws\.security_group_ids \(sg-0aaa1111\) lets the task runners reach/,
      );
      assert.match(c.state, /launch\.orchestrator_port/);
      assert.equal(
        c.fix,
        "aws ec2 authorize-security-group-ingress --region us-east-1 --group-id sg-0aaa1111 --protocol tcp --port 8080 --source-group sg-0aaa1111",
      );
    }
    const none = launchNetworkCheck(net([]), 8080, REGION);
    assert.equal(none.ok, false);
  });

  test("a group of another VPC than the subnet's, and a region without a default VPC, fail naming the keys", () => {
    const foreign = launchNetworkCheck(
      net([rule({ groups: ["sg-0aaa1111"] })], {
        groups: [{ groupId: "sg-0aaa1111", vpcId: "vpc-2", ingress: [rule({ groups: ["sg-0aaa1111"] })] }],
      }),
      8080,
      REGION,
    );
    assert.equal(foreign.ok, false);
    assert.match(
      foreign.state,
      /sg-0aaa1111 \(vpc-2\) belong to another VPC than the launch subnet's \(vpc-1\)/,
    );
    const noVpc = launchNetworkCheck(
      { subnetId: undefined, vpcId: undefined, subnetCidrs: [], groups: [], groupsFromConfig: false },
      8080,
      REGION,
    );
    assert.equal(noVpc.ok, false);
    assert.match(noVpc.fix ?? "", /aws\.subnet_id/);
  });

  test("the default VPC's subnets opened one range each (rules or groups apart): ok; one subnet left out: fails", () => {
    const two = { subnetId: undefined, subnetCidrs: ["172.31.0.0/20", "172.31.16.0/20"] };
    const apart = launchNetworkCheck(
      net(
        [
          rule({ cidrs: ["172.31.0.0/20"] }),
          rule({ fromPort: 8000, toPort: 8999, cidrs: ["172.31.16.0/20"] }),
        ],
        two,
      ),
      8080,
      REGION,
    );
    assert.equal(apart.ok, true, apart.state);
    assert.match(
      apart.state,
      /allowed from 172\.31\.0\.0\/20, 172\.31\.16\.0\/20; the default VPC's subnets/,
    );
    const wide = launchNetworkCheck(net([rule({ cidrs: ["172.31.0.0/16"] })], two), 8080, REGION);
    assert.match(wide.state, /172\.31\.0\.0\/20 in 172\.31\.0\.0\/16/);
    const missing = launchNetworkCheck(net([rule({ cidrs: ["172.31.0.0/20"] })], two), 8080, REGION);
    assert.equal(missing.ok, false);
    assert.match(missing.state, /the default VPC's subnets, 172\.31\.0\.0\/20, 172\.31\.16\.0\/20/);
  });

  test("a failed read: a missing subnet or group names its key and the command that lists them; a refusal is 'denied'", () => {
    const subnet = networkReadProblem(
      "InvalidSubnetID.NotFound",
      "The subnet ID 'subnet-0f' does not exist",
      REGION,
    );
    assert.deepEqual(subnet, {
      kind: "missing",
      key: "aws.subnet_id",
      message:
        "aws.subnet_id: The subnet ID 'subnet-0f' does not exist (InvalidSubnetID.NotFound, in us-east-1)",
      fix: "Name a subnet of us-east-1 in aws.subnet_id (`aws ec2 describe-subnets --region us-east-1` lists them).",
    });
    const group = networkReadProblem("InvalidGroupId.Malformed", 'Invalid id: "sg-1"', REGION);
    assert.equal(group?.kind === "missing" && group.key, "aws.security_group_ids");
    assert.deepEqual(networkReadProblem("UnauthorizedOperation", "no", REGION), { kind: "denied" });
    assert.equal(networkReadProblem("ThrottlingException", "slow down", REGION), undefined);
    assert.equal(networkReadProblem(undefined, "socket hang up", REGION), undefined);
  });

  test("runDoctor: reads refused are 'not checked' (ok), a missing group fails naming the key", async () => {
    const probes = (thrown: Error): DoctorProbes => ({
      nodeVersion: () => "v20.1.0",
      dockerVersion: async () => "20.10",
      imageExists: async () => true,
      registry: async () => ({ anonymous: 401, authenticated: 200, api: null }),
      packerVersion: async () => "Packer v1.6.6",
      awsIdentity: async () => ({ account: "1", arn: "arn:aws:iam::1:user/u" }),
      awsLaunchNetwork: async () => {
        throw thrown;
      },
    });
    const input = {
      target: "aws" as const,
      stack: undefined,
      dockerHost: "",
      baseImages: [],
      setupCommand: "scripts/setup",
      aws: { region: REGION, orchestratorPort: 8080 },
    };
    const part = async (e: Error) =>
      (await runDoctor(input, probes(e))).find((c) => c.part === "aws launch network")!;
    const denied = await part(Object.assign(new Error("not authorized"), { name: "UnauthorizedOperation" }));
    assert.equal(denied.ok, true);
    assert.match(denied.state, /^not checked \(UnauthorizedOperation/);
    const missing = await part(
      Object.assign(new Error("The security group 'sg-0f' does not exist"), {
        name: "InvalidGroup.NotFound",
      }),
    );
    assert.equal(missing.ok, false);
    assert.match(missing.state, /^aws\.security_group_ids: The security group 'sg-0f' does not exist/);
    assert.match(missing.fix ?? "", /describe-security-groups --region us-east-1/);
  });

  test("a prefix list doctor cannot read: not verified, not failed", () => {
    const c = launchNetworkCheck(net([rule({ prefixLists: ["pl-0123abcd"] })]), 8080, REGION);
    assert.equal(c.ok, true);
    assert.match(c.state, /^not verified .*pl-0123abcd/);
  });
});

describe("doctor's launch network reads (SDK against the AWS stand-in)", () => {
  let standin: AwsStandin;
  let clients: AwsClients;
  before(async () => {
    standin = await startAwsStandin();
    clients = makeAwsClients({
      region: REGION,
      endpoint: standin.endpoint,
      credentials: async () => ({ accessKeyId: "AKIADOCTOR", secretAccessKey: "x" }),
      retryBaseDelayMs: 5,
    });
  });
  beforeEach(() => standin.reset());
  after(async () => {
    for (const k of ["ec2", "ssm", "sts"] as const) clients[k].destroy();
    await standin.close();
  });

  test("no groups configured: the default VPC's subnets and its default group (all traffic from itself): ok", async () => {
    const n = await new Ec2Network(clients.ec2).launchNetwork(undefined, []);
    assert.equal(n.subnetCidrs.length, 3, "every default subnet (EC2 picks one)");
    assert.equal(n.groups.length, 1);
    assert.deepEqual(n.groups[0]!.ingress, [
      { protocol: "-1", groups: [n.groups[0]!.groupId], cidrs: [], prefixLists: [] },
    ]);
    assert.equal(n.groupsFromConfig, false);
    assert.equal(launchNetworkCheck(n, 8080, REGION).ok, true);
  });

  test("a subnet and a group of its VPC: rules, ports and ranges arrive as EC2 sends them", async () => {
    const subnet = standin.addSubnet(REGION, {
      availabilityZone: `${REGION}a`,
      vpcId: "vpc-0f00000000000001",
      cidrBlock: "10.1.2.0/24",
    });
    const sshOnly = standin.addSecurityGroup(REGION, {
      groupName: "fleet",
      vpcId: "vpc-0f00000000000001",
      ingress: [{ protocol: "tcp", fromPort: 22, toPort: 22, cidrs: ["0.0.0.0/0"] }],
    });
    const n = await new Ec2Network(clients.ec2).launchNetwork(subnet, [sshOnly]);
    assert.deepEqual(n.subnetCidrs, ["10.1.2.0/24"]);
    assert.deepEqual(n.groups, [
      {
        groupId: sshOnly,
        vpcId: "vpc-0f00000000000001",
        ingress: [
          { protocol: "tcp", fromPort: 22, toPort: 22, groups: [], cidrs: ["0.0.0.0/0"], prefixLists: [] },
        ],
      },
    ]);
    const c = launchNetworkCheck(n, 8080, REGION);
    assert.equal(c.ok, false);
    assert.match(
      c.fix ?? "",
      new RegExp(`--group-id ${sshOnly} --protocol tcp --port 8080 --source-group ${sshOnly}`),
    );

    const open = standin.addSecurityGroup(REGION, {
      groupName: "orchestrator-port",
      vpcId: "vpc-0f00000000000001",
      ingress: [{ protocol: "tcp", fromPort: 8080, toPort: 8080, groups: [sshOnly] }],
    });
    const both = await new Ec2Network(clients.ec2).launchNetwork(subnet, [sshOnly, open]);
    assert.equal(launchNetworkCheck(both, 8080, REGION).ok, true);

    // A group of the default VPC with a subnet of another: RunInstances would refuse it; doctor says so first.
    const elsewhere = standin.addSecurityGroup(REGION, { groupName: "elsewhere" });
    const mixed = await new Ec2Network(clients.ec2).launchNetwork(subnet, [elsewhere]);
    assert.match(launchNetworkCheck(mixed, 8080, REGION).state, /belong to another VPC/);
  });

  test("the bake subnet's route through the SDK: the default VPC's main table routes to its internet gateway; a new VPC's main table does not; a subnet's own table wins; NAT, endpoint, blackhole and narrower routes as EC2 answers them", async () => {
    const network = new Ec2Network(clients.ec2);
    const defaultSubnet = [...standin.state.region(REGION).ec2.subnets.values()].find((s) => s.defaultForAz)!;
    const pub = await network.subnetRoute(defaultSubnet.subnetId);
    assert.equal(pub.main, true);
    assert.ok(
      pub.routes.some((r) => r.destination === "0.0.0.0/0" && /^igw-/.test(r.target) && r.state === "active"),
    );
    assert.equal(bakeSubnetCheck(pub, "aws.subnet_id", REGION).ok, true);

    const vpcId = "vpc-0f00000000000004";
    const subnet = standin.addSubnet(REGION, {
      availabilityZone: `${REGION}c`,
      vpcId,
      cidrBlock: "10.4.1.0/24",
    });
    const priv = await network.subnetRoute(subnet);
    assert.deepEqual({ main: priv.main, vpcId: priv.vpcId }, { main: true, vpcId });
    const c = bakeSubnetCheck(priv, "aws.bake_subnet_id", REGION);
    assert.equal(c.ok, false);
    assert.match(
      c.state,
      new RegExp(
        `^aws\\.bake_subnet_id ${subnet}: it has no route 0\\.0\\.0\\.0/0 to an internet gateway \\(route table rtb-\\w+, the main table of ${vpcId}\\)`,
      ),
    );
    assert.match(c.fix ?? "", /aws\.bake_subnet_id to a public subnet of vpc-0f00000000000004/);
    assert.match(
      c.fix ?? "",
      /describe-route-tables --region us-east-1 --filters Name=vpc-id,Values=vpc-0f00000000000004/,
    );

    const routesOf = async (
      routes: { destination: string; target: string; state?: "active" | "blackhole" }[],
    ) => {
      standin.addRouteTable(REGION, { vpcId, subnetIds: [subnet], routes });
      const r = await network.subnetRoute(subnet);
      assert.equal(r.main, false, "the subnet's own table");
      return bakeSubnetCheck(r, "aws.bake_subnet_id", REGION);
    };
    // NAT: answered in natGatewayId, read as the target; no way in for SSH.
    const nat = await routesOf([{ destination: "0.0.0.0/0", target: "nat-0123abcd0123abcd0" }]);
    assert.equal(nat.ok, false);
    assert.match(nat.state, /0\.0\.0\.0\/0 goes to nat-0123abcd0123abcd0/);
    // An internet gateway detached: the route stays, as a blackhole.
    const dead = await routesOf([
      { destination: "0.0.0.0/0", target: "igw-0dead0dead0dead0", state: "blackhole" },
    ]);
    assert.equal(dead.ok, false);
    assert.match(
      dead.state,
      /route to igw-0dead0dead0dead0 is blackhole \(the internet gateway was detached or deleted\)/,
    );
    // An inspection endpoint in front of the internet gateway, or a narrower range to it: not judged, not failed.
    const firewall = await routesOf([{ destination: "0.0.0.0/0", target: "vpce-0123abcd0123abcd0" }]);
    assert.equal(firewall.ok, true);
    assert.match(firewall.state, /^not verified .*through the endpoint vpce-0123abcd0123abcd0/);
    const narrow = await routesOf([
      { destination: "0.0.0.0/0", target: "nat-0123abcd0123abcd0" },
      { destination: "203.0.113.0/24", target: "igw-0123abcd0123abcd0" },
    ]);
    assert.equal(narrow.ok, true);
    assert.match(narrow.state, /^not verified .*only 203\.0\.113\.0\/24 goes to igw-0123abcd0123abcd0/);
    const ipv6Only = await routesOf([{ destination: "::/0", target: "igw-0123abcd0123abcd0" }]);
    assert.equal(ipv6Only.ok, false, "an IPv6 route does not carry Packer's IPv4 SSH");
    const open = await routesOf([{ destination: "0.0.0.0/0", target: "igw-0123abcd0123abcd0" }]);
    assert.match(open.state, /^ok \(aws\.bake_subnet_id .*0\.0\.0\.0\/0 through igw-0123abcd0123abcd0/);
  });

  test("a group that does not exist: EC2's error, as the stand-in gives it", async () => {
    await assert.rejects(
      new Ec2Network(clients.ec2).launchNetwork(undefined, ["sg-0deadbeef0000000"]),
      (e: Error) => e.name === "InvalidGroup.NotFound" && /sg-0deadbeef0000000/.test(e.message),
    );
  });
});
