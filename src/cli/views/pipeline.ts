/** What `imgtool pipeline` shows a person: one row per role and stage, the smoke launch's times, the promotion. */
import { bootTimes, type PipelineReport } from "../../pipeline/pipeline.js";
import { table } from "../output.js";

export function humanReport(r: PipelineReport): string {
  return [
    table(
      ["ROLE", "STAGE", "STATUS", "VERSION", "SECONDS", "DETAIL"],
      r.stages.map((s) => [
        s.role,
        s.stage,
        s.status,
        s.version ?? "-",
        s.seconds.toFixed(1),
        s.detail ?? "",
      ]),
    ),
    r.smoke ? `smoke launch boot-to-ready: ${bootTimes(r.smoke).join(", ") || "-"}` : "",
    r.promoted ? "stable now points at the new versions." : "stable unchanged.",
  ]
    .filter(Boolean)
    .join("\n");
}
