/**
 * Doctor's check of the launch network (aws): can a task runner reach the orchestrator on
 * `launch.orchestrator_port`? Both carry the same security groups (aws.security_group_ids, else the VPC's
 * `default`) in the same subnet (aws.subnet_id, else one of the default VPC's), so the port is open when one of
 * those groups has an inbound TCP rule for it whose source is one of the groups, or an IPv4 range that holds the
 * launch subnet(s). Without it the task runners' calls time out and the smoke task never completes. Also: groups
 * of another VPC than the subnet's, which RunInstances refuses. Pure: the reads come from src/aws/ec2-network.ts.
 */
import { BlockList } from "node:net";
import type { DoctorCheck } from "./doctor.js";

export interface IngressRule {
  /** "tcp", "6", "-1" (all traffic), ... */
  protocol: string;
  fromPort?: number;
  toPort?: number;
  groups: string[];
  cidrs: string[];
  prefixLists: string[];
}

export interface LaunchNetwork {
  subnetId: string | undefined;
  /** undefined: no subnet found (no default VPC in the region). */
  vpcId: string | undefined;
  /** The launch subnet's IPv4 range, or every default subnet's. */
  subnetCidrs: string[];
  groups: { groupId: string; vpcId: string; ingress: IngressRule[] }[];
  /** The groups are aws.security_group_ids (false: the VPC's `default` group). */
  groupsFromConfig: boolean;
}

export const NETWORK_PART = "aws launch network";
export const BAKE_SUBNET_PART = "aws bake subnet";

/** The route of the bake's subnet to the internet (src/aws/ec2-network.ts `subnetRoute`). */
export interface BakeSubnetRoute {
  subnetId: string;
  vpcId: string;
  /** The table the subnet uses; none: the VPC has no table EC2 answered with. */
  routeTableId?: string;
  /** The table is the VPC's main one (the subnet has none of its own). */
  main: boolean;
  /**
   * The table's routes: destination (an IPv4 or IPv6 range, or a prefix list id), target (igw-, nat-, vpce-,
   * tgw-, local, ...) and state (active, blackhole).
   */
  routes: { destination: string; target: string; state: string }[];
}

/**
 * The check of the bake's subnet (aws.bake_subnet_id, else aws.subnet_id): Packer connects to the build instance
 * by SSH from where it runs, over its public address, so the subnet must route 0.0.0.0/0 to an internet gateway.
 * `key` names the config key the subnet came from.
 */
export function bakeSubnetCheck(route: BakeSubnetRoute, key: string, region: string): DoctorCheck {
  const table = route.routeTableId
    ? `route table ${route.routeTableId}${route.main ? `, the main table of ${route.vpcId}` : ""}`
    : "no route table";
  const check = (ok: boolean, state: string, fix: string | null = null): DoctorCheck => ({
    part: BAKE_SUBNET_PART,
    ok,
    version: null,
    state,
    fix,
  });
  const active = route.routes.filter((r) => r.state === "active");
  const igw = (r: { target: string }) => r.target.startsWith("igw-");
  const anyRoute = active.find((r) => r.destination === "0.0.0.0/0");
  if (anyRoute && igw(anyRoute)) {
    return check(true, `ok (${key} ${route.subnetId}: 0.0.0.0/0 through ${anyRoute.target}, ${table})`);
  }
  // An inspection endpoint (Network Firewall, Gateway Load Balancer) in front of the internet gateway keeps public
  // addresses working; so may a narrower range sent to the internet gateway. Neither can be judged from here.
  if (anyRoute?.target.startsWith("vpce-")) {
    return check(
      true,
      `not verified (${key} ${route.subnetId}: 0.0.0.0/0 through the endpoint ${anyRoute.target}, ${table}; the internet gateway must route the subnet back through it)`,
    );
  }
  const narrower = active.find((r) => igw(r) && !r.destination.includes(":"));
  if (narrower) {
    return check(
      true,
      `not verified (${key} ${route.subnetId}: only ${narrower.destination} goes to ${narrower.target}, ${table}; the bake must run from there)`,
    );
  }
  const dead = route.routes.find((r) => r.destination === "0.0.0.0/0" && igw(r) && r.state !== "active");
  const why = dead
    ? `its 0.0.0.0/0 route to ${dead.target} is ${dead.state} (the internet gateway was detached or deleted)`
    : `it has no route 0.0.0.0/0 to an internet gateway${anyRoute ? ` (0.0.0.0/0 goes to ${anyRoute.target})` : ""}`;
  return check(
    false,
    `${key} ${route.subnetId}: ${why} (${table}): Packer cannot reach the build instance by SSH and every bake waits until its SSH timeout`,
    `Set aws.bake_subnet_id to a public subnet of ${route.vpcId || "your VPC"}: \`aws ec2 describe-route-tables --region ${region} --filters Name=vpc-id,Values=${route.vpcId || "<vpc>"} Name=route.gateway-id,Values='igw-*'\` lists the tables that route to an internet gateway, and the subnets they serve`,
  );
}

function covers(rule: IngressRule, port: number): boolean {
  if (rule.protocol === "-1") return true;
  if (rule.protocol !== "tcp" && rule.protocol !== "6") return false;
  return (rule.fromPort ?? 0) <= port && port <= (rule.toPort ?? 65535);
}

/** True when the IPv4 range `outer` holds all of `inner` (both CIDR blocks). */
export function cidrHolds(outer: string, inner: string): boolean {
  const [oa, op] = outer.split("/");
  const [ia, ip] = inner.split("/");
  const oBits = Number(op ?? 32);
  const iBits = Number(ip ?? 32);
  if (!oa || !ia || oBits > iBits) return false;
  const list = new BlockList();
  try {
    list.addSubnet(oa, oBits, "ipv4");
  } catch {
    return false;
  }
  // A CIDR block is one contiguous range: its first and last address inside `outer` put all of it inside.
  const n = ia.split(".").reduce((acc, part) => acc * 256 + Number(part), 0);
  const size = 2 ** (32 - iBits);
  const first = n - (n % size);
  const last = first + size - 1;
  const text = (v: number) => [24, 16, 8, 0].map((s) => Math.floor(v / 2 ** s) % 256).join(".");
  return list.check(text(first), "ipv4") && list.check(text(last), "ipv4");
}

/** The check for `imgtool doctor --target aws`. */
export function launchNetworkCheck(net: LaunchNetwork, port: number, region: string): DoctorCheck {
  const fail = (state: string, fix: string): DoctorCheck => ({
    part: NETWORK_PART,
    ok: false,
    version: null,
    state,
    fix,
  });
  if (!net.vpcId) {
    return fail(
      `${region} has no default VPC to launch in`,
      "Set aws.subnet_id (and aws.security_group_ids) to a subnet and groups of your VPC",
    );
  }
  const foreign = net.groups.filter((g) => g.vpcId !== net.vpcId);
  if (foreign.length) {
    return fail(
      `aws.security_group_ids ${foreign.map((g) => `${g.groupId} (${g.vpcId})`).join(", ")} belong to another ` +
        `VPC than the launch subnet's (${net.vpcId}): RunInstances refuses them`,
      `Use groups of ${net.vpcId} in aws.security_group_ids, or a subnet of their VPC in aws.subnet_id`,
    );
  }
  const ids = net.groups.map((g) => g.groupId);
  const members = new Set(ids);
  const where = net.subnetId ? `subnet ${net.subnetId}` : `the default VPC's subnets`;
  const ok = (state: string): DoctorCheck => ({
    part: NETWORK_PART,
    ok: true,
    version: null,
    state,
    fix: null,
  });
  let unverified: string | undefined;
  // Every range that opens the port, over all rules and groups: each launch subnet must lie in one of them (the
  // default VPC's subnets may be opened one rule each).
  const ranges: string[] = [];
  for (const g of net.groups) {
    for (const r of g.ingress.filter((x) => covers(x, port))) {
      const source = r.groups.find((s) => members.has(s));
      if (source) {
        return ok(
          `ok (task runners reach the orchestrator on tcp ${port}: ${g.groupId} allows it from ${source}; ${where})`,
        );
      }
      ranges.push(...r.cidrs);
      if (r.prefixLists.length)
        unverified ??= `${g.groupId} allows it from prefix list ${r.prefixLists.join(", ")}`;
    }
  }
  const held = net.subnetCidrs.map((s) => ranges.find((c) => cidrHolds(c, s)));
  if (net.subnetCidrs.length && held.every((c) => c !== undefined)) {
    const pairs = net.subnetCidrs.map((s, k) => (held[k] === s ? s : `${s} in ${held[k]}`));
    return ok(
      `ok (task runners reach the orchestrator on tcp ${port}: allowed from ${pairs.join(", ")}; ${where})`,
    );
  }
  if (unverified) {
    return {
      part: NETWORK_PART,
      ok: true,
      version: null,
      state: `not verified (tcp ${port}: ${unverified}, whose ranges doctor does not read)`,
      fix: null,
    };
  }
  const groupsText = net.groupsFromConfig
    ? `aws.security_group_ids (${ids.join(", ")})`
    : `the VPC's default group ${ids.join(", ") || "(not found)"} (aws.security_group_ids is empty)`;
  const first = ids[0] ?? "<group id>";
  return fail(
    `no inbound rule of ${groupsText} lets the task runners reach the orchestrator on tcp ${port} ` +
      `(launch.orchestrator_port; ${where}, ${net.subnetCidrs.join(", ") || "no range"}): the smoke task would never complete`,
    `aws ec2 authorize-security-group-ingress --region ${region} --group-id ${first} --protocol tcp --port ${port} --source-group ${first}`,
  );
}

/** EC2's answers when a subnet or group the config names does not exist, or is no id: the key it comes from. */
const MISSING: Record<string, string> = {
  "InvalidSubnetID.NotFound": "aws.subnet_id",
  "InvalidSubnetID.Malformed": "aws.subnet_id",
  "InvalidGroup.NotFound": "aws.security_group_ids",
  "InvalidGroupId.Malformed": "aws.security_group_ids",
};
/** Refusals of the reads themselves: a role without ec2:DescribeSubnets or ec2:DescribeSecurityGroups. */
const DENIED = new Set(["UnauthorizedOperation", "AccessDenied", "AccessDeniedException"]);

/**
 * What a failed read of the launch network means: a config key that names something missing in the region (with
 * the message and the fix), the reads refused (`denied`: not checked), or neither (undefined).
 */
export function networkReadProblem(
  name: string | undefined,
  message: string,
  region: string,
  /** The key a subnet came from (aws.bake_subnet_id for the bake's). @default "aws.subnet_id" */
  subnetKey = "aws.subnet_id",
): { kind: "missing"; key: string; message: string; fix: string } | { kind: "denied" } | undefined {
  if (!name) return undefined;
  const found = MISSING[name];
  const key = found === "aws.subnet_id" ? subnetKey : found;
  if (key) {
    const what =
      found === "aws.subnet_id"
        ? ["a subnet", "describe-subnets"]
        : ["security groups", "describe-security-groups"];
    return {
      kind: "missing",
      key,
      message: `${key}: ${message} (${name}, in ${region})`,
      fix: `Name ${what[0]} of ${region} in ${key} (\`aws ec2 ${what[1]} --region ${region}\` lists them).`,
    };
  }
  return DENIED.has(name) ? { kind: "denied" } : undefined;
}
