/**
 * SSM as the stand-in's instances see it: Run Command (SendCommand, GetCommandInvocation) and DeleteParameters,
 * as strict as AWS: an instance must be running and managed (its SSM agent registered, which needs an instance
 * profile) or SendCommand answers `InvalidInstanceId`; only `AWS-RunShellScript` exists; an invocation is first
 * unknown (`InvocationDoesNotExist`), then Pending, InProgress, and Success or Failed by the script's exit code.
 *
 * A command's script runs where the test says ({@link setInstanceShell}); by default with `sh` on this machine,
 * whose loopback then stands for the instance's own (the launcher's process cannot reach an instance's private
 * address, but a script run "on" the instance reaches 127.0.0.1).
 *
 * {@link bootInstances} plays the instances' boot: each pending or running instance with user-data becomes
 * running, its SSM agent registers (when it has an instance profile), and it publishes its readiness record
 * through the real SDK with the instance role's credentials (judged by the stand-in's IAM like any call).
 */
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { gunzipSync } from "node:zlib";
import { PutParameterCommand, type SSMClient } from "@aws-sdk/client-ssm";
import { endFailedLaunch } from "./ec2.js";
import { fail } from "./errors.js";
import { optNumber, optStringList, reqString, type JsonObject } from "./params.js";
import type { HandlerContext, StandinState } from "./state.js";
import type { Ec2Instance, RegionState } from "./types.js";

export interface ShellResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs one command's script "on" an instance. */
export type InstanceShell = (instance: Ec2Instance, commands: string[]) => Promise<ShellResult>;

interface Invocation {
  commandId: string;
  instanceId: string;
  documentName: string;
  comment: string;
  reads: number;
  result?: ShellResult;
}

interface RunCommandState {
  managed: Set<string>;
  booted: Set<string>;
  invocations: Map<string, Invocation>;
  shell?: InstanceShell;
}

/** Per region's state object: a stand-in reset makes new ones, and with them a fresh Run Command state. */
const byRegion = new WeakMap<RegionState, RunCommandState>();

function stateOf(all: StandinState, region: string): RunCommandState {
  const key = all.region(region);
  let s = byRegion.get(key);
  if (!s) byRegion.set(key, (s = { managed: new Set(), booted: new Set(), invocations: new Map() }));
  return s;
}

/** Where the scripts of this region's commands run (default: `sh -c` on this machine). */
export function setInstanceShell(all: StandinState, region: string, shell: InstanceShell): void {
  stateOf(all, region).shell = shell;
}

/** The commands sent so far in a region, in order (for assertions). */
export function sentCommands(
  all: StandinState,
  region: string,
): { instanceId: string; commands: string[] }[] {
  return [...stateOf(all, region).invocations.values()].map((i) => ({
    instanceId: i.instanceId,
    commands: (i as Invocation & { commands?: string[] }).commands ?? [],
  }));
}

const localShell: InstanceShell = (_instance, commands) =>
  new Promise((resolve) => {
    execFile("sh", ["-c", commands.join("\n")], { timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
      resolve({ exitCode: code, stdout, stderr });
    });
  });

const DOCUMENTS = new Set(["AWS-RunShellScript"]);
/**
 * GetCommandInvocation shows "the first 24,000 characters written by the plugin to stdout" and "the first 8,000
 * characters written by the plugin to stderr" (SSM API reference); the rest only in S3 or CloudWatch.
 */
const STDOUT_LIMIT = 24_000;
const STDERR_LIMIT = 8_000;
/**
 * SendCommand's MaxDocumentSizeExceeded: "The size limit of a document is 64 KB." The parameters are substituted
 * into the document, whose own text (about 1.3 KB for AWS-RunShellScript) counts too: the stand-in counts the
 * parameters' JSON in UTF-8 bytes plus 4 KB for the document, erring on the strict side.
 */
const DOCUMENT_LIMIT_BYTES = 64 * 1024;
const DOCUMENT_OWN_BYTES = 4 * 1024;

function sendCommand(ctx: HandlerContext, input: JsonObject): JsonObject {
  const documentName = reqString(input, "DocumentName");
  if (!DOCUMENTS.has(documentName))
    fail("InvalidDocument", `Document with name ${documentName} does not exist.`);
  const ids = optStringList(input, "InstanceIds") ?? [];
  if (!ids.length) fail("ValidationException", "Either InstanceIds or Targets must be specified.");
  if (ids.length > 50) fail("ValidationException", "Member must have length less than or equal to 50");
  const timeout = optNumber(input, "TimeoutSeconds");
  if (timeout !== undefined && (timeout < 30 || timeout > 2_592_000)) {
    fail("ValidationException", `TimeoutSeconds ${timeout} must be between 30 and 2592000.`);
  }
  const parameters = (input["Parameters"] ?? {}) as Record<string, unknown>;
  const commands = parameters["commands"];
  if (!Array.isArray(commands) || !commands.length || !commands.every((c) => typeof c === "string")) {
    fail(
      "InvalidParameters",
      "document AWS-RunShellScript requires the parameter commands (a list of strings).",
    );
  }
  for (const key of Object.keys(parameters)) {
    if (!["commands", "workingDirectory", "executionTimeout"].includes(key))
      fail("InvalidParameters", `Parameter ${key} is not valid for document ${documentName}.`);
  }
  if (Buffer.byteLength(JSON.stringify(parameters), "utf8") + DOCUMENT_OWN_BYTES > DOCUMENT_LIMIT_BYTES)
    fail("MaxDocumentSizeExceeded", "The size limit of a document is 64 KB.");
  const rc = stateOf(ctx.all, ctx.region);
  const invalid = ids.filter((id) => {
    const inst = ctx.state.ec2.instances.get(id);
    return !inst || inst.state !== "running" || !rc.managed.has(id);
  });
  if (invalid.length) {
    fail(
      "InvalidInstanceId",
      `Instances [[${invalid.join(", ")}]] not in a valid state for account ${ctx.options.accountId}`,
    );
  }
  const commandId = randomUUID();
  const comment = typeof input["Comment"] === "string" ? input["Comment"] : "";
  if (comment.length > 100) fail("ValidationException", "Comment must have length less than or equal to 100");
  const shell = rc.shell ?? localShell;
  for (const id of ids) {
    const inv: Invocation & { commands: string[] } = {
      commandId,
      instanceId: id,
      documentName,
      comment,
      reads: 0,
      commands: commands as string[],
    };
    rc.invocations.set(`${commandId}/${id}`, inv);
    void shell(ctx.state.ec2.instances.get(id)!, commands as string[]).then(
      (r) => (inv.result = r),
      (e: unknown) => (inv.result = { exitCode: 1, stdout: "", stderr: String(e) }),
    );
  }
  return {
    Command: {
      CommandId: commandId,
      DocumentName: documentName,
      Comment: comment,
      InstanceIds: ids,
      Parameters: parameters as JsonObject,
      Status: "Pending",
      RequestedDateTime: ctx.now.getTime() / 1000,
      TargetCount: ids.length,
    },
  } as JsonObject;
}

function getCommandInvocation(ctx: HandlerContext, input: JsonObject): JsonObject {
  const commandId = reqString(input, "CommandId");
  const instanceId = reqString(input, "InstanceId");
  const inv = stateOf(ctx.all, ctx.region).invocations.get(`${commandId}/${instanceId}`);
  // The first read right after SendCommand finds nothing yet, as AWS often does.
  if (!inv || inv.reads++ === 0) fail("InvocationDoesNotExist", "An error occurred (InvocationDoesNotExist)");
  const status = !inv.result
    ? inv.reads <= 2
      ? "Pending"
      : "InProgress"
    : inv.result.exitCode === 0
      ? "Success"
      : "Failed";
  return {
    CommandId: commandId,
    InstanceId: instanceId,
    DocumentName: inv.documentName,
    Comment: inv.comment,
    Status: status,
    StatusDetails: status,
    ResponseCode: inv.result ? inv.result.exitCode : -1,
    // Counted in UTF-16 units: never more than AWS's characters.
    StandardOutputContent: (inv.result?.stdout ?? "").slice(0, STDOUT_LIMIT),
    StandardErrorContent: (inv.result?.stderr ?? "").slice(0, STDERR_LIMIT),
  };
}

function deleteParameters(ctx: HandlerContext, input: JsonObject): JsonObject {
  const names = optStringList(input, "Names") ?? [];
  if (names.length < 1 || names.length > 10) {
    fail(
      "ValidationException",
      "1 validation error detected: Value at 'names' failed to satisfy constraint: Member must have length between 1 and 10",
    );
  }
  const deleted: string[] = [];
  const invalid: string[] = [];
  for (const n of names) {
    const p = ctx.state.ssm.parameters.get(n);
    if (p && p.versions.length) {
      ctx.state.ssm.parameters.delete(n);
      deleted.push(n);
    } else invalid.push(n);
  }
  return { DeletedParameters: deleted, InvalidParameters: invalid };
}

export const runCommandHandlers = {
  SendCommand: sendCommand,
  GetCommandInvocation: getCommandInvocation,
  DeleteParameters: deleteParameters,
} as const;

/** The IAM requests AWS evaluates for these operations (undefined: not one of them). */
export function runCommandIamRequests(
  operation: string,
  input: JsonObject,
  region: string,
  accountId: string,
  partition: string,
  state: RegionState,
): { action: string; resource: string; context?: Record<string, string | string[]> }[] | undefined {
  const action = `ssm:${operation}`;
  switch (operation) {
    case "GetCommandInvocation":
      return [{ action, resource: "*" }];
    case "DeleteParameters":
      return ((input["Names"] as string[] | undefined) ?? []).map((n) => ({
        action,
        resource: `arn:${partition}:ssm:${region}:${accountId}:parameter/${n.replace(/^\//, "")}`,
      }));
    case "SendCommand": {
      // An AWS-owned document's ARN has no account; the evaluator resolves resource types only with one.
      const doc = String(input["DocumentName"] ?? "");
      const ids = (input["InstanceIds"] as string[] | undefined) ?? [];
      return [
        { action, resource: `arn:${partition}:ssm:${region}:${accountId}:document/${doc}` },
        ...ids.map((id) => {
          const tags = state.ec2.instances.get(id)?.tags ?? {};
          const context: Record<string, string> = {};
          for (const [k, v] of Object.entries(tags)) {
            context[`aws:ResourceTag/${k}`] = v;
            context[`ssm:resourceTag/${k}`] = v;
          }
          return { action, resource: `arn:${partition}:ec2:${region}:${accountId}:instance/${id}`, context };
        }),
      ];
    }
    default:
      return undefined;
  }
}

// ---------------------------------------------------------------- the instances' boot

/** What a simulated instance does at boot: publish a ready record (default), a failed one, or nothing. */
export type BootOutcome =
  | { ready: { workerCpus?: string[]; bootToReadySeconds?: number; pulled?: boolean } }
  | { failed: string }
  | "silent";

/** The value of `NAME=value` in a rendered user-data script (single-quoted words unquoted). */
function wordOf(text: string, name: string): string | undefined {
  const m = new RegExp(`^${name}=(.*)$`, "m").exec(text);
  if (!m) return undefined;
  const v = m[1]!;
  return v.startsWith("'") ? v.slice(1, -1).replace(/'\\''/g, "'") : v;
}

export function userDataText(inst: Ec2Instance): string {
  const raw = Buffer.from(inst.userData ?? "", "base64");
  return (raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw).toString("utf8");
}

/**
 * Boot every instance of the region that has not booted yet: running, its agent registered (with an instance
 * profile), and its record put by `instanceSsm` (an SSM client with the instance role's credentials) at
 * `RECORD_PREFIX/<instance id>` as its user-data names it. Returns the ids booted.
 */
export async function bootInstances(
  all: StandinState,
  region: string,
  instanceSsm: SSMClient,
  outcome: (inst: Ec2Instance) => BootOutcome = () => ({ ready: {} }),
): Promise<string[]> {
  const rc = stateOf(all, region);
  const booted: string[] = [];
  for (const inst of all.region(region).ec2.instances.values()) {
    if (rc.booted.has(inst.instanceId) || !["pending", "running"].includes(inst.state)) continue;
    rc.booted.add(inst.instanceId);
    // EC2 could not start it (its volume's key was refused): it never boots, and ends as EC2 ends it.
    if (inst.launchFailure) {
      endFailedLaunch(all.region(region), inst, true);
      continue;
    }
    inst.state = "running";
    inst.pendingReads = 0;
    if (inst.iamInstanceProfile) rc.managed.add(inst.instanceId);
    booted.push(inst.instanceId);
    const text = userDataText(inst);
    const prefix = wordOf(text, "RECORD_PREFIX");
    const role = wordOf(text, "ROLE") ?? "task-runner";
    const runId = wordOf(text, "RUN_ID") ?? "";
    const what = outcome(inst);
    if (!prefix || what === "silent") continue;
    const workers = wordOf(text, "WORKERS");
    const record =
      "failed" in what
        ? { status: "failed", role, runId, seconds: 1.5, reason: what.failed }
        : {
            status: "ready",
            role,
            runId,
            image: wordOf(text, "IMAGE") ?? "",
            pulled: what.ready.pulled ?? false,
            registryLogin: false,
            workerCpus:
              what.ready.workerCpus ??
              Array.from({ length: workers && /^\d+$/.test(workers) ? Number(workers) : 2 }, (_, i) =>
                String(i),
              ),
            bootToReadySeconds: what.ready.bootToReadySeconds ?? 0.75,
            // The steps as the user-data times them (templates/user-data/common.sh.hbs, `step`).
            bootSteps: { "engine-wait": 0.01, "secret-read": 0.3, "image-check": 0.02, "worker-start": 0.4 },
          };
    await instanceSsm.send(
      new PutParameterCommand({
        Name: `${prefix}/${inst.instanceId}`,
        Type: "String",
        Overwrite: true,
        Value: JSON.stringify(record),
      }),
    );
  }
  return booted;
}
