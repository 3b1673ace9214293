/**
 * The scripts the launcher runs on the orchestrator instance through SSM Run Command (aws): its health check and
 * the pipeline's smoke task, both against the orchestrator's own port on 127.0.0.1, so the launcher needs no
 * network path into the VPC. POSIX sh (the agent runs `sh`), every value a single-quoted word. Pure.
 */
import { shellWord } from "./escape.js";

/** The marker line each script prints before its answer. */
export const HEALTH_MARK = "imgtool-health";
export const SMOKE_MARK = "imgtool-smoke";

/** `url` with its host replaced by 127.0.0.1: the check runs on the orchestrator itself. */
export function onInstance(url: string): string {
  const u = new URL(url);
  u.hostname = "127.0.0.1";
  return u.toString();
}

/** One GET of the health URL: prints `imgtool-health <HTTP status>` (000: no answer). */
export function healthScript(url: string): string[] {
  return [
    `code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 ${shellWord(onInstance(url))}) || true`,
    `echo "${HEALTH_MARK} \${code:-000}"`,
  ];
}

/** The status a health script reported, or undefined when its output has none. */
export function healthStatusOf(stdout: string): number | undefined {
  const m = new RegExp(`^${HEALTH_MARK} (\\d{3})$`, "m").exec(stdout);
  return m ? Number(m[1]) : undefined;
}

/**
 * Queue one example task at the orchestrator and wait (bounded) for it to end: prints `imgtool-smoke refused
 * <HTTP status>`, or `imgtool-smoke task` followed by the task's last JSON.
 */
export function smokeScript(url: string, benchmark: string, timeoutSeconds: number): string[] {
  const base = shellWord(onInstance(url).replace(/\/$/, ""));
  return [
    "# shellcheck disable=SC2016 # the values are literal single-quoted words: nothing in them expands",
    `base=${base}`,
    `tmp=$(mktemp)`,
    `code=$(curl -s --max-time 10 -o "$tmp" -w '%{http_code}' -X POST -H 'content-type: application/json' --data ${shellWord(JSON.stringify({ benchmark }))} "$base/tasks") || true`,
    `if [ "\${code:-000}" != 201 ]; then echo "${SMOKE_MARK} refused \${code:-000}"; rm -f "$tmp"; exit 0; fi`,
    `id=$(sed -n 's/.*"id"[[:space:]]*:[[:space:]]*"\\([A-Za-z0-9_-]*\\)".*/\\1/p' "$tmp" | head -n 1)`,
    `if [ -z "$id" ]; then echo "${SMOKE_MARK} refused 201"; rm -f "$tmp"; exit 0; fi`,
    `deadline=$(($(date +%s) + ${Math.max(1, Math.ceil(timeoutSeconds))}))`,
    `while :; do`,
    `  curl -s --max-time 10 -o "$tmp" "$base/tasks/$id" || true`,
    `  if grep -Eq '"status"[[:space:]]*:[[:space:]]*"(done|failed)"' "$tmp"; then break; fi`,
    `  if [ "$(date +%s)" -ge "$deadline" ]; then break; fi`,
    `  sleep 2`,
    `done`,
    `echo "${SMOKE_MARK} task"`,
    `cat "$tmp"`,
    `echo`,
    `rm -f "$tmp"`,
  ];
}

/** What a smoke script reported. */
export type SmokeAnswer =
  { refused: number } | { task: { status?: string; result?: { status?: string } } } | { unreadable: string };

export function smokeAnswerOf(stdout: string): SmokeAnswer {
  const refused = new RegExp(`^${SMOKE_MARK} refused (\\d{3})$`, "m").exec(stdout);
  if (refused) return { refused: Number(refused[1]) };
  const at = stdout.indexOf(`${SMOKE_MARK} task\n`);
  if (at === -1) return { unreadable: stdout.slice(-200) };
  const json = stdout.slice(at + SMOKE_MARK.length + 6).trim();
  try {
    return { task: JSON.parse(json) as { status?: string; result?: { status?: string } } };
  } catch {
    return { unreadable: json.slice(0, 200) };
  }
}
