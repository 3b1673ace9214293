/**
 * The imgtool config schema: one source for validation, defaults, the generated JSON Schema
 * (imgtool.config.schema.json), the example file and the README's config reference.
 *
 * Every object is strict: an unknown key is an error, so a typo is never silently ignored.
 */
import { z } from "zod";
import { loadVersions } from "../versions.js";
import { runSchema, SecretsSchema } from "./workload.js";
import { StackSchema } from "./stack.js";
import { CalibrationSchema, calibratedWorkers } from "./calibration.js";
import { SmokeSchema } from "./smoke.js";
import { BootBudgetSchema } from "./boot-budget.js";

const versions = loadVersions();

export const ROLES = ["task-runner", "orchestrator"] as const;
export type Role = (typeof ROLES)[number];
export const ARCHES = ["x86_64", "arm64"] as const;
export type Arch = (typeof ARCHES)[number];
export const TARGETS = ["local", "aws"] as const;
export type Target = (typeof TARGETS)[number];

const NAME_RE = /^[a-z][a-z0-9-]{0,30}[a-z0-9]$/;
const RUBY_VERSION_RE = /^\d+\.\d+(\.\d+)?(-[a-z0-9]+)?$/;
// Docker image references: [registry[:port]/]name[:tag][@sha256:...] (lower-case name components).
const IMAGE_REF_RE =
  /^(?:[a-zA-Z0-9.-]+(?::\d+)?\/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;
const INSTANCE_TYPE_RE = /^[a-z][a-z0-9-]*\.[a-z0-9]+$/;
const AWS_REGION_RE = /^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$/;
const GIT_REF_RE = /^(?!-)(?!.*\.\.)[A-Za-z0-9._/-]{1,200}$/;
const PACKAGE_RE = /^[a-z0-9][a-z0-9+.:_-]*$/;
// A Docker tag is [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}; the prefix leaves room for the content hash.
const DOCKER_TAG_PREFIX_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

const msg = (error: string) => ({ error });

/** SSM names have at most 15 levels; catalog names add role/kind/arch/meta below the prefix. */
const SSM_PREFIX_MAX_LEVELS = 11;

const AwsBase = z
  .strictObject({
    owner: z
      .string()
      .min(1)
      .default(versions.aws_base.x86_64?.owner ?? "amazon")
      .describe("AMI owner for the base AMI lookup (account id, or amazon / aws-marketplace)."),
    name: z
      .strictObject({
        x86_64: z
          .string()
          .min(1)
          .default(versions.aws_base.x86_64?.name ?? "")
          .describe("AMI name filter (wildcards allowed) for x86_64 instance types."),
        arm64: z
          .string()
          .min(1)
          .default(versions.aws_base.arm64?.name ?? "")
          .describe("AMI name filter (wildcards allowed) for arm64 instance types."),
      })
      .default({ x86_64: versions.aws_base.x86_64?.name ?? "", arm64: versions.aws_base.arm64?.name ?? "" })
      .describe("Base AMI name filter per architecture; the newest match (most_recent) is used."),
  })
  .default({
    owner: versions.aws_base.x86_64?.owner ?? "amazon",
    name: { x86_64: versions.aws_base.x86_64?.name ?? "", arm64: versions.aws_base.arm64?.name ?? "" },
  });

function roleSchema(role: Role) {
  const isRunner = role === "task-runner";
  const defaults = {
    instanceTypes: isRunner ? ["c7i.large"] : ["t3.medium"],
    workers: isRunner ? ("auto" as const) : 1,
  };
  return z.strictObject({
    base: z
      .strictObject({
        aws: AwsBase.describe("Base AMI for the aws target."),
        local: z
          .strictObject({
            image: z
              .string()
              .regex(IMAGE_REF_RE, msg("must be a Docker image reference such as imgtool/base:bookworm"))
              .default("imgtool/base:bookworm")
              .describe("Local base image for the Docker twin (built by scripts/setup)."),
          })
          .default({ image: "imgtool/base:bookworm" })
          .describe("Base image for the local target's twin."),
        max_age_days: z
          .number()
          .min(0, msg("must be 0 or more"))
          .default(7)
          .describe(
            "A staged bake rebuilds the base stage (OS updates, Docker, Ruby) when it is older than this, even with unchanged inputs, so security updates do not wait for a new base AMI.",
          ),
      })
      .default({
        aws: AwsBase.parse(undefined),
        local: { image: "imgtool/base:bookworm" },
        max_age_days: 7,
      })
      .describe("What the AMI (aws) or the twin image (local) starts from."),
    instance_types: z
      .array(
        z
          .string()
          .regex(INSTANCE_TYPE_RE, msg("must be an EC2 instance type such as c7i.large or c7g.xlarge")),
      )
      .min(1, msg("needs at least one instance type"))
      .default(defaults.instanceTypes)
      .describe("EC2 instance types; types of several architectures (x86_64, arm64) get one AMI each."),
    ruby: z
      .strictObject({
        versions: z
          .array(z.string().regex(RUBY_VERSION_RE, msg("must be a Ruby version such as 3.3 or 3.3.6")))
          .min(1, msg("needs at least one Ruby version"))
          .default(versions.ruby.default_versions)
          .describe("Ruby versions installed on the image; the first is the default ruby."),
        method: z
          .enum(["distro", "ruby-build", "tarball"], msg("must be one of distro, ruby-build, tarball"))
          .default(versions.ruby.default_method)
          .describe(
            "How Ruby is installed: the distribution's package, ruby-build from source, or a prebuilt tarball.",
          ),
        tarball_url: z
          .string()
          .url(msg("must be a URL; {version} and {arch} are replaced"))
          .optional()
          .describe(
            "URL template of prebuilt Ruby tarballs (method tarball); {version} and {arch} are replaced.",
          ),
      })
      .default({ versions: versions.ruby.default_versions, method: versions.ruby.default_method })
      .describe("Ruby on the image."),
    ruby_bench: z
      .strictObject({
        repository: z
          .string()
          .min(1)
          .default(versions.ruby_bench.repository)
          .describe("ruby-bench git repository (URL or local path) cached at /opt/ruby-bench."),
        ref: z
          .string()
          .regex(GIT_REF_RE, msg("must be a git branch, tag or commit"))
          .default(versions.ruby_bench.ref)
          .describe("Pinned ref of the cached ruby-bench checkout."),
      })
      .default({ repository: versions.ruby_bench.repository, ref: versions.ruby_bench.ref })
      .describe("The cached ruby-bench checkout."),
    packages: z
      .array(z.string().regex(PACKAGE_RE, msg("must be a package name such as libyaml-dev")))
      .default([])
      .describe("Extra OS packages installed at bake time."),
    workers_per_instance: z
      .union([
        z.literal("auto"),
        z.number().int(msg("must be a whole number")).min(1, msg("must be at least 1")).max(192),
        ...(isRunner ? [calibratedWorkers] : []),
      ])
      .default(defaults.workers)
      .describe(
        `Worker containers per instance: auto (one per physical CPU) or a number${isRunner ? "; calibrated: what `imgtool calibrate` recorded for the version and instance type" : ""}.`,
      ),
    app: z
      .strictObject({
        context: z
          .string()
          .min(1)
          .default(`examples/${role}`)
          .describe("The role's application build context (a folder, relative to the config file)."),
        dockerfile: z
          .string()
          .min(1)
          .optional()
          .describe(
            "A Dockerfile of your own, relative to the context, used as it is instead of the rendered one.",
          ),
        build_args: z
          .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, msg("must be a build-arg name")), z.string())
          .default({})
          .describe("Build args passed to the image build."),
        packages: z
          .array(z.string().regex(PACKAGE_RE, msg("must be a package name such as ruby-pg")))
          .default([])
          .describe(
            "OS packages installed in the container image only, by its base's package manager (apt or dnf), after the role's packages (which go on the AMI and the image); for the rendered Dockerfile. E.g. Debian's ruby-webrick and ruby-pg on a debian base image.",
          ),
        tag_prefix: z
          .string()
          .regex(
            DOCKER_TAG_PREFIX_RE,
            msg(
              "must be up to 64 letters, digits, '_', '.' and '-', not starting with '.' or '-': it starts the image's content tag",
            ),
          )
          .optional()
          .describe(
            "Prefix of the image's content tag (e.g. nightly-); the tag is the prefix and a hash of the build inputs.",
          ),
        base_image: z
          .strictObject({
            aws: z
              .string()
              .regex(IMAGE_REF_RE, msg("must be a Docker image reference"))
              .default(`ruby:${versions.ruby.default_versions[0]}`)
              .describe("Base image of the container image for the aws target."),
            local: z
              .string()
              .regex(IMAGE_REF_RE, msg("must be a Docker image reference"))
              .default("imgtool/ruby:bookworm")
              .describe("Base image of the container image for the local target (built by scripts/setup)."),
          })
          .default({ aws: `ruby:${versions.ruby.default_versions[0]}`, local: "imgtool/ruby:bookworm" })
          .describe("Base image of the rendered Dockerfile, per target."),
      })
      .default({
        context: `examples/${role}`,
        build_args: {},
        packages: [],
        base_image: { aws: `ruby:${versions.ruby.default_versions[0]}`, local: "imgtool/ruby:bookworm" },
      })
      .describe("The role's container image."),
    cpu: z
      .strictObject({
        governor: z
          .enum(["performance", "unchanged"])
          .default(isRunner ? "performance" : "unchanged")
          .describe("CPU frequency governor set at boot, where the platform allows."),
        turbo: z
          .enum(["off", "unchanged"])
          .default(isRunner ? "off" : "unchanged")
          .describe("Turbo/boost, where the platform allows."),
        quiet_services: z
          .boolean()
          .default(isRunner)
          .describe("Turn off noisy timers and services (package auto-updates, log rotation timers)."),
        isolate: z
          .boolean()
          .refine(
            (v) => isRunner || !v,
            msg("only task runners' CPUs are isolated: set it to false or leave it out"),
          )
          .default(isRunner)
          .describe(
            "Task runners only. aws: bake kernel arguments that keep the OS, its interrupts and the engine off every CPU " +
              "but the first (isolcpus, nohz_full, rcu_nocbs, irqaffinity) into the AMI; a Docker twin records it as not allowed.",
          ),
      })
      .default({
        governor: isRunner ? "performance" : "unchanged",
        turbo: isRunner ? "off" : "unchanged",
        quiet_services: isRunner,
        isolate: isRunner,
      })
      .describe("Benchmark-quiet CPU settings, each recorded in the version manifest."),
    run: runSchema({
      health: isRunner ? {} : { http: { path: "/health" } },
    }),
    stack: StackSchema.optional(),
  });
}

const roleDefaults = (role: Role) => roleSchema(role).parse({});

export const ConfigSchema = z
  .strictObject({
    pipeline: z
      .string()
      .regex(NAME_RE, msg("must be 2-32 characters of a-z, 0-9 and '-', starting with a letter"))
      .default("bench")
      .describe("Pipeline name: part of every resource name, tag and SSM path."),
    roles: z
      .strictObject({
        "task-runner": roleSchema("task-runner").default(roleDefaults("task-runner")),
        orchestrator: roleSchema("orchestrator").default(roleDefaults("orchestrator")),
      })
      .default({ "task-runner": roleDefaults("task-runner"), orchestrator: roleDefaults("orchestrator") })
      .describe("The two roles, task-runner and orchestrator."),
    secrets: SecretsSchema,
    smoke: SmokeSchema,
    boot_budget: BootBudgetSchema,
    aws: z
      .strictObject({
        regions: z
          .array(z.string().regex(AWS_REGION_RE, msg("must be an AWS region such as us-east-1")))
          .min(1, msg("needs at least one region"))
          .default(["us-east-1"])
          .describe("Regions: the first is home (bakes, catalog); AMIs are copied to the others."),
        subnet_id: z
          .string()
          .regex(/^subnet-[0-9a-f]{8,17}$/, msg("must be a subnet id such as subnet-0123abcd"))
          .optional()
          .describe(
            "Subnet of launched instances, and of the bake's build instances unless aws.bake_subnet_id; default: the default VPC's.",
          ),
        bake_subnet_id: z
          .string()
          .regex(/^subnet-[0-9a-f]{8,17}$/, msg("must be a subnet id such as subnet-0123abcd"))
          .optional()
          .describe(
            "Subnet of the bake's build instances; default: aws.subnet_id, else the default VPC's. Packer connects " +
              "to them by SSH from where the bake runs, so this subnet must route to an internet gateway; in a " +
              "subnet set here (or by aws.subnet_id) a build instance gets a public IPv4 address even where the " +
              "subnet assigns none by default. Set it when aws.subnet_id is private.",
          ),
        security_group_ids: z
          .array(
            z.string().regex(/^sg-[0-9a-f]{8,17}$/, msg("must be a security group id such as sg-0123abcd")),
          )
          .default([])
          .describe("Security groups of launched instances."),
        instance_profile: z
          .string()
          .min(1)
          .optional()
          .describe("Instance profile of launched instances (pull from ECR, read its own secret)."),
        instance_role: z
          .string()
          .regex(
            /^\/?(?:[\w+=,.@-]+\/)*[\w+=,.@-]{1,64}$/,
            msg(
              "must be an IAM role name such as imgtool-instance, after its path if it has one (ci/imgtool-instance)",
            ),
          )
          .optional()
          .describe(
            "IAM role in aws.instance_profile: the only role `launch` may pass (iam:PassRole). A role with an IAM path is named with it (ci/imgtool-instance for the ARN role/ci/imgtool-instance). Default: the profile's name.",
          ),
        ssm_prefix: z
          .string()
          .regex(/^(\/[A-Za-z0-9_.-]+)+$/, msg("must be an SSM path such as /imgtool/bench"))
          .refine(
            (v) => !/^\/(aws|ssm)/i.test(v),
            msg("must not begin with /aws or /ssm: SSM reserves those names (use e.g. /imgtool/bench)"),
          )
          .refine(
            (v) => v.split("/").length - 1 <= SSM_PREFIX_MAX_LEVELS,
            msg(
              `has too many levels: SSM allows 15 and the catalog adds 4 below the prefix (role/kind/arch/meta); use at most ${SSM_PREFIX_MAX_LEVELS}`,
            ),
          )
          .optional()
          .describe("SSM Parameter Store prefix of the catalog. Default: /imgtool/<pipeline>."),
        ecr: z
          .strictObject({
            repositories: z
              .strictObject({
                "task-runner": z.string().optional().describe("Default: <pipeline>/task-runner."),
                orchestrator: z.string().optional().describe("Default: <pipeline>/orchestrator."),
              })
              .default({})
              .describe("ECR repository name per role."),
            keep_images: z
              .number()
              .int()
              .min(1)
              .default(20)
              .describe(
                "Lifecycle policy: keep this many newest untagged images per repository (tagged versions, which the catalog points at, never expire).",
              ),
          })
          .default({ repositories: {}, keep_images: 20 })
          .describe("ECR repositories."),
        spot: z
          .boolean()
          .default(false)
          .describe("Launch task runners as spot instances (falls back to on-demand)."),
        ami_wait: z
          .strictObject({
            consecutive: z
              .number()
              .int(msg("must be a whole number"))
              .min(1, msg("must be at least 1"))
              .default(3)
              .describe("`available` reads in a row before an AMI counts as ready (the state can flap)."),
            interval_seconds: z
              .number()
              .min(0, msg("must be 0 or more"))
              .default(15)
              .describe("Seconds between reads of an AMI's state while waiting for it."),
          })
          .default({ consecutive: 3, interval_seconds: 15 })
          .describe("How a bake waits for its AMIs (and their copies) to be available."),
        fast_snapshot_restore: z
          .boolean()
          .default(false)
          .describe(
            "EBS Fast Snapshot Restore for each new AMI's snapshots in the launch subnets' Availability Zones " +
              "(aws.subnet_id's zone in the home region, else every zone of the region's default VPC), so that a new " +
              "instance's root volume is not loaded lazily from S3; disabled again when `prune` deletes the version. " +
              "Costly: billed per snapshot and zone for every hour it is enabled (about 0.75 USD per hour in us-east-1, " +
              "one hour minimum): a version of two architectures in three zones costs about 4.50 USD per hour until it " +
              "is pruned. Off by default.",
          ),
        key_name: z
          .string()
          .min(1)
          .max(255)
          .optional()
          .describe("EC2 key pair of launched instances (default: none; use SSM Session Manager)."),
        api_key_parameter: z
          .string()
          .regex(
            /^(\/[A-Za-z0-9_.-]+)+$/,
            msg("must be an SSM parameter name such as /imgtool/bench/secrets/orchestrator-api-key"),
          )
          .refine((v) => v.split("/").length - 1 <= 15, msg("has too many levels: SSM allows at most 15"))
          .optional()
          .describe(
            "SSM SecureString holding the orchestrator's API key, read by the instances at boot through their " +
              "instance role (IMDSv2). Default: <ssm_prefix>/secrets/orchestrator-api-key.",
          ),
      })
      .default({
        regions: ["us-east-1"],
        security_group_ids: [],
        ecr: { repositories: {}, keep_images: 20 },
        spot: false,
        ami_wait: { consecutive: 3, interval_seconds: 15 },
        fast_snapshot_restore: false,
      })
      .describe("The aws target."),
    launch: z
      .strictObject({
        orchestrator_port: z
          .number()
          .int(msg("must be a whole number"))
          .min(1, msg("must be between 1 and 65535"))
          .max(65535, msg("must be between 1 and 65535"))
          .default(8080)
          .describe(
            "Port the orchestrator listens on; task runners get http://<its private address>:<port> (local: another free port when taken, or claimed by another launch of this checkout).",
          ),
        restart_policy: z
          .enum(["no", "on-failure", "always", "unless-stopped"])
          .default("unless-stopped")
          .describe("Docker restart policy of every worker container."),
        user_data_compression: z
          .enum(["none", "gzip"])
          .default("gzip")
          .describe(
            "gzip the user-data (cloud-init unpacks it); EC2's 16 KB limit counts the bytes sent (the gzip), before base64. `none` sends the plain script, e.g. to read it in the console.",
          ),
        engine_wait_seconds: z
          .number()
          .int()
          .min(1)
          .max(600)
          .default(60)
          .describe(
            "How long the user-data waits for the baked Docker engine to answer before it fails the boot.",
          ),
        ready_timeout_seconds: z
          .number()
          .int()
          .min(5)
          .max(3600)
          .default(600)
          .describe(
            "How long `imgtool launch` waits for the orchestrator's health and every instance's readiness (aws: the record it publishes in SSM); for a task runner, `boot_budget.pre_warm.seconds` longer, the most its pre-warm step may take. An instance's own wait for its workers or stack is shorter, by 120 s and engine_wait_seconds (a quarter at most), so it usually fails first and launch shows why.",
          ),
        worker_env: z
          .strictObject({
            "task-runner": z
              .record(
                z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, msg("must be an environment variable name")),
                z.string(),
              )
              .default({})
              .describe("Extra environment of every task-runner worker container."),
            orchestrator: z
              .record(
                z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, msg("must be an environment variable name")),
                z.string(),
              )
              .default({})
              .describe("Extra environment of the orchestrator container."),
          })
          .default({ "task-runner": {}, orchestrator: {} })
          .describe(
            "Extra environment per role, passed to the workers as it is (never through a shell). It is written into the user-data: no secrets here.",
          ),
      })
      .default({
        orchestrator_port: 8080,
        restart_policy: "unless-stopped",
        user_data_compression: "gzip",
        engine_wait_seconds: 60,
        ready_timeout_seconds: 600,
        worker_env: { "task-runner": {}, orchestrator: {} },
      })
      .describe("`imgtool launch`: the instances' user-data and how the launch waits for them."),
    local: z
      .strictObject({
        registry_port: z
          .number()
          .int(msg("must be a whole number"))
          .min(1024, msg("must be between 1024 and 65535"))
          .max(65535, msg("must be between 1024 and 65535"))
          .default(5000)
          .describe(
            "Loopback port of the local registry (scripts/setup picks another if taken, and records it).",
          ),
        state_dir: z
          .string()
          .min(1)
          .default(".imgtool")
          .describe("State folder (engine data, registry, catalog), relative to the config file's folder."),
      })
      .default({ registry_port: 5000, state_dir: ".imgtool" })
      .describe("The local target."),
    calibration: CalibrationSchema,
  })
  .describe("imgtool configuration");

/** The config as written (keys optional). */
export type ConfigInput = z.input<typeof ConfigSchema>;
/** The config after defaults, before normalisation. */
export type ParsedConfig = z.output<typeof ConfigSchema>;
export type RoleConfig = ParsedConfig["roles"]["task-runner"];
