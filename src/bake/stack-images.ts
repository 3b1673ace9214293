/**
 * A stack role's images at bake time (issue 9, section 2): read the user's compose.yaml, point its app services
 * at the role's image and every other service's image at the stack's registry, resolve each to a digest, and
 * render the compose file the instance starts (every image by digest: nothing is pulled at boot). The images
 * are then pre-loaded into the twin's store (local) or the AMI (aws) with the role's own.
 */
import { readFile } from "node:fs/promises";
import { parseDocument, isMap, stringify, type Document } from "yaml";
import type { BakedStack, StackConfig, StackVolume } from "../config/stack.js";
import type { Config } from "../config/load.js";
import { ROLES, type Role, type Target } from "../config/schema.js";
import { FailureError, UsageError } from "../errors.js";
import { RegistryClient, registryHost } from "../registry/client.js";
import { ecrRegionOf } from "../config/registry.js";

/** How the rendered compose file names the role's own image: set by the user-data to the image it runs. */
export const APP_IMAGE_VAR = "${IMGTOOL_IMAGE}";

/** A third-party image's place in the stack's registry: `postgres:15` -> repo library/postgres, tag 15. */
export function stackImageRef(image: string): { repo: string; reference: string } {
  let rest = image;
  let reference = "latest";
  const at = rest.indexOf("@");
  if (at >= 0) {
    reference = rest.slice(at + 1);
    rest = rest.slice(0, at);
  } else {
    const colon = rest.lastIndexOf(":");
    if (colon > rest.lastIndexOf("/")) {
      reference = rest.slice(colon + 1);
      rest = rest.slice(0, colon);
    }
  }
  const parts = rest.split("/");
  // A first part with a dot or a port (or localhost) is a registry host: the stack's registry replaces it.
  if (parts.length > 1 && /[.:]|^localhost$/.test(parts[0]!)) parts.shift();
  if (parts.length === 1) parts.unshift("library");
  return { repo: parts.join("/"), reference };
}

/**
 * The compose file as the instance runs it (pure): app services on {@link APP_IMAGE_VAR} with no build, every
 * other service's image replaced by `digests.get(its image)`. Throws a UsageError naming the service.
 */
export function renderStack(
  composeText: string,
  stack: Pick<StackConfig, "app_services" | "wait_for" | "file">,
  digests: Map<string, string>,
): { compose: string; waitFor: string[]; bridges: ReturnType<typeof projectBridges> } {
  const doc = parseCompose(composeText, stack.file);
  const services = doc.get("services") as { items: { key: { value: string } }[] } | undefined;
  const names = services && isMap(services) ? services.items.map((i) => String(i.key.value)) : [];
  const at = `roles.orchestrator.stack`;
  for (const s of [...stack.app_services, ...(stack.wait_for ?? [])]) {
    if (!names.includes(s))
      throw new UsageError(
        `${at}: names the service ${JSON.stringify(s)}, which ${stack.file} does not have (services: ${names.join(", ") || "none"}).`,
      );
  }
  for (const name of names) {
    if (stack.app_services.includes(name)) {
      doc.deleteIn(["services", name, "build"]);
      doc.setIn(["services", name, "image"], APP_IMAGE_VAR);
      continue;
    }
    const image = doc.getIn(["services", name, "image"]);
    if (typeof image !== "string" || !image) {
      throw new UsageError(
        `${stack.file}: services.${name} has no image; a stack service runs a published image (list it in ${at}.app_services if it is built from the role's app).`,
      );
    }
    const pinned = digests.get(image);
    if (!pinned) throw new Error(`internal: no digest resolved for ${image}`);
    doc.deleteIn(["services", name, "build"]);
    doc.setIn(["services", name, "image"], pinned);
  }
  return {
    compose: doc.toString(),
    waitFor: stack.wait_for ?? names,
    bridges: projectBridges(composeText, stack.file),
  };
}

/** The bridge option that names a network's interface; unset, the engine names it br-<12 characters of its id>. */
const BRIDGE_NAME_OPT = "com.docker.network.bridge.name";
/** Compose's own pattern for a network's key. */
const NETWORK_KEY_RE = /^[a-zA-Z0-9._-]+$/;

/** The variable through which a local instance gives the bridge of line N of `bridges` its name. */
export const bridgeVar = (line: number) => `IMGTOOL_STACK_BRIDGE_${line}`;

/**
 * The bridge networks the project creates (pure). `words`: one key per network a service is on (`default` for a
 * service without `networks:` or `network_mode:`), in order of first use, leaving out external networks and other
 * drivers. `override`: a Compose file that names each of them `${IMGTOOL_STACK_BRIDGE_<its line>}` ("" when there
 * is none), also one the compose file names itself (driver_opts com.docker.network.bridge.name: two local
 * instances must not share an interface); each network in it is the compose file's whole definition plus that
 * option, because Compose v1 takes a top-level network of a later file in place of the earlier one's, not merged
 * with it. (An older twin's list has `KEY=NAME` for a bridge the file names, which its override leaves out;
 * imgtool-stack still reads that.)
 * Why: a local instance (packer/scripts/lib/imgtool-stack) names each such bridge per instance and puts its
 * forwarding rule in before Compose runs at all, so one `compose up` starts the stack.
 */
export function projectBridges(composeText: string, file: string): { words: string[]; override: string } {
  const js = parseDocument(composeText, { merge: true }).toJS() as {
    version?: unknown;
    services?: Record<string, { networks?: unknown; network_mode?: unknown } | null>;
    networks?: Record<
      string,
      { external?: unknown; driver?: unknown; driver_opts?: Record<string, unknown> } | null
    >;
  };
  const used: string[] = [];
  for (const service of Object.values(js.services ?? {})) {
    if (service?.network_mode !== undefined) continue;
    const nets = service?.networks;
    const keys =
      nets === undefined || nets === null
        ? ["default"]
        : Array.isArray(nets)
          ? nets.map(String)
          : Object.keys(nets);
    for (const key of keys) if (!used.includes(key)) used.push(key);
  }
  const words: string[] = [];
  const named: Record<string, unknown> = {};
  for (const key of used) {
    if (!NETWORK_KEY_RE.test(key))
      throw new UsageError(
        `${file}: the network name ${JSON.stringify(key)} is not one Compose takes (letters, digits, ".", "_", "-").`,
      );
    const def = js.networks?.[key];
    if (def?.external) continue;
    if ((def?.driver ?? "bridge") !== "bridge") continue;
    const own = def?.driver_opts?.[BRIDGE_NAME_OPT];
    if (
      own !== undefined &&
      own !== null &&
      own !== "" &&
      !(typeof own === "string" && /^[^\s=/:$]{1,15}$/.test(own))
    )
      throw new UsageError(
        `${file}: networks.${key}.driver_opts["${BRIDGE_NAME_OPT}"] is ${JSON.stringify(own)}, not an interface name.`,
        {
          fix: 'Give 1 to 15 characters with no space, "=", "/", ":" or "$" (no variable), or leave it out.',
        },
      );
    // Named by the file or not, a local instance names it its own: every local instance shares this machine's
    // network namespace, where two engines would otherwise share one interface (and each chain pass the other's
    // traffic). On aws the override is never read and the file's name stands.
    named[key] = {
      ...def,
      driver_opts: { ...def?.driver_opts, [BRIDGE_NAME_OPT]: `\${${bridgeVar(words.length)}}` },
    };
    words.push(key);
  }
  const override = Object.keys(named).length
    ? // Compose v1 reads YAML 1.1: a string such as "on", "yes" or "1:30" stays quoted, a string.
      stringify(
        { ...(js.version !== undefined ? { version: js.version } : {}), networks: named },
        { compat: "yaml-1.1" },
      )
    : "";
  return { words, override };
}

/** A volume source that names a volume (Compose: not a path, `.`, `~`, or a variable). */
const VOLUME_KEY_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
/** A mount path the fill list carries as one word (absolute; no space, comma, colon or variable). */
const MOUNT_PATH_RE = /^\/[^\s,:$]*$/;

/**
 * The named volumes the bake can fill exactly as the engine would at boot (pure). A volume qualifies when the
 * compose file declares it with no settings (no `external`, `name`, `driver`, `driver_opts`, `labels`: Compose
 * would otherwise name, place or label it differently), exactly one mount in the whole file uses it (so which
 * image's content the engine copies is not a matter of creation order), not with `nocopy` or a `subpath`, and
 * that mount is a third-party service's that always runs (no `profiles`, not scaled to 0), whose image the
 * compose file pins by digest (an app service runs the image the launch names, which may be newer than the
 * bake's). A file whose mounts cannot be read without interpolation (`${...}`) or that uses `extends:` qualifies
 * none. Everything else is left to the engine at boot, as before.
 */
export function stackVolumes(
  composeText: string,
  stack: Pick<StackConfig, "app_services">,
  digests: Map<string, string>,
): StackVolume[] {
  const js = parseDocument(composeText, { merge: true }).toJS() as {
    services?: Record<
      string,
      {
        image?: unknown;
        volumes?: unknown;
        extends?: unknown;
        profiles?: unknown;
        scale?: unknown;
        deploy?: { replicas?: unknown };
      } | null
    >;
    volumes?: Record<string, unknown>;
  };
  const declared = js.volumes ?? {};
  const mounts = new Map<string, { service: string; path: unknown; nocopy: boolean }[]>();
  for (const [service, def] of Object.entries(js.services ?? {})) {
    if (def?.extends !== undefined) return [];
    const list = Array.isArray(def?.volumes) ? (def.volumes as unknown[]) : [];
    for (const entry of list) {
      let source: unknown;
      let path: unknown;
      let nocopy = false;
      if (typeof entry === "string") {
        if (entry.includes("$")) return [];
        const parts = entry.split(":");
        if (parts.length < 2) continue; // an anonymous volume
        [source, path] = parts;
        nocopy = (parts[2] ?? "").split(",").includes("nocopy");
      } else if (entry && typeof entry === "object") {
        const m = entry as {
          type?: unknown;
          source?: unknown;
          target?: unknown;
          volume?: { nocopy?: unknown; subpath?: unknown };
        };
        if (JSON.stringify(m).includes("$")) return [];
        if (m.type !== undefined && m.type !== "volume") continue;
        source = m.source;
        path = m.target;
        // A subpath mount sees a folder of the volume, not its root, where the engine's copy goes.
        nocopy = m.volume?.nocopy === true || m.volume?.subpath !== undefined;
      }
      if (typeof source !== "string" || !VOLUME_KEY_RE.test(source) || !Object.hasOwn(declared, source))
        continue;
      mounts.set(source, [...(mounts.get(source) ?? []), { service, path, nocopy }]);
    }
  }
  const out: StackVolume[] = [];
  for (const [key, uses] of mounts) {
    const def = declared[key];
    const plain =
      def === null || (typeof def === "object" && !Array.isArray(def) && Object.keys(def).length === 0);
    if (!plain || uses.length !== 1) continue;
    const { service, path, nocopy } = uses[0]!;
    if (nocopy || stack.app_services.includes(service)) continue;
    // A service that may not run (a profile, no replicas): Compose v2 would not make its volume at all.
    const runs = js.services?.[service];
    if (runs?.profiles !== undefined || runs?.scale === 0 || runs?.deploy?.replicas === 0) continue;
    if (typeof path !== "string" || !MOUNT_PATH_RE.test(path)) continue;
    const image = js.services?.[service]?.image;
    const pinned = typeof image === "string" ? digests.get(image) : undefined;
    if (pinned) out.push({ key, path, image: pinned });
  }
  return out.sort((a, b) => a.key.localeCompare(b.key));
}

/** The third-party images of a compose file (every non-app service's `image`). */
export function thirdPartyImages(composeText: string, stack: Pick<StackConfig, "app_services" | "file">) {
  const doc = parseCompose(composeText, stack.file);
  const out = new Set<string>();
  const services = doc.get("services");
  if (!isMap(services)) return [];
  for (const item of services.items) {
    const name = String((item.key as { value: unknown }).value);
    if (stack.app_services.includes(name)) continue;
    const image = doc.getIn(["services", name, "image"]);
    if (typeof image === "string" && image) out.add(image);
  }
  return [...out];
}

function parseCompose(text: string, file: string): Document {
  const doc = parseDocument(text);
  if (doc.errors.length)
    throw new UsageError(`${file} is not valid YAML: ${doc.errors[0]!.message.split("\n")[0]}`);
  if (!isMap(doc.get("services")))
    throw new UsageError(`${file} has no services: a Compose file lists its services under services:`);
  return doc;
}

export interface ResolveStackOptions {
  stack: StackConfig;
  target: Target;
  /** The role's published image (URI@sha256:...): the app services run it. */
  appImage: string;
  /** run.settle_seconds of the role. */
  settleSeconds: number;
  /** The registry third-party images come from (host[:port][/path]) and its login. */
  registry: { endpoint: string; user: string; password: string };
  fetch?: typeof fetch;
}

async function readComposeFile(stack: StackConfig, role: Role): Promise<string> {
  try {
    return await readFile(stack.file, "utf8");
  } catch (e) {
    throw new UsageError(
      `roles.${role}.stack.file: cannot read ${stack.file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}).`,
      { fix: "Give the path of your compose.yaml, relative to the config file." },
    );
  }
}

/** The path part of a registry endpoint (`host/docker-hub` -> `docker-hub`; none -> ""). */
function registryPrefix(endpoint: string): string {
  return endpoint
    .replace(/^[a-z]+:\/\//i, "")
    .slice(registryHost(endpoint).length)
    .replace(/^\/+|\/+$/g, "");
}

/**
 * aws: the ECR repositories the bake reads the stacks' third-party images from (for `iam-policy --for bake`):
 * each image's repository under the path of roles.<role>.stack.registry.aws, as the bake looks it up.
 */
export async function stackRepositories(config: Config): Promise<string[]> {
  const out = new Set<string>();
  for (const role of ROLES) {
    const stack = config.roles[role].stack;
    if (!stack) continue;
    const prefix = stack.registry.aws ? registryPrefix(stack.registry.aws) : "";
    for (const image of thirdPartyImages(await readComposeFile(stack, role), stack)) {
      const { repo } = stackImageRef(image);
      out.add(prefix ? `${prefix}/${repo}` : repo);
    }
  }
  return [...out].sort();
}

/** A loopback registry host: plain HTTP, as Docker itself talks to one (its default insecure registries). */
const LOOPBACK = /^(?:127(?:\.\d{1,3}){3}|localhost|\[::1\])(?::\d+)?$/;

/** Read the compose file, resolve every third-party image to a digest in the stack's registry, render. */
export async function resolveStack(o: ResolveStackOptions): Promise<BakedStack> {
  const text = await readComposeFile(o.stack, "orchestrator");
  const host = registryHost(o.registry.endpoint);
  const prefix = registryPrefix(o.registry.endpoint);
  const client = new RegistryClient({
    endpoint: `${o.target === "local" || LOOPBACK.test(host) ? "http" : "https"}://${host}`,
    credentials: () => Promise.resolve({ username: o.registry.user, password: o.registry.password }),
    ...(o.fetch ? { fetch: o.fetch } : {}),
  });
  const digests = new Map<string, string>();
  for (const image of thirdPartyImages(text, o.stack)) {
    const { repo: bare, reference } = stackImageRef(image);
    const repo = prefix ? `${prefix}/${bare}` : bare;
    const found = await client.headManifest(repo, reference);
    if (!found) {
      throw new FailureError(
        `The stack image ${image} is not in the stack's registry: ${host}/${repo}:${reference} was not found.`,
        {
          fix:
            o.target === "local"
              ? "scripts/setup (scripts/build-stack-images) puts library/postgres:15 there; push other images to that repository."
              : "Push the image to that repository (or set roles.orchestrator.stack.registry.aws to a pull-through cache).",
        },
      );
    }
    digests.set(image, `${host}/${repo}@${found.digest}`);
  }
  const { compose, waitFor, bridges } = renderStack(text, o.stack, digests);
  return {
    compose,
    volumes: stackVolumes(text, o.stack, digests),
    bridges: bridges.words,
    bridgesOverride: bridges.override,
    images: [o.appImage, ...new Set(digests.values())],
    waitFor,
    settleMs: Math.round(o.settleSeconds * 1000),
  };
}

/**
 * The bake's stack step: undefined when the role is no stack. The registry of third-party images: the config's
 * (stack.registry.<target>), else the project's local registry (local) or the role image's registry (aws).
 */
export async function bakeStack(o: {
  stack: StackConfig | undefined;
  target: Target;
  imageRef: string | undefined;
  settleSeconds: number;
  /** local: the local registry's login. */
  localRegistry?: { endpoint: string; user: string; password: string };
  /** aws: a login to the registry of an image. */
  login?: (imageRef: string) => Promise<{ endpoint: string; user: string; password: string }>;
}): Promise<BakedStack | undefined> {
  if (!o.stack) return undefined;
  if (!o.imageRef) {
    throw new UsageError(
      "roles.orchestrator.stack: the stack's app services run the role's image, and none is published yet.",
      { fix: "Run `imgtool push image --role orchestrator` first (imgtool pipeline does), then bake." },
    );
  }
  const configured = o.stack.registry[o.target];
  let registry: { endpoint: string; user: string; password: string } | undefined;
  if (o.target === "local") {
    registry = o.localRegistry && {
      ...o.localRegistry,
      endpoint: configured ?? o.localRegistry.endpoint,
    };
  } else if (o.login) {
    // One ECR token opens every registry the bake's principal may read, in the region it was asked in: the
    // role image's, where the pre-load pulls with it. A stack registry elsewhere would answer 401 at the pull.
    const stackRegion = configured ? ecrRegionOf(configured) : undefined;
    const imageRegion = ecrRegionOf(o.imageRef);
    if (stackRegion && imageRegion && stackRegion !== imageRegion) {
      throw new UsageError(
        `roles.orchestrator.stack.registry.aws: ${configured} is in ${stackRegion}, the role's image registry in ${imageRegion}; the bake pulls the stack's images with one ECR token, which works in one region.`,
        { fix: `Name a registry (or a pull-through cache) in ${imageRegion}.` },
      );
    }
    const creds = await o.login(o.imageRef);
    registry = { ...creds, endpoint: configured ?? registryHost(o.imageRef) };
  }
  if (!registry) throw new Error("internal: no registry login for the stack's images");
  return resolveStack({
    stack: o.stack,
    target: o.target,
    appImage: o.imageRef,
    settleSeconds: o.settleSeconds,
    registry,
  });
}
