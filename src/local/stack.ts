/**
 * The local stack that scripts/setup starts (Docker engine, OCI registry, base images), as recorded in
 * <state_dir>/stack.json. The CLI reads this file to find the engine and registry.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { z } from "zod";
import { UsageError } from "../errors.js";

const StackSchema = z.object({
  docker: z.object({
    host: z.string(),
    startedBySetup: z.boolean(),
    pid: z.number().nullable(),
    version: z.string().optional(),
  }),
  registry: z.object({
    endpoint: z.string(),
    port: z.number(),
    user: z.string(),
    passwordFile: z.string(),
    startedBySetup: z.boolean(),
    pid: z.number().nullable(),
  }),
  baseImages: z.array(z.string()),
  stateDir: z.string(),
  updatedAt: z.string(),
});

export type LocalStack = z.infer<typeof StackSchema>;

export const stackFile = (stateDir: string) => path.join(stateDir, "stack.json");

const SETUP_FIX = "Run scripts/setup (as root): it installs and starts the local stack and records it.";

/** Read stack.json; undefined when setup has not run for this state folder. */
export function readStack(stateDir: string): LocalStack | undefined {
  let text: string;
  try {
    text = readFileSync(stackFile(stateDir), "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
  const parsed = StackSchema.safeParse(JSON.parse(text));
  if (!parsed.success) {
    throw new UsageError(`${stackFile(stateDir)} is not a stack record imgtool understands.`, {
      fix: SETUP_FIX,
    });
  }
  return parsed.data;
}

/** Like readStack, but a missing stack is a usage error that says how to fix it. */
export function requireStack(stateDir: string): LocalStack {
  const stack = readStack(stateDir);
  if (!stack)
    throw new UsageError(`The local stack is not set up (no ${stackFile(stateDir)}).`, { fix: SETUP_FIX });
  return stack;
}

/** The Docker engine to talk to: DOCKER_HOST wins, then what setup recorded, then the default socket. */
export function dockerHost(stack: LocalStack | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return env.DOCKER_HOST || stack?.docker.host || "unix:///var/run/docker.sock";
}

export function registryPassword(stack: LocalStack): string {
  return readFileSync(stack.registry.passwordFile, "utf8").trim();
}
