/**
 * The aws side of the launch tests: the wire-level AWS stand-in with AMIs (x86_64 and arm64) and images
 * published in its SSM catalog by the real Catalog, the API key planted as a SecureString, and a launch wired
 * to it through the project's client factory.
 */
import { gunzipSync } from "node:zlib";
import { PutParameterCommand } from "@aws-sdk/client-ssm";
import { makeAwsClients, type AwsClients } from "../../src/aws/clients.js";
import { Catalog } from "../../src/catalog/catalog.js";
import { recordRelease } from "../../src/catalog/release.js";
import { SsmStore } from "../../src/catalog/ssm-store.js";
import { parseConfig, type Config } from "../../src/config/load.js";
import type { Role } from "../../src/config/schema.js";
import { recordingSink, type ImgtoolEvent } from "../../src/events.js";
import { awsBackend } from "../../src/launch/aws.js";
import { Ec2Instances } from "../../src/aws/ec2-instances.js";
import type { HealthProbe } from "../../src/launch/health.js";
import type { ImageProbe } from "../../src/launch/image-check.js";
import { launch } from "../../src/launch/launch.js";
import type { LaunchOptions, LaunchResult } from "../../src/launch/types.js";
import {
  startAwsStandin,
  type AwsStandin,
  type RecordedRequest,
  type StandinOptions,
} from "../support/aws-standin/index.js";
import { actorCredentials, actorPolicies, SETUP_KEY } from "../support/iam-referee.js";

export const REGION = "us-east-1";
/** The orchestrator's API key, planted in SSM: it must never leave SSM except to an instance at boot. */
export const SECRET = "planted-api-key-9c41e07b-never-in-a-request";
export const SECRET_NAME = "/imgtool/bench/secrets/orchestrator-api-key";
export const REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
export const IMAGES = {
  "task-runner": `${REGISTRY}/bench/task-runner@sha256:${"a".repeat(64)}`,
  orchestrator: `${REGISTRY}/bench/orchestrator@sha256:${"b".repeat(64)}`,
};

export interface AwsFixture {
  standin: AwsStandin;
  /** The launcher's clients: every call is judged with `imgtool iam-policy --for launch`. */
  clients: AwsClients;
  catalog: Catalog;
  /** The catalog as the setup key writes it (not judged): for tests that publish more before a launch. */
  seeding: Catalog;
  amis: { "task-runner": { x86_64: string; arm64: string }; orchestrator: { x86_64: string } };
  close(): Promise<void>;
}

export async function awsFixture(
  clientOpts: { maxAttempts?: number; requestTimeoutMs?: number; denialsExpected?: boolean } = {},
  /** More stand-in options (EC2 limits, other policies). */
  standinOpts: StandinOptions = {},
) {
  const standin = await startAwsStandin({
    iam: {
      policies: actorPolicies(awsConfig()),
      setupKey: SETUP_KEY,
      // A test that provokes denials on purpose keeps them out of the suite's coverage check.
      ...(clientOpts.denialsExpected ? { denialsExpected: true } : {}),
    },
    ...standinOpts,
  });
  seedLaunchNetwork(standin);
  const clientsAs = (actor: "launch" | "setup") =>
    makeAwsClients({
      region: REGION,
      endpoint: standin.endpoint,
      credentials: actorCredentials(actor),
      retryBaseDelayMs: 5,
      maxAttempts: clientOpts.maxAttempts ?? 3,
      ...(clientOpts.requestTimeoutMs ? { requestTimeoutMs: clientOpts.requestTimeoutMs } : {}),
    });
  const clients = clientsAs("launch");
  const setup = clientsAs("setup");
  const catalogOf = (c: AwsClients) =>
    new Catalog({
      store: new SsmStore(c.ssm),
      prefix: "/imgtool/bench",
      region: REGION,
      readBack: { attempts: 2, delayMs: 10 },
    });
  const catalog = catalogOf(clients);
  const seeding = catalogOf(setup);
  const ami = (name: string, architecture: string) =>
    standin.addImage(REGION, { name, architecture, imdsSupport: "v2.0" }).imageId;
  const amis = {
    "task-runner": {
      x86_64: ami("imgtool-bench-task-runner-x86_64-v1", "x86_64"),
      arm64: ami("imgtool-bench-task-runner-arm64-v1", "arm64"),
    },
    orchestrator: { x86_64: ami("imgtool-bench-orchestrator-x86_64-v1", "x86_64") },
  };
  const meta = (version: string, image: string) => ({
    version,
    inputsHash: "0123456789abcdef",
    builtAt: "2026-11-29T00:00:00Z",
    image,
    preloadVolume: null,
  });
  for (const [arch, id] of Object.entries(amis["task-runner"])) {
    await seeding.publish(
      { role: "task-runner", kind: "ami", arch },
      id,
      meta("v20261129-000000-aaaa0001", IMAGES["task-runner"]),
      {
        dataType: "aws:ec2:image",
      },
    );
  }
  await seeding.publish(
    { role: "orchestrator", kind: "ami", arch: "x86_64" },
    amis.orchestrator.x86_64,
    meta("v20261129-000000-bbbb0001", IMAGES.orchestrator),
    { dataType: "aws:ec2:image" },
  );
  for (const role of ["task-runner", "orchestrator"] as const) {
    await seeding.publish(
      { role, kind: "image" },
      IMAGES[role],
      meta(`v20261129-000000-img-${role}`, IMAGES[role]),
    );
  }
  // Launches resolve channels through a release record: record it last, as push and bake do.
  await recordFixtureRelease(seeding);
  await setup.ssm.send(
    new PutParameterCommand({ Name: SECRET_NAME, Value: SECRET, Type: "SecureString", Overwrite: true }),
  );
  standin.requests.length = 0;
  return {
    standin,
    clients,
    catalog,
    seeding,
    amis,
    close: async () => {
      for (const c of [clients, setup]) {
        c.ec2.destroy();
        c.ssm.destroy();
      }
      await standin.close();
    },
  } satisfies AwsFixture;
}

/** Record the release of every artefact the fixture publishes (both images, every AMI), as the setup key. */
function recordFixtureRelease(seeding: Catalog) {
  return recordRelease(
    [seeding],
    [
      ...(["task-runner", "orchestrator"] as const).map((role) => ({ role, kind: "image" as const })),
      ...["x86_64", "arm64"].map((arch) => ({ role: "task-runner", kind: "ami" as const, arch })),
      { role: "orchestrator", kind: "ami" as const, arch: "x86_64" },
    ],
    [],
  );
}

/**
 * Publish `ref` as the role's image, pushed after its AMIs were baked (they keep the fixture's image), and
 * record the release: the role's instances would pull `ref` at boot. Forgets the requests made so far.
 */
export async function publishUnbakedImage(fx: AwsFixture, role: Role, ref: string, version: string) {
  await fx.seeding.publish({ role, kind: "image" }, ref, {
    version,
    inputsHash: "fedcba9876543210",
    builtAt: "2026-11-30T00:00:00Z",
  });
  await recordFixtureRelease(fx.seeding);
  fx.standin.requests.length = 0;
}

/** The subnet and security group awsConfig() names, in one VPC of REGION (EC2 refuses unknown ones). */
export function seedLaunchNetwork(standin: AwsStandin): void {
  const vpcId = "vpc-00123abcd0123abcd";
  standin.addSubnet(REGION, {
    subnetId: "subnet-0123abcd",
    vpcId,
    availabilityZone: `${REGION}a`,
    cidrBlock: "10.0.0.0/20",
  });
  standin.addSecurityGroup(REGION, {
    groupId: "sg-0123abcd",
    groupName: "imgtool-fleet",
    vpcId,
    ingress: [{ protocol: "tcp", fromPort: 8080, toPort: 8080, groups: ["sg-0123abcd"] }],
  });
}

export function awsConfig(extra = ""): Config {
  const r = parseConfig(
    `aws:\n  instance_profile: imgtool-instances\n  subnet_id: subnet-0123abcd\n  security_group_ids: [sg-0123abcd]\n${extra}`,
    { baseDir: "/tmp" },
  );
  if (!r.config) throw new Error(r.errors.join("\n"));
  return r.config;
}

export function options(extra: Partial<LaunchOptions> = {}): LaunchOptions {
  return {
    target: "aws",
    runId: "test-run-1",
    taskRunners: 1,
    instanceTypes: ["c7i.large"],
    spot: false,
    workersPerInstance: "auto",
    reuseOrchestrator: false,
    keepOnFailure: false,
    wait: true,
    dryRun: false,
    label: "latest",
    ...extra,
  };
}

/** A health probe standing in for the orchestrator's /health: healthy from its `healthyFrom`-th check on. */
export function standinProbe(healthyFrom = 1): HealthProbe & { urls: string[] } {
  const urls: string[] = [];
  const probe = (async (url: string) => {
    urls.push(url);
    return urls.length >= healthyFrom;
  }) as HealthProbe & { urls: string[] };
  probe.urls = urls;
  return probe;
}

export async function launchOnStandin(
  fx: AwsFixture,
  opts: Partial<LaunchOptions> = {},
  more: { config?: Config; probe?: HealthProbe; imageProbe?: ImageProbe; sleeps?: number[] } = {},
): Promise<{ result: LaunchResult; events: ImgtoolEvent[] }> {
  const sink = recordingSink();
  const config = more.config ?? awsConfig();
  try {
    const result = await launch(options(opts), {
      config,
      backend: awsBackend({
        config,
        region: REGION,
        ec2: async () => new Ec2Instances(fx.clients.ec2),
        events: sink,
      }),
      catalog: async () => fx.catalog,
      events: sink,
      probe: more.probe ?? standinProbe(),
      ...(more.imageProbe ? { imageProbe: more.imageProbe } : {}),
      sleep: async (ms) => {
        more.sleeps?.push(ms);
      },
    });
    return { result, events: sink.events };
  } catch (e) {
    (e as { events?: ImgtoolEvent[] }).events = sink.events;
    throw e;
  }
}

/** The RunInstances requests, as flat Query forms. */
export function runRequests(standin: AwsStandin): (RecordedRequest & { params: Record<string, string> })[] {
  return standin.requests.filter((r) => r.operation === "RunInstances") as (RecordedRequest & {
    params: Record<string, string>;
  })[];
}

/** Tags of one resource type in a RunInstances form. */
export function tagsOf(params: Record<string, string>, resourceType: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 1; params[`TagSpecification.${i}.ResourceType`]; i++) {
    if (params[`TagSpecification.${i}.ResourceType`] !== resourceType) continue;
    for (let j = 1; params[`TagSpecification.${i}.Tag.${j}.Key`]; j++) {
      out[params[`TagSpecification.${i}.Tag.${j}.Key`]!] =
        params[`TagSpecification.${i}.Tag.${j}.Value`] ?? "";
    }
  }
  return out;
}

/** The script a RunInstances request carries: its UserData base64-decoded, and gunzipped when it is gzip. */
export function userDataOf(params: Record<string, string>): string {
  const raw = Buffer.from(params["UserData"] ?? "", "base64");
  return (raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw).toString("utf8");
}
