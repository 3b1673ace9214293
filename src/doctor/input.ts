/**
 * What `imgtool doctor` checks, gathered from the config and what setup recorded: the target, the stack's
 * engine and registry (with its password, or null when the password file is gone), and every base image the
 * roles build from.
 */
import path from "node:path";
import type { Config } from "../config/load.js";
import type { Target } from "../config/schema.js";
import { dockerHost, registryPassword, type LocalStack } from "../local/stack.js";
import { loadVersions } from "../versions.js";
import type { DoctorInput } from "./doctor.js";
import { PRUNE_LEFTOVERS } from "../leftovers/leftovers.js";

export function doctorInput(opts: {
  config: Config;
  target: Target;
  /** What setup recorded (undefined: setup has not run for this state folder). */
  stack: LocalStack | undefined;
  env?: NodeJS.ProcessEnv;
  /** aws: the region this command's calls go to (the launch network is checked there). */
  region?: string;
}): DoctorInput {
  const { stack, config } = opts;
  let password: string | null = null;
  if (stack) {
    try {
      password = registryPassword(stack);
    } catch {
      password = null;
    }
  }
  const bases = new Set<string>(Object.keys(loadVersions().local_bases));
  for (const r of Object.values(config.roles)) {
    bases.add(r.base.local.image);
    bases.add(r.app.base_image.local);
  }
  return {
    target: opts.target,
    stack: stack
      ? {
          dockerHost: stack.docker.host,
          registry: { endpoint: stack.registry.endpoint, user: stack.registry.user, password },
        }
      : undefined,
    dockerHost: dockerHost(stack, opts.env),
    baseImages: [...bases],
    setupCommand: "scripts/setup",
    catalogFile: path.join(config.local.state_dir, "catalog.db"),
    stateDir: config.local.state_dir,
    pruneLeftoversCommand: PRUNE_LEFTOVERS,
    ...(opts.region
      ? {
          aws: {
            region: opts.region,
            orchestratorPort: config.launch.orchestrator_port,
            bakeSubnetKey: config.aws.bake_subnet_id ? "aws.bake_subnet_id" : "aws.subnet_id",
          },
        }
      : {}),
  };
}
