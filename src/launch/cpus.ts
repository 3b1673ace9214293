/**
 * Which CPUs workers are pinned to: the instance's real CPU list and topology, physical cores first. The same
 * rule runs in two places: here (to plan the local target and show the plan) and in the user-data at boot
 * (templates/user-data/common.sh.hbs, `instance_cpus`), which reads the instance it runs on. Never guessed from
 * an instance-type name.
 *
 * The rule: the instance may use its allowed and online CPUs, only the isolated ones (isolcpus) when the kernel
 * isolates some of them. A CPU is "primary" when it is the lowest CPU of its core (its SMT siblings) among the CPUs
 * the instance may use; primaries come first, in CPU order, then the remaining siblings, in CPU order.
 * `auto` workers = one per primary (one per physical core); a number N takes the first N of the order.
 */
import { readFileSync } from "node:fs";
import path from "node:path";

/** "0-3,8,10-11" -> [0, 1, 2, 3, 8, 10, 11]. Throws on anything else. */
export function parseCpuList(list: string): number[] {
  const out: number[] = [];
  const text = list.trim();
  if (text === "") return out;
  for (const part of text.split(",")) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new Error(`not a CPU list: ${JSON.stringify(list)}`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) throw new Error(`not a CPU list: ${JSON.stringify(list)}`);
    for (let c = lo; c <= hi; c++) out.push(c);
  }
  return [...new Set(out)].sort((a, b) => a - b);
}

/** [0, 1, 2, 5] -> "0-2,5". */
export function formatCpuList(cpus: readonly number[]): string {
  const sorted = [...new Set(cpus)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(",");
}

/**
 * A worker's CPU as the user-data read it at boot (the baked packer/scripts/lib/imgtool-cpu-state): in the
 * ready record, in the worker's `imgtool.cpu` label and its IMGTOOL_CPU_STATE, so a benchmark result ties to it.
 */
export interface WorkerCpuState {
  cpu: number;
  /** Its SMT sibling(s), a CPU list; null without SMT. */
  sibling: string | null;
  /** No other worker is pinned to the sibling (null without one). */
  siblingIdle: boolean | null;
  /** Listed in /sys/devices/system/cpu/isolated (isolcpus). */
  isolated: boolean;
  /** scaling_governor, or "unknown" where there is no cpufreq. */
  governor: string;
  turbo: "on" | "off" | "unknown";
}

export interface CpuTopology {
  /** CPUs the instance (or this process) may use. */
  allowed: number[];
  /** SMT siblings of each CPU, itself included (thread_siblings_list); a CPU without an entry has none. */
  siblings: Map<number, number[]>;
}

export interface CpuOrder {
  /** Every allowed CPU, physical cores first. */
  ordered: number[];
  /** One CPU per physical core (the first of its allowed siblings). */
  primaries: number[];
}

/** The allowed CPUs in pinning order: one per physical core first, then their SMT siblings. */
export function orderCpus(topo: CpuTopology): CpuOrder {
  const allowed = [...new Set(topo.allowed)].sort((a, b) => a - b);
  const isAllowed = new Set(allowed);
  const primaries: number[] = [];
  const rest: number[] = [];
  for (const cpu of allowed) {
    const sib = (topo.siblings.get(cpu) ?? [cpu]).filter((c) => isAllowed.has(c));
    const first = Math.min(cpu, ...sib);
    (first === cpu ? primaries : rest).push(cpu);
  }
  return { ordered: [...primaries, ...rest], primaries };
}

/**
 * The CPUs `workers` workers are pinned to, one each: auto = one per physical core, N = the first N of the
 * order. Returns undefined when N is more than the instance has (two workers would share a CPU).
 */
export function workerCpus(order: CpuOrder, workers: "auto" | number): number[] | undefined {
  if (workers === "auto") return order.primaries;
  return workers <= order.ordered.length ? order.ordered.slice(0, workers) : undefined;
}

/** This machine's topology, read from sysfs and /proc/self/status (or a copy of them under `root`). */
export function readCpuTopology(root = "/"): CpuTopology {
  const status = readFileSync(path.join(root, "proc/self/status"), "utf8");
  const line = /^Cpus_allowed_list:\s*(.+)$/m.exec(status);
  const online = (() => {
    try {
      return parseCpuList(readFileSync(path.join(root, "sys/devices/system/cpu/online"), "utf8"));
    } catch {
      return undefined;
    }
  })();
  let allowed = line ? parseCpuList(line[1]!) : (online ?? [0]);
  if (online) allowed = allowed.filter((c) => online.includes(c));
  // CPUs the kernel isolates (isolcpus) are the workers'; the others are the system's. The kernel moved init off
  // the isolated CPUs, and this process inherited that list: they are taken within the cgroup's cpuset (every
  // CPU, unless imgtool runs in a container of its own) instead, as an aws instance's user-data does.
  const read = (...files: string[]) => {
    for (const f of files) {
      try {
        return parseCpuList(readFileSync(path.join(root, f), "utf8"));
      } catch {
        // the next candidate
      }
    }
    return undefined;
  };
  const scope =
    read("sys/fs/cgroup/cpuset.cpus.effective", "sys/fs/cgroup/cpuset/cpuset.effective_cpus") ??
    online ??
    allowed;
  const isolated = (read("sys/devices/system/cpu/isolated") ?? []).filter(
    (c) => scope.includes(c) && (!online || online.includes(c)),
  );
  if (isolated.length > 0) allowed = isolated;
  const siblings = new Map<number, number[]>();
  for (const cpu of allowed) {
    try {
      const text = readFileSync(
        path.join(root, `sys/devices/system/cpu/cpu${cpu}/topology/thread_siblings_list`),
        "utf8",
      );
      siblings.set(cpu, parseCpuList(text));
    } catch {
      siblings.set(cpu, [cpu]);
    }
  }
  return { allowed, siblings };
}
