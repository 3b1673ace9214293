/**
 * Reproducible images from Docker's classic builder, which ignores SOURCE_DATE_EPOCH: the same inputs give
 * layers whose files carry the build's clock (RUN, WORKDIR, the folders COPY makes) and a config that names
 * the build's containers and times. After a build, the image is rewritten so that the same inputs give the same
 * image ID: every file time in the layers the build added is clamped to the epoch (never raised: files of
 * the context and the base keep theirs), the config's times are the epoch, and the names of the builder's
 * containers go. The base's layers are not touched, not copied and not loaded again: `docker load` skips a layer
 * the engine has (by chain ID), so the archive it gets holds only the config and the rewritten layers.
 *
 * The cost is one `docker save` of the image (the engine writes every layer, the base's too; imgtool reads past
 * the base's root layer, and hashes and clamps the others into the run's folder) and a load of the added layers.
 */
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type Docker from "dockerode";
import { readDaemonStream } from "./progress.js";
import { tarStream, type TarEntry } from "./tar.js";

const BLOCK = 512;

function readNumber(h: Buffer, offset: number, length: number): number {
  // Base-256 (GNU) when the high bit of the first byte is set.
  if (h[offset]! & 0x80) {
    let v = h[offset]! & 0x7f;
    for (let i = 1; i < length; i++) v = v * 256 + h[offset + i]!;
    return v;
  }
  const s = h
    .subarray(offset, offset + length)
    .toString("ascii")
    .replace(/[\0 ]+$/g, "")
    .replace(/^[\0 ]+/g, "");
  return s ? parseInt(s, 8) : 0;
}

function writeChecksum(h: Buffer): void {
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8, "ascii");
}

const padded = (n: number) => Math.ceil(n / BLOCK) * BLOCK;

/** PAX records whose time is clamped: "<len> key=value\n" with mtime, atime, ctime. */
function clampPax(data: Buffer, epoch: number): Buffer | undefined {
  const out: string[] = [];
  let changed = false;
  let rest = data.toString("utf8");
  while (rest.length) {
    const sp = rest.indexOf(" ");
    const len = Number(rest.slice(0, sp));
    if (!(sp > 0 && len > 0)) return undefined;
    // len counts bytes: take the record by bytes.
    const bytes = Buffer.from(rest, "utf8");
    const record = bytes.subarray(0, len).toString("utf8");
    rest = bytes.subarray(len).toString("utf8");
    const m = /^\d+ (mtime|atime|ctime)=([0-9.]+)\n$/.exec(record);
    if (m && Number(m[2]) > epoch) {
      changed = true;
      const body = ` ${m[1]}=${epoch}\n`;
      let l = Buffer.byteLength(body) + 1;
      while (String(l).length + Buffer.byteLength(body) !== l) l = String(l).length + Buffer.byteLength(body);
      out.push(`${l}${body}`);
    } else out.push(record);
  }
  return changed ? Buffer.from(out.join(""), "utf8") : undefined;
}

/**
 * A tar rewriter fed in chunks: every header's mtime (and PAX mtime/atime/ctime) above `epoch` becomes
 * `epoch`; everything else passes through byte for byte.
 */
export class TarClamp {
  private pending: Buffer[] = [];
  private pendingLength = 0;
  /** Bytes of entry data (with padding) still to pass through. */
  private passing = 0;
  /** A PAX header waiting for its data: the header and the data's size. */
  private pax: { header: Buffer; size: number } | undefined;
  /** Headers whose time was clamped. */
  clamped = 0;

  constructor(private readonly epoch: number) {}

  /** Feed a chunk; returns what to write. */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let c = chunk;
    while (c.length) {
      if (this.passing > 0) {
        const n = Math.min(this.passing, c.length);
        out.push(c.subarray(0, n));
        this.passing -= n;
        c = c.subarray(n);
        continue;
      }
      const need = this.pax ? padded(this.pax.size) : BLOCK;
      const take = Math.min(need - this.pendingLength, c.length);
      this.pending.push(c.subarray(0, take));
      this.pendingLength += take;
      c = c.subarray(take);
      if (this.pendingLength < need) break;
      const block = Buffer.concat(this.pending);
      this.pending = [];
      this.pendingLength = 0;
      out.push(...this.complete(block));
    }
    return out;
  }

  private complete(block: Buffer): Buffer[] {
    if (this.pax) {
      const { header, size } = this.pax;
      this.pax = undefined;
      const data = block.subarray(0, size);
      const clamped = clampPax(data, this.epoch);
      if (!clamped) return [header, block];
      this.clamped++;
      const h = Buffer.from(header);
      h.write(clamped.length.toString(8).padStart(11, "0") + "\0", 124, 12, "ascii");
      writeChecksum(h);
      return [h, clamped, Buffer.alloc(padded(clamped.length) - clamped.length, 0)];
    }
    if (block.every((b) => b === 0)) return [block];
    const h = Buffer.from(block);
    const size = readNumber(h, 124, 12);
    const type = String.fromCharCode(h[156]!);
    if (readNumber(h, 136, 12) > this.epoch) {
      h.write(this.epoch.toString(8).padStart(11, "0") + "\0", 136, 12, "ascii");
      writeChecksum(h);
      this.clamped++;
    }
    if (type === "x" || type === "g") {
      this.pax = { header: h, size };
      if (size === 0) {
        this.pax = undefined;
        return [h];
      }
      return [];
    }
    this.passing = padded(size);
    return [h];
  }
}

/** Reads a stream in exact byte counts. */
class ExactReader {
  private buffered: Buffer[] = [];
  private length = 0;
  private done = false;
  private readonly it: AsyncIterator<Buffer>;

  constructor(stream: NodeJS.ReadableStream) {
    this.it = (stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  private async fill(): Promise<boolean> {
    if (this.done) return false;
    const r = await this.it.next();
    if (r.done) {
      this.done = true;
      return false;
    }
    const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    this.buffered.push(b);
    this.length += b.length;
    return true;
  }

  /** Exactly n bytes, or fewer at the end of the stream. */
  async read(n: number): Promise<Buffer> {
    while (this.length < n && (await this.fill()));
    const all = Buffer.concat(this.buffered);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.buffered = rest.length ? [rest] : [];
    this.length = rest.length;
    return out;
  }

  /** Up to n bytes (at least one unless the stream ended): for passing large data through. */
  async readSome(n: number): Promise<Buffer> {
    if (this.length === 0) await this.fill();
    const first = this.buffered[0];
    if (!first) return Buffer.alloc(0);
    const out = first.subarray(0, Math.min(n, first.length));
    if (out.length === first.length) this.buffered.shift();
    else this.buffered[0] = first.subarray(out.length);
    this.length -= out.length;
    return out;
  }
}

interface SavedImage {
  config: Buffer;
  /** The archive's manifest entry. */
  layers: string[];
  /** Per layer path in the archive: its diff ID, the clamped one, the file holding the clamped layer. */
  rewritten: Map<string, Rewritten>;
}

interface Rewritten {
  diffId: string;
  clampedId: string;
  file: string;
  /** Headers whose time was clamped. */
  clamped: number;
  /** The root layer, read past (the base's): no hash, no file. */
  skipped?: boolean;
}

/**
 * Read `docker save` of one image: every layer is hashed, and clamped into a file under `dir`; with `skipRoot`,
 * the root layer (its v1 `json`, which comes before it, names no parent) is only read past: it is the base's.
 */
async function readSave(
  stream: NodeJS.ReadableStream,
  epoch: number,
  dir: string,
  skipRoot: boolean,
): Promise<SavedImage> {
  const r = new ExactReader(stream);
  const files = new Map<string, Buffer>();
  const rewritten = new Map<string, Rewritten>();
  let n = 0;
  for (;;) {
    const h = await r.read(BLOCK);
    if (h.length < BLOCK) break;
    if (h.every((b) => b === 0)) continue;
    let name = h.subarray(0, 100).toString("utf8").replace(/\0.*$/s, "");
    const prefix = h.subarray(345, 500).toString("utf8").replace(/\0.*$/s, "");
    if (prefix) name = `${prefix}/${name}`;
    const size = readNumber(h, 124, 12);
    const type = String.fromCharCode(h[156]!);
    if (type === "0" || type === "\0") {
      const v1 = files.get(name.replace(/layer\.tar$/, "json"));
      const root =
        skipRoot &&
        name.endsWith("/layer.tar") &&
        v1 !== undefined &&
        (JSON.parse(v1.toString("utf8")) as { parent?: string }).parent === undefined;
      if (root) {
        for (let left = size; left > 0;) {
          const chunk = await r.readSome(left);
          if (!chunk.length) throw new Error(`docker save: the archive ends inside ${name}`);
          left -= chunk.length;
        }
        rewritten.set(name, { diffId: "", clampedId: "", file: "", clamped: 0, skipped: true });
      } else if (name.endsWith("/layer.tar")) {
        const raw = createHash("sha256");
        const clamped = createHash("sha256");
        const clamp = new TarClamp(epoch);
        const file = path.join(dir, `layer-${n++}.tar`);
        const out = createWriteStream(file);
        const write = (b: Buffer) =>
          out.write(b) ? Promise.resolve() : new Promise<void>((res) => out.once("drain", () => res()));
        let left = size;
        while (left > 0) {
          const chunk = await r.readSome(left);
          if (!chunk.length) throw new Error(`docker save: the archive ends inside ${name}`);
          left -= chunk.length;
          raw.update(chunk);
          for (const o of clamp.push(chunk)) {
            clamped.update(o);
            await write(o);
          }
        }
        await new Promise<void>((res, rej) => out.end((e?: Error | null) => (e ? rej(e) : res())));
        rewritten.set(name, {
          diffId: `sha256:${raw.digest("hex")}`,
          clampedId: `sha256:${clamped.digest("hex")}`,
          file,
          clamped: clamp.clamped,
        });
      } else {
        files.set(name, await r.read(size));
      }
      await r.read(padded(size) - size);
    } else {
      await r.read(padded(size));
    }
  }
  const manifest = JSON.parse(files.get("manifest.json")?.toString("utf8") ?? "null") as
    { Config: string; Layers: string[] }[] | null;
  const entry = manifest?.[0];
  const config = entry ? files.get(entry.Config) : undefined;
  if (!entry || !config) throw new Error("docker save: no manifest.json or config in the archive");
  return { config, layers: entry.Layers, rewritten };
}

export interface ReproduceOptions {
  /** Seconds since 1970: SOURCE_DATE_EPOCH. */
  epoch: number;
  /** The image the build started from: its layers and history are left as they are. */
  base: string;
  /** The name the rewritten image gets (the build's tag moves to it). */
  tag: string;
  /** Where the layers are kept while the image is rewritten (the run's folder). @default os.tmpdir() */
  tempDir?: string;
}

export interface Reproduced {
  imageId: string;
  /** Layers the build added (and were rewritten where their times needed it). */
  layers: number;
  /** File headers whose time was clamped. */
  clamped: number;
}

/** Rewrite `imageId` (built on `base`) so that the same inputs give the same image ID; tags it `tag`. */
export async function reproduceImage(
  docker: Docker,
  imageId: string,
  opts: ReproduceOptions,
): Promise<Reproduced> {
  const baseInfo = await docker.getImage(opts.base).inspect();
  const baseLayers = baseInfo.RootFS?.Layers?.length ?? 0;
  const baseHistory = (await docker.getImage(opts.base).history()).length;
  const dir = await mkdtemp(path.join(opts.tempDir ?? tmpdir(), "imgtool-reproduce-"));
  try {
    const saved = await readSave(
      (await docker.getImage(imageId).get()) as NodeJS.ReadableStream,
      opts.epoch,
      dir,
      baseLayers > 0,
    );
    const cfg = JSON.parse(saved.config.toString("utf8")) as {
      created?: string;
      container?: string;
      container_config?: unknown;
      config?: { Image?: string; Hostname?: string };
      history?: { created?: string }[];
      rootfs: { diff_ids: string[] };
    };
    const diffIds = cfg.rootfs.diff_ids;
    if (diffIds.length !== saved.layers.length) throw new Error("docker save: layers and diff IDs differ");
    const time = new Date(opts.epoch * 1000).toISOString().replace(".000Z", "Z");
    const entries: TarEntry[] = [];
    const layerPaths: string[] = [];
    let clamped = 0;
    for (const [i, diffId] of diffIds.entries()) {
      const p = `layers/${i}.tar`;
      layerPaths.push(p);
      const r = saved.rewritten.get(saved.layers[i]!);
      if (!r) throw new Error(`docker save: layer ${i} (${diffId}) is not in the archive`);
      if (i < baseLayers) continue;
      if (r.skipped || r.diffId !== diffId) throw new Error(`docker save: layer ${i} is not ${diffId}`);
      diffIds[i] = r.clampedId;
      clamped += r.clamped;
      entries.push({ path: p, type: "file", mode: 0o644, content: () => readFile(r.file) });
    }
    cfg.created = time;
    delete cfg.container;
    delete cfg.container_config;
    if (cfg.config) cfg.config.Image = "";
    for (const [i, h] of (cfg.history ?? []).entries()) if (i >= baseHistory) h.created = time;
    const config = Buffer.from(JSON.stringify(cfg), "utf8");
    const id = createHash("sha256").update(config).digest("hex");
    const manifest = [{ Config: `${id}.json`, RepoTags: [opts.tag], Layers: layerPaths }];
    const archive = tarStream([
      { path: `${id}.json`, type: "file", mode: 0o644, content: config },
      { path: "manifest.json", type: "file", mode: 0o644, content: Buffer.from(JSON.stringify(manifest)) },
      ...entries,
    ]);
    const res = (await docker.loadImage(archive, { quiet: true })) as NodeJS.ReadableStream;
    await readDaemonStream(res, () => {});
    const loaded = await docker.getImage(`sha256:${id}`).inspect();
    return { imageId: loaded.Id, layers: diffIds.length - baseLayers, clamped };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
