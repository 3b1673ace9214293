/**
 * The EC2 calls `imgtool launch` and `imgtool terminate` make, typed with the SDK's own shapes: RunInstances,
 * TerminateInstances, DescribeInstances (by tag) and DescribeImages (the AMIs to launch). The client comes from
 * the one factory (src/aws/clients.ts); its retry strategy retries throttling, 5xx and timeouts, and every
 * RunInstances carries a ClientToken, so a retried call never starts a second set of instances.
 */
import {
  DescribeImagesCommand,
  DescribeInstancesCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
  type EC2Client,
  type Image,
  type Instance,
  type RunInstancesCommandInput,
} from "@aws-sdk/client-ec2";

import { errorName } from "../errors.js";

type Ec2Like = Pick<EC2Client, "send">;

export const LIVE_STATES = ["pending", "running", "stopping", "stopped"];

export class Ec2Instances {
  constructor(readonly ec2: Ec2Like) {}

  /** One RunInstances request; the instances it started (or, retried with its token, had started). */
  async run(input: RunInstancesCommandInput): Promise<Instance[]> {
    const r = await this.ec2.send(new RunInstancesCommand(input));
    return r.Instances ?? [];
  }

  /** TerminateInstances, 1000 ids per call. */
  async terminate(ids: string[]): Promise<void> {
    for (let i = 0; i < ids.length; i += 1000) {
      await this.ec2.send(new TerminateInstancesCommand({ InstanceIds: ids.slice(i, i + 1000) }));
    }
  }

  /**
   * The state of each instance (and, once it left pending/running, EC2's reason), by id, every page, 1000 ids a
   * call. An id EC2 does not know yet (its answers are eventually consistent right after RunInstances) is left
   * out; so is every id of a call EC2 refuses with InvalidInstanceID.NotFound.
   */
  async states(ids: string[]): Promise<Map<string, { state: string; reason?: string }>> {
    const out = new Map<string, { state: string; reason?: string }>();
    for (let i = 0; i < ids.length; i += 1000) {
      let NextToken: string | undefined;
      try {
        do {
          const r = await this.ec2.send(
            new DescribeInstancesCommand({ InstanceIds: ids.slice(i, i + 1000), NextToken }),
          );
          for (const res of r.Reservations ?? [])
            for (const inst of res.Instances ?? []) {
              if (!inst.InstanceId) continue;
              const reason = inst.StateReason?.Message ?? inst.StateReason?.Code;
              out.set(inst.InstanceId, { state: inst.State?.Name ?? "", ...(reason ? { reason } : {}) });
            }
          NextToken = r.NextToken;
        } while (NextToken);
      } catch (e) {
        if (errorName(e) !== "InvalidInstanceID.NotFound") throw e;
      }
    }
    return out;
  }

  /** Instances with all the given tags, in the given states (every page). */
  async byTags(tags: Record<string, string>, states: string[] = LIVE_STATES): Promise<Instance[]> {
    const Filters = [
      ...Object.entries(tags).map(([k, v]) => ({ Name: `tag:${k}`, Values: [v] })),
      { Name: "instance-state-name", Values: states },
    ];
    const out: Instance[] = [];
    let NextToken: string | undefined;
    do {
      const r = await this.ec2.send(new DescribeInstancesCommand({ Filters, NextToken }));
      for (const res of r.Reservations ?? []) out.push(...(res.Instances ?? []));
      NextToken = r.NextToken;
    } while (NextToken);
    return out;
  }

  /**
   * The AMIs, in one call. EC2 answers InvalidAMIID.NotFound for the whole call when one of them does not exist
   * (any more): then each is asked alone, and the ones that do not exist are left out (not found, not an error).
   */
  async images(imageIds: string[]): Promise<Image[]> {
    const ids = [...new Set(imageIds)];
    try {
      return (await this.ec2.send(new DescribeImagesCommand({ ImageIds: ids }))).Images ?? [];
    } catch (e) {
      if (errorName(e) !== "InvalidAMIID.NotFound" || ids.length === 0) throw e;
    }
    const out: Image[] = [];
    for (const id of ids) {
      try {
        out.push(...((await this.ec2.send(new DescribeImagesCommand({ ImageIds: [id] }))).Images ?? []));
      } catch (e) {
        if (errorName(e) !== "InvalidAMIID.NotFound") throw e;
      }
    }
    return out;
  }
}
