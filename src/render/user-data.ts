/**
 * The instances' user-data: one template per role (templates/user-data/<role>.sh.hbs, sharing common.sh.hbs),
 * every value a single-quoted shell word ({@link shellWord}), no secret in it (only where to read one at boot).
 * Pure: rendering and EC2's 16 KB check, nothing else.
 */
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { ecrRegionOf } from "../config/registry.js";
import type { Role, Target } from "../config/schema.js";
import { UsageError } from "../errors.js";
import { renderTemplate } from "./templates.js";
import { renderWorkloadShell, type WorkloadShellInput } from "./workload-shell.js";

/**
 * EC2's limit on user-data: 16 KB "in raw form, before it is base64-encoded" (EC2 User Guide, "Work with instance
 * user data"). Raw form is what imgtool sends: the gzip when compressed, so the check counts those bytes.
 */
export const USER_DATA_LIMIT = 16_384;

export type Compression = "none" | "gzip";

export interface UserDataValues {
  role: Role;
  target: Target;
  pipeline: string;
  runId: string;
  /** The version of the image to run (catalog), for the log. */
  version: string;
  /** The image to run, URI@sha256:... */
  image: string;
  /** The image pre-loaded into the AMI or twin at bake time ("none" when nothing was). */
  bakedImage: string;
  /** Registry host of `image`, its user, and how the instance gets the password at boot. */
  registry: { host: string; user: string; auth: "ecr" | "file"; passwordFile: string };
  /** Where the instance reads the orchestrator's API key at boot: an SSM SecureString, or a file (local). */
  secret: { source: "ssm" | "file"; parameter: string };
  region: string;
  workers: "auto" | number;
  restartPolicy: string;
  engineWaitSeconds: number;
  /**
   * aws: the SSM path the instance publishes its readiness record under (`<ssm_prefix>/runs/<run id>`, the record
   * is `<path>/<instance id>`); local: "" (the launcher reads the marker).
   */
  recordPrefix: string;
  /** task-runner: the orchestrator's URL. */
  orchestratorUrl?: string;
  /** task-runner: most seconds its pre-warm step may read (boot_budget.pre_warm.seconds). */
  prewarmLimitSeconds?: number;
  /** orchestrator: its port. */
  port?: number;
  /** Extra environment of the workers, passed to `docker run --env NAME=VALUE` as one word each. */
  workerEnv: Record<string, string>;
  /** What the role runs (roles.<role>.run) and the values its placeholders need. */
  workload: Omit<WorkloadShellInput, "role" | "target">;
}

export interface UserData {
  role: Role;
  /** The script. */
  text: string;
  /** What goes to EC2 (or the local instance): the script, or its gzip when configured. */
  bytes: Buffer;
  compression: Compression;
}

/** The registry host of an image reference (`host[:port]/name@sha256:...`), or docker.io. */
export function registryHost(image: string): string {
  const first = image.split("/")[0] ?? "";
  return image.includes("/") && (first.includes(".") || first.includes(":") || first === "localhost")
    ? first
    : "docker.io";
}

export function renderUserDataText(v: UserDataValues): string {
  // These also go into the script's comment lines, unquoted: only ever validated names (checked upstream).
  if (!/^[a-z0-9-]+$/.test(v.pipeline) || !/^[a-z0-9-]+$/.test(v.runId)) {
    throw new Error(
      `user-data: pipeline ${JSON.stringify(v.pipeline)} / run id ${JSON.stringify(v.runId)} not validated`,
    );
  }
  const base = {
    pipeline: v.pipeline,
    runId: v.runId,
    target: v.target,
    version: v.version,
    image: v.image,
    bakedImage: v.bakedImage,
    registry: v.registry.host,
    registryUser: v.registry.user,
    registryAuth: v.registry.auth,
    registryPasswordFile: v.registry.passwordFile,
    secretSource: v.secret.source,
    region: v.region,
    // An ECR token is good for its own region's registry only: the image's registry may be in another region
    // than the instance (a launch with --region), so the login asks that region.
    registryRegion: ecrRegionOf(v.image) ?? v.region,
    workers: String(v.workers),
    restartPolicy: v.restartPolicy,
    engineWaitSeconds: String(v.engineWaitSeconds),
    recordPrefix: v.recordPrefix,
    workerEnv: Object.entries(v.workerEnv).map(([k, val]) => `${k}=${val}`),
    workload: renderWorkloadShell({ ...v.workload, role: v.role, target: v.target }),
    common: withoutComments(renderTemplate("user-data/common.sh.hbs", {})),
  };
  if (v.role === "task-runner") {
    if (v.orchestratorUrl === undefined) throw new Error("task-runner user-data needs the orchestrator URL");
    if (v.prewarmLimitSeconds === undefined)
      throw new Error("task-runner user-data needs its pre-warm limit");
    return renderTemplate("user-data/task-runner.sh.hbs", {
      ...base,
      orchestratorUrl: v.orchestratorUrl,
      // To the millisecond (the script compares its elapsed milliseconds with it), at least one.
      prewarmLimitSeconds: Math.max(0.001, v.prewarmLimitSeconds).toFixed(3),
    });
  }
  if (v.port === undefined) throw new Error("orchestrator user-data needs its port");
  return renderTemplate("user-data/orchestrator.sh.hbs", { ...base, port: String(v.port) });
}

/**
 * The shared functions without their comment lines (shellcheck directives stay): about 3 KB of EC2's 16 KB, and
 * safe to drop there only, since that part holds no value of the config (rendered from the template alone). The
 * comments stay in templates/user-data/common.sh.hbs, which the script's header names.
 */
function withoutComments(text: string): string {
  const lines = text.split("\n").filter((l) => !/^\s*#(?!\s*shellcheck )/.test(l));
  return [
    "# The boot steps every role shares: templates/user-data/common.sh.hbs, with its comments.",
    ...lines,
  ].join("\n");
}

export function encodeUserData(text: string, compression: Compression): Buffer {
  const raw = Buffer.from(text, "utf8");
  return compression === "gzip" ? gzipSync(raw, { level: 9 }) : raw;
}

export function renderUserData(v: UserDataValues, compression: Compression): UserData {
  const text = renderUserDataText(v);
  return { role: v.role, text, bytes: encodeUserData(text, compression), compression };
}

/** Throw a usage error naming the size when `bytes` is over EC2's limit. */
export function checkUserDataSize(
  role: Role,
  size: number,
  opts: { compression: Compression; bound?: boolean },
): void {
  if (size <= USER_DATA_LIMIT) return;
  const what = opts.compression === "gzip" ? "gzip-compressed user-data" : "user-data";
  throw new UsageError(
    `The ${role}'s ${what} ${opts.bound ? "can reach" : "is"} ${size} bytes, over EC2's limit of ${USER_DATA_LIMIT} ` +
      `bytes (by ${size - USER_DATA_LIMIT}). Nothing was launched.`,
    {
      fix:
        (opts.compression === "none" ? "Set launch.user_data_compression: gzip, or shorten " : "Shorten ") +
        `launch.worker_env.${role} (the values that grow the script).` +
        (opts.bound
          ? " This check runs before any AWS call, with the longest values the catalog can hold (image reference, version)."
          : ""),
    },
  );
}

// The longest values the catalog can hand the template: a 255-character repository name with its digest, a
// 100-character version label. Pseudo-random hex (a SHA-256 chain), so that gzip compresses them no better than
// real digests: a repeating pattern would shrink to a few bytes and the bound would be no bound with gzip.
const LONG_HEX = (n: number, seed: string) => {
  let out = "";
  for (let i = 0; out.length < n; i++) out += createHash("sha256").update(`${seed}-${i}`).digest("hex");
  return out.slice(0, n);
};
// Each value its own stream, so that no value repeats another for gzip to find (the registry host is the image's
// own, as it is in a real launch; the baked image may come from any registry).
const WORST_IMAGE = `${LONG_HEX(250, "host")}.io/x@sha256:${LONG_HEX(64, "image")}`;
/** Bytes added to the gzip of the worst case: see {@link worstCaseSize}. */
export const GZIP_SLACK = 32;
const WORST_BAKED = `${LONG_HEX(250, "baked-host")}.io/x@sha256:${LONG_HEX(64, "baked")}`;

/**
 * The user-data as large as it can get once the catalog's values are known: checked before any API call, so
 * that a config that cannot fit fails with no request made. The real script, rendered after resolving, is never
 * larger (and is checked again).
 */
export function worstCaseSize(v: UserDataValues, compression: Compression): number {
  const worst: UserDataValues = {
    ...v,
    version: `v${LONG_HEX(99, "version")}`,
    image: WORST_IMAGE,
    bakedImage: WORST_BAKED,
    registry: { ...v.registry, host: WORST_IMAGE.split("/")[0]! },
    ...(v.role === "task-runner" ? { orchestratorUrl: `http://255.255.255.255:${v.port ?? 65535}` } : {}),
  };
  // gzip's size depends a little on which digits a digest happens to have (its Huffman tables): the slack covers
  // that (a few bytes, measured in the tests over many random digests).
  const slack = compression === "gzip" ? GZIP_SLACK : 0;
  const size = encodeUserData(renderUserDataText(worst), compression).length + slack;
  return Math.max(size, encodeUserData(renderUserDataText(v), compression).length);
}
