/**
 * Scripted misbehaviour for the AWS stand-in: which calls of which operation get throttled, fail,
 * answer late or lose their connection. Each fault counts its operation's calls from when it was added.
 */
import type { FaultKind, FaultSpec, Service } from "./types.js";

const KINDS: FaultKind[] = ["throttle", "http500", "http503", "slow", "drop", "error"];

interface ActiveFault {
  spec: FaultSpec;
  seen: number;
}

export class FaultRegistry {
  private faults: ActiveFault[] = [];

  add(spec: FaultSpec): void {
    if (!KINDS.includes(spec.kind)) throw new Error(`aws-standin: unknown fault kind ${String(spec.kind)}`);
    if (!spec.operation) throw new Error("aws-standin: a fault needs an operation");
    if (spec.kind === "error" && !spec.code) throw new Error("aws-standin: an error fault needs a code");
    if (spec.calls?.some((n) => !Number.isInteger(n) || n < 1)) {
      throw new Error("aws-standin: fault calls are 1-based integers");
    }
    this.faults.push({ spec: { ...spec, ...(spec.calls ? { calls: [...spec.calls] } : {}) }, seen: 0 });
  }

  clear(): void {
    this.faults = [];
  }

  /**
   * Count this call against every fault for the operation; answer the first (oldest) fault that
   * applies to it, if any.
   */
  match(service: Service, operation: string): FaultSpec | undefined {
    let hit: FaultSpec | undefined;
    for (const f of this.faults) {
      if (f.spec.operation !== operation) continue;
      if (f.spec.service !== undefined && f.spec.service !== service) continue;
      f.seen += 1;
      const applies = f.spec.calls === undefined || f.spec.calls.includes(f.seen);
      if (applies && hit === undefined) hit = f.spec;
    }
    return hit;
  }
}
