/**
 * The artefact catalog: the one place that records what was built and resolves what to launch.
 *
 * Layout (same on both targets): one parameter per pipeline/role/kind[/arch], e.g.
 *   <prefix>/task-runner/ami/x86_64        value: the AMI id (aws) or twin image id (local)
 *   <prefix>/task-runner/ami/x86_64/meta   value: JSON metadata (version, inputs hash, git revision, ...)
 *   <prefix>/orchestrator/image            value: the image reference URI@sha256:...
 *   <prefix>/task-runner/base/x86_64       value: a staged bake's base AMI id (aws) or base twin image id (local)
 * Every publish is a new parameter version carrying the version name as a label, and moves `latest`.
 */
import { FailureError, UsageError, errorName, isImgtoolError } from "../errors.js";
import { ignoreEvents, type EventSink } from "../events.js";
import { VERSION_LIMIT_ERROR, type DataType, type ParameterStore, type StoredVersion } from "./store.js";

/** "base": a staged bake's base stage (src/bake/bake.ts), the source of the role stage's "ami". */
export type ArtifactKind = "ami" | "image" | "base";

export interface ArtifactKey {
  role: string;
  kind: ArtifactKind;
  /** Architecture, for AMIs (one per architecture). Images are multi-arch references and have none. */
  arch?: string;
}

export interface ArtifactMeta {
  /** Version name, e.g. v20261129-171500-1a2b3c4d. */
  version: string;
  inputsHash: string;
  gitRevision?: string;
  builtAt: string;
  /** The resolved base (AMI id or base image digest). */
  base?: string;
  region?: string;
  [key: string]: unknown;
}

export interface Artifact {
  key: ArtifactKey;
  name: string;
  value: string;
  parameterVersion: number;
  modifiedAt: Date;
  /** Present when the metadata was asked for (resolve with meta) or published. */
  meta?: ArtifactMeta & { value: string };
}

export interface HistoryEntry {
  version: string | undefined;
  parameterVersion: number;
  value: string;
  labels: string[];
  modifiedAt: Date;
}

export interface StatusRow {
  key: ArtifactKey;
  name: string;
  current: HistoryEntry | undefined;
  previous: HistoryEntry | undefined;
  /** Seconds since the current version was published. */
  ageSeconds: number | undefined;
  labels: Record<string, string>;
}

export interface CatalogDeps {
  store: ParameterStore;
  /** Path prefix, e.g. /imgtool/bench. */
  prefix: string;
  events?: EventSink;
  /** The region this catalog is in (aws), or "local"; names the catalog in a release record. */
  region?: string;
  /**
   * How a publish reads its value back before it gives up: at most `attempts` reads, the first wait `delayMs`,
   * doubling after each miss, all waits together at most `maxWaitMs`. Why so long: SSM validates an
   * `aws:ec2:image` value after PutParameter has answered, and the new version is not readable until that
   * validation is done (AWS documents it as asynchronous and names no bound; a freshly registered AMI can take
   * a while to be visible to it). A miss is therefore no failure until the whole wait has passed: only a value
   * still missing after about 90 s counts as dropped. Local store: the first read finds it.
   * @default { attempts: 10, delayMs: 1000, maxWaitMs: 90000 } (waits of 1, 2, 4, 8, 16, 32 and 27 s)
   */
  readBack?: { attempts: number; delayMs: number; maxWaitMs?: number };
  now?: () => Date;
  sleep?: (ms: number) => Promise<void>;
}

export const LATEST = "latest";
export const CHANNELS = ["latest", "stable"] as const;
const VERSION_LABEL_RE = /^v\d/;

/** Version name from build time and inputs hash: sortable, and it carries the hash. */
export function versionName(builtAt: Date, inputsHash: string): string {
  const iso = builtAt.toISOString();
  return `v${iso.slice(0, 10).replace(/-/g, "")}-${iso.slice(11, 19).replace(/:/g, "")}-${inputsHash.slice(0, 8)}`;
}

export class Catalog {
  readonly store: ParameterStore;
  readonly prefix: string;
  readonly region: string | undefined;
  private readonly events: EventSink;
  private readonly readBack: { attempts: number; delayMs: number; maxWaitMs?: number };
  private readonly now: () => Date;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(deps: CatalogDeps) {
    this.store = deps.store;
    this.prefix = deps.prefix.replace(/\/+$/, "");
    this.region = deps.region;
    this.events = deps.events ?? ignoreEvents;
    this.readBack = deps.readBack ?? { attempts: 10, delayMs: 1000, maxWaitMs: 90_000 };
    this.now = deps.now ?? (() => new Date());
    this.sleep = deps.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  name(key: ArtifactKey): string {
    return [this.prefix, key.role, key.kind, ...(key.arch ? [key.arch] : [])].join("/");
  }

  metaName(key: ArtifactKey): string {
    return `${this.name(key)}/meta`;
  }

  /** The key a parameter name stands for, or undefined for metadata and foreign names. */
  keyOf(name: string): ArtifactKey | undefined {
    if (!name.startsWith(`${this.prefix}/`) || name.endsWith("/meta")) return undefined;
    const [role, kind, arch, ...rest] = name.slice(this.prefix.length + 1).split("/");
    if (!role || (kind !== "ami" && kind !== "image" && kind !== "base") || rest.length) return undefined;
    return { role, kind, ...(arch ? { arch } : {}) };
  }

  /**
   * Record a finished artefact. Call only once the artefact is complete. Writes metadata and value as new
   * versions, reads the value back (SSM validates aws:ec2:image after answering and may drop the write),
   * then labels both with the version name, any extra labels, and `latest`.
   */
  async publish(
    key: ArtifactKey,
    value: string,
    meta: ArtifactMeta,
    opts: { dataType?: DataType; labels?: string[] } = {},
  ): Promise<Artifact> {
    const name = this.name(key);
    const dataType = opts.dataType ?? "text";
    if (!VERSION_LABEL_RE.test(meta.version)) {
      throw new UsageError(
        `version name ${JSON.stringify(meta.version)} for ${name} must start with "v" and a digit.`,
      );
    }
    const labels = [meta.version, ...(opts.labels ?? []), LATEST];
    await this.oneValuePerVersion(name, meta.version, value);
    const metaValue = JSON.stringify({ ...meta, value });
    const metaVersion = await this.putWithRoom(key.role, this.metaName(key), metaValue, "text");
    const version = await this.putWithRoom(key.role, name, value, dataType);
    await this.confirm(key, name, version, value, dataType);
    await this.readBackOrFail("the metadata", this.metaName(key), metaVersion, metaValue);
    await this.labelOrFail(this.metaName(key), metaVersion, labels);
    await this.labelOrFail(name, version, labels);
    this.events({
      type: "publish",
      role: key.role,
      message: `published ${name} = ${value} (${meta.version}, ${this.store.kind} version ${version})`,
      data: { name, value, version: meta.version, parameterVersion: version },
    });
    return { key, name, value, parameterVersion: version, modifiedAt: this.now(), meta: { ...meta, value } };
  }

  /**
   * One version name, one value: a version name that is already published with another value (a second
   * publisher of the same version, e.g. two bakes in the same second) is refused before anything is written.
   */
  private async oneValuePerVersion(name: string, version: string, value: string): Promise<void> {
    const { found } = await this.call(name, "reading", () => this.store.getMany([`${name}:${version}`]));
    const other = found[0]?.value;
    if (other === undefined || other === value) return;
    throw new FailureError(
      `${name}: version ${version} is already published as ${other}; refusing to publish ${value} under the same version name. Nothing was written.`,
      {
        fix: "Another run published this version meanwhile (publishers of one pipeline and role take a lease: is another imgtool of an older release running?). Run again: the new run reuses what is published, or builds under a new version name.",
      },
    );
  }

  private call<T>(name: string, what: string, fn: () => Promise<T>, passThrough: string[] = []): Promise<T> {
    return catalogCall(name, what, fn, passThrough);
  }

  /**
   * A record kept beside the artefacts (outside their role/kind layout, e.g. a version's boot times): a new text
   * version labelled `labels` (moving them), making room at SSM's 100 versions as a publish does.
   */
  async putRecord(name: string, value: string, labels: string[], role: string): Promise<number> {
    const version = await this.putWithRoom(role, name, value, "text");
    await this.readBackOrFail("the record", name, version, value);
    await this.labelOrFail(name, version, labels);
    return version;
  }

  /** Write a version; when the store is full and its oldest version is labelled, unlabel it and say so. */
  private async putWithRoom(role: string, name: string, value: string, dataType: DataType): Promise<number> {
    try {
      return await this.call(name, "writing", () => this.store.put(name, value, { dataType }), [
        VERSION_LIMIT_ERROR,
      ]);
    } catch (e) {
      if (errorName(e) !== VERSION_LIMIT_ERROR) throw e;
    }
    const oldest = (await this.call(name, "reading the history of", () => this.store.history(name)))[0];
    if (oldest) {
      const channels = oldest.labels.filter((l) => (CHANNELS as readonly string[]).includes(l));
      if (channels.length) {
        // Dropping it would leave the channel pointing nowhere: refuse, and say how to make room.
        throw new FailureError(
          `${name} holds SSM's limit of 100 versions and its oldest (version ${oldest.version}) carries ` +
            `${channels.join(" and ")}; a new version would drop it, so nothing was written.`,
          {
            fix: `Move ${channels.join(" and ")} of ${name} to a newer version first (\`imgtool rollback\`), then run again.`,
          },
        );
      }
      await this.call(name, "unlabelling", () => this.store.unlabel(name, oldest.version, oldest.labels));
      this.events({
        type: "warn",
        role,
        message:
          `${name} reached the store's limit of 100 versions: removed labels [${oldest.labels.join(", ")}] from ` +
          `its oldest version ${oldest.version} so that it is dropped`,
        data: { name, droppedVersion: oldest.version, labels: oldest.labels },
      });
    }
    return this.call(name, "writing", () => this.store.put(name, value, { dataType }));
  }

  /**
   * Read `name:version` until it holds `value`, backing off as `readBack` says: a new SSM parameter may not be
   * readable at once (its reads are eventually consistent), and SSM validates aws:ec2:image values after
   * answering. `onWait` is told once, before the first wait, the most it may wait in all.
   */
  async readBackUntil(
    name: string,
    version: number,
    value: string,
    onWait?: (maxMs: number) => void,
  ): Promise<{ kept: boolean; waitedMs: number }> {
    const { attempts, delayMs, maxWaitMs = Infinity } = this.readBack;
    let waited = 0;
    for (let i = 1; i <= attempts; i++) {
      const { found } = await this.call(name, "reading back", () =>
        this.store.getMany([`${name}:${version}`]),
      );
      if (found[0]?.value === value) return { kept: true, waitedMs: waited };
      const delay = Math.min(delayMs * 2 ** (i - 1), maxWaitMs - waited);
      if (i === attempts || delay <= 0) break;
      if (i === 1) onWait?.(Math.min(maxWaitMs, delayMs * (2 ** (attempts - 1) - 1)));
      await this.sleep(delay);
      waited += delay;
    }
    return { kept: false, waitedMs: waited };
  }

  /** {@link readBackUntil}, or a failure naming `what` (nothing was labelled yet). */
  private async readBackOrFail(what: string, name: string, version: number, value: string): Promise<void> {
    if ((await this.readBackUntil(name, version, value)).kept) return;
    throw new FailureError(
      `${this.store.kind === "ssm" ? "SSM" : "The catalog"} did not keep ${what} ${name} (version ${version}). ` +
        "Nothing was labelled: the catalog still points at the previous version.",
    );
  }

  private async confirm(
    key: ArtifactKey,
    name: string,
    version: number,
    value: string,
    dataType: DataType,
  ): Promise<void> {
    const { kept, waitedMs: waited } = await this.readBackUntil(name, version, value, (maxMs) => {
      if (dataType !== "aws:ec2:image") return;
      this.events({
        type: "check",
        role: key.role,
        message: `${name}: waiting for SSM to validate ${value} (at most ${Math.round(maxMs / 1000)} s)`,
      });
    });
    if (kept) return;
    this.events({
      type: "fail",
      role: key.role,
      message: `${name}: version ${version} was not kept by ${this.store.kind}`,
    });
    throw new FailureError(
      `${this.store.kind === "ssm" ? "SSM" : "The catalog"} did not keep ${value} at ${name} (version ${version})` +
        (dataType === "aws:ec2:image"
          ? `: SSM validates aws:ec2:image values after answering, and this one was still not readable after ${Math.round(waited / 1000)} s of waiting`
          : "") +
        ". Nothing was labelled: the catalog still points at the previous version.",
      {
        fix:
          dataType === "aws:ec2:image"
            ? `Check that ${value} exists and is available in this region.`
            : undefined,
      },
    );
  }

  private async labelOrFail(name: string, version: number, labels: string[]): Promise<void> {
    const { invalid } = await this.call(name, "labelling", () => this.store.label(name, version, labels));
    if (invalid.length) {
      throw new UsageError(
        `label(s) ${invalid.map((l) => JSON.stringify(l)).join(", ")} refused for ${name}.`,
        {
          fix: "Labels are 1-100 letters, digits, '.', '-', '_', not starting with a digit, 'aws' or 'ssm'.",
        },
      );
    }
  }

  /**
   * Resolve many artefacts in as few round trips as the store allows (SSM: 10 names per call), all batches at
   * once. With `meta`, the metadata is resolved in the same calls.
   */
  async resolve(
    keys: ArtifactKey[],
    opts: { label?: string; meta?: boolean } = {},
  ): Promise<{ found: Artifact[]; missing: ArtifactKey[] }> {
    const label = opts.label ?? LATEST;
    const selectors = keys.flatMap((k) => [
      `${this.name(k)}:${label}`,
      ...(opts.meta ? [`${this.metaName(k)}:${label}`] : []),
    ]);
    const { found } = await this.resolveNames(selectors);
    const byName = new Map(found.map((p) => [p.name, p]));
    const out: Artifact[] = [];
    const missing: ArtifactKey[] = [];
    for (const key of keys) {
      const p = byName.get(this.name(key));
      if (!p) {
        missing.push(key);
        continue;
      }
      const m = byName.get(this.metaName(key));
      checkValue(key, p.name, p.value);
      out.push({
        key,
        name: p.name,
        value: p.value,
        parameterVersion: p.version,
        modifiedAt: p.modifiedAt,
        ...(m ? { meta: parseMeta(m.name, m.version, m.value) } : {}),
      });
    }
    return { found: out, missing };
  }

  /** GetParameters in batches of the store's limit, all batches in parallel. */
  async resolveNames(selectors: string[]) {
    const batches: string[][] = [];
    for (let i = 0; i < selectors.length; i += this.store.maxBatch)
      batches.push(selectors.slice(i, i + this.store.maxBatch));
    const results = await Promise.all(batches.map((b) => this.store.getMany(b)));
    return { found: results.flatMap((r) => r.found), missing: results.flatMap((r) => r.missing) };
  }

  async history(key: ArtifactKey): Promise<HistoryEntry[]> {
    return (await this.store.history(this.name(key))).map(toEntry);
  }

  /** Move `latest` back to an earlier version (default: the one published before the current). */
  async rollback(
    key: ArtifactKey,
    to?: string,
  ): Promise<{ name: string; from: string | undefined; to: string }> {
    const name = this.name(key);
    const hist = await this.history(key);
    const current = hist.find((h) => h.labels.includes(LATEST));
    if (hist.length === 0) {
      throw new UsageError(`Nothing is published at ${name}.`, {
        fix: "`imgtool status` lists what the catalog holds.",
      });
    }
    const published = hist.filter((h) => h.version !== undefined);
    let target: HistoryEntry | undefined;
    if (to !== undefined) {
      target = published.find((h) => h.version === to);
      if (!target) {
        throw new UsageError(`Version ${to} is not in the history of ${name}.`, {
          fix: `Known versions: ${published.map((h) => h.version).join(", ") || "none"}.`,
        });
      }
    } else {
      const before = published.filter((h) => !current || h.parameterVersion < current.parameterVersion);
      target = before.filter((h) => h.version !== current?.version).at(-1);
      if (!target) {
        throw new UsageError(
          `There is no version before ${current?.version ?? "the current one"} at ${name}.`,
          {
            fix: "Nothing to roll back to; `imgtool status` shows the history.",
          },
        );
      }
    }
    const version = target.version!;
    const metaHist = await this.store.history(this.metaName(key));
    const metaTarget = metaHist.find((h) => h.labels.includes(version));
    if (metaTarget) await this.labelOrFail(this.metaName(key), metaTarget.version, [LATEST]);
    await this.labelOrFail(name, target.parameterVersion, [LATEST]);
    this.events({
      type: "publish",
      role: key.role,
      message: `rolled back ${name}: latest now ${version} (was ${current?.version ?? "unset"})`,
      data: { name, from: current?.version, to: version },
    });
    return { name, from: current?.version, to: version };
  }

  /**
   * Point a channel label (e.g. `stable`) at the version that `from` (default `latest`) points to, on the
   * value and its metadata. Returns the version name, or undefined when nothing is published.
   */
  async promote(key: ArtifactKey, channel: string, from: string = LATEST): Promise<string | undefined> {
    const name = this.name(key);
    const hist = await this.history(key);
    const target = hist.find((h) => h.labels.includes(from));
    if (!target?.version) return undefined;
    const metaTarget = (await this.store.history(this.metaName(key))).find((h) =>
      h.labels.includes(target.version!),
    );
    if (metaTarget) await this.labelOrFail(this.metaName(key), metaTarget.version, [channel]);
    await this.labelOrFail(name, target.parameterVersion, [channel]);
    this.events({
      type: "publish",
      role: key.role,
      message: `${name}: ${channel} -> ${target.version}`,
      data: { name, channel, version: target.version },
    });
    return target.version;
  }

  /** Every artefact published under a version name, with its metadata and the labels on that version. */
  async findVersion(
    version: string,
  ): Promise<
    (HistoryEntry & { key: ArtifactKey; name: string; meta: (ArtifactMeta & { value: string }) | null })[]
  > {
    const names = (await this.store.list(this.prefix)).filter((n) => this.keyOf(n));
    const out = [];
    for (const name of names) {
      const hit = (await this.store.history(name)).map(toEntry).find((h) => h.labels.includes(version));
      if (!hit) continue;
      const m = (await this.store.history(`${name}/meta`)).find((h) => h.labels.includes(version));
      out.push({
        ...hit,
        key: this.keyOf(name)!,
        name,
        meta: m ? parseMeta(`${name}/meta`, m.version, m.value) : null,
      });
    }
    return out;
  }

  /** Every artefact in the catalog: current and previous version, age, channel labels. */
  async status(): Promise<StatusRow[]> {
    const names = (await this.store.list(this.prefix)).filter((n) => this.keyOf(n));
    const now = this.now().getTime();
    return Promise.all(
      names.map(async (name) => {
        const hist = (await this.store.history(name)).map(toEntry);
        const current = hist.find((h) => h.labels.includes(LATEST));
        const previous = current
          ? hist
              .filter(
                (h) =>
                  h.version && h.parameterVersion < current.parameterVersion && h.version !== current.version,
              )
              .at(-1)
          : undefined;
        const labels: Record<string, string> = {};
        for (const h of hist)
          for (const c of CHANNELS) if (h.labels.includes(c) && h.version) labels[c] = h.version;
        return {
          key: this.keyOf(name)!,
          name,
          current,
          previous,
          ageSeconds: current ? Math.round((now - current.modifiedAt.getTime()) / 1000) : undefined,
          labels,
        };
      }),
    );
  }
}

/**
 * What is wrong with a value stored for `kind`, when it plainly belongs to the other kind (an AMI id where an
 * image reference belongs, a reference where an AMI id belongs); undefined when it may be right.
 */
export function foreignValue(kind: ArtifactKind, value: string): string | undefined {
  if (kind === "image" && /^ami-[0-9a-f]+$/.test(value)) return "an AMI id where an image reference belongs";
  if ((kind === "ami" || kind === "base") && /[/@]/.test(value))
    return "an image reference where an AMI id belongs";
  if (value.trim() === "") return "an empty value";
  return undefined;
}

/** A stored value that cannot be what imgtool published there: exit 1, naming the parameter and the fix. */
export function checkValue(key: ArtifactKey, name: string, value: string): void {
  const problem = foreignValue(key.kind, value);
  if (!problem) return;
  throw new FailureError(
    `The catalog value at ${name} is ${problem}: ${JSON.stringify(value.slice(0, 80))}.`,
    {
      fix:
        `Something other than imgtool wrote it. Point it back at a published version (\`imgtool rollback --role ${key.role} --kind ${key.kind}${key.arch ? ` --arch ${key.arch}` : ""}\`) ` +
        `or publish again (\`imgtool ${key.kind === "image" ? "push image" : "bake ami --force"} --role ${key.role}\`).`,
    },
  );
}

/** Parse an artefact's metadata; a value that is not a JSON object is an error naming the parameter. */
export function parseMeta(name: string, version: number, value: string): ArtifactMeta & { value: string } {
  let doc: unknown;
  try {
    doc = JSON.parse(value);
  } catch {
    doc = undefined;
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw new FailureError(
      `The catalog metadata at ${name} (version ${version}) is not a JSON object: ${JSON.stringify(value.slice(0, 40))}.`,
      {
        fix:
          "Something other than imgtool wrote it. Publish the artefact again (`imgtool push image` / " +
          "`imgtool bake ami --force`), or label the metadata version that belongs to it with " +
          `\`aws ssm label-parameter-version --name ${name}\`.`,
      },
    );
  }
  return doc as ArtifactMeta & { value: string };
}

function toEntry(v: StoredVersion): HistoryEntry {
  return {
    version: v.labels.find((l) => VERSION_LABEL_RE.test(l)),
    parameterVersion: v.version,
    value: v.value,
    labels: v.labels,
    modifiedAt: v.modifiedAt,
  };
}

/**
 * One catalog store call, its failure named: the store's own errors (and those in `passThrough`) become
 * FailureErrors that name the parameter (the SDK's own error stays as the cause). Shared by the catalog and the
 * release record.
 */
export async function catalogCall<T>(
  name: string,
  what: string,
  fn: () => Promise<T>,
  passThrough: string[] = [],
): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const n = errorName(e);
    if (isImgtoolError(e) || (n && passThrough.includes(n))) throw e;
    throw new FailureError(`${what} ${name} failed: ${n ?? "Error"}: ${(e as Error)?.message ?? String(e)}`, {
      cause: e,
    });
  }
}
