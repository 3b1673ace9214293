/**
 * Documents generated from the config schema, so they cannot drift from it:
 * imgtool.config.schema.json (editors), imgtool.config.example.yaml (every key with its default) and the
 * README's config reference table. `npm run schema` writes them; a test checks they are current.
 */
import { stringify } from "yaml";
import { configJsonSchema } from "./json-schema.js";

interface JsonSchema {
  type?: string | string[];
  description?: string;
  default?: unknown;
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  enum?: unknown[];
  anyOf?: JsonSchema[];
  const?: unknown;
  pattern?: string;
  additionalProperties?: JsonSchema | boolean;
  minimum?: number;
  maximum?: number;
}

export interface KeyDoc {
  path: string;
  type: string;
  default: unknown;
  description: string;
}

function typeOf(s: JsonSchema): string {
  if (s.enum) return s.enum.map((e) => JSON.stringify(e)).join(" \\| ");
  if (s.anyOf) return s.anyOf.map(typeOf).join(" \\| ");
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.type === "array") return `list of ${s.items ? typeOf(s.items) : "any"}`;
  if (s.type === "object" && !s.properties) return "map of string";
  return Array.isArray(s.type) ? s.type.join(" \\| ") : (s.type ?? "any");
}

/** Every leaf key of the config, in schema order. */
export function configKeys(): KeyDoc[] {
  const out: KeyDoc[] = [];
  const walk = (s: JsonSchema, p: string) => {
    if (s.type === "object" && s.properties) {
      for (const [k, v] of Object.entries(s.properties)) walk(v, p ? `${p}.${k}` : k);
      return;
    }
    out.push({ path: p, type: typeOf(s), default: s.default, description: s.description ?? "" });
  };
  walk(configJsonSchema() as JsonSchema, "");
  return out;
}

function comment(text: string, indent: string): string {
  return text ? `${indent}# ${text}\n` : "";
}

/** imgtool.config.example.yaml: every key, its description, and its default (optional keys commented out). */
export function exampleYaml(): string {
  const schema = configJsonSchema() as JsonSchema;
  let out =
    "# imgtool configuration: every key with its default. Copy to imgtool.config.yaml and change what you need;\n" +
    "# keys you leave out keep these defaults. Generated from the schema by `npm run schema`: do not edit.\n" +
    "# yaml-language-server: $schema=./imgtool.config.schema.json\n";
  const walk = (s: JsonSchema, indent: string, parentDefault?: unknown) => {
    for (const [k, v] of Object.entries(s.properties ?? {})) {
      out += comment(v.description ?? "", indent);
      const inParent =
        parentDefault !== null && typeof parentDefault === "object" && k in (parentDefault as object);
      if (
        v.type === "object" &&
        v.properties &&
        v.default === undefined &&
        !inParent &&
        parentDefault !== undefined
      ) {
        // An optional section that is off by default: shown commented out, so the example keeps the defaults.
        const head = out.length;
        out += `${indent}${k}:\n`;
        walk(v, `${indent}  `, {});
        out =
          out.slice(0, head) +
          out
            .slice(head)
            .split("\n")
            .map((l) => (l.trim() === "" || l.trim().startsWith("#") ? l : l.replace(/^(\s*)/, "$1# ")))
            .join("\n");
      } else if (v.type === "object" && v.properties) {
        const head = out.length;
        out += `${indent}${k}:\n`;
        const before = out.length;
        walk(
          v,
          `${indent}  `,
          v.default ?? (inParent ? (parentDefault as Record<string, unknown>)[k] : undefined),
        );
        // An object whose keys are all unset must still be a mapping, not null.
        if (
          !out
            .slice(before)
            .split("\n")
            .some((l) => l.trim() && !l.trim().startsWith("#"))
        ) {
          out = `${out.slice(0, head)}${indent}${k}: {}\n${out.slice(before)}`;
        }
      } else if (v.default === undefined) {
        out += `${indent}# ${k}: (not set)\n`;
      } else {
        const y = stringify(v.default, { flowCollectionPadding: false, collectionStyle: "flow" }).trimEnd();
        out += `${indent}${k}: ${y}\n`;
      }
    }
  };
  walk(schema, "");
  return out;
}

/** The README's config reference: a Markdown table of every key. */
export function referenceMarkdown(): string {
  const rows = configKeys().map(
    (k) =>
      `| \`${k.path}\` | ${k.type} | ${k.default === undefined ? "-" : `\`${JSON.stringify(k.default)}\``} | ${k.description.replace(/\|/g, "\\|")} |`,
  );
  return ["| key | type | default | what it is |", "| --- | --- | --- | --- |", ...rows].join("\n");
}

export const README_MARKERS = ["<!-- config-reference:start -->", "<!-- config-reference:end -->"] as const;

/** Replace the text between the README's markers with the current reference. */
export function withReference(readme: string): string {
  const [a, b] = README_MARKERS;
  const i = readme.indexOf(a);
  const j = readme.indexOf(b);
  if (i < 0 || j < i) throw new Error(`README has no ${a} ... ${b} section`);
  return `${readme.slice(0, i + a.length)}\n\n${referenceMarkdown()}\n\n${readme.slice(j)}`;
}
