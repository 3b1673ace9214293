/**
 * What every command handler gets: parsed global options, the loaded config, the output, and lazily built
 * dependencies (AWS clients, catalog). Heavy modules are imported only when a command asks for them.
 */
import { interruptChildrenOn, killAllChildren, killAllGroups, pendingWork } from "../process-group.js";
import { loadConfig, DEFAULT_CONFIG_FILE, type Config } from "../config/load.js";
import { homeRegion, LOCAL_REGION, targetRegions } from "../config/regions.js";
import type { Target } from "../config/schema.js";
import type { Output } from "./output.js";
import type { AwsClients } from "../aws/clients.js";
import type { Catalog } from "../catalog/catalog.js";
import { makeDeps, type Deps, type DepsOverrides } from "./deps.js";
import { startRun, type ActiveRun } from "../leftovers/runs.js";
import { deadRunsWarning } from "../leftovers/leftovers.js";

export interface GlobalArgs {
  config?: string;
  target: Target;
  json: boolean;
  region?: string;
  profile?: string;
  verbose: boolean;
  "dry-run": boolean;
}

export interface Context {
  args: GlobalArgs;
  config: Config;
  out: Output;
  target: Target;
  dryRun: boolean;
  /**
   * The regions, computed here once and passed down. homeRegion: where bakes run and the catalog is
   * written first (the config's first region). region: where this command's AWS calls go (--region, else
   * the home region). targetRegion: region on aws, "local" on the local target. regions: every region the
   * artefacts are published to (aws: the config's regions; local: ["local"]).
   */
  homeRegion: string;
  region: string;
  targetRegion: string;
  regions: string[];
  /** AWS clients for a region (default: the home region, or --region). Credentials are checked once. */
  aws(region?: string): Promise<AwsClients>;
  /** Aborted on the first Ctrl-C / SIGTERM: long work (Packer, builds) stops and cleans up. */
  signal: AbortSignal;
  /** Which signal aborted the run (for the exit code: 130 SIGINT, 143 SIGTERM). */
  abortReason(): "SIGINT" | "SIGTERM";
  /** The catalog for the chosen target (aws: the home region's, or `region`'s). */
  catalog(region?: string): Promise<Catalog>;
  /** The local stack's Docker engine (dockerode), found through DOCKER_HOST or what setup recorded. */
  docker(): Promise<import("dockerode")>;
  /** The flows' dependencies, built by the composition root (src/cli/deps.ts); tests override them there. */
  deps: Deps;
  /**
   * This process's run record (src/leftovers/runs.ts), started on first ask by the factories that make
   * containers, volumes or temp files; starting it warns when dead runs left things behind.
   */
  run(): ActiveRun;
  /** Remove the run record, if one was started (main() calls it when the handler is done). */
  endRun(): void;
}

/**
 * Ctrl-C and SIGTERM abort the run's signal once (the work forwards it and waits for cleanup); a second one
 * exits at once.
 */
function interruptions(out: Output): { signal: AbortSignal; reason: () => "SIGINT" | "SIGTERM" } {
  const ac = new AbortController();
  let reason: "SIGINT" | "SIGTERM" = "SIGINT";
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.on(sig, () => {
      if (ac.signal.aborted) {
        const killed = killAllGroups();
        const children = killAllChildren();
        out.log(`imgtool: ${sig} again: killed what was still running, exiting without waiting for cleanup`);
        for (const g of killed) out.log(`  ${g.what} was killed; may be left: ${g.mayLeave}`);
        for (const c of children) out.log(`  ${c.what} (pid ${c.pid}) was killed`);
        const left = pendingWork();
        for (const w of left) out.log(`  ${w.what} was cut short; may be left: ${w.mayLeave}`);
        if (killed.length || left.length) out.log("  `imgtool doctor` lists leftovers.");
        process.exit(sig === "SIGINT" ? 130 : 143);
      }
      reason = sig;
      out.log(`imgtool: ${sig}: stopping, waiting for cleanup (press Ctrl-C again to exit at once)`);
      ac.abort(sig);
    });
  }
  interruptChildrenOn(ac.signal);
  return { signal: ac.signal, reason: () => reason };
}

export function makeContext(args: GlobalArgs, out: Output, overrides: DepsOverrides = {}): Context {
  const explicit = args.config !== undefined;
  const { config, warnings } = loadConfig(args.config ?? DEFAULT_CONFIG_FILE, { explicit });
  for (const w of warnings) out.warn(w);
  const clients = new Map<string, Promise<AwsClients>>();
  const catalogs = new Map<string, Promise<Catalog>>();
  let docker: Promise<import("dockerode")> | undefined;
  let run: ActiveRun | undefined;

  const stop = interruptions(out);
  const home = homeRegion(config);
  const region = args.region ?? home;
  const ctx: Omit<Context, "deps"> & { deps?: Deps } = {
    homeRegion: home,
    region,
    targetRegion: args.target === "aws" ? region : LOCAL_REGION,
    regions: targetRegions(config, args.target),
    signal: stop.signal,
    abortReason: stop.reason,
    args,
    config,
    out,
    target: args.target,
    dryRun: args["dry-run"],
    aws(wanted) {
      const r = wanted ?? region;
      let p = clients.get(r);
      if (!p) {
        p = (async () => {
          const { makeAwsClients, assertCredentials } = await import("../aws/clients.js");
          const c = makeAwsClients({ region: r, ...(args.profile ? { profile: args.profile } : {}) });
          await assertCredentials(c);
          return c;
        })();
        clients.set(r, p);
      }
      return p;
    },
    catalog(wanted) {
      const key = args.target === "aws" ? (wanted ?? region) : "local";
      let p = catalogs.get(key);
      if (!p) {
        p = (async () => {
          const { openCatalog } = await import("../catalog/open.js");
          return openCatalog({ target: args.target, config, events: out.event, aws: () => ctx.aws(key) });
        })();
        catalogs.set(key, p);
      }
      return p;
    },
    run() {
      if (!run) {
        const warning = deadRunsWarning(config.local.state_dir);
        if (warning) out.event({ type: "warn", message: warning });
        run = startRun(config.local.state_dir, {
          command: ["imgtool", ...process.argv.slice(2)].join(" "),
        });
      }
      return run;
    },
    endRun() {
      const left = run?.end();
      if (left) out.warn(`the run's folder could not be removed (${left}); remove it by hand`);
      run = undefined;
    },
    docker() {
      docker ??= (async () => {
        const { readStack, dockerHost } = await import("../local/stack.js");
        const { connectDocker } = await import("../docker/engine.js");
        return connectDocker(dockerHost(readStack(config.local.state_dir)));
      })();
      return docker;
    },
  };
  const full = ctx as Context;
  full.deps = makeDeps(full, overrides);
  return full;
}
