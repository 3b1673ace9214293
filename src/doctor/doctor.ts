/**
 * `imgtool doctor`'s core: one check per part the chosen target needs, each with version, state and, when
 * something is wrong, the exact command that fixes it. Probes are handed in, so tests can point them anywhere.
 */
import type { Target } from "../config/schema.js";
import { errorName } from "../errors.js";
import { packerFix, packerTooOld } from "../render/packer.js";
import {
  BAKE_SUBNET_PART,
  bakeSubnetCheck,
  launchNetworkCheck,
  NETWORK_PART,
  networkReadProblem,
  type BakeSubnetRoute,
  type LaunchNetwork,
} from "./network.js";

export interface DoctorCheck {
  part: string;
  ok: boolean;
  version: string | null;
  state: string;
  fix: string | null;
}

export interface DoctorProbes {
  nodeVersion(): string;
  /** Engine version at host; throws when it does not answer. */
  dockerVersion(host: string): Promise<string>;
  imageExists(host: string, ref: string): Promise<boolean>;
  /** HTTP status of GET /v2/ without and with credentials, and the API version header. */
  registry(
    endpoint: string,
    user: string,
    password: string,
  ): Promise<{ anonymous: number; authenticated: number; api: string | null }>;
  /** `packer version` output, or null when Packer is not installed. */
  packerVersion(): Promise<string | null>;
  /** Caller identity; throws a UsageError naming the credential chain when there are no credentials. */
  awsIdentity(): Promise<{ account: string; arn: string }>;
  /** aws: the launch subnet(s) and the security groups instances carry (src/aws/ec2-network.ts). */
  awsLaunchNetwork?(region?: string): Promise<LaunchNetwork>;
  /** aws: the bake subnet's route to the internet and the key it came from; undefined: no subnet configured. */
  awsBakeSubnetRoute?(region?: string): Promise<{ route: BakeSubnetRoute; key: string } | undefined>;
  /**
   * Dead runs of the state folder and what each left (one line per run; src/leftovers/), or the reason the
   * engine could not be asked (the runs' folders are listed anyway).
   */
  leftovers?(stateDir: string): Promise<{ runs: string[]; engineProblem?: string }>;
  /** Check the local catalog file: absent, ok, or what is wrong with it and how to restore it. */
  catalog?(
    file: string,
  ): Promise<{ state: "absent" | "ok" } | { state: "damaged"; problem: string; fix: string }>;
}

export interface DoctorInput {
  target: Target;
  /** What setup recorded (undefined: setup has not run for this state folder). */
  stack:
    | { dockerHost: string; registry?: { endpoint: string; user: string; password: string | null } }
    | undefined;
  /** DOCKER_HOST (env) or the recorded host. */
  dockerHost: string;
  baseImages: string[];
  setupCommand: string;
  /** The local catalog's file (checked when the probes can). */
  catalogFile?: string;
  /** The state folder whose run records are checked for dead runs (only this one). */
  stateDir?: string;
  /** The command that removes leftovers. */
  pruneLeftoversCommand?: string;
  /** aws: the region launches go to and the orchestrator's port (the launch network check). */
  aws?: { region: string; orchestratorPort: number; bakeSubnetKey?: string };
}

const MIN_NODE_MAJOR = 20;

function message(e: unknown): string {
  const m = (e as Error)?.message ?? String(e);
  return m.split("\n")[0] ?? m;
}

/**
 * A network read (launch network, bake subnet) that threw: refused reads are "not checked" (imgtool's launch
 * policy has no Describe actions, and the check is advice), anything else fails the line, naming the key
 * when a subnet or group is missing.
 */
function networkReadLine(
  part: string,
  e: unknown,
  region: string,
  what: { actions: string; reading: string; subnetKey?: string },
): DoctorCheck {
  const problem = networkReadProblem(errorName(e), message(e), region, what.subnetKey);
  if (problem?.kind === "denied") {
    return {
      part,
      ok: true,
      version: null,
      state: `not checked (${errorName(e)}: these credentials may not call ${what.actions}; \`iam-policy --for bake\` has both)`,
      fix: null,
    };
  }
  return {
    part,
    ok: false,
    version: null,
    state: problem?.message ?? `cannot read ${what.reading} in ${region}: ${message(e)}`,
    fix: problem?.fix ?? "Run doctor again; if it persists, check the network to the EC2 API",
  };
}

export async function runDoctor(input: DoctorInput, probes: DoctorProbes): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [];
  const setup = input.setupCommand;

  const node = probes.nodeVersion();
  const major = Number(/^v?(\d+)/.exec(node)?.[1] ?? 0);
  checks.push({
    part: "node",
    ok: major >= MIN_NODE_MAJOR,
    version: node,
    state: major >= MIN_NODE_MAJOR ? "ok" : `too old (need ${MIN_NODE_MAJOR} or newer)`,
    fix:
      major >= MIN_NODE_MAJOR
        ? null
        : "Install Node.js 20 or newer (Debian: apt-get install nodejs from a Node 20 source)",
  });

  const packer = await probes.packerVersion();
  const tooOld = packer !== null ? packerTooOld(input.target, packer) : undefined;
  checks.push({
    part: "packer",
    ok: packer !== null && !tooOld,
    version: packer,
    state: packer === null ? "not installed" : tooOld ? `too old: ${tooOld}` : "ok",
    fix:
      packer !== null && !tooOld
        ? null
        : input.target === "aws"
          ? packerFix("aws")
          : `${setup}   (or: apt-get install -y packer)`,
  });

  if (input.target === "local") {
    let engineUp = false;
    try {
      const v = await probes.dockerVersion(input.dockerHost);
      engineUp = true;
      checks.push({
        part: "docker engine",
        ok: true,
        version: v,
        state: `ok (${input.dockerHost})`,
        fix: null,
      });
    } catch (e) {
      const fix =
        process.env.DOCKER_HOST && input.dockerHost === process.env.DOCKER_HOST
          ? `DOCKER_HOST=${input.dockerHost} does not answer: unset DOCKER_HOST, or start that engine; ${setup} starts one`
          : setup;
      checks.push({
        part: "docker engine",
        ok: false,
        version: null,
        state: `not answering at ${input.dockerHost}: ${message(e)}`,
        fix,
      });
    }

    const reg = input.stack?.registry;
    if (!reg) {
      checks.push({ part: "registry", ok: false, version: null, state: "not set up", fix: setup });
    } else if (reg.password === null) {
      checks.push({ part: "registry", ok: false, version: null, state: "password file missing", fix: setup });
    } else {
      try {
        const r = await probes.registry(reg.endpoint, reg.user, reg.password);
        const ok = r.anonymous === 401 && r.authenticated === 200;
        checks.push({
          part: "registry",
          ok,
          version: r.api,
          state: ok
            ? `ok (${reg.endpoint}, htpasswd auth, user ${reg.user})`
            : `unexpected answers at ${reg.endpoint}: ${r.anonymous} without credentials, ${r.authenticated} with`,
          fix: ok ? null : setup,
        });
      } catch (e) {
        checks.push({
          part: "registry",
          ok: false,
          version: null,
          state: `not answering at ${reg.endpoint}: ${message(e)}`,
          fix: setup,
        });
      }
    }

    if (input.catalogFile && probes.catalog) {
      const c = await probes.catalog(input.catalogFile);
      checks.push(
        c.state === "damaged"
          ? {
              part: "catalog",
              ok: false,
              version: null,
              state: `damaged ${input.catalogFile}: ${c.problem}`,
              fix: c.fix,
            }
          : {
              part: "catalog",
              ok: true,
              version: null,
              state:
                c.state === "ok" ? `ok (${input.catalogFile})` : `ok (not created yet: ${input.catalogFile})`,
              fix: null,
            },
      );
    }

    for (const image of input.baseImages) {
      if (!engineUp) {
        checks.push({
          part: `base image ${image}`,
          ok: false,
          version: null,
          state: "unknown (engine down)",
          fix: setup,
        });
        continue;
      }
      let present = false;
      let state: string;
      try {
        present = await probes.imageExists(input.dockerHost, image);
        state = present ? "ok" : "missing";
      } catch (e) {
        state = `cannot inspect: ${message(e)}`;
      }
      checks.push({
        part: `base image ${image}`,
        ok: present,
        version: null,
        state,
        fix: present ? null : setup,
      });
    }
  } else {
    try {
      const id = await probes.awsIdentity();
      checks.push({
        part: "aws credentials",
        ok: true,
        version: null,
        state: `ok (${id.arn}, account ${id.account})`,
        fix: null,
      });
    } catch (e) {
      const fix =
        (e as { fix?: string }).fix ?? "Configure AWS credentials (aws configure, AWS_PROFILE, or SSO login)";
      checks.push({ part: "aws credentials", ok: false, version: null, state: message(e), fix });
    }
    if (input.aws && probes.awsLaunchNetwork && checks.at(-1)?.ok) {
      const { region, orchestratorPort } = input.aws;
      try {
        checks.push(launchNetworkCheck(await probes.awsLaunchNetwork(), orchestratorPort, region));
      } catch (e) {
        checks.push(
          networkReadLine(NETWORK_PART, e, region, {
            actions: "ec2:DescribeSubnets and ec2:DescribeSecurityGroups",
            reading: "the launch subnet and security groups",
          }),
        );
      }
    }
  }
  if (input.aws && probes.awsBakeSubnetRoute && checks.find((c) => c.part === "aws credentials")?.ok) {
    const { region } = input.aws;
    try {
      const found = await probes.awsBakeSubnetRoute(region);
      checks.push(
        found
          ? bakeSubnetCheck(found.route, found.key, region)
          : {
              part: BAKE_SUBNET_PART,
              ok: true,
              version: null,
              state:
                "not checked (no aws.bake_subnet_id or aws.subnet_id: the default VPC's subnets, public unless its internet gateway was removed)",
              fix: null,
            },
      );
    } catch (e) {
      checks.push(
        networkReadLine(BAKE_SUBNET_PART, e, region, {
          actions: "ec2:DescribeSubnets and ec2:DescribeRouteTables",
          reading: "the bake subnet's route table",
          subnetKey: input.aws.bakeSubnetKey,
        }),
      );
    }
  }
  if (input.stateDir && probes.leftovers) {
    const l = await probes.leftovers(input.stateDir);
    const unknown = l.engineProblem ? ` (containers and volumes unknown: ${l.engineProblem})` : "";
    checks.push(
      l.runs.length === 0
        ? {
            part: "leftovers",
            ok: true,
            version: null,
            state: `none (no dead run in ${input.stateDir})`,
            fix: null,
          }
        : {
            part: "leftovers",
            ok: false,
            version: null,
            state: `${l.runs.length} dead run(s)${unknown}: ${l.runs.join("; ")}`,
            fix: input.pruneLeftoversCommand ?? "imgtool prune --leftovers",
          },
    );
  }
  return checks;
}
