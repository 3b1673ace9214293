/**
 * Config as a pipeline: read -> parse YAML -> validate against the schema -> normalise -> rules.
 * `parseConfig` is pure (no file system) and returns {config, warnings, errors}; `loadConfig` reads the file.
 * Every error names the config path (`roles.task-runner.ruby.versions[1]`), the bad value and what is allowed.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseDocument } from "yaml";
import type { z } from "zod";
import { ConfigError, UsageError } from "../errors.js";
import { ConfigSchema, ROLES, type ParsedConfig, type Role } from "./schema.js";
import { checkRun, defaultEnv } from "./workload.js";
import { checkSmoke } from "./smoke.js";

/** A declared secret, where it lives on each target (resolved). */
export interface SecretLocation {
  aws_parameter: string;
  local_file: string;
}

/** A role's ruby-bench source, normalised at load. */
export type RubyBenchConfig = ParsedConfig["roles"][Role]["ruby_bench"] & {
  /**
   * The repository as a folder on this machine (a path, made absolute against the config's folder, or a
   * file:// URL), or undefined when it is a remote URL. Decided here, once: nothing else looks at the string.
   */
  localPath?: string;
};

export type RoleConfig = Omit<ParsedConfig["roles"][Role], "ruby_bench"> & { ruby_bench: RubyBenchConfig };

export interface Config extends Omit<ParsedConfig, "aws" | "local" | "roles" | "secrets"> {
  secrets: Record<string, SecretLocation>;
  roles: Record<Role, RoleConfig>;
  aws: Omit<ParsedConfig["aws"], "ssm_prefix" | "ecr"> & {
    ssm_prefix: string;
    ecr: { repositories: Record<Role, string>; keep_images: number };
  };
  local: { registry_port: number; state_dir: string };
  /** The file the config came from, or null for built-in defaults. */
  source: string | null;
  /** Folder that relative paths in the config are resolved against. */
  baseDir: string;
}

export interface ParseResult {
  config: Config | undefined;
  warnings: string[];
  errors: string[];
}

const ECR_REPO_RE = /^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*\/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$/;

/** `roles.task-runner.ruby.versions[1]` from a zod path. */
export function formatPath(p: readonly PropertyKey[]): string {
  let out = "";
  for (const k of p) {
    if (typeof k === "number") out += `[${k}]`;
    else out += out === "" ? String(k) : `.${String(k)}`;
  }
  return out === "" ? "(top level)" : out;
}

function show(value: unknown): string {
  const s = JSON.stringify(value);
  if (s === undefined) return String(value);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** Keys the schema allows at a path, for "unknown key" messages. */
function allowedKeysAt(p: readonly PropertyKey[]): string[] {
  let node: unknown = ConfigSchema;
  const unwrap = (n: unknown): unknown => {
    let cur = n as { def?: { type?: string; innerType?: unknown } };
    while (cur?.def && (cur.def.type === "default" || cur.def.type === "optional")) {
      cur = cur.def.innerType as typeof cur;
    }
    return cur;
  };
  for (const k of p) {
    const obj = unwrap(node) as { shape?: Record<string, unknown> };
    if (!obj?.shape || typeof k !== "string") return [];
    node = obj.shape[k];
  }
  const obj = unwrap(node) as { shape?: Record<string, unknown> };
  return obj?.shape ? Object.keys(obj.shape) : [];
}

function closest(word: string, candidates: string[]): string | undefined {
  const dist = (a: string, b: string) => {
    const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
    for (let j = 1; j <= b.length; j++) d[0]![j] = j;
    for (let i = 1; i <= a.length; i++)
      for (let j = 1; j <= b.length; j++)
        d[i]![j] = Math.min(
          d[i - 1]![j]! + 1,
          d[i]![j - 1]! + 1,
          d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
        );
    return d[a.length]![b.length]!;
  };
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const dd = dist(word.toLowerCase(), c.toLowerCase());
    if (dd < bestD) [best, bestD] = [c, dd];
  }
  return bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function describeIssue(issue: z.core.$ZodIssue): string[] {
  const where = formatPath(issue.path);
  if (issue.code === "unrecognized_keys") {
    const allowed = allowedKeysAt(issue.path);
    return issue.keys.map((key) => {
      const at = formatPath([...issue.path, key]);
      const hint = closest(key, allowed);
      return (
        `${at}: unknown key${hint ? ` (did you mean "${hint}"?)` : ""}; ` +
        `allowed here: ${allowed.length ? allowed.join(", ") : "no keys"}`
      );
    });
  }
  const input = (issue as { input?: unknown }).input;
  if (issue.code === "invalid_type" && input === undefined)
    return [`${where}: is required (${issue.message})`];
  if (issue.code === "invalid_type") {
    return [
      `${where}: ${show(input)} is a ${input === null ? "null" : Array.isArray(input) ? "list" : typeof input}, expected ${issue.expected}`,
    ];
  }
  if (issue.code === "invalid_union" && issue.path.at(-1) === "workers_per_instance") {
    return [`${where}: ${show(input)} is not allowed; use "auto" or a whole number from 1 to 192`];
  }
  return [`${where}: ${show(input)} is not allowed: ${issue.message}`];
}

/** Apply defaults that depend on other keys, resolve paths, and check rules across keys. */
function normalise(
  parsed: ParsedConfig,
  baseDir: string,
  source: string | null,
  errors: string[],
  warnings: string[],
): Config {
  const repos = {} as Record<Role, string>;
  for (const role of ROLES) {
    const name = parsed.aws.ecr.repositories[role] ?? `${parsed.pipeline}/${role}`;
    if (!ECR_REPO_RE.test(name)) {
      errors.push(
        `aws.ecr.repositories.${role}: ${show(name)} is not allowed: ECR repository names are lower-case ` +
          "letters, digits and . _ - / (for example bench/task-runner)",
      );
    }
    repos[role] = name;
    const r = parsed.roles[role];
    const at = `roles.${role}`;
    if (r.ruby.method === "tarball" && !r.ruby.tarball_url) {
      errors.push(
        `${at}.ruby.tarball_url: is required when ruby.method is "tarball" (a URL with {version} and {arch})`,
      );
    }
    if (r.ruby.method === "distro" && r.ruby.versions.length > 1) {
      errors.push(
        `${at}.ruby.versions: ${show(r.ruby.versions)} is not allowed with method "distro", which installs the ` +
          'distribution\'s one Ruby; list one version, or use method "ruby-build" or "tarball"',
      );
    }
    if (r.ruby.method !== "tarball" && r.ruby.tarball_url) {
      warnings.push(`${at}.ruby.tarball_url: ignored, because ruby.method is "${r.ruby.method}"`);
    }
    const df = r.app.dockerfile;
    if (df !== undefined && (path.isAbsolute(df) || path.normalize(df).split(path.sep)[0] === "..")) {
      errors.push(
        `${at}.app.dockerfile: ${show(df)} is not allowed: give a path inside app.context, relative to it`,
      );
    }
  }
  // A role that does not set run.env gets the default (a new object: the schema's defaults are shared).
  const runs = Object.fromEntries(
    ROLES.map((role) => {
      const run = parsed.roles[role].run;
      return [role, { ...run, env: run.env ?? defaultEnv(parsed.secrets) }];
    }),
  ) as Record<Role, ParsedConfig["roles"][Role]["run"]>;
  for (const role of ROLES) checkRun(`roles.${role}.run`, role, runs[role], parsed.secrets, errors);
  checkSmoke(parsed.smoke, parsed.secrets, errors);
  const ssmPrefix = parsed.aws.ssm_prefix ?? `/imgtool/${parsed.pipeline}`;
  const stateDir = path.resolve(baseDir, parsed.local.state_dir);
  const secrets = Object.fromEntries(
    Object.entries(parsed.secrets).map(([name, s]) => [
      name,
      {
        aws_parameter:
          s.aws_parameter ??
          (name === "orchestrator-api-key" ? parsed.aws.api_key_parameter : undefined) ??
          `${ssmPrefix}/secrets/${name}`,
        local_file: s.local_file
          ? path.resolve(baseDir, s.local_file)
          : path.join(stateDir, "secrets", `${parsed.pipeline}-${name}`),
      },
    ]),
  );
  const dupRegion = parsed.aws.regions.find((r, i) => parsed.aws.regions.indexOf(r) !== i);
  if (dupRegion) errors.push(`aws.regions: ${show(dupRegion)} is listed twice`);

  const roles = Object.fromEntries(
    ROLES.map((role) => {
      const r = parsed.roles[role];
      return [
        role,
        {
          ...r,
          ruby_bench: rubyBenchSource(r.ruby_bench, baseDir),
          app: { ...r.app, context: path.resolve(baseDir, r.app.context) },
          run: runs[role],
        },
      ];
    }),
  ) as Config["roles"];

  return {
    ...parsed,
    roles,
    secrets,
    // The smoke script's path, made absolute against the config's folder (read when the pipeline starts).
    smoke: {
      ...parsed.smoke,
      ...(parsed.smoke.script ? { script: path.resolve(baseDir, parsed.smoke.script) } : {}),
    },
    aws: {
      ...parsed.aws,
      ssm_prefix: ssmPrefix,
      ecr: { repositories: repos, keep_images: parsed.aws.ecr.keep_images },
    },
    local: { ...parsed.local, state_dir: stateDir },
    source,
    baseDir,
  };
}

/** A git remote given as a URL (https://, ssh://, git://, ...) or scp-like (git@host:path). */
const REMOTE_URL_RE = /^[a-z][a-z0-9+.-]*:\/\/|^[^/\s:]+@[^/\s:]+:/i;

/**
 * URL or local path, decided once: a local repository (not a URL) is relative to the config file, like every
 * other path, and a file:// URL is a local folder too (git reads it as given).
 */
export function rubyBenchSource(
  rb: ParsedConfig["roles"][Role]["ruby_bench"],
  baseDir: string,
): RubyBenchConfig {
  const repo = rb.repository;
  if (/^file:\/\//i.test(repo)) return { ...rb, localPath: fileURLToPath(repo) };
  if (REMOTE_URL_RE.test(repo)) return { ...rb };
  const localPath = path.resolve(baseDir, repo);
  return { ...rb, repository: localPath, localPath };
}

/**
 * Parse and validate config text. Pure: no file system access.
 * @param text YAML text ("" means: all defaults)
 * @param opts.source name used in messages (the file path)
 * @param opts.baseDir folder that relative paths are resolved against
 */
export function parseConfig(text: string, opts: { source?: string | null; baseDir: string }): ParseResult {
  const source = opts.source ?? null;
  const label = source ?? "config";
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  const first = doc.errors[0];
  if (first) {
    // One message: the first error. The YAML parser often reports one mistake several times over.
    const pos = first.linePos?.[0];
    const what = (first.message.split("\n")[0] ?? "").replace(/ at line \d+, column \d+:?$/, "");
    return {
      config: undefined,
      warnings: [],
      errors: [
        `${label}${pos ? `:${pos.line}:${pos.col}` : ""}: YAML error: ${what}${pos ? ` (line ${pos.line}, column ${pos.col})` : ""}`,
      ],
    };
  }
  const raw: unknown = doc.toJS() ?? {};
  if (typeof raw !== "object" || Array.isArray(raw) || raw === null) {
    return {
      config: undefined,
      warnings: [],
      errors: [`(top level): ${show(raw)} is not allowed: the config must be a YAML mapping`],
    };
  }
  const result = ConfigSchema.safeParse(raw, { reportInput: true });
  if (!result.success) {
    return { config: undefined, warnings: [], errors: result.error.issues.flatMap(describeIssue) };
  }
  const errors: string[] = [];
  const warnings: string[] = [];
  const config = normalise(result.data, opts.baseDir, source, errors, warnings);
  return errors.length ? { config: undefined, warnings, errors } : { config, warnings, errors };
}

export const DEFAULT_CONFIG_FILE = "imgtool.config.yaml";

/** The config file's bytes as text; a binary or non-UTF-8 file is refused by name (its bytes are never printed). */
function decodeText(file: string, abs: string, bytes: Buffer): string {
  const fix = "Pass the YAML config file (UTF-8 text), e.g. --config imgtool.config.yaml.";
  const nul = bytes.indexOf(0);
  if (nul >= 0) {
    throw new UsageError(
      `--config ${file}: ${abs} is a binary file (a NUL byte at offset ${nul}), not a YAML config.`,
      {
        fix,
      },
    );
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (e) {
    if (!(e instanceof TypeError)) throw e;
    throw new UsageError(
      `--config ${file}: ${abs} is not UTF-8 text, so it is not a YAML config imgtool can read.`,
      {
        fix: `${fix} Convert it first, e.g. iconv -f latin1 -t utf-8.`,
      },
    );
  }
}

/**
 * Read and validate the config file. When `explicit` is false and the default file is absent, the built-in
 * defaults apply; an explicitly named file that cannot be read is a usage error.
 */
export function loadConfig(
  file: string,
  opts: { explicit: boolean; cwd?: string },
): { config: Config; warnings: string[] } {
  const abs = path.resolve(opts.cwd ?? process.cwd(), file);
  let text: string;
  try {
    text = decodeText(file, abs, readFileSync(abs));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" && !opts.explicit) {
      const r = parseConfig("", { source: null, baseDir: path.dirname(abs) });
      if (!r.config) throw new ConfigError("built-in defaults", r.errors);
      return { config: r.config, warnings: r.warnings };
    }
    if (code === "ENOENT" || code === "EACCES" || code === "EISDIR") {
      const why =
        code === "ENOENT"
          ? "does not exist"
          : code === "EACCES"
            ? "cannot be read (permission denied)"
            : "is a folder";
      throw new UsageError(`--config ${file}: ${abs} ${why}.`, {
        fix: "Pass an existing, readable YAML file, or omit --config to use ./imgtool.config.yaml or the built-in defaults.",
      });
    }
    throw e;
  }
  const r = parseConfig(text, { source: abs, baseDir: path.dirname(abs) });
  if (!r.config) throw new ConfigError(abs, r.errors);
  return { config: r.config, warnings: r.warnings };
}

/** Look up a dotted config path (`local.registry_port`, `roles.task-runner.ruby.versions`). */
export function getConfigValue(config: Config, dotted: string): unknown {
  let cur: unknown = config;
  for (const part of dotted.split(".")) {
    if (cur === null || typeof cur !== "object" || !(part in cur)) {
      throw new UsageError(`config path "${dotted}" does not exist (at "${part}").`, {
        fix: "`imgtool config show` prints the whole resolved config.",
      });
    }
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}
