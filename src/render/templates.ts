/**
 * Handlebars, set up once for imgtool's templates: strict (a missing value is an error, not an empty
 * string), no HTML escaping, and one helper per output context: {{hcl v}} (and {{hclInner v}}, the inside of
 * an HCL string next to interpolations), {{sh v}}, {{dockerString v}},
 * {{dockerExec list}}, {{json v}}. Every template also gets the key table of src/config/tags.ts as `tag`,
 * `label` and `imageLabel`. Packer's own `{{ .Path }}` syntax is written `\{{ .Path }}` in templates.
 */
import Handlebars from "handlebars";
import { readFileSync } from "node:fs";
import { dockerfileExec, dockerfileString, hclString, hclStringContent, shellWord } from "./escape.js";
import { projectPath } from "../paths.js";
import { TEMPLATE_KEYS } from "../config/tags.js";

const hb = Handlebars.create();
hb.registerHelper("hcl", (v: unknown) => hclString(String(v)));
hb.registerHelper("hclInner", (v: unknown) => hclStringContent(String(v)));
hb.registerHelper("sh", (v: unknown) => shellWord(String(v)));
hb.registerHelper("dockerString", (v: unknown) => dockerfileString(String(v)));
hb.registerHelper("dockerExec", (v: unknown) => dockerfileExec((v as unknown[]).map(String)));
hb.registerHelper("json", (v: unknown) => JSON.stringify(v));
hb.registerHelper(
  "hclList",
  (v: unknown) => `[${(v as unknown[]).map((x) => hclString(String(x))).join(", ")}]`,
);
hb.registerHelper("eq", (a: unknown, b: unknown) => a === b);

const cache = new Map<string, HandlebarsTemplateDelegate>();

/** Render a template file under templates/ with the given context. */
export function renderTemplate(name: string, context: object): string {
  let t = cache.get(name);
  if (!t) {
    t = hb.compile(readFileSync(projectPath("templates", name), "utf8"), { strict: true, noEscape: true });
    cache.set(name, t);
  }
  return t({ ...TEMPLATE_KEYS, ...context });
}

/** Render template text (tests, user-supplied templates). */
export function renderString(text: string, context: object): string {
  return hb.compile(text, { strict: true, noEscape: true })(context);
}
