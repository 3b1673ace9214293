/**
 * The imgtool CLI: yargs wiring only (src/cli/bin.ts runs it; src/cli/deps.ts builds what the flows need). Each handler parses its options and calls the core; commands import
 * their implementation (and with it the AWS SDK, dockerode, ...) lazily, so `imgtool --help` stays cheap.
 * Exit codes: 0 success, 1 failure, 2 usage or config error.
 */
import { readFileSync } from "node:fs";
import yargs, { type Argv } from "yargs";
import { hideBin } from "yargs/helpers";
import { UsageError } from "../errors.js";
import { projectPath } from "../paths.js";
import type { Context, GlobalArgs } from "./context.js";
import type { DepsOverrides } from "./deps.js";
import { Output } from "./output.js";

const pkg = JSON.parse(readFileSync(projectPath("package.json"), "utf8")) as { version: string };

const makeOutput = (args: { json?: boolean; verbose?: boolean }) =>
  new Output({
    json: Boolean(args.json),
    verbose: Boolean(args.verbose),
    ...(current.stdout ? { stdout: current.stdout } : {}),
    ...(current.stderr ? { stderr: current.stderr } : {}),
  });

type Handler<A> = (ctx: Context, args: A & GlobalArgs) => Promise<number | void>;

/** Holds the exit code a handler decided on; main() sets process.exitCode from it. */
const state = { exitCode: 0 };

export interface MainOptions {
  /** Replace parts of the composition root (src/cli/deps.ts): the one override point for tests. */
  deps?: DepsOverrides;
  /** Where results and logs go. @default process.stdout, process.stderr */
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
}

/** The options of the running main(): what run() hands to each command's context. */
let current: MainOptions = {};

/** Wrap a handler: build the context, run, map errors to exit codes. */
function run<A>(load: () => Promise<Handler<A>>) {
  return async (parsed: Record<string, unknown>) => {
    const argv = parsed as A & GlobalArgs;
    const out = makeOutput(argv);
    let ctx: Context | undefined;
    try {
      const { makeContext } = await import("./context.js");
      ctx = makeContext(argv, out, current.deps);
      const handler = await load();
      state.exitCode = (await handler(ctx, argv)) ?? 0;
    } catch (e) {
      state.exitCode = out.error(e);
    } finally {
      // The handler is done and its cleanups ran: the run is no longer a candidate for leftovers.
      ctx?.endRun();
    }
  };
}

const roleOption = {
  describe: "Which role(s)",
  choices: ["task-runner", "orchestrator", "all"],
  default: "all",
} as const;

/**
 * A numeric option parsed by us, not by yargs: yargs turns `abc` into NaN, and the error would echo "NaN"
 * instead of what was typed.
 */
/** The error a coerce function threw (yargs re-wraps it in a YError that keeps only the message). */
let coerceFailure: UsageError | undefined;

function numberOption(flag: string, example: string) {
  return {
    type: "string" as const,
    requiresArg: true,
    coerce: (v: unknown): number => {
      if (typeof v === "number") return v;
      const typed = String(Array.isArray(v) ? v.at(-1) : v);
      const n = Number(typed);
      if (typed.trim() === "" || !Number.isFinite(n)) {
        coerceFailure = new UsageError(`--${flag} ${JSON.stringify(typed)} is not a number.`, {
          fix: `Give a whole number, e.g. ${example}.`,
        });
        throw coerceFailure;
      }
      return n;
    },
  };
}

/** Publishing commands: how long to wait for another run's publish lease (src/catalog/lease.ts). */
const waitLeaseOption = {
  ...numberOption("wait-lease", "--wait-lease 600"),
  default: 0,
  describe: "Seconds to wait when another run holds the publish lease (default: fail at once, naming it)",
};

/** The first word that is not an option: the command the user typed. */
function typedCommand(argv: string[]): string | undefined {
  return argv.find((a) => !a.startsWith("-"));
}

export function buildParser(argv: string[]): Argv {
  return yargs(argv)
    .scriptName("imgtool")
    .usage(
      "$0 <command> [options]\n\n" +
        "Bake AMIs and container images for a benchmark fleet, publish them to a catalog, and launch " +
        "instances that boot with nothing left to install. Every command works on two targets: local " +
        "(a Docker twin, a local registry and catalog; the default) and aws (Packer, ECR, SSM Parameter " +
        "Store, EC2).",
    )
    .option("config", {
      type: "string",
      describe: "Config file (YAML). Default ./imgtool.config.yaml, or built-in defaults when absent",
      global: true,
    })
    .option("target", {
      choices: ["local", "aws"] as const,
      default: "local" as const,
      describe: "Where artefacts are built, published and launched",
      global: true,
    })
    .option("json", {
      type: "boolean",
      default: false,
      describe: "Print one JSON document on stdout (logs go to stderr)",
      global: true,
    })
    .option("region", {
      type: "string",
      describe: "AWS region (default: the config's first region)",
      global: true,
    })
    .option("profile", { type: "string", describe: "AWS named profile", global: true })
    .option("verbose", {
      type: "boolean",
      alias: "v",
      default: false,
      describe: "More detail on stderr",
      global: true,
    })
    .option("dry-run", {
      type: "boolean",
      default: false,
      describe: "Show what would happen; change nothing",
      global: true,
    })
    .command(
      "render",
      "Render Packer HCL, Dockerfiles and scripts for inspection (runs nothing)",
      (y) =>
        y
          .option("role", roleOption)
          .option("out", {
            type: "string",
            describe: "Output folder (each role's stages go to OUT/<target>/<role>/base and .../role)",
            demandOption: true,
          })
          .option("packer-version", {
            type: "string",
            describe:
              "The Packer that will build it; before 1.7 the plugins file goes to plugins/ (default: 1.7+)",
          })
          .example("$0 render --role task-runner --target aws --out build/", "Write the aws HCL for one role")
          .option("stage", {
            choices: ["staged", "full"] as const,
            default: "staged" as const,
            describe:
              "staged: both stages that `bake ami` runs, OUT/<target>/<role>/base and .../role (each with the rendered-files hash its bake records); full: one build with every step, OUT/<target>/<role>",
          })
          .example(
            "$0 render --out build/ --packer-version 1.6.6",
            "Both twins' stages, laid out for Packer 1.6.6",
          )
          .example("$0 render --out build/ --stage full", "Every step of a role in one build, for reading"),
      run(async () => (await import("./commands/render.js")).renderCommand),
    )
    .command("bake <what>", "Bake machine images with Packer and publish them to the catalog", (y) =>
      y
        .command(
          "ami",
          "Bake the role's AMI (aws) or Docker twin (local); skipped when inputs are unchanged",
          (yy) =>
            yy
              .option("role", roleOption)
              .option("stage", {
                choices: ["base", "role", "all"] as const,
                default: "all" as const,
                describe:
                  "Which stage to bake: base (OS updates, Docker, Ruby, packages, CPU settings), role (ruby-bench, the role's images, validate, manifest; on the base found by its inputs hash), or both",
              })
              .option("force", {
                type: "boolean",
                default: false,
                describe: "Bake the chosen stage(s) even when up to date",
              })
              .option("wait-lease", waitLeaseOption)
              .example("$0 bake ami", "Bake both roles' local twins")
              .example("$0 bake ami --stage role", "Rebake only the role stage, on the published base")
              .example(
                "$0 bake ami --target aws --role task-runner --json",
                "Bake one AMI on AWS, JSON result",
              )
              .epilog(
                "aws.fast_snapshot_restore: true (off by default) enables EBS Fast Snapshot Restore for the new " +
                  "snapshots in the launch zones, billed per snapshot and zone-hour (about 0.75 USD in us-east-1) " +
                  "until `imgtool prune` deletes the version.",
              ),
          run(async () => (await import("./commands/bake.js")).bakeAmi),
        )
        .demandCommand(1, "Say what to bake: `imgtool bake ami`"),
    )
    .command("push <what>", "Build container images and push them to ECR or the local registry", (y) =>
      y
        .command(
          "image",
          "Build and push each role's image; skipped when the content tag exists",
          (yy) =>
            yy
              .option("role", roleOption)
              .option("wait-lease", waitLeaseOption)
              .example("$0 push image", "Build and push both roles to the local registry")
              .example("$0 push image --target aws --role orchestrator", "Push one role to ECR")
              .example("$0 push image --dry-run --json", "Say what would be built, as JSON; change nothing"),
          run(async () => (await import("./commands/push.js")).pushImage),
        )
        .demandCommand(1, "Say what to push: `imgtool push image`"),
    )
    .command(
      "launch",
      "Launch an orchestrator and task runners from the catalog's images",
      (y) =>
        y
          .option("run-id", {
            type: "string",
            describe: "Run id (tags, names, tokens); default: time + random",
          })
          .option("task-runners", {
            ...numberOption("task-runners", "--task-runners 2"),
            default: 1,
            describe: "Task-runner instances per instance type (0: orchestrator only)",
          })
          .option("instance-types", {
            type: "string",
            describe:
              "Task-runner instance types, comma-separated (default: roles.task-runner.instance_types)",
          })
          .option("spot", {
            type: "boolean",
            describe: "Task runners on spot, on-demand when none (default: aws.spot)",
          })
          .option("workers-per-instance", {
            type: "string",
            describe:
              "Workers per task runner: auto (one per physical core), calibrated (what `imgtool calibrate` recorded) or N (default: the config's)",
          })
          .option("reuse-orchestrator", {
            type: "boolean",
            default: false,
            describe: "Keep a running orchestrator of this pipeline; launch only task runners",
          })
          .option("keep-on-failure", {
            type: "boolean",
            default: false,
            describe: "Leave what was started running when the launch fails",
          })
          .option("wait", {
            type: "boolean",
            default: true,
            describe:
              "Wait for the orchestrator's health (and local readiness); --no-wait returns once started",
          })
          .option("channel", {
            alias: "label",
            type: "string",
            describe:
              "Catalog label to launch: stable (the default; latest when nothing is stable yet), latest, or a version",
          })
          .option("emit", {
            choices: ["tfvars"] as const,
            describe: "Write the resolved ids instead of launching",
          })
          .option("out", { type: "string", describe: "File for --emit tfvars (default: stdout)" })
          .example("$0 launch --task-runners 2 --dry-run", "Show the plan and user-data")
          .example(
            "$0 launch --target aws --instance-types c7i.large,c7g.large --task-runners 4 --spot",
            "4 spot task runners of each type, every type at once",
          )
          .example("$0 launch --reuse-orchestrator --json", "Only new task runners, JSON result")
          .example("$0 launch --target aws --emit tfvars --out imgtool.auto.tfvars", "Ids for Terraform"),
      run(async () => (await import("./commands/launch.js")).launchCommand),
    )
    .command(
      "calibrate",
      "Measure how many workers an instance type runs without losing accuracy, and record it with the version",
      (y) =>
        y
          .option("role", {
            choices: ["task-runner"],
            default: "task-runner",
            describe: "The role to calibrate",
          })
          .option("instance-types", {
            type: "string",
            describe:
              "Instance types, comma-separated, one instance each (default: the first of roles.task-runner.instance_types)",
          })
          .option("workers", {
            type: "string",
            describe:
              "Worker counts, e.g. 1,2,4 (default: calibration.workers, else 1, 2, 4, ... up to the physical cores)",
          })
          .option("benchmarks", {
            type: "string",
            describe: "ruby-bench benchmarks, comma-separated (default: calibration.benchmarks)",
          })
          .option("repetitions", {
            ...numberOption("repetitions", "--repetitions 5"),
            describe: "Runs per benchmark and layout (default: calibration.repetitions)",
          })
          .option("channel", {
            type: "string",
            describe: "Catalog label to launch (default: stable, else latest)",
          })
          .option("run-id", { type: "string", describe: "Run id of the calibration's instances" })
          .option("out", {
            type: "string",
            describe: "Folder for an SVG chart and the JSON report per instance type",
          })
          .example("$0 calibrate --workers 1,2 --benchmarks fib --out calibration/", "The local target")
          .example(
            "$0 calibrate --target aws --instance-types c7i.xlarge,c7g.xlarge --json",
            "One instance per type",
          ),
      run(async () => (await import("./commands/calibrate.js")).calibrateCommand),
    )
    .command(
      "terminate",
      "Terminate the instances of a launch run (found by tag)",
      (y) =>
        y
          .option("run-id", { type: "string", demandOption: true, describe: "The run to end" })
          .option("role", roleOption)
          .example("$0 terminate --run-id 20261129-174501-3fa2", "End a local run")
          .example(
            "$0 terminate --target aws --run-id nightly-42 --role task-runner",
            "Keep its orchestrator",
          ),
      run(async () => (await import("./commands/terminate.js")).terminateCommand),
    )
    .command(
      "pipeline",
      "Push images, bake AMIs, smoke-launch the new versions and promote them to `stable`",
      (y) =>
        y
          .option("role", roleOption)
          .option("smoke", {
            type: "boolean",
            default: true,
            describe: "Smoke-launch new versions before promoting them to stable (--no-smoke: no promotion)",
          })
          .option("network-check", {
            type: "boolean",
            default: true,
            describe:
              "aws: before any push or bake, check that the bake's subnet routes to the internet and (with the smoke launch) that the security groups let the task runners reach the orchestrator's port (--no-network-check: skip)",
          })
          .option("force", {
            type: "boolean",
            default: false,
            describe: "Bake even when the inputs are unchanged",
          })
          .option("out", { type: "string", describe: "Folder for summary.md and the version manifests" })
          .option("wait-lease", waitLeaseOption)
          .example("$0 pipeline", "The whole pipeline on the local target")
          .example("$0 pipeline --target aws --json --out nightly-out", "The nightly rebake"),
      run(async () => (await import("./commands/pipeline.js")).pipelineCommand),
    )
    .command(
      "status",
      "Show what the catalog holds: per role and kind, current and previous version",
      (y) =>
        y
          .option("role", roleOption)
          // `status --version V` shows a version: here --version is not the program's version flag.
          .version(false)
          .option("version", {
            type: "string",
            describe: "Show what is in one version: its manifest, inputs hash, parent base and labels",
          })
          .example("$0 status", "Local catalog")
          .example("$0 status --version v20261129-171500-1a2b3c4d", "What is in a version")
          .example("$0 status --target aws --json", "The SSM catalog, as JSON"),
      run(async () => (await import("./commands/status.js")).status),
    )
    .command(
      "diff <v1> <v2>",
      "Show what changed between two versions (manifests, inputs, base)",
      (y) =>
        y
          .positional("v1", { type: "string", demandOption: true, describe: "The older version" })
          .positional("v2", { type: "string", demandOption: true, describe: "The newer version" })
          .example(
            "$0 diff v20261128-101500-1a2b3c4d v20261129-101500-5e6f7a8b",
            "What the nightly rebake changed",
          ),
      run(async () => (await import("./commands/diff.js")).diffCommand),
    )
    .command(
      "rollback",
      "Point a channel (latest, or stable with --channel) back at an earlier release, in one write",
      (y) =>
        y
          .option("channel", {
            choices: ["latest", "stable"],
            default: "latest",
            describe: "The channel to move (launches use stable by default)",
          })
          .option("to", {
            type: "string",
            describe: "Release id, or with --role a version name (default: the one before the current)",
          })
          .option("role", {
            choices: ["task-runner", "orchestrator"],
            describe: "Instead: move one artefact's own latest label (with --kind)",
          })
          .option("kind", { choices: ["ami", "image"], describe: "Artefact kind (with --role)" })
          .option("arch", {
            choices: ["x86_64", "arm64"],
            describe: "Architecture (AMIs; default: every one)",
          })
          .example("$0 rollback --channel stable", "Launches go back to the previous release")
          .example("$0 rollback --to r20261128-101500-1a2b3c4d", "latest to a named release")
          .example(
            "$0 rollback --role task-runner --kind ami",
            "One artefact's latest back to its previous AMI",
          ),
      run(async () => (await import("./commands/rollback.js")).rollback),
    )
    .command(
      "prune",
      "Delete old AMIs, snapshots and twin images beyond the newest N",
      (y) =>
        y
          .option("keep", {
            ...numberOption("keep", "--keep 3"),
            default: 5,
            describe: "Versions to keep per role (labelled and in-use versions are kept too)",
          })
          .option("role", roleOption)
          .option("leftovers", {
            type: "boolean",
            default: false,
            describe:
              "Instead: remove what dead runs left (labelled containers and volumes, run folders; see `imgtool doctor`)",
          })
          .example("$0 prune --keep 3 --dry-run", "List what would go and why")
          .example("$0 prune --leftovers --dry-run", "List what killed runs left behind")
          .example("$0 prune --target aws --keep 5", "Deregister old AMIs and delete their snapshots"),
      run(async () => (await import("./commands/prune.js")).pruneCommand),
    )
    .command(
      "doctor",
      "Check the parts imgtool needs, with versions and the command that fixes what is missing",
      (y) =>
        y
          .example("$0 doctor", "Local target")
          .example("$0 doctor --target aws --json", "Include AWS credentials"),
      run(async () => (await import("./commands/doctor.js")).doctor),
    )
    .command(
      "iam-policy",
      "Print a least-privilege IAM policy for one actor (bake, push, launch, prune, instance)",
      (y) =>
        y
          .option("for", {
            choices: ["bake", "push", "launch", "prune", "instance"] as const,
            demandOption: true,
            describe: "Who the policy is for: the CI role of each stage, or the instances' role",
          })
          .example("$0 iam-policy --for bake > bake-policy.json", "The nightly rebake role's policy")
          .example(
            'aws iam put-role-policy --role-name imgtool-instance --policy-name imgtool --policy-document "$($0 iam-policy --for instance)"',
            "Attach the instance role's policy",
          ),
      run(async () => (await import("./commands/iam-policy.js")).iamPolicy),
    )
    .command(
      "config <action> [path]",
      "Show, query or validate the config, or print its JSON Schema",
      (y) =>
        y
          .positional("action", {
            choices: ["show", "get", "validate", "schema"] as const,
            describe: "What to do",
          })
          .positional("path", { type: "string", describe: "Dotted key for `get`, e.g. local.registry_port" })
          .example("$0 config validate --config my.yaml", "Check a config file")
          .example("$0 config get local.registry_port", "Print one value (raw, for scripts)")
          .example("$0 config schema > imgtool.config.schema.json", "JSON Schema for editors"),
      run(async () => (await import("./commands/config.js")).configCommand),
    )
    .demandCommand(1, "Say which command to run (see the list above).")
    .recommendCommands()
    .strict()
    .version(pkg.version)
    .alias("h", "help")
    .wrap(Math.min(120, process.stdout.columns || 100))
    .epilog("Exit codes: 0 success, 1 failure, 2 usage or config error. Docs: README.md")
    .fail((msg, err) => {
      // Throwing stops yargs (returning would let it run the handler anyway); main() reports it.
      if (err) throw coerceFailure && err.message === coerceFailure.message ? coerceFailure : err;
      const suggestion = /^Did you mean (\S+)\?$/.exec(msg ?? "")?.[1];
      if (suggestion) {
        throw new UsageError(
          `Unknown command ${JSON.stringify(typedCommand(argv) ?? "")}: did you mean \`imgtool ${suggestion}\`?`,
          {
            fix: `Run \`imgtool ${suggestion} --help\`; \`imgtool --help\` lists every command.`,
          },
        );
      }
      throw new UsageError(msg, {
        fix: "See `imgtool --help`, or `imgtool <command> --help` for a command's options.",
      });
    });
}

/** Run the CLI on argv; `options.deps` replaces parts of the composition root (tests). */
export async function main(
  argv: string[] = hideBin(process.argv),
  options: MainOptions = {},
): Promise<number> {
  state.exitCode = 0;
  current = options;
  try {
    await buildParser(argv).parseAsync();
  } catch (e) {
    return makeOutput({ json: argv.includes("--json"), verbose: argv.includes("--verbose") }).error(e);
  } finally {
    current = {};
  }
  return state.exitCode;
}

/** For the error that escapes everything (bin.ts). */
export function reportFatal(e: unknown): number {
  return makeOutput({}).error(e);
}
