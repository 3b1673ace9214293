/** Shared by the render and packer tests: configs, fixed inputs, the real tools (packer, shellcheck, HCL parser). */
import { spawn, spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parse as parseHclAsync } from "@cdktf/hcl2json";
import { parseConfig, type Config } from "../../src/config/load.js";
import { dockerHost, readStack } from "../../src/local/stack.js";
import { projectPath } from "../../src/paths.js";
import { writeRendered, type BakeInputs, type RenderedBake } from "../../src/render/packer.js";

/** The example config (every key at its default), as a user would copy it. */
export function exampleConfig(): Config {
  return configFrom(readFileSync(projectPath("imgtool.config.example.yaml"), "utf8"));
}

export function configFrom(yaml: string, baseDir = projectPath()): Config {
  const r = parseConfig(yaml, { source: "test.yaml", baseDir });
  if (!r.config) throw new Error(`test config is invalid:\n${r.errors.join("\n")}`);
  return r.config;
}

/** Inputs as a bake would pass them, fixed so that golden files are stable. */
export const FIXED_INPUTS: BakeInputs = {
  version: "v20261129-171500-1a2b3c4d",
  inputsHash: "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809",
  gitRevision: "0123456789abcdef0123456789abcdef01234567",
  rubyBenchCommit: "89abcdef0123456789abcdef0123456789abcdef",
  region: "us-east-1",
};

export interface Tool {
  code: number | null;
  /** stdout, then stderr. */
  out: string;
  stdout: string;
}

export function run(
  argv: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {},
): Tool {
  const r = spawnSync(argv[0]!, argv.slice(1), {
    cwd: opts.cwd,
    env: { ...process.env, CHECKPOINT_DISABLE: "1", ...opts.env },
    encoding: "utf8",
    input: opts.input,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  return { code: r.status, out: `${r.stdout}${r.stderr}`, stdout: r.stdout };
}

/** `packer version` ("Packer v1.6.6"), or undefined when Packer is not installed. */
export function packerVersion(): string | undefined {
  try {
    const r = run(["packer", "version"]);
    return r.code === 0 ? r.out.split("\n")[0]!.trim() : undefined;
  } catch {
    return undefined;
  }
}

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(tmpdir(), `imgtool-${prefix}-`));
}

/** Write a rendered bake to a new temporary folder. */
export async function writeTemp(r: RenderedBake, prefix = "render"): Promise<string> {
  const dir = tempDir(prefix);
  await writeRendered(r, dir);
  return dir;
}

/**
 * A copy of a rendered aws build folder that Packer 1.6.6 can validate: without the plugins file (1.6.6 does
 * not know `required_plugins`) and without exactly the settings of the newer amazon plugin that 1.6.6's
 * built-in amazon-ebs does not know: `imds_support`, `temporary_security_group_source_public_ip` and the
 * `metadata_options` block. The caller checks those
 * with the HCL parser. Returns the folder and how many of each were removed.
 */
export function forOldPacker(
  dir: string,
  r: RenderedBake,
): { dir: string; removed: { imds: number; metadata: number; sshFromBuilder: number } } {
  const copy = tempDir("old-packer");
  cpSync(dir, copy, { recursive: true });
  rmSync(path.join(copy, r.pluginsFile), { force: true });
  const removed = { imds: 0, metadata: 0, sshFromBuilder: 0 };
  if (r.target === "aws") {
    const file = path.join(copy, "sources.pkr.hcl");
    let text = readFileSync(file, "utf8");
    text = text.replace(/^ {2}imds_support {6}= "v2\.0"\n/gm, () => (removed.imds++, ""));
    text = text.replace(
      /^ {2}temporary_security_group_source_public_ip = true\n/gm,
      () => (removed.sshFromBuilder++, ""),
    );
    text = text.replace(
      /^ {2}metadata_options \{\n(?: {4}.*\n)+ {2}\}\n\n/gm,
      () => (removed.metadata++, ""),
    );
    writeFileSync(file, text);
  }
  return { dir: copy, removed };
}

/** HashiCorp's HCL parser (WASM): the file as HCL's JSON form. */
export async function parseHcl(name: string, text: string): Promise<Record<string, unknown>> {
  return (await parseHclAsync(name, text)) as Record<string, unknown>;
}

/**
 * A string from HCL's JSON form back to its value: JSON-HCL strings are templates, where a literal `${` is
 * written `$${` and a literal `%{` is `%%{` (the HCL spec's JSON syntax).
 */
export function hclJsonString(s: unknown): string {
  if (typeof s !== "string") throw new Error(`expected a string, got ${JSON.stringify(s)}`);
  return s.replace(/\$\$\{/g, "${").replace(/%%\{/g, "%{");
}

/** Source the rendered build.env with bash and return its IMGTOOL_* values, byte for byte. */
export function sourceBuildEnv(dir: string): Record<string, string> {
  const r = spawnSync(
    "bash",
    [
      "-c",
      'set -o errexit; set -o allexport; . ./build.env; for v in ${!IMGTOOL_@}; do printf "%s\\0%s\\0" "$v" "${!v}"; done',
    ],
    { cwd: dir, encoding: "utf8", env: { PATH: process.env.PATH } },
  );
  if (r.status !== 0) throw new Error(`sourcing build.env failed: ${r.stderr}`);
  const parts = r.stdout.split("\0");
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < parts.length; i += 2) out[parts[i]!] = parts[i + 1]!;
  return out;
}

/**
 * The Docker engine that scripts/setup started (stack.json; DOCKER_HOST wins), if it answers and has the
 * base image: `{ env }` for child processes, or `{ skip }` saying why a test cannot run here.
 */
export function localEngine(
  image = "imgtool/base:bookworm",
): { env: NodeJS.ProcessEnv; skip?: undefined } | { skip: string } {
  const host = dockerHost(readStack(projectPath(".imgtool")));
  const env = { DOCKER_HOST: host };
  const v = run(["docker", "version", "--format", "{{.Server.Version}}"], { env });
  if (v.code !== 0) return { skip: `no Docker engine answers at ${host} (run scripts/setup)` };
  if (run(["docker", "image", "inspect", image], { env }).code !== 0) {
    return { skip: `the base image ${image} is missing (scripts/setup builds it)` };
  }
  return { env };
}

/** Like {@link run}, without blocking the event loop (for tests whose own servers must keep answering). */
export function runAsync(
  argv: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<Tool> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: opts.cwd,
      env: { ...process.env, CHECKPOINT_DISABLE: "1", ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
    child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, out: stdout + stderr, stdout }));
  });
}
