/**
 * What the push tests share: the real local stack (engine and registry from stack.json), a temporary project
 * per test (config, state folder with its own catalog, a stack.json pointing at the real engine and at the
 * registry or a proxy in front of it, a unique pipeline so repositories never collide), the real
 * dependencies of the flow with the engine wrapped to count builds and pushes, and small docker helpers.
 */
import { randomBytes } from "node:crypto";
import { cpSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Catalog } from "../../src/catalog/catalog.js";
import { SqliteStore } from "../../src/catalog/sqlite-store.js";
import { loadConfig, parseConfig, type Config } from "../../src/config/load.js";
import { connectDocker, dockerEngine, type DockerEngine } from "../../src/docker/engine.js";
import { recordingSink } from "../../src/events.js";
import { exec } from "../../src/exec.js";
import { requireStack, registryPassword, stackFile, type LocalStack } from "../../src/local/stack.js";
import { projectPath } from "../../src/paths.js";
import { RegistryLogin, localTokenSource } from "../../src/push/login.js";
import type { PushDeps } from "../../src/push/push.js";
import { gitRubyBench } from "../../src/push/ruby-bench.js";
import { tarStream } from "../../src/docker/tar.js";

/** The stack scripts/setup started, from the project's own state folder. */
export function realStack(): LocalStack {
  const { config } = loadConfig("imgtool.config.yaml", { explicit: false, cwd: projectPath() });
  return requireStack(config.local.state_dir);
}

export const stack = realStack();
export const docker = connectDocker(stack.docker.host);
export const engine = dockerEngine(docker);
export const password = registryPassword(stack);
export const registryAuth = (host = stack.registry.endpoint) => ({
  username: stack.registry.user,
  password,
  serveraddress: host,
});

/** A pipeline name no other test run uses. */
export const uniquePipeline = () => `t${randomBytes(5).toString("hex")}`;

export interface TempProject {
  dir: string;
  configFile: string;
  stateDir: string;
  pipeline: string;
  config: Config;
}

/**
 * A project folder with a config (the YAML given, plus pipeline and state folder) and a stack.json that points
 * at the real engine and at `registry` (default: the real registry; pass a proxy's host to put it between).
 */
export function tempProject(yaml = "", opts: { registry?: string } = {}): TempProject {
  const dir = mkdtempSync(path.join(tmpdir(), "imgtool-push-"));
  const stateDir = path.join(dir, "state");
  mkdirSync(stateDir, { recursive: true });
  // The default build contexts (examples/<role>, relative to the config file) are the project's.
  symlinkSync(projectPath("examples"), path.join(dir, "examples"));
  const pipeline = uniquePipeline();
  const configFile = path.join(dir, "imgtool.config.yaml");
  writeFileSync(configFile, `pipeline: ${pipeline}\nlocal:\n  state_dir: ${stateDir}\n${yaml}`);
  const registry = opts.registry ?? stack.registry.endpoint;
  const s: LocalStack = {
    ...stack,
    registry: { ...stack.registry, endpoint: registry, port: Number(registry.split(":")[1]) },
    stateDir,
  };
  writeFileSync(stackFile(stateDir), JSON.stringify(s, null, 2));
  const r = parseConfig(`pipeline: ${pipeline}\nlocal:\n  state_dir: ${stateDir}\n${yaml}`, {
    source: configFile,
    baseDir: dir,
  });
  return {
    dir,
    configFile,
    stateDir,
    pipeline,
    // Tests of bad config never ask for it; the others get the parsed config.
    get config(): Config {
      if (!r.config) throw new Error(`bad test config:\n${r.errors.join("\n")}`);
      return r.config;
    },
  };
}

/** A copy of examples/<role> that a test may change. */
export function copyExample(role: string, into: string): string {
  const dest = path.join(into, role);
  cpSync(projectPath("examples", role), dest, { recursive: true });
  return dest;
}

/** The engine, counting builds and pushes (and letting a test replace one call). */
export function countingEngine(
  inner: DockerEngine = engine,
): DockerEngine & { builds: number; pushes: number } {
  const e = {
    ...inner,
    builds: 0,
    pushes: 0,
    build: (...a: Parameters<DockerEngine["build"]>) => {
      e.builds++;
      return inner.build(...a);
    },
    push: (...a: Parameters<DockerEngine["push"]>) => {
      e.pushes++;
      return inner.push(...a);
    },
  };
  return e;
}

export interface TestDeps extends PushDeps {
  docker: DockerEngine & { builds: number; pushes: number };
  login: RegistryLogin;
  events: ReturnType<typeof recordingSink>;
  catalog: Catalog;
}

/** The flow's real dependencies for a temporary project on the local target. */
export function localDeps(p: TempProject, registry = stack.registry.endpoint): TestDeps {
  const events = recordingSink();
  return {
    docker: countingEngine(),
    login: new RegistryLogin(
      localTokenSource({ endpoint: registry, user: stack.registry.user, password: () => password }),
      { events },
    ),
    catalog: new Catalog({
      store: new SqliteStore(path.join(p.stateDir, "catalog.db")),
      prefix: `/imgtool/${p.pipeline}`,
      events,
    }),
    rubyBench: gitRubyBench({ cacheDir: path.join(p.stateDir, "cache", "ruby-bench"), exec }),
    events,
  };
}

/** `docker` CLI against the stack's engine (tests only: the product talks to the engine through dockerode). */
export async function dockerCli(args: string[], opts: { timeoutMs?: number } = {}) {
  const r = await exec(["docker", ...args], {
    env: { ...process.env, DOCKER_HOST: stack.docker.host },
    timeoutMs: opts.timeoutMs ?? 120_000,
  });
  if (r.exitCode !== 0) throw new Error(`docker ${args.join(" ")} failed (${r.exitCode}): ${r.stderr}`);
  return r.stdout;
}

/** The layers (digests) of a manifest in the registry. */
export async function manifestLayers(host: string, repo: string, ref: string): Promise<string[]> {
  const r = await fetch(`http://${host}/v2/${repo}/manifests/${ref}`, {
    headers: {
      accept: "application/vnd.docker.distribution.manifest.v2+json",
      authorization: `Basic ${Buffer.from(`${stack.registry.user}:${password}`).toString("base64")}`,
    },
  });
  if (!r.ok) throw new Error(`GET manifest ${repo}:${ref}: ${r.status}`);
  return ((await r.json()) as { layers: { digest: string }[] }).layers.map((l) => l.digest);
}

/** The tags of a repository in the real registry ([] when it does not exist). */
export async function registryTags(repo: string): Promise<string[]> {
  const r = await fetch(`http://${stack.registry.endpoint}/v2/${repo}/tags/list`, {
    headers: {
      authorization: `Basic ${Buffer.from(`${stack.registry.user}:${password}`).toString("base64")}`,
    },
  });
  if (r.status === 404) return [];
  return ((await r.json()) as { tags: string[] | null }).tags ?? [];
}

/**
 * A small image of its own (one `label` on the base image), built and pushed to the real registry as
 * `uri:tag`: the image id (to remove it) and the digest reference the registry answered.
 */
export async function pushLabelledImage(
  uri: string,
  tag: string,
  label: string,
): Promise<{ imageId: string; ref: string }> {
  const built = await engine.build({
    context: tarStream([
      {
        path: "Dockerfile",
        type: "file",
        mode: 0o644,
        content: Buffer.from(`FROM imgtool/base:bookworm\nLABEL ${label}\n`),
      },
    ]),
    dockerfile: "Dockerfile",
    tag: `${uri}:${tag}`,
  });
  const { digest } = await engine.push(uri, tag, registryAuth());
  return { imageId: built.imageId, ref: `${uri}@${digest}` };
}

/** Publish `ref` as the role's image in the local catalog of `stateDir` (what a push would have published). */
export async function publishLocalImage(
  stateDir: string,
  pipeline: string,
  role: "task-runner" | "orchestrator",
  ref: string,
  version: string,
): Promise<void> {
  const store = new SqliteStore(path.join(stateDir, "catalog.db"));
  try {
    await new Catalog({ store, prefix: `/imgtool/${pipeline}` }).publish({ role, kind: "image" }, ref, {
      version,
      inputsHash: "1".padStart(16, "0"),
      builtAt: new Date().toISOString(),
    });
  } finally {
    store.close();
  }
}
