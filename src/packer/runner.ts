/**
 * The Packer adapter: runs `packer` as a child process (argv, never a shell string), streams its lines,
 * forwards Ctrl-C / SIGTERM as SIGINT so Packer cleans up (terminates the builder instance, removes the
 * container) and waits for that cleanup. Results are read from the manifest file, never from stdout.
 *
 * Packer runs in its own process group and the SIGINT goes to the whole group: `packer build` is a wrapper
 * around a second `packer build` that swallows SIGINT, so only a group-wide Ctrl-C stops it. The wait for its
 * cleanup is bounded; after that the group is killed and the result says so.
 */
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { FailureError } from "../errors.js";
import { registerGroup, signalGroup } from "../process-group.js";

export interface PackerRunResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** The run was interrupted (abort signal): Packer was asked to stop and clean up. */
  interrupted: boolean;
  /** Packer did not finish its cleanup in time and was killed (its builder's leftovers may remain). */
  killed: boolean;
}

/** How long Packer gets to clean up after an interrupt before its process group is killed. */
export const CLEANUP_TIMEOUT_MS = 120_000;

export interface PackerRunner {
  /** `packer version`, or null when Packer is not installed. */
  version(): Promise<string | null>;
  /** Run `packer <args>` in cwd, one callback per output line. */
  run(
    args: string[],
    opts: {
      cwd: string;
      env?: NodeJS.ProcessEnv;
      onLine: (line: string) => void;
      signal?: AbortSignal;
      /** What may be left if Packer is killed before its cleanup (for a second Ctrl-C's message). */
      mayLeave?: string;
    },
  ): Promise<PackerRunResult>;
}

export function makePackerRunner(binary = "packer", opts: { cleanupTimeoutMs?: number } = {}): PackerRunner {
  const cleanupTimeoutMs = opts.cleanupTimeoutMs ?? CLEANUP_TIMEOUT_MS;
  return {
    async version() {
      return new Promise((resolve) => {
        const child = spawn(binary, ["version"], { stdio: ["ignore", "pipe", "ignore"] });
        let out = "";
        child.stdout.on("data", (c: Buffer) => (out += c.toString()));
        child.on("error", () => resolve(null));
        child.on("close", (code) => resolve(code === 0 ? (out.split("\n")[0]?.trim() ?? null) : null));
      });
    },
    run(args, opts) {
      return new Promise((resolve, reject) => {
        const child = spawn(binary, args, {
          cwd: opts.cwd,
          env: { ...process.env, PACKER_NO_COLOR: "1", CHECKPOINT_DISABLE: "1", ...opts.env },
          stdio: ["ignore", "pipe", "pipe"],
          detached: true,
        });
        const unregister = child.pid
          ? registerGroup({
              pid: child.pid,
              what: `Packer (${args[0] ?? "run"} in ${opts.cwd})`,
              mayLeave: opts.mayLeave ?? `Packer's builder (container or instance) and ${opts.cwd}`,
            })
          : () => undefined;
        let interrupted = false;
        let killed = false;
        let killTimer: NodeJS.Timeout | undefined;
        const onAbort = () => {
          if (interrupted || !child.pid) return;
          interrupted = true;
          // Packer's own Ctrl-C handling: it stops the build and cleans up before exiting. To the group: the
          // wrapper process would swallow it.
          signalGroup(child.pid, "SIGINT");
          killTimer = setTimeout(() => {
            if (child.pid && signalGroup(child.pid, "SIGKILL")) killed = true;
          }, cleanupTimeoutMs);
        };
        if (opts.signal?.aborted) onAbort();
        opts.signal?.addEventListener("abort", onAbort, { once: true });
        for (const stream of [child.stdout, child.stderr]) {
          let partial = "";
          stream.setEncoding("utf8");
          stream.on("data", (chunk: string) => {
            const lines = (partial + chunk).split("\n");
            partial = lines.pop() ?? "";
            for (const l of lines) opts.onLine(l);
          });
          stream.on("end", () => {
            if (partial) opts.onLine(partial);
          });
        }
        child.on("error", (e: NodeJS.ErrnoException) => {
          opts.signal?.removeEventListener("abort", onAbort);
          unregister();
          if (e.code === "ENOENT") {
            reject(
              new FailureError(`Packer is not installed (no \`${binary}\` on PATH).`, {
                fix: "scripts/setup, or apt-get install -y packer",
              }),
            );
          } else reject(e);
        });
        child.on("close", (exitCode, signal) => {
          opts.signal?.removeEventListener("abort", onAbort);
          if (killTimer) clearTimeout(killTimer);
          unregister();
          // Packer has exited; anything still in its group (a plugin) goes with it.
          if (child.pid) signalGroup(child.pid, "SIGKILL");
          resolve({ exitCode, signal, interrupted, killed });
        });
      });
    },
  };
}

export interface PackerManifestBuild {
  name: string;
  builder_type: string;
  artifact_id: string;
  packer_run_uuid: string;
  custom_data?: Record<string, string>;
}

/** The builds of the last run recorded in a Packer manifest file. */
export async function readManifest(file: string): Promise<PackerManifestBuild[]> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") {
      throw new FailureError(`Packer wrote no manifest at ${file}: the build produced no artefact.`);
    }
    throw e;
  }
  const doc = JSON.parse(text) as { builds?: PackerManifestBuild[]; last_run_uuid?: string };
  const builds = (doc.builds ?? []).filter(
    (b) => !doc.last_run_uuid || b.packer_run_uuid === doc.last_run_uuid,
  );
  if (builds.length === 0)
    throw new FailureError(`The Packer manifest ${path.basename(file)} lists no build of the last run.`);
  return builds;
}

/** `us-east-1:ami-1,us-west-2:ami-2` -> [{region, id}]; a docker image id has no region. */
export function parseArtifactId(artifactId: string): { region: string | null; id: string }[] {
  return artifactId.split(",").map((part) => {
    const m = /^([a-z]{2}(?:-[a-z]+)+-\d):(ami-[0-9a-f]+)$/.exec(part.trim());
    return m ? { region: m[1]!, id: m[2]! } : { region: null, id: part.trim() };
  });
}
