/**
 * The user's smoke check as the lines run on the orchestrator instance (aws: SSM Run Command's
 * `AWS-RunShellScript`, which runs them with `sh`; local: `sh -c` inside the local instance). Pure.
 *
 * The lines are POSIX sh that unpack two files into a private temporary folder, the user's script and a bash
 * runner (both base64, so no byte of either is ever parsed by a shell on the way), and run the runner. The runner
 * reads the secrets the env uses on the instance (the SSM SecureString through the instance role, or the local
 * secret file), so a secret's value is never part of the command, its history or its output (the output is
 * redacted); it runs the script with a timeout, stdin closed, and prints the last lines of its output and then
 * `imgtool-smoke-exit <code>`.
 */
import { parseWord, type Placeholder } from "../config/workload.js";
import { shellWord } from "./escape.js";

export const SMOKE_EXIT_MARK = "imgtool-smoke-exit";
/** How many of the script's last output lines come back. */
export const SMOKE_OUTPUT_LINES = 40;
/**
 * At most this many bytes of them (after redaction): with the runner's note and its mark, the report stays well
 * inside the 24,000 characters of stdout that SSM Run Command returns (src/aws/run-command-limits.ts), so the
 * mark, the last line, always arrives.
 */
export const SMOKE_OUTPUT_MAX_BYTES = 16 * 1024;
/** What is read of the output's last lines before redaction (bounds the runner's memory; see smokeRunner). */
const SMOKE_OUTPUT_READ_BYTES = 64 * 1024;
/** The runner's exit code when it could not run the script (a secret unreadable, ...). */
export const SMOKE_SETUP_FAILED = 125;
/** coreutils timeout's exit code when the script ran out of time. */
export const SMOKE_TIMED_OUT = 124;

export interface SmokeCheckInput {
  /** The user's script, byte for byte. */
  script: Buffer;
  /** smoke.env: values may hold {secret:NAME} and the smoke placeholders. */
  env: Record<string, string>;
  /** Where each declared secret lives on this target (an SSM parameter name, or a file on the instance). */
  secretLocations: Record<string, string>;
  secretSource: "ssm" | "file";
  /** The values of the placeholders known at the smoke launch. */
  values: Partial<Record<Placeholder, string>>;
  /** Environment imgtool always sets (IMGTOOL_ORCHESTRATOR_URL, ...). */
  imgtoolEnv: Record<string, string>;
  timeoutSeconds: number;
}

function base64Lines(data: Buffer): string[] {
  return data.toString("base64").match(/.{1,76}/g) ?? [];
}

/** A bash word: single-quoted literals and "${SECRET_VALUES[i]}" for each secret. */
function bashWord(word: string, secretIndex: (name: string) => number, values: SmokeCheckInput["values"]) {
  const out: string[] = [];
  for (const p of parseWord(word)) {
    if ("text" in p) out.push(shellWord(p.text));
    else if ("secret" in p) out.push(`"\${SECRET_VALUES[${secretIndex(p.secret)}]}"`);
    else {
      const v = values[p.placeholder];
      if (v === undefined) throw new Error(`{${p.placeholder}} has no value for the smoke script`);
      out.push(shellWord(v));
    }
  }
  return out.join("") || "''";
}

/** The bash program that reads the secrets, runs the script and reports. Its one argument: the folder. */
export function smokeRunner(input: Omit<SmokeCheckInput, "script">): string {
  const used: string[] = [];
  const secretIndex = (name: string) => {
    if (!used.includes(name)) used.push(name);
    return used.indexOf(name);
  };
  const exports = Object.entries(input.env).map(
    ([name, word]) => `export ${name}=${bashWord(word, secretIndex, input.values)}`,
  );
  for (const name of used) {
    if (input.secretLocations[name] === undefined) throw new Error(`the secret ${name} is not declared`);
  }
  const read =
    input.secretSource === "ssm"
      ? `AWS_EC2_METADATA_V1_DISABLED=true aws ssm get-parameter --region ${shellWord(input.values.region ?? "")} --name "$1" --with-decryption --query Parameter.Value --output text`
      : `cat -- "$1"`;
  return [
    "#!/bin/bash",
    "# imgtool's smoke runner: rendered by src/render/smoke-check.ts; it never prints a secret.",
    "set -o nounset -o pipefail",
    "dir=$1",
    `read_secret() { ${read}; }`,
    `SECRET_NAMES=(${used.map(shellWord).join(" ")})`,
    `SECRET_LOCATIONS=(${used.map((n) => shellWord(input.secretLocations[n]!)).join(" ")})`,
    "SECRET_VALUES=()",
    'for i in "${!SECRET_NAMES[@]}"; do',
    '  if ! value=$(read_secret "${SECRET_LOCATIONS[i]}" 2>/dev/null); then',
    `    echo "imgtool: could not read the secret \${SECRET_NAMES[i]} (${input.secretSource} \${SECRET_LOCATIONS[i]})"`,
    `    echo "${SMOKE_EXIT_MARK} ${SMOKE_SETUP_FAILED}"`,
    "    exit 0",
    "  fi",
    '  SECRET_VALUES+=("$value")',
    "done",
    ...Object.entries(input.imgtoolEnv).map(([k, v]) => `export ${k}=${shellWord(v)}`),
    ...exports,
    'chmod 700 "$dir/check"',
    `timeout --kill-after=10 ${Math.max(1, Math.ceil(input.timeoutSeconds))} "$dir/check" > "$dir/out" 2>&1 < /dev/null`,
    "rc=$?",
    // Redacted before it is cut to its last bytes, so a cut never splits a secret value out of reach of the
    // redaction (only the read's first bytes, far from the end that is kept, could hold part of one).
    `out=$(tail -n ${SMOKE_OUTPUT_LINES} "$dir/out" | tail -c ${SMOKE_OUTPUT_READ_BYTES})`,
    'for i in "${!SECRET_VALUES[@]}"; do',
    "  value=${SECRET_VALUES[i]}",
    '  [[ -z $value ]] || out=${out//"$value"/<secret ${SECRET_NAMES[i]}>}',
    "done",
    `bytes=$(printf '%s' "$out" | wc -c)`,
    `if [ "$bytes" -gt ${SMOKE_OUTPUT_MAX_BYTES} ]; then`,
    `  echo "imgtool: the script's output is cut to its last ${SMOKE_OUTPUT_MAX_BYTES} bytes"`,
    `  out=$(printf '%s' "$out" | tail -c ${SMOKE_OUTPUT_MAX_BYTES})`,
    "fi",
    "printf '%s\\n' \"$out\"",
    `echo "${SMOKE_EXIT_MARK} $rc"`,
    "",
  ].join("\n");
}

/** The lines to run on the orchestrator instance (POSIX sh). */
export function smokeCheckLines(input: SmokeCheckInput): string[] {
  const runner = smokeRunner(input);
  return [
    "# imgtool smoke check: unpacks the script and its runner into a private folder and runs them",
    "umask 077",
    `dir=$(mktemp -d /tmp/imgtool-smoke.XXXXXX) || { echo "${SMOKE_EXIT_MARK} ${SMOKE_SETUP_FAILED}"; exit 0; }`,
    "base64 -d > \"$dir/check\" <<'IMGTOOL_SMOKE_SCRIPT'",
    ...base64Lines(input.script),
    "IMGTOOL_SMOKE_SCRIPT",
    "base64 -d > \"$dir/run\" <<'IMGTOOL_SMOKE_RUNNER'",
    ...base64Lines(Buffer.from(runner)),
    "IMGTOOL_SMOKE_RUNNER",
    'bash "$dir/run" "$dir"',
    'rm -rf "$dir"',
  ];
}

/** What a smoke check reported: its exit code and the last lines of its output, or output without the mark. */
export type SmokeCheckAnswer = { exitCode: number; output: string } | { unreadable: string };

export function smokeCheckAnswerOf(stdout: string): SmokeCheckAnswer {
  // The runner's mark is its last line: a script that prints one of its own does not decide the outcome.
  const m = [...stdout.matchAll(new RegExp(`^${SMOKE_EXIT_MARK} (\\d+)$`, "gm"))].at(-1);
  if (!m) return { unreadable: stdout.trim().slice(-300) };
  return { exitCode: Number(m[1]), output: stdout.slice(0, m.index).replace(/\n$/, "") };
}
