/**
 * The composition root: the one place that builds each flow's dependencies (Packer runner, engine, registry
 * client, AWS adapters, catalog, launch backend, ...) from the CLI context. Command handlers ask `ctx.deps`
 * for what they need and never wire adapters themselves.
 *
 * One override point for tests: `makeDeps(ctx, overrides)` (or `main(argv, { deps: overrides })`) replaces any
 * factory; the other factories see the replacement, since they all build through the same `deps` object
 * (release-it's test factory and cdk-assets' IHandlerHost are the models). Heavy modules load lazily, when a
 * factory is first called.
 */
import path from "node:path";
import type { BakeDeps } from "../bake/bake.js";
import type { Catalog } from "../catalog/catalog.js";
import type { LeaseKeeper } from "../catalog/lease.js";
import type { DockerEngine } from "../docker/engine.js";
import type { DoctorProbes } from "../doctor/doctor.js";
import { targetArches } from "../config/arch.js";
import { UsageError } from "../errors.js";
import type { LaunchDeps } from "../launch/launch.js";
import type { LaunchBackend } from "../launch/types.js";
import type { RunOnInstance } from "../aws/run-command.js";
import { readStack, type LocalStack } from "../local/stack.js";
import { makePackerRunner, type PackerRunner } from "../packer/runner.js";
import type { PipelineDeps } from "../pipeline/pipeline.js";
import type { PruneBackend } from "../prune/prune.js";
import type { PushDeps } from "../push/push.js";
import type { RegistryClient } from "../registry/client.js";
import type { Context } from "./context.js";
import { DOCKER_LABEL } from "../config/tags.js";

export interface Deps {
  /** The Packer runner (its `version()` is what doctor shows, too). */
  packer(): PackerRunner;
  /** The local stack that setup recorded, or undefined when setup has not run for this state folder. */
  stack(): LocalStack | undefined;
  /** The engine that builds and runs: DOCKER_HOST, what setup recorded, or the default socket. */
  engine(): Promise<DockerEngine>;
  /** A registry API client (the push flow's), with basic credentials or none. */
  registry(opts: {
    endpoint: string;
    credentials?: { username: string; password: string };
    timeoutMs?: number;
  }): Promise<RegistryClient>;
  /** The catalog of a region (aws; default ctx.region) or the local catalog. */
  catalog(region?: string): Promise<Catalog>;
  bake(): Promise<BakeDeps>;
  push(): Promise<PushDeps>;
  /**
   * The target's launch backend: EC2 in a region (aws; default ctx.targetRegion), or containers with their
   * own engine (local).
   */
  launchBackend(region?: string): Promise<LaunchBackend>;
  /** The launch flow's dependencies, in a region (default ctx.targetRegion). */
  launch(region?: string): Promise<LaunchDeps>;
  /**
   * The pipeline's stages wired to the flows: ruby-bench resolved once, push, bake (pinned to what the push
   * resolved; force: rebuild), a smoke launch in the home region, and the catalogs of every target region.
   */
  pipeline(opts: { force: boolean }): PipelineDeps;
  /** aws: run a script on an instance through SSM Run Command (health and smoke checks), in a region. */
  runOnInstance(region?: string): Promise<RunOnInstance>;
  pruneBackend(catalog: Catalog): Promise<PruneBackend>;
  /** What doctor asks: the same adapters as the flows. */
  doctorProbes(): DoctorProbes;
}

export type DepsOverrides = Partial<Deps>;

export function makeDeps(ctx: Context, overrides: DepsOverrides = {}): Deps {
  const { config } = ctx;
  const stateDir = config.local.state_dir;
  let packer: PackerRunner | undefined;

  /**
   * The publish leases of the pipeline (src/catalog/lease.ts), in the catalog (aws: the home region's SSM):
   * held by this run, waited for up to --wait-lease seconds (default: fail at once, naming the holder).
   */
  let leases: Promise<LeaseKeeper> | undefined;
  const leaseKeeper = (): Promise<LeaseKeeper> =>
    (leases ??= (async () => {
      const { Leases } = await import("../catalog/lease.js");
      const { pidAlive, processStart } = await import("../leftovers/runs.js");
      const wait = (ctx.args as { "wait-lease"?: number })["wait-lease"] ?? 0;
      if (!(wait >= 0))
        throw new UsageError(`--wait-lease ${wait} is negative.`, { fix: "Give 0 or more seconds." });
      const catalog = await deps.catalog(ctx.target === "aws" ? ctx.homeRegion : undefined);
      return new Leases({
        store: catalog.store,
        prefix: catalog.prefix,
        identity: {
          pidStart: processStart(process.pid),
          run: ctx.run().id,
          command: ["imgtool", ...process.argv.slice(2)].join(" "),
        },
        waitSeconds: wait,
        alive: pidAlive,
        events: ctx.out.event,
        signal: ctx.signal,
      });
    })());
  const lease: LeaseKeeper = { hold: async (name, work) => (await leaseKeeper()).hold(name, work) };

  const localImageProbe = async () => {
    const stack = await requireLocalStack();
    const { registryPassword } = await import("../local/stack.js");
    const { registryImageProbe } = await import("../launch/image-check.js");
    const credentials = { username: stack.registry.user, password: registryPassword(stack) };
    return registryImageProbe((host) => deps.registry({ endpoint: `http://${host}`, credentials }));
  };
  const awsImageProbe = async (region: string) => {
    const { ecrApi } = await import("../aws/ecr.js");
    const { ecrImageProbe } = await import("../launch/image-check.js");
    return ecrImageProbe(async (r) => ecrApi((await ctx.aws(r)).ecr), region);
  };
  const requireLocalStack = async () => {
    const { requireStack } = await import("../local/stack.js");
    return requireStack(stateDir);
  };

  const real: Deps = {
    packer() {
      return (packer ??= makePackerRunner());
    },

    stack() {
      return readStack(stateDir);
    },

    async engine() {
      const { dockerEngine } = await import("../docker/engine.js");
      return dockerEngine(await ctx.docker());
    },

    async registry({ endpoint, credentials, timeoutMs }) {
      const { RegistryClient } = await import("../registry/client.js");
      return new RegistryClient({
        endpoint,
        ...(credentials ? { credentials: async () => credentials } : {}),
        ...(timeoutMs ? { timeoutMs } : {}),
      });
    },

    catalog: (region) => ctx.catalog(region),

    async bake() {
      const runner = deps.packer();
      const packerVersion = await runner.version();
      if (!packerVersion) {
        throw new UsageError("Packer is not installed.", {
          fix: "scripts/setup installs it (apt-get install -y packer).",
        });
      }
      const { renderBake, writeRendered } = await import("../render/packer.js");
      const { projectRevision, resolveRubyBenchRef } = await import("../git.js");
      const bakeDeps: Omit<BakeDeps, "ops"> = {
        config,
        events: ctx.out.event,
        packer: runner,
        packerVersion,
        render: renderBake,
        writeRendered,
        catalog: (region) => deps.catalog(region),
        resolveCommit: (role, src) => resolveRubyBenchRef(role, src),
        gitRevision: () => projectRevision(),
        buildRoot: path.join(stateDir, "builds"),
        signal: ctx.signal,
        runId: ctx.run().id,
        lease,
      };
      if (ctx.target === "aws") {
        const { Ec2Images } = await import("../aws/ec2.js");
        const { makeAwsBakeOps, ecrPreloadLogin } = await import("../bake/aws-ops.js");
        const ops = makeAwsBakeOps({
          wait: {
            consecutive: config.aws.ami_wait.consecutive,
            intervalMs: config.aws.ami_wait.interval_seconds * 1000,
          },
          config,
          events: ctx.out.event,
          ec2: async (r) => new Ec2Images((await ctx.aws(r)).ec2, r),
        });
        const { ecrApi } = await import("../aws/ecr.js");
        bakeDeps.registryLogin = ecrPreloadLogin({
          ecr: async (r) => ecrApi((await ctx.aws(r)).ecr),
          homeRegion: ctx.homeRegion,
          events: ctx.out.event,
        });
        bakeDeps.packerEnv = {
          PACKER_TMP_DIR: path.join(ctx.run().dir, "packer"),
          AWS_REGION: ctx.homeRegion,
          ...(ctx.args.profile ? { AWS_PROFILE: ctx.args.profile } : {}),
        };
        return { ...bakeDeps, ops };
      } else {
        const { dockerHost, registryPassword } = await import("../local/stack.js");
        const { makeTwinOps } = await import("../bake/twin-ops.js");
        const stack = await requireLocalStack();
        const registry = {
          endpoint: stack.registry.endpoint,
          user: stack.registry.user,
          password: registryPassword(stack),
        };
        bakeDeps.registry = registry;
        bakeDeps.packerEnv = {
          DOCKER_HOST: dockerHost(stack),
          PACKER_TMP_DIR: path.join(ctx.run().dir, "packer"),
        };
        return {
          ...bakeDeps,
          ops: makeTwinOps({ docker: await ctx.docker(), registry, run: ctx.run(), signal: ctx.signal }),
        };
      }
    },

    async push() {
      const events = ctx.out.event;
      const { exec } = await import("../exec.js");
      const { RegistryLogin, ecrTokenSource, localTokenSource } = await import("../push/login.js");
      const { gitRubyBench } = await import("../push/ruby-bench.js");
      const common = {
        catalog: await deps.catalog(),
        events,
        exec,
        rubyBench: gitRubyBench({ cacheDir: path.join(stateDir, "cache", "ruby-bench"), exec }),
        signal: ctx.signal,
        lease,
        tempDir: () => ctx.run().dir,
      };
      if (ctx.target === "local") {
        const stack = await requireLocalStack();
        const { registryPassword } = await import("../local/stack.js");
        return {
          ...common,
          docker: await deps.engine(),
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
      const { ecrApi } = await import("../aws/ecr.js");
      const ecr = ecrApi((await ctx.aws()).ecr);
      return {
        ...common,
        otherCatalogs: await Promise.all(
          config.aws.regions.filter((r) => r !== ctx.region).map((r) => deps.catalog(r)),
        ),
        docker: await deps.engine(),
        ecr,
        login: new RegistryLogin(ecrTokenSource(ecr), { events }),
      };
    },

    async launchBackend(region = ctx.targetRegion) {
      if (ctx.target === "aws") {
        const { awsBackend } = await import("../launch/aws.js");
        const { Ec2Instances } = await import("../aws/ec2-instances.js");
        const { SsmReadyRecords } = await import("../aws/ready-records.js");
        return awsBackend({
          config,
          region,
          ec2: async () => new Ec2Instances((await ctx.aws(region)).ec2),
          events: ctx.out.event,
          records: { store: async () => new SsmReadyRecords((await ctx.aws(region)).ssm) },
        });
      }
      const { localBackend } = await import("../launch/local.js");
      const stack = await requireLocalStack();
      return localBackend({
        config,
        docker: await ctx.docker(),
        registry: { user: stack.registry.user, passwordFile: stack.registry.passwordFile },
        events: ctx.out.event,
        ownerLabels: { [DOCKER_LABEL.owner]: ctx.run().id },
      });
    },

    async launch(region = ctx.targetRegion) {
      const { httpHealthProbe, runCommandHealthProbe } = await import("../launch/health.js");
      return {
        config,
        backend: await deps.launchBackend(region),
        catalog: () => deps.catalog(ctx.target === "aws" ? region : undefined),
        releaseCatalog: () => deps.catalog(ctx.target === "aws" ? ctx.regions[0] : undefined),
        events: ctx.out.event,
        // aws: on the orchestrator itself, through SSM Run Command (no network path into the VPC is needed).
        probe:
          ctx.target === "aws" ? runCommandHealthProbe(await deps.runOnInstance(region)) : httpHealthProbe(),
        signal: ctx.signal,
        // Images the instances would pull are asked for before anything starts: locally at the local registry,
        // on aws in ECR (DescribeImages by digest).
        imageProbe: ctx.target === "local" ? await localImageProbe() : await awsImageProbe(region),
      };
    },

    pipeline({ force }) {
      const { target } = ctx;
      return {
        async resolveRubyBench(role) {
          const { resolveRubyBenchRef } = await import("../git.js");
          return resolveRubyBenchRef(role, config.roles[role].ruby_bench);
        },
        async push(roles, pins) {
          const { pushImages } = await import("../push/push.js");
          const report = await pushImages(
            { config, target, roles, region: ctx.homeRegion, rubyBenchCommits: pins },
            await deps.push(),
          );
          return report.results.map((r) => ({
            role: r.role,
            status: r.status,
            version: r.version ?? null,
            reference: r.reference ?? null,
            error: r.error,
          }));
        },
        async bake(roles, pins) {
          const { bake } = await import("../bake/bake.js");
          const bd = await deps.bake();
          // The commits the run resolved once, so that the AMIs pin what the images pinned.
          const resolveCommit: typeof bd.resolveCommit = async (role, src) =>
            pins[role] ?? bd.resolveCommit(role, src);
          // Both stages: the base is rebuilt only when its inputs changed or it is too old.
          return bake(roles, { ...bd, resolveCommit }, { force, stage: "all", abortReason: ctx.abortReason });
        },
        async smoke() {
          const { launch } = await import("../launch/launch.js");
          const { terminateRun } = await import("../launch/terminate.js");
          const { newRunId } = await import("../launch/ids.js");
          const { smokeLaunch, runCommandSmokeTask } = await import("../pipeline/smoke.js");
          // The smoke launch runs where the bake published first: the home region (aws).
          const launchDeps = await deps.launch(ctx.regions[0]);
          const { backend } = launchDeps;
          return smokeLaunch(
            {
              target,
              instanceTypes: config.roles["task-runner"].instance_types.slice(0, 1),
              spot: false,
              keepOnFailure: false,
            },
            {
              launch: (o) => launch(o, launchDeps),
              terminate: async (runId) => {
                await terminateRun({ runId, dryRun: false }, { backend, events: ctx.out.event });
              },
              warn: (m) => ctx.out.warn(m),
              taskTimeoutMs: config.smoke.timeout_seconds * 1000,
              // The user's smoke script, on the orchestrator instance (aws: Run Command; local: inside the local
              // instance); else the example task, queued from the orchestrator itself on aws (no network path).
              ...(config.smoke.script
                ? {
                    task: await (async () => {
                      const { readSmokeScript, userSmokeTask } = await import("../pipeline/smoke-check.js");
                      const { localRunOnInstance } = await import("../launch/local-run.js");
                      const run =
                        target === "aws"
                          ? await deps.runOnInstance(ctx.regions[0])
                          : localRunOnInstance(await ctx.docker());
                      const script = await readSmokeScript(config.smoke.script!, {
                        config,
                        target,
                        region: ctx.regions[0]!,
                      });
                      return userSmokeTask(config, target, ctx.regions[0]!, run, script);
                    })(),
                  }
                : target === "aws"
                  ? { task: runCommandSmokeTask(await deps.runOnInstance(ctx.regions[0])) }
                  : {}),
            },
            `smoke-${newRunId()}`.slice(0, 32),
          );
        },
        catalogs: async () =>
          Promise.all(ctx.regions.map((r) => deps.catalog(target === "aws" ? r : undefined))),
        keys: (role) => [
          { role, kind: "image" },
          ...targetArches(config, role, target).map((arch) => ({ role, kind: "ami" as const, arch })),
        ],
        events: ctx.out.event,
        signal: ctx.signal,
        lease,
        bootBudget: config.boot_budget,
        target,
      };
    },

    async runOnInstance(region = ctx.targetRegion) {
      const { ssmRunOnInstance } = await import("../aws/run-command.js");
      const clients = await ctx.aws(region);
      return ssmRunOnInstance(clients.ssm);
    },

    async pruneBackend(catalog) {
      if (ctx.target === "aws") {
        const { Ec2Images } = await import("../aws/ec2.js");
        const { awsPruneBackend } = await import("../prune/backends.js");
        const { Ec2Instances } = await import("../aws/ec2-instances.js");
        const { SsmReadyRecords } = await import("../aws/ready-records.js");
        const { TAG } = await import("../config/tags.js");
        return awsPruneBackend({
          config,
          catalog,
          events: ctx.out.event,
          ec2: async (r) => new Ec2Images((await ctx.aws(r)).ec2, r),
          runs: async (r) => {
            const clients = await ctx.aws(r);
            return {
              store: new SsmReadyRecords(clients.ssm),
              async liveRunIds() {
                const live = await new Ec2Instances(clients.ec2).byTags({ [TAG.pipeline]: config.pipeline });
                return new Set(live.map((i) => i.Tags?.find((t) => t.Key === TAG.runId)?.Value ?? ""));
              },
            };
          },
        });
      }
      const { localPruneBackend } = await import("../prune/backends.js");
      return localPruneBackend({ config, catalog, docker: await ctx.docker() });
    },

    doctorProbes() {
      return {
        nodeVersion: () => process.version,
        async dockerVersion(host) {
          const { engineVersion } = await import("../docker/engine.js");
          return (await engineVersion(host)).version;
        },
        async imageExists(host, ref) {
          const { imageExists } = await import("../docker/engine.js");
          return imageExists(host, ref);
        },
        async registry(endpoint, user, password) {
          const { RegistryError } = await import("../registry/client.js");
          // The status of GET /v2/ through the registry client; a refusal is an answer, not a failure.
          const answer = async (credentials?: { username: string; password: string }) => {
            const client = await deps.registry({
              endpoint: `http://${endpoint}`,
              timeoutMs: 3000,
              ...(credentials ? { credentials } : {}),
            });
            try {
              return { status: 200, ...(await client.ping()) };
            } catch (e) {
              if (e instanceof RegistryError) return { status: e.status, api: null };
              throw e;
            }
          };
          const anonymous = await answer();
          const authenticated = await answer({ username: user, password });
          return { anonymous: anonymous.status, authenticated: authenticated.status, api: authenticated.api };
        },
        packerVersion: () => deps.packer().version(),
        async leftovers(dir) {
          const { findLeftovers, describeLeftovers, publishedIn } = await import("../leftovers/leftovers.js");
          try {
            const engine = ctx.target === "local" ? await deps.engine() : undefined;
            const published = engine ? publishedIn(() => deps.catalog(), config.pipeline) : undefined;
            const found = await findLeftovers({ stateDir: dir, engine, ...(published ? { published } : {}) });
            return { runs: found.map(describeLeftovers) };
          } catch (e) {
            // An engine that does not answer (the engine line says why): the dead runs are still worth naming.
            const found = await findLeftovers({ stateDir: dir, engine: undefined });
            return {
              runs: found.map(describeLeftovers),
              engineProblem: (e as Error).message.split("\n")[0]!,
            };
          }
        },
        async catalog(file) {
          const { existsSync } = await import("node:fs");
          const { CatalogDamagedError, SqliteStore } = await import("../catalog/sqlite-store.js");
          if (!existsSync(file)) return { state: "absent" };
          try {
            new SqliteStore(file).close();
            return { state: "ok" };
          } catch (e) {
            if (!(e instanceof CatalogDamagedError)) throw e;
            return { state: "damaged", problem: e.problem, fix: e.fix ?? "" };
          }
        },
        async awsIdentity() {
          const { assertCredentials } = await import("../aws/clients.js");
          return assertCredentials(await ctx.aws());
        },
        async awsBakeSubnetRoute(region) {
          const { bakeSubnet } = await import("../render/packer.js");
          const subnet = bakeSubnet(config);
          if (!subnet) return undefined;
          const { Ec2Network } = await import("../aws/ec2-network.js");
          return {
            route: await new Ec2Network((await ctx.aws(region)).ec2).subnetRoute(subnet),
            key: config.aws.bake_subnet_id ? "aws.bake_subnet_id" : "aws.subnet_id",
          };
        },
        async awsLaunchNetwork(region) {
          const { Ec2Network } = await import("../aws/ec2-network.js");
          return new Ec2Network((await ctx.aws(region)).ec2).launchNetwork(
            config.aws.subnet_id,
            config.aws.security_group_ids,
          );
        },
      };
    },
  };
  const deps: Deps = { ...real, ...overrides };
  return deps;
}
