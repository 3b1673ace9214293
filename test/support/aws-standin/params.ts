/**
 * Readers for request parameters: the flat Query form of EC2/STS (`Filter.1.Value.2=x`) and the
 * JSON 1.1 bodies of SSM/ECR, with type checks that answer like the services do (ValidationException).
 */
import { fail } from "./errors.js";

/** A view on a flat Query form, optionally below a prefix (`TagSpecification.1.`). */
export class QueryParams {
  constructor(
    readonly flat: Readonly<Record<string, string>>,
    private readonly prefix = "",
  ) {}

  get(key: string): string | undefined {
    return this.flat[this.prefix + key];
  }

  require(key: string, code = "MissingParameter"): string {
    const v = this.get(key);
    if (v === undefined || v === "") fail(code, `The request must contain the parameter ${key}`);
    return v;
  }

  int(key: string): number | undefined {
    const v = this.get(key);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n)) fail("InvalidParameterValue", `Invalid value '${v}' for ${key}`);
    return n;
  }

  bool(key: string): boolean | undefined {
    const v = this.get(key);
    if (v === undefined) return undefined;
    if (v !== "true" && v !== "false") fail("InvalidParameterValue", `Invalid value '${v}' for ${key}`);
    return v === "true";
  }

  /** True when any key starts with `key.` or equals `key`. */
  has(key: string): boolean {
    const full = this.prefix + key;
    return Object.keys(this.flat).some((k) => k === full || k.startsWith(full + "."));
  }

  /** The 1-based indices N present under `key.N`, in numeric order. */
  private indices(key: string): number[] {
    const full = this.prefix + key + ".";
    const seen = new Set<number>();
    for (const k of Object.keys(this.flat)) {
      if (!k.startsWith(full)) continue;
      const m = /^(\d+)(\.|$)/.exec(k.slice(full.length));
      if (m?.[1]) seen.add(Number(m[1]));
    }
    return [...seen].sort((a, b) => a - b);
  }

  /** `key.1`, `key.2`, ... as strings. */
  list(key: string): string[] {
    return this.indices(key)
      .map((i) => this.get(`${key}.${i}`))
      .filter((v): v is string => v !== undefined);
  }

  /** `key.N.*` as nested views. */
  structs(key: string): QueryParams[] {
    return this.indices(key).map((i) => this.sub(`${key}.${i}`));
  }

  /** `key.*` as a nested view. */
  sub(key: string): QueryParams {
    return new QueryParams(this.flat, `${this.prefix}${key}.`);
  }
}

export interface QueryFilter {
  name: string;
  values: string[];
}

export function queryFilters(params: QueryParams): QueryFilter[] {
  return params.structs("Filter").map((f) => ({ name: f.get("Name") ?? "", values: f.list("Value") }));
}

export function queryTags(params: QueryParams, key = "Tag"): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const t of params.structs(key)) {
    const k = t.get("Key");
    if (k === undefined) fail("InvalidParameterValue", "Tag key must be specified");
    tags[k] = t.get("Value") ?? "";
  }
  return tags;
}

// ---------------------------------------------------------------- JSON 1.1

export type JsonObject = Record<string, unknown>;

function validation(member: string, what: string): never {
  fail(
    "ValidationException",
    `1 validation error detected: Value at '${member}' failed to satisfy constraint: ${what}`,
  );
}

export function optString(input: JsonObject, key: string): string | undefined {
  const v = input[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") validation(key, "Member must be a string");
  return v;
}

export function reqString(input: JsonObject, key: string): string {
  const v = optString(input, key);
  if (v === undefined) validation(key, "Member must not be null");
  return v;
}

export function optNumber(input: JsonObject, key: string): number | undefined {
  const v = input[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number") validation(key, "Member must be a number");
  return v;
}

export function optBool(input: JsonObject, key: string): boolean | undefined {
  const v = input[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") validation(key, "Member must be a boolean");
  return v;
}

export function optStringList(input: JsonObject, key: string): string[] | undefined {
  const v = input[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((x): x is string => typeof x === "string")) {
    validation(key, "Member must be a list of strings");
  }
  return v;
}

export function optObject(input: JsonObject, key: string): JsonObject | undefined {
  const v = input[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "object" || Array.isArray(v)) validation(key, "Member must be a structure");
  return v as JsonObject;
}

export function optObjectList(input: JsonObject, key: string): JsonObject[] | undefined {
  const v = input[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === "object" && x !== null && !Array.isArray(x))) {
    validation(key, "Member must be a list of structures");
  }
  return v as JsonObject[];
}

// ---------------------------------------------------------------- pagination

/** Opaque NextToken for offset pagination. */
export function encodeToken(offset: number, scope: string): string {
  return Buffer.from(JSON.stringify({ o: offset, s: scope })).toString("base64");
}

/** Offset from a NextToken, or undefined when it is not one of ours for this scope. */
export function decodeToken(token: string, scope: string): number | undefined {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(token, "base64").toString("utf8"));
    if (typeof parsed === "object" && parsed !== null && "o" in parsed && "s" in parsed) {
      const { o, s } = parsed as { o: unknown; s: unknown };
      if (typeof o === "number" && s === scope) return o;
    }
  } catch {
    // fall through
  }
  return undefined;
}

/** `*` and `?` wildcards, as EC2 filters and SSM accept them. */
export function globMatch(pattern: string, value: string): boolean {
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${re}$`, "s").test(value);
}
