/**
 * One escaping helper per context that config values reach: HCL strings, shell words, Dockerfile strings, and
 * values that Packer reads as its own Go templates.
 * A hostile value (quotes, backslashes, `${`, `%{`, `$(...)`, backticks, newlines) comes out inert and arrives
 * byte-for-byte.
 */

/** A quoted HCL string literal: `"..."` with `\`, `"`, control characters, `${` and `%{` escaped. */
export function hclString(value: string): string {
  return `"${hclStringContent(value)}"`;
}

/**
 * The inside of an HCL string literal, for a value placed next to interpolations in one template string
 * (`"${local.prefix}-<here>"`): the same escapes as {@link hclString}, without the quotes.
 */
export function hclStringContent(value: string): string {
  let out = "";
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    const next = value[i + 1];
    if (c === "\\") out += "\\\\";
    else if (c === '"') out += '\\"';
    else if (c === "\n") out += "\\n";
    else if (c === "\r") out += "\\r";
    else if (c === "\t") out += "\\t";
    else if (c === "$" && next === "{") out += "$$";
    else if (c === "%" && next === "{") out += "%%";
    else if (c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)
      out += `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
    else out += c;
  }
  return out;
}

/** One shell word, single-quoted: nothing inside is expanded. */
export function shellWord(value: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * A double-quoted Dockerfile string (LABEL, ENV, ARG defaults): `\`, `"` and `$` escaped. A newline would end
 * the instruction, so it is refused: pass such values as build args, which never enter the Dockerfile text.
 */
export function dockerfileString(value: string): string {
  if (/[\r\n]/.test(value)) {
    throw new Error(
      `a Dockerfile string cannot hold a newline: ${JSON.stringify(value)}; pass it as a build arg`,
    );
  }
  return `"${value.replace(/[\\"$]/g, (c) => `\\${c}`)}"`;
}

/** Exec-form JSON array for RUN/CMD/ENTRYPOINT/HEALTHCHECK: parsed as JSON by Docker, never by a shell. */
export function dockerfileExec(argv: string[]): string {
  return JSON.stringify(argv);
}

/**
 * Packer expands `{{ ... }}` as its own (Go) template syntax in most builder and provisioner settings, after HCL
 * has evaluated them, and some settings (file sources, environment_vars) twice: no single escape survives that.
 * Values that reach such settings must not contain `{{`; this returns the reason when one does.
 */
export function packerTemplateProblem(value: string): string | undefined {
  return value.includes("{{")
    ? 'contains "{{", which Packer reads as its own template syntax in this setting'
    : undefined;
}
