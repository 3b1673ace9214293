/**
 * The EC2 reads `imgtool doctor` makes about where instances launch: the launch subnet (or the default VPC's
 * subnets), and the security groups launched instances carry (aws.security_group_ids, or the VPC's `default`
 * group, which EC2 gives an instance launched without groups). Typed with the SDK's own shapes, mapped to
 * src/doctor/network.ts's plain ones.
 */
import {
  DescribeRouteTablesCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  type EC2Client,
  type IpPermission,
  type SecurityGroup,
} from "@aws-sdk/client-ec2";
import type { BakeSubnetRoute, IngressRule, LaunchNetwork } from "../doctor/network.js";

type Ec2Like = Pick<EC2Client, "send">;

function rule(p: IpPermission): IngressRule {
  return {
    protocol: p.IpProtocol ?? "",
    ...(p.FromPort !== undefined ? { fromPort: p.FromPort } : {}),
    ...(p.ToPort !== undefined ? { toPort: p.ToPort } : {}),
    groups: (p.UserIdGroupPairs ?? []).flatMap((g) => (g.GroupId ? [g.GroupId] : [])),
    cidrs: (p.IpRanges ?? []).flatMap((r) => (r.CidrIp ? [r.CidrIp] : [])),
    prefixLists: (p.PrefixListIds ?? []).flatMap((l) => (l.PrefixListId ? [l.PrefixListId] : [])),
  };
}

export class Ec2Network {
  constructor(readonly ec2: Ec2Like) {}

  /**
   * The launch subnet's VPC and CIDR (no subnet: the default VPC's subnets, any of which EC2 may pick), and the
   * groups instances carry with their inbound rules. Throws the SDK's errors (e.g. InvalidGroup.NotFound).
   */
  async launchNetwork(subnetId: string | undefined, groupIds: string[]): Promise<LaunchNetwork> {
    const subnets =
      (
        await this.ec2.send(
          new DescribeSubnetsCommand(
            subnetId
              ? { SubnetIds: [subnetId] }
              : { Filters: [{ Name: "default-for-az", Values: ["true"] }] },
          ),
        )
      ).Subnets ?? [];
    const vpcId = subnets[0]?.VpcId;
    if (!vpcId) {
      return {
        subnetId,
        vpcId: undefined,
        subnetCidrs: [],
        groups: [],
        groupsFromConfig: groupIds.length > 0,
      };
    }
    const groups: SecurityGroup[] = [];
    let token: string | undefined;
    do {
      const r = await this.ec2.send(
        new DescribeSecurityGroupsCommand(
          groupIds.length
            ? { GroupIds: groupIds, NextToken: token }
            : {
                Filters: [
                  { Name: "vpc-id", Values: [vpcId] },
                  { Name: "group-name", Values: ["default"] },
                ],
                NextToken: token,
              },
        ),
      );
      groups.push(...(r.SecurityGroups ?? []));
      token = r.NextToken;
    } while (token);
    return {
      subnetId,
      vpcId,
      subnetCidrs: subnets.flatMap((s) => (s.CidrBlock ? [s.CidrBlock] : [])),
      groups: groups.map((g) => ({
        groupId: g.GroupId ?? "",
        vpcId: g.VpcId ?? "",
        ingress: (g.IpPermissions ?? []).map(rule),
      })),
      groupsFromConfig: groupIds.length > 0,
    };
  }

  /**
   * The route table a subnet uses (its own, else its VPC's main table) and its routes. Throws the SDK's errors
   * (e.g. InvalidSubnetID.NotFound).
   */
  async subnetRoute(subnetId: string): Promise<BakeSubnetRoute> {
    const subnet = (await this.ec2.send(new DescribeSubnetsCommand({ SubnetIds: [subnetId] }))).Subnets?.[0];
    const vpcId = subnet?.VpcId ?? "";
    const tables = async (filters: { Name: string; Values: string[] }[]) =>
      (await this.ec2.send(new DescribeRouteTablesCommand({ Filters: filters }))).RouteTables ?? [];
    let table = (await tables([{ Name: "association.subnet-id", Values: [subnetId] }]))[0];
    const main = !table;
    table ??= (
      await tables([
        { Name: "vpc-id", Values: [vpcId] },
        { Name: "association.main", Values: ["true"] },
      ])
    )[0];
    return {
      subnetId,
      vpcId,
      ...(table?.RouteTableId ? { routeTableId: table.RouteTableId } : {}),
      main,
      routes: (table?.Routes ?? []).map((r) => ({
        destination: r.DestinationCidrBlock ?? r.DestinationIpv6CidrBlock ?? r.DestinationPrefixListId ?? "",
        target:
          r.GatewayId ??
          r.NatGatewayId ??
          r.TransitGatewayId ??
          r.VpcPeeringConnectionId ??
          r.EgressOnlyInternetGatewayId ??
          r.CarrierGatewayId ??
          r.NetworkInterfaceId ??
          r.InstanceId ??
          r.LocalGatewayId ??
          r.CoreNetworkArn ??
          "",
        state: r.State ?? "active",
      })),
    };
  }
}
