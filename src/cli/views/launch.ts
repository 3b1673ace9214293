/** What `imgtool launch` shows a person: the launched run as a table, or the plan of a dry run. */
import type { LaunchResult } from "../../launch/types.js";
import { table } from "../output.js";

const secs = (s: number | null) => (s === null ? "-" : `${s.toFixed(3)} s`);

export function humanResult(r: LaunchResult): string {
  const rows = r.instances.map((i) => [
    i.role,
    i.id,
    i.instanceType || "-",
    i.market ?? "-",
    i.privateIp || "-",
    i.workers.length
      ? i.workers.map((w) => `${w.name}${w.cpus === null ? "" : ` (CPU ${w.cpus})`}`).join(", ")
      : "one per physical core, pinned at boot",
    i.reused ? "kept" : i.state,
    secs(i.bootToReadySeconds),
    // aws: from the RunInstances answer to the instance's ready record.
    ...(r.target === "aws" ? [secs(i.launchToReadySeconds)] : []),
  ]);
  const head = `Run ${r.runId} on ${r.target}: orchestrator ${r.orchestrator.url ?? "-"}${
    r.orchestrator.healthy === null
      ? ""
      : r.orchestrator.healthy
        ? ` (healthy after ${r.orchestrator.checks} check${r.orchestrator.checks === 1 ? "" : "s"})`
        : " (not healthy)"
  }`;
  return [
    head,
    table(
      [
        ...["ROLE", "ID", "TYPE", "MARKET", "ADDRESS", "WORKERS", "STATE", "BOOT-TO-READY"],
        ...(r.target === "aws" ? ["LAUNCH-TO-READY"] : []),
      ],
      rows,
    ),
    `End it with: imgtool terminate --run-id ${r.runId}${r.target === "aws" ? " --target aws" : ""}`,
  ].join("\n");
}

export type PlanJson = ReturnType<typeof import("../../launch/launch.js").planJson>;

export function humanPlan(p: PlanJson): string {
  const groups = [...(p.orchestrator.reuse ? [] : [p.orchestrator.group]), ...p.taskRunners];
  const rows = groups.map((g) => [
    g.role,
    String(g.count),
    g.instanceType,
    g.arch,
    g.market,
    `${g.ami} (${g.amiVersion})`,
    `${g.image} (${g.imageVersion})`,
    g.bakedImage === g.image ? "yes" : "no (pulls at boot)",
    g.stack
      ? `Compose stack${g.instanceCpus ? ` on CPU ${g.instanceCpus.join("; ")}` : ""}, no pinned workers`
      : g.workerCpus
        ? g.workerCpus.map((w, i) => `#${i + 1}: ${w.length} on CPU ${w.join(",")}`).join("; ")
        : g.workers === "auto"
          ? "auto: one per physical core, read at boot"
          : `${g.workers}, first ${g.workers} CPUs at boot (physical cores first)`,
  ]);
  const lines = [
    `Plan for run ${p.runId} on ${p.target} (pipeline ${p.pipeline}, label ${p.label}, region ${p.region}); nothing was changed.`,
    p.orchestrator.reuse
      ? `Orchestrator: keep ${p.orchestrator.id} at ${p.orchestrator.url}`
      : `Orchestrator: new; task runners get ${p.orchestrator.url ?? "its private address from its RunInstances answer"}`,
    table(["ROLE", "COUNT", "TYPE", "ARCH", "MARKET", "AMI", "IMAGE", "BAKED", "WORKERS"], rows),
    ...p.warnings.map((w) => `warning: ${w}`),
  ];
  for (const g of groups) {
    lines.push(
      "",
      `----- user-data of ${g.role} (${g.instanceType}): ${g.userData.bytes} bytes${g.userData.compression === "gzip" ? " gzip-compressed" : ""} -----`,
      g.userData.text.trimEnd(),
    );
  }
  return lines.join("\n");
}
