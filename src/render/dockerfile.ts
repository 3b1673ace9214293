/**
 * Dockerfiles: rendering the role's Dockerfile from templates/Dockerfile.hbs, and reading any Dockerfile's
 * instructions with their line numbers (parser directives, comments, line continuations), so that a build
 * error names the line, an unknown instruction is refused before any work, and the base images of a
 * user's own Dockerfile can be resolved and hashed.
 */
import type { Role } from "../config/schema.js";
import { IMAGE_LABEL } from "../config/tags.js";
import { renderTemplate } from "./templates.js";

export interface Instruction {
  /** 1-based line where the instruction starts. */
  line: number;
  /** Upper-case keyword: FROM, RUN, COPY, ... */
  keyword: string;
  /** Everything after the keyword, continuation lines joined. */
  args: string;
}

/** Instructions the classic builder (Docker Engine 20.10) knows. */
export const KNOWN_INSTRUCTIONS = new Set([
  "ADD",
  "ARG",
  "CMD",
  "COPY",
  "ENTRYPOINT",
  "ENV",
  "EXPOSE",
  "FROM",
  "HEALTHCHECK",
  "LABEL",
  "MAINTAINER",
  "ONBUILD",
  "RUN",
  "SHELL",
  "STOPSIGNAL",
  "USER",
  "VOLUME",
  "WORKDIR",
]);

export class DockerfileSyntaxError extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(message);
    this.name = "DockerfileSyntaxError";
  }
}

/** Read a Dockerfile's instructions, in order. */
export function parseDockerfile(text: string): Instruction[] {
  const lines = text.split(/\r?\n/);
  let escape = "\\";
  let i = 0;
  // Parser directives: `# key=value` lines at the very top.
  for (; i < lines.length; i++) {
    const d = /^#\s*([a-zA-Z]+)\s*=\s*(\S+)\s*$/.exec(lines[i]!);
    if (!d) break;
    if (d[1]!.toLowerCase() === "escape") escape = d[2]!;
  }
  const out: Instruction[] = [];
  while (i < lines.length) {
    const raw = lines[i]!;
    const trimmed = raw.trim();
    if (trimmed === "" || trimmed.startsWith("#")) {
      i++;
      continue;
    }
    const start = i + 1;
    let body = "";
    let cur = raw;
    for (;;) {
      const t = cur.replace(/\s+$/, "");
      if (t.endsWith(escape)) {
        body += `${t.slice(0, -escape.length)} `;
        i++;
        // Inside a continuation, comment lines and empty lines are skipped.
        while (i < lines.length && (/^\s*#/.test(lines[i]!) || lines[i]!.trim() === "")) i++;
        if (i >= lines.length) break;
        cur = lines[i]!;
        continue;
      }
      body += t;
      i++;
      break;
    }
    const m = /^\s*(\S+)\s*(.*)$/s.exec(body);
    out.push({ line: start, keyword: m![1]!.toUpperCase(), args: (m![2] ?? "").trim() });
  }
  return out;
}

/** Refuse what the builder would refuse: an unknown instruction, or no FROM before the first build step. */
export function checkDockerfile(instructions: Instruction[]): void {
  let sawFrom = false;
  for (const ins of instructions) {
    if (!KNOWN_INSTRUCTIONS.has(ins.keyword)) {
      throw new DockerfileSyntaxError(`unknown instruction: ${ins.keyword}`, ins.line);
    }
    if (ins.keyword === "FROM") sawFrom = true;
    else if (!sawFrom && ins.keyword !== "ARG") {
      throw new DockerfileSyntaxError(`${ins.keyword} before the first FROM`, ins.line);
    }
  }
  if (!sawFrom) throw new DockerfileSyntaxError("no FROM instruction", instructions[0]?.line ?? 1);
}

/** Substitute `$NAME` / `${NAME}` / `${NAME:-default}` as the builder does for FROM. */
function substitute(value: string, vars: Record<string, string>): string {
  return value.replace(
    /\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::([-+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g,
    (_all, braced: string | undefined, op: string | undefined, word: string | undefined, bare?: string) => {
      const name = (braced ?? bare)!;
      const v = vars[name];
      if (op === "-") return v ? v : (word ?? "");
      if (op === "+") return v ? (word ?? "") : "";
      return v ?? "";
    },
  );
}

/**
 * The images the Dockerfile's stages start from (FROM, after ARG substitution with the build args), without
 * `scratch` and without earlier stages' names.
 */
export function baseImagesOf(instructions: Instruction[], buildArgs: Record<string, string>): string[] {
  const vars: Record<string, string> = {};
  const stages = new Set<string>();
  const out: string[] = [];
  let inStage = false;
  for (const ins of instructions) {
    if (ins.keyword === "ARG" && !inStage) {
      for (const decl of ins.args.split(/\s+/).filter(Boolean)) {
        const [name, ...rest] = decl.split("=");
        if (!name) continue;
        const dflt = rest.length ? rest.join("=").replace(/^"(.*)"$/, "$1") : undefined;
        const v = buildArgs[name] ?? dflt;
        if (v !== undefined) vars[name] = v;
      }
    }
    if (ins.keyword !== "FROM") continue;
    inStage = true;
    const words = ins.args.split(/\s+/).filter((w) => !w.startsWith("--"));
    const image = substitute(words[0] ?? "", vars);
    if (words[1]?.toUpperCase() === "AS" && words[2]) stages.add(words[2].toLowerCase());
    if (image && image !== "scratch" && !stages.has(image.toLowerCase()) && !out.includes(image))
      out.push(image);
  }
  return out;
}

/** The instruction a classic-builder step number stands for (steps count every instruction, ARG included). */
export function instructionOfStep(instructions: Instruction[], step: number): Instruction | undefined {
  return instructions[step - 1];
}

export interface RenderOptions {
  role: Role;
  /** Names of the config's build args: each gets an ARG line (names are checked: letters, digits, _). */
  buildArgNames: string[];
  /**
   * The orchestrator has an HTTP check (roles.orchestrator.run.health.http): its HEALTHCHECK asks it, at the
   * path, port and status of {@link healthBuildArgs}; without one, `HEALTHCHECK NONE`.
   * @default true
   */
  httpHealth?: boolean;
}

/** The orchestrator's HTTP check as the config gives it (roles.orchestrator.run.health.http). */
export interface HttpHealthCheck {
  path: string;
  port?: number | undefined;
  status?: number | undefined;
}

/**
 * The build args that carry the orchestrator's HTTP check into its image, for docker/orchestrator/bin/
 * imgtool-healthcheck: the path, the port (empty: the orchestrator's PORT) and the status (empty: any 2xx).
 */
export function healthBuildArgs(http: HttpHealthCheck | undefined): Record<string, string> {
  if (!http) return {};
  return {
    IMGTOOL_HEALTH_PATH: http.path,
    IMGTOOL_HEALTH_PORT: http.port === undefined ? "" : String(http.port),
    IMGTOOL_HEALTH_STATUS: http.status === undefined ? "" : String(http.status),
  };
}

const ARG_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Build args the rendered Dockerfile itself declares; config build args may not reuse them. */
export const RESERVED_BUILD_ARGS = [
  "BASE_IMAGE",
  "IMGTOOL_PACKAGES",
  "RUBY_BENCH_REF",
  "RUBY_BENCH_COMMIT",
  ...Object.keys(healthBuildArgs({ path: "/" })),
];

/**
 * The provisioning scripts (under packer/scripts/) that the rendered Dockerfile runs, as the AMI does: they go
 * into the build context under imgtool/scripts/. Only these: a change to another script rebuilds no image.
 */
export const CONTAINER_SCRIPTS = ["install-packages.sh", "lib/common.sh", "lib/core.sh"];

/** Build args that carry the rendered Dockerfile's OCI label values (set at build time, not hashed). */
export const LABEL_BUILD_ARGS = {
  "org.opencontainers.image.created": "IMGTOOL_CREATED",
  "org.opencontainers.image.source": "IMGTOOL_SOURCE",
  "org.opencontainers.image.revision": "IMGTOOL_REVISION",
  "org.opencontainers.image.title": "IMGTOOL_TITLE",
  "org.opencontainers.image.base.name": "IMGTOOL_BASE_NAME",
  "org.opencontainers.image.base.digest": "IMGTOOL_BASE_DIGEST",
  [IMAGE_LABEL.inputsHash]: "IMGTOOL_INPUTS_HASH",
} as const;

/**
 * The role's Dockerfile. Its text depends only on the role, the NAMES of the build args and whether the
 * orchestrator has an HTTP check: every config value (base image, packages, the ruby-bench ref, the health
 * check's path and port, build-arg values) arrives as a build arg, never as text.
 */
export function renderDockerfile(opts: RenderOptions): string {
  for (const name of opts.buildArgNames) {
    if (!ARG_NAME_RE.test(name)) throw new Error(`renderDockerfile: build-arg name ${JSON.stringify(name)}`);
  }
  return renderTemplate("Dockerfile.hbs", {
    role: opts.role,
    taskRunner: opts.role === "task-runner",
    orchestrator: opts.role === "orchestrator",
    httpHealth: opts.httpHealth ?? true,
    buildArgNames: [...opts.buildArgNames].sort(),
  });
}
