/**
 * Readiness on aws without a network path to the instances: each instance publishes a record (templates/user-data,
 * `publish_record`) at `<ssm_prefix>/runs/<run id>/<instance id>`; the launcher reads the run's path in batches
 * (one GetParametersByPath poll, every page, serves every instance of the run) until each instance has its
 * record or its deadline passes. A `failed` record fails that instance at once, with its reason.
 */
import type { RawRecord, ReadyRecordStore } from "../aws/ready-records.js";
import type { Role } from "../config/schema.js";
import { FailureError } from "../errors.js";
import { withBootSteps } from "./boot-steps.js";
import { workerCpuStates } from "./cpu-record.js";
import type { ReadyReport, StartedInstance } from "./types.js";

/** @default 3000: GetParametersByPath allows 40 calls per second per account; a poll every 3 s is gentle. */
export const RECORD_POLL_MS = 3_000;

/** A record as the instance wrote it (see common.sh.hbs). */
interface RecordDoc {
  status?: unknown;
  role?: unknown;
  reason?: unknown;
  workerCpus?: unknown;
  /** The workers' CPU state, compact (see cpu-record.ts). */
  cpu?: unknown;
  bootToReadySeconds?: unknown;
  bootSteps?: unknown;
  prewarmSeconds?: unknown;
  pulled?: unknown;
  registryLogin?: unknown;
}

/** The report a record makes, or the reason the instance failed (a failed record, or one nobody can read). */
export function parseRecord(
  raw: RawRecord,
  role: Role,
): { ok: true; report: ReadyReport } | { ok: false; reason: string } {
  let doc: RecordDoc;
  try {
    doc = JSON.parse(raw.value) as RecordDoc;
  } catch {
    return { ok: false, reason: `its record ${raw.name} is not JSON: ${raw.value.slice(0, 120)}` };
  }
  if (doc.role !== role) {
    return { ok: false, reason: `its record ${raw.name} names role ${String(doc.role)}, not ${role}` };
  }
  if (doc.status === "failed") return { ok: false, reason: String(doc.reason ?? "no reason given") };
  if (
    doc.status !== "ready" ||
    !Array.isArray(doc.workerCpus) ||
    typeof doc.bootToReadySeconds !== "number"
  ) {
    return {
      ok: false,
      reason: `its record ${raw.name} is neither ready nor failed: ${raw.value.slice(0, 120)}`,
    };
  }
  const states = workerCpuStates(doc.workerCpus.map(String), doc.cpu);
  return {
    ok: true,
    report: {
      workers: doc.workerCpus.map((cpus, i) => {
        const cpu = states?.[i];
        return { name: `${role}-${i + 1}`, cpus: String(cpus), ...(cpu ? { cpu } : {}) };
      }),
      bootToReadySeconds: doc.bootToReadySeconds,
      ...withBootSteps(doc.bootSteps),
      ...(typeof doc.prewarmSeconds === "number" ? { prewarmSeconds: doc.prewarmSeconds } : {}),
      pulled: doc.pulled === true,
      registryLogin: doc.registryLogin === true,
    },
  };
}

interface Waiter {
  inst: StartedInstance;
  deadline: number;
  /** The wait's length, for the timeout's message. */
  timeoutSeconds: number;
  /** When RunInstances answered with this instance (the launcher's clock). */
  answeredAt: number;
  resolve(r: ReadyReport): void;
  reject(e: unknown): void;
}

/** States an instance reaches only on its way out: it will never publish a record. */
export const ENDED_STATES = ["shutting-down", "terminated", "stopping", "stopped"];

/**
 * Why an instance that ended before it was ready ended, and what to do. `Client.InternalError` at launch is EC2
 * failing to use the KMS key that encrypts the instance's volumes (the account's default EBS key, when it is a
 * customer-managed key) with the launcher's permissions.
 */
export function endedBeforeReady(
  inst: Pick<StartedInstance, "id" | "role" | "instanceType">,
  state: string,
  reason: string | undefined,
  region: string,
): FailureError {
  const kms = /Client\.InternalError/.test(reason ?? "");
  return new FailureError(
    `${inst.id} (${inst.role}, ${inst.instanceType}) is ${state} before it was ready: ${reason ?? "EC2 gave no reason"}.`,
    {
      fix: kms
        ? "EC2 could not create its encrypted volumes: the account's default EBS key (`aws ec2 get-ebs-default-kms-key-id`) " +
          "is a customer-managed key the launcher may not use. Attach `imgtool iam-policy --for launch` (kms:CreateGrant, " +
          `kms:Decrypt, kms:GenerateDataKeyWithoutPlaintext through ec2.${region}.amazonaws.com) to the role that launches, ` +
          "and let the key policy allow the account's IAM policies (or the role)."
        : `\`aws ec2 describe-instances --instance-ids ${inst.id} --query 'Reservations[].Instances[].StateReason'\` ` +
          `and its boot log (\`aws ec2 get-console-output --instance-id ${inst.id}\`) say why.`,
    },
  );
}

/** Waits for the records of one run: one poll loop, however many instances wait. */
export function runRecordWaiter(o: {
  store: ReadyRecordStore;
  /**
   * EC2's view of the instances still waiting (state and state reason, by id; one batched call per poll): an
   * instance that ended (shutting-down, terminated, ...) before its record fails at once, with EC2's reason,
   * instead of at its deadline. Without it, only records and deadlines count.
   */
  instanceStates?: (ids: string[]) => Promise<Map<string, { state: string; reason?: string }>>;
  /** The region, for the fix of an instance EC2 ended. */
  region?: string;
  /** `<ssm_prefix>/runs/<run id>` */
  path: string;
  /** How long an instance may take to publish its record, unless its wait names its own. */
  timeoutSeconds: number;
  intervalMs?: number;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}) {
  const now = o.now ?? Date.now;
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const interval = o.intervalMs ?? RECORD_POLL_MS;
  const waiters = new Map<string, Waiter>();
  let polling = false;

  const settle = (w: Waiter, raw: RawRecord, at: number) => {
    const parsed = parseRecord(raw, w.inst.role);
    if (!parsed.ok) {
      w.reject(
        new FailureError(
          `${w.inst.id} (${w.inst.role}, ${w.inst.instanceType}) failed to boot: ${parsed.reason}`,
          {
            fix: `Its boot log: \`aws ec2 get-console-output --instance-id ${w.inst.id}\`.`,
          },
        ),
      );
      return;
    }
    w.resolve({ ...parsed.report, launchToReadySeconds: Math.max(0, (at - w.answeredAt) / 1000) });
  };

  const poll = async () => {
    for (;;) {
      if (!waiters.size) {
        polling = false;
        return;
      }
      let records: RawRecord[];
      try {
        records = await o.store.list(o.path);
      } catch (e) {
        for (const w of waiters.values()) w.reject(e);
        waiters.clear();
        continue;
      }
      const at = now();
      const byId = new Map(records.map((r) => [r.key, r]));
      const unheard = [...waiters.keys()].filter((id) => !byId.has(id));
      let states = new Map<string, { state: string; reason?: string }>();
      if (unheard.length && o.instanceStates) {
        try {
          states = await o.instanceStates(unheard);
        } catch (e) {
          for (const w of waiters.values()) w.reject(e);
          waiters.clear();
          continue;
        }
      }
      for (const [id, w] of waiters) {
        const raw = byId.get(id);
        const ec2 = states.get(id);
        if (raw) {
          waiters.delete(id);
          settle(w, raw, at);
        } else if (ec2 && ENDED_STATES.includes(ec2.state)) {
          waiters.delete(id);
          w.reject(endedBeforeReady(w.inst, ec2.state, ec2.reason, o.region ?? "<region>"));
        } else if (at >= w.deadline) {
          waiters.delete(id);
          w.reject(
            new FailureError(
              `${id} (${w.inst.role}, ${w.inst.instanceType}) published no readiness record (${o.path}/${id}) within ${w.timeoutSeconds} s.`,
              {
                fix:
                  `Its boot log: \`aws ec2 get-console-output --instance-id ${id}\`; the instance role needs the ` +
                  "policy `imgtool iam-policy --for instance` to write its record.",
              },
            ),
          );
        }
      }
      if (waiters.size) await sleep(interval);
    }
  };

  return {
    /**
     * Resolves with the instance's report once its record says ready; rejects on failed or at the deadline
     * (`timeoutSeconds` from now: a task runner's includes its pre-warm's limit).
     */
    wait(inst: StartedInstance, answeredAt: number, timeoutSeconds = o.timeoutSeconds): Promise<ReadyReport> {
      return new Promise<ReadyReport>((resolve, reject) => {
        waiters.set(inst.id, {
          inst,
          answeredAt,
          timeoutSeconds,
          deadline: now() + timeoutSeconds * 1000,
          resolve,
          reject,
        });
        if (!polling) {
          polling = true;
          void poll();
        }
      });
    },
  };
}
