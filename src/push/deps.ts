/**
 * The real dependencies of the push flow, for a target: the stack's Docker engine, the registry login
 * (local credentials, or ECR's token), ECR, the ruby-bench cache. One factory, so the CLI and the benchmark
 * wire the same things and a test can build them and swap one part.
 */
import path from "node:path";
import type { AwsClients } from "../aws/clients.js";
import type { Catalog } from "../catalog/catalog.js";
import type { Config } from "../config/load.js";
import type { Target } from "../config/schema.js";
import { ignoreEvents, type EventSink } from "../events.js";
import { exec } from "../exec.js";
import { dockerHost, readStack, registryPassword, requireStack } from "../local/stack.js";
import { RegistryLogin, ecrTokenSource, localTokenSource } from "./login.js";
import type { PushDeps } from "./push.js";
import { gitRubyBench } from "./ruby-bench.js";

export interface MakePushDepsOptions {
  config: Config;
  target: Target;
  catalog: Catalog;
  events?: EventSink;
  /** AWS clients of the home region (aws target). */
  aws?: () => Promise<AwsClients>;
  env?: NodeJS.ProcessEnv;
}

export async function makePushDeps(opts: MakePushDepsOptions): Promise<PushDeps> {
  const events = opts.events ?? ignoreEvents;
  const stateDir = opts.config.local.state_dir;
  const { connectDocker, dockerEngine } = await import("../docker/engine.js");
  const common = {
    catalog: opts.catalog,
    events,
    exec,
    rubyBench: gitRubyBench({ cacheDir: path.join(stateDir, "cache", "ruby-bench"), exec }),
  };
  if (opts.target === "local") {
    const stack = requireStack(stateDir);
    return {
      ...common,
      docker: dockerEngine(connectDocker(dockerHost(stack, opts.env))),
      login: new RegistryLogin(
        localTokenSource({
          endpoint: stack.registry.endpoint,
          user: stack.registry.user,
          password: () => registryPassword(stack),
        }),
        { events },
      ),
    };
  }
  if (!opts.aws) throw new Error("makePushDeps: the aws target needs AWS clients");
  const { ecrApi } = await import("../aws/ecr.js");
  const ecr = ecrApi((await opts.aws()).ecr);
  return {
    ...common,
    // The engine that builds: DOCKER_HOST, what setup recorded (if any), or the default socket.
    docker: dockerEngine(connectDocker(dockerHost(readStack(stateDir), opts.env))),
    ecr,
    login: new RegistryLogin(ecrTokenSource(ecr), { events }),
  };
}
