/**
 * What the aws bake tests share (bake-aws, bake-aws-fsr): the AWS stand-in judging every call with the actors'
 * generated policies, the real SDK clients pointed at it, a catalog per region, seeded base and "built" AMIs,
 * and the bake's dependencies with the recording stand-in for Packer (test/bake/fixtures/recording-packer.mjs:
 * there is no AWS to build on here). Each test file builds its own: nothing here runs when it is imported.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { makeAwsClients } from "../../src/aws/clients.js";
import { Ec2Images } from "../../src/aws/ec2.js";
import type { BakeDeps } from "../../src/bake/bake.js";
import { makeAwsBakeOps } from "../../src/bake/aws-ops.js";
import { Catalog } from "../../src/catalog/catalog.js";
import { SsmStore } from "../../src/catalog/ssm-store.js";
import type { Config } from "../../src/config/load.js";
import { recordingSink, type EventSink } from "../../src/events.js";
import { makePackerRunner } from "../../src/packer/runner.js";
import { renderBake, writeRendered } from "../../src/render/packer.js";
import { startAwsStandin, type AwsStandin } from "../support/aws-standin/index.js";
import { actorCredentials } from "../support/iam-referee.js";
import { runMain } from "../support/cli.js";

export const HOME = "us-east-1";
export const OTHER = "eu-west-1";
export const ACCOUNT = "123456789012";
export const FAKE_PACKER = new URL("./fixtures/recording-packer.mjs", import.meta.url).pathname;

/**
 * The tests' config: a task-runner on both architectures (or `instanceTypes`), baked in two regions; `awsLines`
 * go under `aws:`.
 */
export function awsBakeConfigText(
  awsLines: string[] = [],
  instanceTypes: string[] = ["c7i.large", "c7g.large"],
): string {
  return [
    "pipeline: bench",
    "roles:",
    "  task-runner:",
    `    instance_types: [${instanceTypes.join(", ")}]`,
    "    ruby_bench: { repository: https://example.invalid/ruby-bench.git, ref: main }",
    "    base:",
    `      aws: { owner: "${ACCOUNT}", name: { x86_64: "al2023-ami-*-x86_64", arm64: "al2023-ami-*-arm64" } }`,
    "aws:",
    `  regions: [${HOME}, ${OTHER}]`,
    ...awsLines.map((l) => `  ${l}`),
  ].join("\n");
}

export type Actor = "bake" | "prune";
export type Amis = { x86_64: string; arm64: string };

/** The stand-in (started with `standinOptions`) and everything a bake against it needs. */
export async function startAwsBakeFixture(
  config: Config,
  standinOptions: Parameters<typeof startAwsStandin>[0],
) {
  const standin: AwsStandin = await startAwsStandin(standinOptions);
  const buildRoots: string[] = [];
  let tmp = "";
  let log = "";
  /** A fresh build folder and an empty Packer log (each test starts with one). */
  const newBuildRoot = () => {
    tmp = mkdtempSync(path.join(tmpdir(), "imgtool-bake-aws-"));
    buildRoots.push(tmp);
    log = path.join(tmp, "packer.log");
    writeFileSync(log, "");
  };
  newBuildRoot();

  const clients = (region: string, actor: Actor = "bake") =>
    makeAwsClients({
      region,
      endpoint: standin.endpoint,
      credentials: actorCredentials(actor),
      retryBaseDelayMs: 5,
    });
  const catalogs = new Map<string, Catalog>();
  /** The bake actor's catalog in `region` (one per region until `catalogs.clear()`). */
  const catalog = async (region: string) => {
    if (!catalogs.has(region)) {
      catalogs.set(
        region,
        new Catalog({
          store: new SsmStore(clients(region).ssm),
          prefix: "/imgtool/bench",
          readBack: { attempts: 3, delayMs: 5 },
        }),
      );
    }
    return catalogs.get(region)!;
  };

  /** Base AMIs of `day` (November 2026) in the home region, one per architecture. */
  const seedBases = (day: number): Amis => ({
    x86_64: standin.addImage(HOME, {
      name: `al2023-ami-2026.${day}-x86_64`,
      architecture: "x86_64",
      creationDate: new Date(Date.UTC(2026, 10, day)).toISOString(),
    }).imageId,
    arm64: standin.addImage(HOME, {
      name: `al2023-ami-2026.${day}-arm64`,
      architecture: "arm64",
      creationDate: new Date(Date.UTC(2026, 10, day)).toISOString(),
    }).imageId,
  });
  /** The AMIs the recording Packer reports for build `n`. */
  const seedBuilt = (n: number): Amis => ({
    x86_64: standin.addImage(HOME, { name: `built-${n}-x86_64`, architecture: "x86_64" }).imageId,
    arm64: standin.addImage(HOME, { name: `built-${n}-arm64`, architecture: "arm64" }).imageId,
  });

  /** The bake's dependencies, its Packer reporting `built`; the availability wait never really sleeps. */
  const deps = (
    built: Amis,
    opts: {
      events?: EventSink;
      consecutive?: number;
      sleep?: (ms: number) => Promise<void>;
      extra?: Partial<BakeDeps>;
    } = {},
  ): BakeDeps => {
    const events = opts.events ?? recordingSink();
    return {
      config,
      events,
      packer: makePackerRunner(FAKE_PACKER),
      packerVersion: "Packer v1.11.2",
      render: renderBake,
      writeRendered,
      catalog,
      resolveCommit: async () => "c".repeat(40),
      gitRevision: async () => "0123456789abcdef",
      ops: makeAwsBakeOps({
        config,
        events,
        ec2: async (r) => new Ec2Images(clients(r).ec2, r),
        wait: { consecutive: opts.consecutive ?? 1, intervalMs: 1, sleep: opts.sleep ?? (async () => {}) },
      }),
      buildRoot: tmp,
      packerEnv: {
        FAKE_PACKER_LOG: log,
        FAKE_PACKER_AMIS: `x86_64=${built.x86_64},arm64=${built.arm64}`,
        AWS_REGION: HOME,
      },
      ...opts.extra,
    };
  };

  /** Each Packer run's argv (JSON), and what else the recording Packer logged, in order. */
  const packerCalls = () => readFileSync(log, "utf8").split("\n").filter(Boolean);

  return {
    standin,
    clients,
    catalog,
    catalogs,
    seedBases,
    seedBuilt,
    deps,
    packerCalls,
    newBuildRoot,
    close: async () => {
      await standin.close();
      for (const d of buildRoots) rmSync(d, { recursive: true, force: true });
    },
  };
}

export type AwsBakeFixture = Awaited<ReturnType<typeof startAwsBakeFixture>>;

/**
 * What `imgtool render --target aws --role task-runner --dry-run --json` prints for `configText` (written into
 * `dir`) with `args`: each result's stage (none for a full render) and rendered-files hash.
 */
export async function renderedHashes(
  configText: string,
  dir: string,
  args: string[],
): Promise<[string | undefined, string][]> {
  const file = path.join(dir, "imgtool.config.yaml");
  writeFileSync(file, configText);
  const cli = await runMain([
    "render",
    "--target",
    "aws",
    "--role",
    "task-runner",
    "--packer-version",
    "Packer v1.11.2",
    "--dry-run",
    "--json",
    "--out",
    path.join(dir, "out"),
    "--config",
    file,
    ...args,
  ]);
  if (cli.code !== 0) throw new Error(`imgtool render failed (exit ${cli.code}): ${cli.stderr}`);
  const doc = JSON.parse(cli.stdout) as { results: { stage?: string; renderedHash: string }[] };
  return doc.results.map((x) => [x.stage, x.renderedHash]);
}
