/**
 * Releases: the set of artefact versions (both roles' images and AMIs, every region) that passed together, kept
 * as ONE catalog value so that a launch, a promotion and a rollback always see a whole set, never a mix.
 *
 * Layout: one parameter `<prefix>/release` in the home region's catalog (local: the local catalog). Each
 * release is a new version of it, labelled with the release's id (`r<date>-<time>-<hash8>`). The channels
 * `latest` and `stable` are labels on those versions, so moving a channel is one LabelParameterVersion: a
 * failure before it leaves the previous release in place, and nothing after it can leave half a move.
 *
 * A release is written last: after every artefact was published and read back (Catalog.publish confirms each
 * value), {@link Releases.record} reads what every artefact's own `latest` label points at, checks each value,
 * writes the record, reads it back and only then labels it (with its id and `latest`, in one call). A record
 * with the same artefacts as the current `latest` release is not written again.
 *
 * Size: a record holds, per role, the image reference (once, plus any region whose reference differs) and per
 * architecture the AMI version, its pre-loaded image and one id per region. test/catalog/release.unit.test.ts
 * checks that the largest realistic config stays under SSM's 4 KB standard tier; a record over 8 KB (the
 * advanced tier's limit) is refused before any write.
 */
import { FailureError, UsageError, errorName } from "../errors.js";
import { ignoreEvents, type EventSink } from "../events.js";
import { hashParts } from "../hash.js";
import {
  CHANNELS,
  catalogCall,
  foreignValue,
  type Artifact,
  type ArtifactKey,
  type Catalog,
} from "./catalog.js";
import { VERSION_LIMIT_ERROR, type StoredParameter } from "./store.js";

export const RELEASE_PARAMETER = "release";
export const RELEASE_ID_RE = /^r\d{8}-\d{6}-[0-9a-f]{8}$/;
/** SSM's standard tier holds 4 KB; advanced 8 KB (the store asks for Intelligent-Tiering). */
export const STANDARD_LIMIT = 4096;
export const ADVANCED_LIMIT = 8192;
const FORMAT = 1;

export type Channel = (typeof CHANNELS)[number];

export interface ReleaseImage {
  version: string;
  /** The home region's reference. */
  ref: string;
  /**
   * Every other region's reference is `ref` with the home region's name replaced by the region's (ECR in each
   * region), except those in `refs`. Absent: `ref` everywhere, except those in `refs`.
   */
  regional?: true;
  /** Regions whose reference is neither `ref` nor derived from it. */
  refs?: Record<string, string>;
}

export interface ReleaseAmi {
  version: string;
  /** The image pre-loaded at bake time (null: none; absent: the role's image reference in the home region). */
  image?: string | null;
  preloadVolume: string | null;
  /** The AMI id (aws) or twin image id (local) per region. */
  ids: Record<string, string>;
}

export interface ReleaseRoleEntry {
  image?: ReleaseImage;
  ami?: Record<string, ReleaseAmi>;
}

export interface Release {
  format: number;
  id: string;
  createdAt: string;
  /** The regions the release covers, home first. */
  regions: string[];
  roles: Record<string, ReleaseRoleEntry>;
}

export interface ReleaseVersion {
  release: Release;
  parameterVersion: number;
  labels: string[];
}

/** A catalog of one region, named by its region ("local" on the local target). */
export interface RegionCatalog {
  region: string;
  catalog: Catalog;
}

const isChannel = (s: string): s is Channel => (CHANNELS as readonly string[]).includes(s);

/** Whether `label` selects a release (a channel or a release id) rather than an artefact version. */
export function isReleaseSelector(label: string): boolean {
  return isChannel(label) || RELEASE_ID_RE.test(label);
}

/** The error for a release value that is not one imgtool wrote: names the parameter and the fix. */
function corrupt(name: string, version: number | string, problem: string): FailureError {
  return new FailureError(`The release record ${name} (version ${version}) is not readable: ${problem}.`, {
    fix:
      `Something other than imgtool wrote it, or it was edited. Point the channel at a good release ` +
      `(\`imgtool rollback --channel stable|latest --to <release id>\`; \`aws ssm get-parameter-history --name ${name}\` ` +
      `lists them), or record a new one with \`imgtool bake ami\` (it records the release of what is published).`,
  });
}

/** Parse and check a stored release record; any deviation is a clear error naming the parameter. */
export function parseRelease(name: string, version: number | string, value: string): Release {
  let doc: unknown;
  try {
    doc = JSON.parse(value);
  } catch {
    throw corrupt(name, version, `its value is not JSON (${JSON.stringify(value.slice(0, 40))}...)`);
  }
  const r = doc as Partial<Release>;
  if (typeof doc !== "object" || doc === null || Array.isArray(doc))
    throw corrupt(name, version, "its value is not a JSON object");
  if (r.format !== FORMAT) throw corrupt(name, version, `unknown format ${JSON.stringify(r.format)}`);
  if (typeof r.id !== "string" || !RELEASE_ID_RE.test(r.id))
    throw corrupt(name, version, `its id ${JSON.stringify(r.id)} is not a release id`);
  if (!Array.isArray(r.regions) || typeof r.roles !== "object" || r.roles === null)
    throw corrupt(name, version, "it lacks regions or roles");
  for (const [role, e] of Object.entries(r.roles)) {
    if (e.image && (typeof e.image.ref !== "string" || foreignValue("image", e.image.ref)))
      throw corrupt(
        name,
        version,
        `${role}'s image ${JSON.stringify(e.image.ref)} is not an image reference`,
      );
    for (const [arch, a] of Object.entries(e.ami ?? {})) {
      for (const [region, id] of Object.entries(a.ids ?? {}))
        if (typeof id !== "string" || foreignValue("ami", id))
          throw corrupt(
            name,
            version,
            `${role}'s ${arch} AMI in ${region} ${JSON.stringify(id)} is not an AMI id or twin image id`,
          );
    }
  }
  return r as Release;
}

/** The image reference of a role in a region. */
export function imageIn(release: Release, e: ReleaseImage, region: string): string {
  const home = release.regions[0] ?? region;
  return e.refs?.[region] ?? (e.regional ? derived(e.ref, home, region) : e.ref);
}

/** The image pre-loaded into an AMI of a role (null: none). */
export function bakedImageOf(release: Release, role: string, a: ReleaseAmi): string | null {
  return a.image === undefined ? (release.roles[role]?.image?.ref ?? null) : a.image;
}

function derived(ref: string, home: string, region: string): string {
  return ref.replace(`.${home}.`, `.${region}.`);
}

/** The release's content without its id and time: two records with the same content are the same release. */
function contentOf(r: Pick<Release, "regions" | "roles">): string {
  return JSON.stringify({ regions: r.regions, roles: r.roles });
}

export class Releases {
  readonly name: string;
  private readonly events: EventSink;
  private readonly now: () => Date;

  /** `home`: the catalog the record lives in (aws: the home region's). */
  constructor(
    readonly home: Catalog,
    opts: { events?: EventSink; now?: () => Date } = {},
  ) {
    this.name = `${home.prefix}/${RELEASE_PARAMETER}`;
    this.events = opts.events ?? ignoreEvents;
    this.now = opts.now ?? (() => new Date());
  }

  /** The selector to read a channel's (or id's) release in a batched read. */
  selector(label: string): string {
    return `${this.name}:${label}`;
  }

  /** A release from a batched read's answer (undefined when the selector found nothing). */
  fromFound(found: StoredParameter[]): Release | undefined {
    const p = found.find((f) => f.name === this.name);
    return p ? parseRelease(this.name, p.version, p.value) : undefined;
  }

  /** The release a channel (or release id) points at, if any. */
  async read(label: string): Promise<Release | undefined> {
    const { found } = await this.call("reading", () => this.home.store.getMany([this.selector(label)]));
    return this.fromFound(found);
  }

  /** Every kept release, oldest first, with its labels (a corrupt version is an error naming it). */
  async history(): Promise<ReleaseVersion[]> {
    const hist = await this.call("reading the history of", () => this.home.store.history(this.name));
    return hist.map((h) => ({
      release: parseRelease(this.name, h.version, h.value),
      parameterVersion: h.version,
      labels: h.labels,
    }));
  }

  /**
   * Record the release of what every artefact's `latest` points at now, in every region (written last, after
   * the artefacts). `required`: keys that must be published (the roles this run made); other keys are
   * included when published. Returns the release `latest` points at afterwards.
   */
  async record(
    sources: RegionCatalog[],
    keys: ArtifactKey[],
    required: ArtifactKey[] = keys,
  ): Promise<{ release: Release; status: "recorded" | "unchanged" }> {
    const regions = sources.map((s) => s.region);
    if (new Set(regions).size !== regions.length)
      throw new Error(`release sources must be distinct regions: ${regions.join(", ")}`);
    const byRegion = new Map<string, Map<string, Artifact>>();
    const missing: string[] = [];
    await Promise.all(
      sources.map(async ({ region, catalog }) => {
        const { found, missing: gone } = await catalog.resolve(keys, { meta: true });
        byRegion.set(region, new Map(found.map((a) => [a.name.slice(catalog.prefix.length), a])));
        for (const k of gone)
          if (required.some((r) => sameKey(r, k))) missing.push(`${catalog.name(k)} (${region})`);
      }),
    );
    if (missing.length) {
      throw new FailureError(
        `No release was recorded: nothing is published at\n${missing.map((m) => `  - ${m}`).join("\n")}`,
        {
          fix: "Publish them first (`imgtool push image`, `imgtool bake ami`); the release is written last.",
        },
      );
    }
    const home = regions[0]!;
    const roles: Record<string, ReleaseRoleEntry> = {};
    for (const key of keys) {
      const rel = relName(key);
      const inRegions = regions
        .map((region) => ({ region, a: byRegion.get(region)!.get(rel) }))
        .filter((x): x is { region: string; a: Artifact } => x.a !== undefined);
      // An artefact counts only when it is published in every region (else a launch there has nothing).
      if (inRegions.length !== regions.length) {
        if (required.some((r) => sameKey(r, key)))
          throw new FailureError(`No release was recorded: ${rel} is not published in every region.`);
        continue;
      }
      const first = inRegions[0]!.a;
      const version = first.meta?.version;
      if (!version) throw new FailureError(`No release was recorded: ${first.name} has no version metadata.`);
      const entry = (roles[key.role] ??= {});
      if (key.kind === "image") {
        const homeRef = inRegions.find((x) => x.region === home)!.a.value;
        const others = inRegions.filter((x) => x.region !== home);
        const regional =
          others.length > 0 && others.every((x) => x.a.value === derived(homeRef, home, x.region));
        const refs: Record<string, string> = {};
        for (const { region, a } of others) {
          if (a.value !== (regional ? derived(homeRef, home, region) : homeRef)) refs[region] = a.value;
        }
        entry.image = {
          version,
          ref: homeRef,
          ...(regional && homeRef !== derived(homeRef, home, others[0]!.region)
            ? { regional: true as const }
            : {}),
          ...(Object.keys(refs).length ? { refs } : {}),
        };
      } else {
        const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : null);
        (entry.ami ??= {})[key.arch ?? "x86_64"] = {
          version,
          image: str(first.meta?.image),
          preloadVolume: str(first.meta?.preloadVolume),
          ids: Object.fromEntries(inRegions.map(({ region, a }) => [region, a.value])),
        };
      }
    }
    // An AMI's pre-loaded image is most often its role's image: then it is not written twice.
    for (const entry of Object.values(roles)) {
      for (const a of Object.values(entry.ami ?? {}))
        if (entry.image && a.image === entry.image.ref) delete a.image;
    }
    const current = (await this.history()).find((h) => h.labels.includes("latest"));
    if (current && contentOf(current.release) === contentOf({ regions, roles })) {
      this.events({
        type: "skip",
        message: `release ${current.release.id} is up to date (latest already holds these versions)`,
        data: { release: current.release.id },
      });
      return { release: current.release, status: "unchanged" };
    }
    const at = this.now();
    const iso = at.toISOString();
    const hash = hashParts([{ name: "release", content: contentOf({ regions, roles }) }]);
    const id = `r${iso.slice(0, 10).replace(/-/g, "")}-${iso.slice(11, 19).replace(/:/g, "")}-${hash.slice(0, 8)}`;
    const release: Release = { format: FORMAT, id, createdAt: iso, regions, roles };
    const value = JSON.stringify(release);
    const size = Buffer.byteLength(value);
    if (size > ADVANCED_LIMIT) {
      throw new FailureError(
        `The release record is ${size} bytes, more than SSM's limit of ${ADVANCED_LIMIT} bytes; nothing was recorded.`,
        { fix: "Fewer regions in aws.regions (each adds an id per AMI) keep it under the limit." },
      );
    }
    const version = await this.putWithRoom(value);
    // A new parameter (the first release) may not be readable at once: the catalog's read-back waits for it.
    if (!(await this.home.readBackUntil(this.name, version, value)).kept) {
      throw new FailureError(
        `The catalog did not keep release ${id} at ${this.name} (version ${version}); latest still points at ${current?.release.id ?? "no release"}.`,
      );
    }
    await this.labelOrFail(version, [id, "latest"]);
    this.events({
      type: "publish",
      message: `release ${id} recorded (${size} bytes); latest -> ${id} (was ${current?.release.id ?? "unset"})`,
      data: { release: id, bytes: size, from: current?.release.id ?? null },
    });
    return { release, status: "recorded" };
  }

  /** Point `channel` at release `id`: one write. Returns the release it pointed at before. */
  async move(channel: Channel, id: string): Promise<{ from: string | undefined; to: string }> {
    // Two reads, not one GetParameters with both selectors: SSM documents one selector per name, not whether a
    // call may name one parameter twice.
    const [byId, byChannel] = await this.call("reading", () =>
      Promise.all([
        this.home.store.getMany([this.selector(id)]),
        this.home.store.getMany([this.selector(channel)]),
      ]),
    );
    const target = byId.found[0];
    if (!target) {
      throw new UsageError(`There is no release ${id} at ${this.name}.`, {
        fix: "`imgtool rollback --channel <channel>` without --to picks the previous one; `imgtool status` lists releases.",
      });
    }
    parseRelease(this.name, target.version, target.value);
    const before = byChannel.found[0];
    const from = before ? parseRelease(this.name, before.version, before.value).id : undefined;
    await this.labelOrFail(target.version, [channel]);
    this.events({
      type: "publish",
      message: `${channel} -> release ${id} (was ${from ?? "unset"})`,
      data: { channel, release: id, from: from ?? null },
    });
    return { from, to: id };
  }

  /**
   * Move `channel` back to release `to`, or by default to the newest release recorded before the one it points
   * at now. One write; the previous release stays untouched when it fails.
   */
  async rollback(
    channel: Channel,
    to?: string,
  ): Promise<{ channel: Channel; from: string | undefined; to: string }> {
    const hist = await this.history();
    if (hist.length === 0) {
      throw new UsageError(`No release is recorded at ${this.name}.`, {
        fix: "`imgtool pipeline` (or `imgtool bake ami`) records one.",
      });
    }
    const current = hist.find((h) => h.labels.includes(channel));
    let target: ReleaseVersion | undefined;
    if (to !== undefined) {
      target = hist.find((h) => h.release.id === to);
      if (!target) {
        throw new UsageError(`Release ${to} is not in the history of ${this.name}.`, {
          fix: `Known releases: ${hist.map((h) => h.release.id).join(", ")}.`,
        });
      }
    } else {
      target = hist
        .filter((h) => !current || h.parameterVersion < current.parameterVersion)
        .filter((h) => h.release.id !== current?.release.id && h.labels.includes(h.release.id))
        .at(-1);
      if (!target) {
        throw new UsageError(
          `There is no release before ${current?.release.id ?? "the current one"} for ${channel} to go back to.`,
          { fix: "`imgtool status` lists the releases." },
        );
      }
    }
    const r = await this.move(channel, target.release.id);
    return { channel, ...r };
  }

  private call<T>(what: string, fn: () => Promise<T>, passThrough: string[] = []): Promise<T> {
    return catalogCall(this.name, what, fn, passThrough);
  }

  private async labelOrFail(version: number, labels: string[]): Promise<void> {
    const { invalid } = await this.call("labelling", () => this.home.store.label(this.name, version, labels));
    if (invalid.length) throw new Error(`labels ${invalid.join(", ")} refused on ${this.name}`);
  }

  /**
   * Write a new version. At SSM's 100 versions a labelled oldest version blocks the write
   * (ParameterMaxVersionLimitExceeded): when it carries only its release id it is history, so the id comes off
   * (said in a warning) and the write is retried; when a channel points at it, nothing is dropped: the error
   * says which channel and how to move it.
   */
  private async putWithRoom(value: string): Promise<number> {
    const put = () => this.home.store.put(this.name, value, { dataType: "text" });
    try {
      return await this.call("writing", put, [VERSION_LIMIT_ERROR]);
    } catch (e) {
      if (errorName(e) !== VERSION_LIMIT_ERROR) throw e;
    }
    const oldest = (await this.call("reading the history of", () => this.home.store.history(this.name)))[0];
    if (!oldest) return this.call("writing", put);
    const channels = oldest.labels.filter(isChannel);
    if (channels.length) {
      throw new FailureError(
        `${this.name} holds SSM's limit of 100 versions and its oldest (version ${oldest.version}) is what ` +
          `${channels.join(" and ")} point${channels.length === 1 ? "s" : ""} at; a new release would drop it, so none was recorded.`,
        {
          fix: `Move ${channels.join(" and ")} to a newer release first (${channels.map((c) => `\`imgtool rollback --channel ${c} --to <newer release id>\``).join(", ")}), then run again.`,
        },
      );
    }
    await this.call("unlabelling", () => this.home.store.unlabel(this.name, oldest.version, oldest.labels));
    this.events({
      type: "warn",
      message:
        `${this.name} reached SSM's limit of 100 versions: its oldest release (version ${oldest.version}, ` +
        `labels [${oldest.labels.join(", ")}]) is dropped to make room; no channel pointed at it`,
      data: { name: this.name, droppedVersion: oldest.version, labels: oldest.labels },
    });
    return this.call("writing", put);
  }
}

function relName(k: ArtifactKey): string {
  return `/${[k.role, k.kind, ...(k.arch ? [k.arch] : [])].join("/")}`;
}

function sameKey(a: ArtifactKey, b: ArtifactKey): boolean {
  return a.role === b.role && a.kind === b.kind && (a.arch ?? "") === (b.arch ?? "");
}

/** The catalogs (home first) as a release names them: by region (one that does not know it: "local"). */
export function regionCatalogs(catalogs: Catalog[]): RegionCatalog[] {
  return catalogs.map((catalog, i) => ({
    region: catalog.region ?? (i === 0 ? "local" : `region-${i + 1}`),
    catalog,
  }));
}

/**
 * Record the release of what is published now (the bake and push commands call this after their work; the
 * pipeline records its own). `catalogs`: every region's, home first.
 */
export async function recordRelease(
  catalogs: Catalog[],
  keys: ArtifactKey[],
  required: ArtifactKey[],
  events: EventSink = ignoreEvents,
): Promise<{ release: Release; status: "recorded" | "unchanged" }> {
  return new Releases(catalogs[0]!, { events }).record(regionCatalogs(catalogs), keys, required);
}
