/**
 * The workers' CPU state as an aws instance publishes it in its SSM ready record: the compact form of the baked
 * `imgtool-cpu-state --record` (packer/scripts/lib), so that 192 workers fit in SSM's 4 KB, read back here into
 * one {@link WorkerCpuState} per worker (the same shape the local marker, the label and IMGTOOL_CPU_STATE hold).
 * Pure.
 */
import { parseCpuList, type WorkerCpuState } from "./cpus.js";

/** `imgtool-cpu-state --record`: per-worker siblings in worker order, the rest as CPU lists. */
interface CompactCpuRecord {
  siblings?: unknown;
  siblingIdle?: unknown;
  isolated?: unknown;
  governors?: unknown;
  turbo?: unknown;
}

/**
 * Each worker's CPU state from the record's `cpu` (workers pinned to `workerCpus`, in order), or undefined when
 * the record has none or one this reader cannot make out (an image baked before the helper): never guessed.
 */
export function workerCpuStates(workerCpus: string[], record: unknown): WorkerCpuState[] | undefined {
  if (typeof record !== "object" || record === null) return undefined;
  const r = record as CompactCpuRecord;
  if (
    typeof r.siblings !== "string" ||
    typeof r.siblingIdle !== "string" ||
    typeof r.isolated !== "string" ||
    typeof r.governors !== "object" ||
    r.governors === null ||
    (r.turbo !== "on" && r.turbo !== "off" && r.turbo !== "unknown")
  ) {
    return undefined;
  }
  const turbo = r.turbo;
  try {
    const siblings = r.siblings.split(" ");
    const idle = new Set(parseCpuList(r.siblingIdle));
    const isolated = new Set(parseCpuList(r.isolated));
    const governorOf = new Map<number, string>();
    for (const [governor, list] of Object.entries(r.governors as Record<string, unknown>)) {
      if (typeof list !== "string") return undefined;
      for (const cpu of parseCpuList(list)) governorOf.set(cpu, governor);
    }
    if (siblings.length !== workerCpus.length) return undefined;
    return workerCpus.map((cpus, i) => {
      const cpu = Number(cpus);
      const sibling = siblings[i] === "-" ? null : siblings[i]!;
      if (!Number.isInteger(cpu) || (sibling !== null && parseCpuList(sibling).length === 0)) {
        throw new Error(`not a worker CPU: ${cpus}`);
      }
      return {
        cpu,
        sibling,
        siblingIdle: sibling === null ? null : idle.has(cpu),
        isolated: isolated.has(cpu),
        governor: governorOf.get(cpu) ?? "unknown",
        turbo,
      };
    });
  } catch (e) {
    if (e instanceof Error && /^not a (CPU list|worker CPU)/.test(e.message)) return undefined;
    throw e;
  }
}
