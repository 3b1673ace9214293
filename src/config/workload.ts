/**
 * What a role runs (issue 9, section 1): its command and arguments, environment, secrets, volumes, health and the
 * extra permissions its instances need, as config. Words may hold placeholders, `{run_id}`, `{worker_index}`,
 * `{secret:api-key}`, filled in at launch or at boot; never through a shell (see src/launch/workload-shell.ts).
 *
 * This file holds the schema pieces (used by ./schema.ts) and the pure checks across keys (used by ./load.ts).
 */
import { z } from "zod";

const msg = (error: string) => ({ error });
const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const SECRET_NAME_RE = /^[a-z][a-z0-9-]{0,62}[a-z0-9]$/;
const SSM_NAME_RE = /^(\/[A-Za-z0-9_.-]+)+$/;
const ABS_PATH_RE = /^\/[A-Za-z0-9_./-]*$/;
const VOLUME_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/;

/** The placeholders a word may use, and what each stands for. */
export const PLACEHOLDERS = {
  orchestrator_url: "the orchestrator's URL (task runners: its private address; the orchestrator: its own)",
  run_id: "the launch's run id",
  pipeline: "the pipeline name",
  target: "the target: aws or local",
  provider: "the same as target (the seed system's name for it)",
  region: "the AWS region (local: local)",
  instance_type: "the instance's EC2 instance type",
  instance_id: "the instance's id (aws: from the instance metadata; local: the local instance's name)",
  worker_index: "the worker's number on its instance, from 1",
  worker_cpus: "the CPU(s) the worker is pinned to",
  runner_id: "<hostname>-<container name>, unique in the fleet",
  image_version: "the catalog version of the image the worker runs",
  port: "the orchestrator's port",
} as const;
export type Placeholder = keyof typeof PLACEHOLDERS;

/** A word with its placeholders split out. */
export type WordPart = { text: string } | { placeholder: Placeholder } | { secret: string };

const PART_RE = /\{\{|\}\}|\{([^{}]*)\}|[{}]/g;

/**
 * Split a word into literal text, placeholders and secrets. `{{` and `}}` are a literal brace. Throws a message
 * (without the config path: the caller adds it) when the word is malformed or names no known placeholder.
 */
export function parseWord(word: string): WordPart[] {
  const parts: WordPart[] = [];
  let text = "";
  let last = 0;
  for (const m of word.matchAll(PART_RE)) {
    text += word.slice(last, m.index);
    last = m.index + m[0].length;
    if (m[0] === "{{") text += "{";
    else if (m[0] === "}}") text += "}";
    else if (m[1] === undefined) throw new Error(`a lone "${m[0]}" (write {{ or }} for a literal brace)`);
    else {
      if (text) parts.push({ text });
      text = "";
      const name = m[1].trim();
      if (name.startsWith("secret:")) {
        const s = name.slice("secret:".length);
        if (!SECRET_NAME_RE.test(s)) throw new Error(`{${name}}: "${s}" is not a secret name`);
        parts.push({ secret: s });
      } else if (Object.hasOwn(PLACEHOLDERS, name)) {
        parts.push({ placeholder: name as Placeholder });
      } else {
        throw new Error(
          `unknown placeholder {${name}}; known: ${Object.keys(PLACEHOLDERS)
            .map((p) => `{${p}}`)
            .join(", ")}, {secret:NAME}`,
        );
      }
    }
  }
  text += word.slice(last);
  if (text) parts.push({ text });
  return parts;
}

const Word = z.string().describe("A word; may hold {placeholders} and {secret:NAME}.");

const DockerHealth = z
  .strictObject({
    test: z
      .array(z.string())
      .min(1, msg("needs the command to run, as a list of words"))
      .describe("The check, run inside the container as a list of words (exit 0 = healthy)."),
    interval_seconds: z.number().positive().default(1).describe("Seconds between checks."),
    timeout_seconds: z.number().positive().default(5).describe("Seconds one check may take."),
    retries: z.number().int().min(1).default(3).describe("Failures in a row that make it unhealthy."),
    start_period_seconds: z
      .number()
      .min(0)
      .default(0)
      .describe("Seconds after start during which failures do not count."),
  })
  .describe("A Docker healthcheck; the user-data's readiness waits until every worker is healthy.");

const HttpHealth = z
  .strictObject({
    port: z
      .number(msg("must be a port number"))
      .int(msg("must be a whole number"))
      .min(1, msg("must be between 1 and 65535"))
      .max(65535, msg("must be between 1 and 65535"))
      .optional()
      .describe("Port of the check. Default: launch.orchestrator_port (the port the orchestrator is told)."),
    path: z
      .string()
      .regex(/^\/[\x21-\x7e]*$/, msg("must be a URL path starting with /"))
      .default("/health")
      .describe("Path of the check."),
    status: z.number().int().min(100).max(599).optional().describe("Expected HTTP status. Default: any 2xx."),
  })
  .describe("An HTTP check of the orchestrator that `imgtool launch` waits on.");

const Volume = z
  .strictObject({
    type: z
      .enum(["ruby-bench", "volume"], msg("must be ruby-bench (the baked cache) or volume (a named volume)"))
      .describe(
        "ruby-bench: the ruby-bench cache baked into the image, always read-only; volume: a named volume.",
      ),
    source: z
      .string()
      .regex(VOLUME_NAME_RE, msg("must be a volume name of letters, digits, _ . -"))
      .optional()
      .describe("The named volume (type volume); it persists on the instance."),
    target: z
      .string()
      .regex(ABS_PATH_RE, msg("must be an absolute path in the container"))
      .describe("Where it is mounted in the container."),
    read_only: z.boolean().default(false).describe("Mount read-only (ruby-bench always is)."),
  })
  .describe("A mount, in Compose's long syntax.");

const Statement = z
  .strictObject({
    Sid: z
      .string()
      .regex(/^[A-Za-z0-9]+$/, msg("must be letters and digits"))
      .optional(),
    Effect: z.literal("Allow", msg('must be "Allow" (the instance policy only grants)')).default("Allow"),
    Action: z.union([z.string(), z.array(z.string()).min(1)]),
    Resource: z.union([z.string(), z.array(z.string()).min(1)]),
    Condition: z
      .record(z.string(), z.record(z.string(), z.union([z.string(), z.array(z.string())])))
      .optional(),
  })
  .describe("An IAM policy statement.");

export interface RunDefaults {
  health: { http?: { path: string } };
}

/** The env of a role that does not set run.env: the orchestrator's API key, as our examples read it. */
export function defaultEnv(secrets: Record<string, unknown>): Record<string, string> {
  return Object.hasOwn(secrets, "orchestrator-api-key")
    ? { ORCHESTRATOR_API_KEY: "{secret:orchestrator-api-key}" }
    : {};
}

/** The `run` key of a role: what its containers run. */
export function runSchema(d: RunDefaults) {
  const defaults = {
    args: [] as string[],
    volumes: [] as z.output<typeof Volume>[],
    health: d.health,
    settle_seconds: 1,
    instance_permissions: [] as z.output<typeof Statement>[],
  };
  return z
    .strictObject({
      command: z
        .array(Word)
        .min(1, msg("needs at least the program"))
        .optional()
        .describe(
          "Replaces the image's ENTRYPOINT (a list of words, never through a shell); the image's CMD is dropped.",
        ),
      args: z
        .array(Word)
        .default([])
        .describe("Replaces the image's CMD (a list of words, after command or the image's ENTRYPOINT)."),
      env: z
        .record(z.string().regex(ENV_NAME_RE, msg("must be an environment variable name")), Word)
        .optional()
        .describe(
          "Environment of every worker; values may use placeholders and {secret:NAME}. Default: " +
            "ORCHESTRATOR_API_KEY: {secret:orchestrator-api-key} while that secret is declared.",
        ),
      volumes: z.array(Volume).default([]).describe("Mounts of every worker."),
      health: z
        .strictObject({
          docker: DockerHealth.optional(),
          http: HttpHealth.optional(),
        })
        .default(d.health)
        .describe("How readiness is judged: a Docker healthcheck and/or (orchestrator) an HTTP check."),
      settle_seconds: z
        .number()
        .min(0)
        .max(300)
        .default(1)
        .describe(
          "Workers without a Docker healthcheck count as ready once they stayed up (no exit, no restart) this long.",
        ),
      instance_permissions: z
        .array(Statement)
        .default([])
        .describe(
          "Extra statements of the instance policy (`imgtool iam-policy --for instance`), e.g. s3:PutObject.",
        ),
    })
    .default(defaults)
    .describe("What the role's containers run, like a Compose service: command, args, env, volumes, health.");
}

export const SecretsSchema = z
  .record(
    z.string().regex(SECRET_NAME_RE, msg("must be a secret name of a-z, 0-9 and '-'")),
    z
      .strictObject({
        aws_parameter: z
          .string()
          .regex(SSM_NAME_RE, msg("must be an SSM parameter name such as /imgtool/bench/secrets/api-key"))
          .refine((v) => v.split("/").length - 1 <= 15, msg("has too many levels: SSM allows at most 15"))
          .optional()
          .describe("aws: the SSM SecureString holding it. Default: <ssm_prefix>/secrets/<name>."),
        local_file: z
          .string()
          .min(1)
          .optional()
          .describe(
            "local: the file holding it, relative to the config file. Default: <state_dir>/secrets/<pipeline>-<name>, made with a random value when missing.",
          ),
      })
      .default({}),
  )
  .default({ "orchestrator-api-key": {} })
  .describe(
    "Secrets, each declared once; roles use them as {secret:NAME} in run.env or run.args. Read at boot through the " +
      "instance role (aws) or from a file (local); never written into user-data, rendered files or logs.",
  );

export type RunConfig = z.output<ReturnType<typeof runSchema>>;
export type SecretsConfig = z.output<typeof SecretsSchema>;

/** The secrets a role's words use, in order of first use. */
export function secretsUsed(run: Pick<RunConfig, "command" | "args" | "env">): string[] {
  const out = new Set<string>();
  for (const w of [...(run.command ?? []), ...run.args, ...Object.values(run.env ?? {})]) {
    for (const p of parseWord(w)) if ("secret" in p) out.add(p.secret);
  }
  return [...out];
}

/**
 * Check config words (each with its config path) against the declared secrets: a malformed word or an undeclared
 * secret pushes a path-named error; `more` sees every part of every well-formed word (for the caller's own rules).
 */
export function checkWords(
  words: [string, string][],
  secrets: Record<string, unknown>,
  errors: string[],
  more: (where: string, part: WordPart) => void = () => {},
): void {
  for (const [where, w] of words) {
    let parts: WordPart[];
    try {
      parts = parseWord(w);
    } catch (e) {
      errors.push(`${where}: ${JSON.stringify(w)} is not allowed: ${(e as Error).message}`);
      continue;
    }
    for (const p of parts) {
      if ("secret" in p && !Object.hasOwn(secrets, p.secret)) {
        errors.push(
          `${where}: uses {secret:${p.secret}}, which is not declared; declare it under secrets.${p.secret} ` +
            `(declared: ${Object.keys(secrets).join(", ") || "none"})`,
        );
      }
      more(where, p);
    }
  }
}

/** Check every word of a role's `run` and its health against the declared secrets. Pushes path-named errors. */
export function checkRun(
  at: string,
  role: "task-runner" | "orchestrator",
  run: RunConfig,
  secrets: SecretsConfig,
  errors: string[],
): void {
  const words: [string, string][] = [
    ...(run.command ?? []).map((w, i): [string, string] => [`${at}.command[${i}]`, w]),
    ...run.args.map((w, i): [string, string] => [`${at}.args[${i}]`, w]),
    ...Object.entries(run.env ?? {}).map(([k, w]): [string, string] => [`${at}.env.${k}`, w]),
  ];
  checkWords(words, secrets, errors);
  if (role === "task-runner" && run.health.http) {
    errors.push(
      `${at}.health.http: only the orchestrator has an HTTP check (launch waits on it); give task runners health.docker`,
    );
  }
  for (const [i, v] of run.volumes.entries()) {
    if (v.type === "volume" && !v.source) {
      errors.push(`${at}.volumes[${i}].source: is required for type volume (the named volume)`);
    }
    if (v.type === "ruby-bench" && v.source) {
      errors.push(
        `${at}.volumes[${i}].source: is not allowed for type ruby-bench (the baked cache is the source)`,
      );
    }
  }
}
