/**
 * `imgtool pipeline`: for the chosen roles, push the images, bake the AMIs (pre-loading those images), then a
 * smoke launch of the new versions; only when the smoke launch passes does `stable` move to them (`latest`
 * already points there). Each stage skips when its inputs are unchanged: when `stable` already is `latest`
 * for every artefact, there is nothing to smoke-test or promote.
 */
import type { BakeResult } from "../bake/bake.js";
import type { ArtifactKey, Catalog } from "../catalog/catalog.js";
import { holding, type LeaseKeeper } from "../catalog/lease.js";
import { Releases, regionCatalogs, type Release } from "../catalog/release.js";
import { ROLES, type Role } from "../config/schema.js";
import { FailureError, ImgtoolError, InterruptedError, stopSignalOf } from "../errors.js";
import type { EventSink } from "../events.js";
import type { BootBudgetConfig } from "../config/boot-budget.js";
import {
  budgetFailureFix,
  budgetFailureMessage,
  judgeBoot,
  verdictDetail,
  verdictLine,
  verdictStatus,
  type BootMeasure,
  type BootVerdict,
} from "./boot-budget.js";
import { bootRecordOf, recordBoot } from "./boot-records.js";
import { slowestStep } from "../launch/boot-steps.js";

export interface PushOutcome {
  role: Role;
  status: string;
  version: string | null;
  reference: string | null;
  error?: ImgtoolError | undefined;
}

export interface SmokeOutcome {
  passed: boolean;
  /** Seconds from each instance's first user-data line to all its workers running. */
  bootToReadySeconds: Record<string, number>;
  /** Each instance's boot with its steps' times (what the boot budget judges). */
  boots?: BootMeasure[];
  detail: string;
}

/** The ruby-bench commit of each role, resolved once per run and handed to both push and bake. */
export type RubyBenchPins = Partial<Record<Role, string>>;

export interface PipelineDeps {
  /** The role's ruby-bench commit now (src/git.ts `resolveRubyBenchRef`); asked once per role and run. */
  resolveRubyBench(role: Role): Promise<string>;
  push(roles: Role[], pins: RubyBenchPins): Promise<PushOutcome[]>;
  bake(roles: Role[], pins: RubyBenchPins): Promise<BakeResult[]>;
  /** Launch one orchestrator and one task runner from `latest`, wait for ready, run one example task, end. */
  smoke(): Promise<SmokeOutcome>;
  /** The catalogs the artefacts live in (aws: one per region). */
  catalogs(): Promise<Catalog[]>;
  /** The artefact keys of a role (its image, and its AMI per architecture). */
  keys(role: Role): ArtifactKey[];
  events: EventSink;
  /** Aborted on Ctrl-C / SIGTERM: no stage starts after it, nothing is promoted. */
  signal?: AbortSignal;
  /** The pipeline-wide lease `<prefix>/leases/pipeline` (src/catalog/lease.ts); none: no lease is taken. */
  lease?: LeaseKeeper;
  /** The boot budget (config boot_budget); none: the smoke launch's boots are neither recorded nor judged. */
  bootBudget?: BootBudgetConfig;
  /** The target, for the boot records. @default "local" */
  target?: string;
}

export interface StageReport {
  role: Role | "all";
  /** bake-base: a staged bake's base stage; bake: the role stage (or the single full bake). */
  stage: "push" | "bake-base" | "bake" | "smoke" | "boot" | "promote";
  status: string;
  version: string | null;
  seconds: number;
  detail?: string;
}

export interface PipelineReport {
  stages: StageReport[];
  smoke: SmokeOutcome | null;
  /** The boot budget's verdict on each instance of the smoke launch (empty: not judged). */
  boots: BootVerdict[];
  promoted: boolean;
  /** Versions `stable` points to after the run, per artefact name. */
  stable: Record<string, string>;
  /** The release `stable` points to after the run, if any. */
  release?: string;
}

const since = (t: number) => Math.round((Date.now() - t) / 100) / 10;

/** Each artefact's catalog name -> its version in `release` (every region's catalog). */
function releaseVersions(
  catalogs: Catalog[],
  keys: ArtifactKey[],
  release: Release | undefined,
): Map<string, string> {
  const out = new Map<string, string>();
  if (!release) return out;
  for (const cat of catalogs) {
    for (const k of keys) {
      const e = release.roles[k.role];
      const version = k.kind === "image" ? e?.image?.version : e?.ami?.[k.arch ?? ""]?.version;
      if (version) out.set(cat.name(k), version);
    }
  }
  return out;
}

/** The whole run holds the pipeline's lease: two pipelines on one prefix never interleave. */
export async function runPipeline(
  roles: Role[],
  deps: PipelineDeps,
  opts: { smoke: boolean },
): Promise<PipelineReport> {
  return holding(deps.lease, "pipeline", () => pipelineStages(roles, deps, opts));
}

async function pipelineStages(
  roles: Role[],
  deps: PipelineDeps,
  opts: { smoke: boolean },
): Promise<PipelineReport> {
  const stages: StageReport[] = [];
  const emit = (message: string) => deps.events({ type: "start", message });

  const report: PipelineReport = { stages, smoke: null, boots: [], promoted: false, stable: {} };
  const stop = () => {
    if (deps.signal?.aborted) {
      const sig = stopSignalOf(deps.signal);
      throw Object.assign(
        new InterruptedError(
          `The pipeline was interrupted (${sig}): no further stage ran, stable was not moved.`,
          sig,
        ),
        { report },
      );
    }
  };
  const withReport = async <T>(work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (e) {
      throw typeof e === "object" && e !== null ? Object.assign(e, { report }) : e;
    }
  };

  // One resolution per run: an AMI and its image can never pin different ruby-bench commits.
  const pins: RubyBenchPins = {};
  await withReport(async () => {
    for (const role of roles) pins[role] = await deps.resolveRubyBench(role);
  });

  emit(`pipeline: push images (${roles.join(", ")})`);
  let t = Date.now();
  const pushed = await withReport(() => deps.push(roles, pins));
  for (const p of pushed)
    stages.push({
      role: p.role,
      stage: "push",
      status: p.error ? "failed" : p.status,
      version: p.version,
      seconds: since(t),
    });
  const pushFailed = pushed.find((p) => p.error);
  if (pushFailed?.error) throw Object.assign(pushFailed.error, { report });
  stop();

  emit("pipeline: bake AMIs (pre-loading the pushed images)");
  const baked = await withReport(() => deps.bake(roles, pins));
  for (const b of baked) {
    // A staged bake: the base stage's row first, each with why it was built or skipped.
    if (b.base)
      stages.push({
        role: b.role,
        stage: "bake-base",
        status: b.base.status,
        version: b.base.version,
        seconds: b.base.seconds,
        ...(b.base.reason ? { detail: b.base.reason } : {}),
      });
    stages.push({
      role: b.role,
      stage: "bake",
      status: b.status,
      version: b.version,
      seconds: b.seconds,
      ...(b.reason ? { detail: b.reason } : {}),
    });
  }

  // The release of what was just published (both roles, every region): written last, after every artefact.
  const catalogs = await deps.catalogs();
  const releases = new Releases(catalogs[0]!, { events: deps.events });
  const keys = ROLES.flatMap((r) => deps.keys(r));
  const { release: latestRelease } = await withReport(() =>
    releases.record(
      regionCatalogs(catalogs),
      keys,
      roles.flatMap((r) => deps.keys(r)),
    ),
  );
  const stableRelease = await withReport(() => releases.read("stable"));
  const latest = releaseVersions(catalogs, keys, latestRelease);
  const stableBefore = releaseVersions(catalogs, keys, stableRelease);
  const pending = stableRelease?.id === latestRelease.id ? [] : [...latest];

  report.stable = Object.fromEntries(stableBefore);
  if (stableRelease) report.release = stableRelease.id;
  if (pending.length === 0) {
    stages.push({
      role: "all",
      stage: "smoke",
      status: "up-to-date",
      version: null,
      seconds: 0,
      detail: "stable already is latest",
    });
    stages.push({ role: "all", stage: "promote", status: "up-to-date", version: null, seconds: 0 });
    return report;
  }
  if (!opts.smoke) {
    stages.push({
      role: "all",
      stage: "smoke",
      status: "skipped",
      version: null,
      seconds: 0,
      detail: "--no-smoke",
    });
    stages.push({
      role: "all",
      stage: "promote",
      status: "skipped",
      version: null,
      seconds: 0,
      detail: "stable moves only after a smoke launch passes",
    });
    return report;
  }

  stop();
  emit(
    `pipeline: smoke launch of the new versions (${pending.map(([n, v]) => `${n.split("/").slice(-3).join("/")}=${v}`).join(", ")})`,
  );
  t = Date.now();
  const smoke = await deps.smoke();
  report.smoke = smoke;
  stages.push({
    role: "all",
    stage: "smoke",
    status: smoke.passed ? "passed" : "failed",
    version: null,
    seconds: since(t),
    detail: smoke.detail,
  });
  // Every boot of the new versions is recorded with them, passed or not (status --version shows it).
  const boots = await withReport(() =>
    recordBoots(smoke.boots ?? [], { catalog: catalogs[0]!, latest, stableBefore, latestRelease, deps }),
  );
  // A smoke launch cut short by the interrupt did not fail: it was interrupted (and says so).
  stop();
  if (!smoke.passed) {
    deps.events({ type: "fail", message: `smoke launch failed: ${smoke.detail}; stable stays where it was` });
    throw Object.assign(
      new FailureError(`The smoke launch failed (${smoke.detail}); \`stable\` was not moved.`, {
        fix: "`imgtool launch --channel latest` reproduces it; `imgtool status` shows where stable and latest point.",
      }),
      { report },
    );
  }

  if (deps.bootBudget && boots.length) judgeBoots(boots, deps.bootBudget, report, deps.events);

  stop();
  // Promote exactly what the smoke launch ran: if `latest` moved meanwhile (a bake or push by hand), the new
  // versions were not tested.
  const latestAfter = await withReport(() => releases.read("latest"));
  if (latestAfter?.id !== latestRelease.id) {
    throw Object.assign(
      new FailureError(
        `latest moved during the smoke launch (to release ${latestAfter?.id ?? "none"}, tested: ${latestRelease.id}); \`stable\` was not moved.`,
        {
          fix: "Run the pipeline again: it smoke-tests what latest points to now.",
        },
      ),
      { report },
    );
  }
  t = Date.now();
  // Each artefact's own stable label first (what status, prune and the registry's lifecycle read), then the
  // release's stable in one write, last: launches follow the release, so a failure before that write leaves
  // them on the previous release.
  await withReport(async () => {
    for (const cat of catalogs) {
      for (const key of keys) {
        const version = latest.get(cat.name(key));
        if (version) await cat.promote(key, "stable", version);
      }
    }
    await releases.move("stable", latestRelease.id);
  });
  report.stable = Object.fromEntries(latest);
  report.release = latestRelease.id;
  report.promoted = true;
  stages.push({ role: "all", stage: "promote", status: "promoted", version: null, seconds: since(t) });
  return report;
}

interface MeasuredBoot {
  measure: BootMeasure;
  arch: string;
  version: string;
  previous: Awaited<ReturnType<typeof bootRecordOf>>;
}

/**
 * Record each measured boot under its AMI version (home catalog), and read the previous version's record (the
 * version `stable` pointed at before this run) for the judgement.
 */
async function recordBoots(
  measures: BootMeasure[],
  ctx: {
    catalog: Catalog;
    latest: Map<string, string>;
    stableBefore: Map<string, string>;
    latestRelease: Release;
    deps: PipelineDeps;
  },
): Promise<MeasuredBoot[]> {
  const { catalog, deps } = ctx;
  if (!deps.bootBudget) return [];
  const out: MeasuredBoot[] = [];
  for (const m of measures) {
    const amiKeys = deps.keys(m.role).filter((k) => k.kind === "ami");
    const key = amiKeys.find((k) => k.arch === m.arch) ?? (amiKeys.length === 1 ? amiKeys[0] : undefined);
    const version = key && ctx.latest.get(catalog.name(key));
    if (!key?.arch || !version) continue;
    const before = ctx.stableBefore.get(catalog.name(key));
    const previous = before ? await bootRecordOf(catalog, m.role, key.arch, before) : undefined;
    if (previous && "unreadable" in previous) {
      deps.events({
        type: "warn",
        role: m.role,
        message: `${previous.unreadable} is not a boot record imgtool wrote: ${m.role} is judged by its budget alone`,
      });
    }
    await recordBoot(catalog, {
      schema: 1,
      role: m.role,
      arch: key.arch,
      version,
      imageVersion: ctx.latestRelease.roles[m.role]?.image?.version ?? null,
      target: deps.target ?? "local",
      instanceId: m.instanceId,
      seconds: m.seconds,
      steps: m.steps,
      measuredAt: new Date().toISOString(),
    });
    out.push({ measure: m, arch: key.arch, version, previous });
  }
  return out;
}

/** Judge each boot; a stage row per boot; over the budget or too much slower: fail, nothing promoted. */
function judgeBoots(
  boots: MeasuredBoot[],
  budget: BootBudgetConfig,
  report: PipelineReport,
  events: EventSink,
): void {
  report.boots = boots.map((b) =>
    judgeBoot(
      { ...b.measure, arch: b.arch, version: b.version },
      b.previous && !("unreadable" in b.previous) ? b.previous : undefined,
      budget,
    ),
  );
  for (const v of report.boots) {
    report.stages.push({
      role: v.role,
      stage: "boot",
      status: verdictStatus(v),
      version: v.version,
      seconds: v.judgedSeconds,
      detail: verdictDetail(v, budget),
    });
  }
  const refused = report.boots.filter((v) => !v.ok);
  if (!refused.length) return;
  for (const v of refused) events({ type: "fail", role: v.role, message: verdictLine(v, budget) });
  throw Object.assign(
    new FailureError(budgetFailureMessage(refused, budget), { fix: budgetFailureFix(refused) }),
    { report },
  );
}

/** Each instance's boot-to-ready, with its slowest boot step where the instance timed its steps. */
export function bootTimes(smoke: SmokeOutcome): string[] {
  const slowest = new Map(
    (smoke.boots ?? []).map((b) => [`${b.role} ${b.instanceId}`, slowestStep(b.steps)]),
  );
  return Object.entries(smoke.bootToReadySeconds).map(([id, s]) => {
    const step = slowest.get(id);
    return `${id} ${s.toFixed(2)} s${step ? ` (slowest step ${step.name} ${step.seconds.toFixed(2)} s)` : ""}`;
  });
}

/** The Markdown summary (CI job summary, --out DIR/summary.md). */
export function summaryMarkdown(report: PipelineReport, target: string): string {
  const rows = report.stages.map(
    (s) =>
      `| ${s.role} | ${s.stage} | ${s.status} | ${s.version ?? ""} | ${s.seconds.toFixed(1)} | ${s.detail ?? ""} |`,
  );
  const boot = report.smoke
    ? bootTimes(report.smoke)
        .map((line) => `- ${line}`)
        .join("\n")
    : "- no smoke launch in this run";
  const stable = Object.entries(report.stable)
    .map(([n, v]) => `- \`${n}\`: ${v}`)
    .join("\n");
  return [
    `## imgtool pipeline (${target})`,
    "",
    "| role | stage | status | version | seconds | detail |",
    "| --- | --- | --- | --- | --- | --- |",
    ...rows,
    "",
    "### Smoke launch",
    boot,
    "",
    `### stable ${report.promoted ? "(moved in this run)" : "(unchanged)"}`,
    stable || "- nothing is stable yet",
    "",
  ].join("\n");
}
