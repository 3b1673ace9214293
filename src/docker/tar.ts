/**
 * A small, deterministic tar writer for build contexts: POSIX ustar headers, a PAX `path`/`linkpath` record
 * for names that do not fit, fixed owner and time, entries in the order given. Streams file contents one at
 * a time, so a large context never sits in memory at once.
 */
import { Readable } from "node:stream";

export interface TarEntry {
  /** Path inside the archive, `/`-separated, no leading `/`. Directories may end with `/`. */
  path: string;
  type: "file" | "dir" | "symlink";
  /** Permission bits, e.g. 0o644. */
  mode: number;
  /** File contents (files only): a buffer, or a function that reads it when the entry is written. */
  content?: Buffer | (() => Promise<Buffer>);
  /** Symlink target (symlinks only). */
  linkname?: string;
}

const BLOCK = 512;
/** Fixed modification time of every entry (2000-01-01): the same files always give the same archive. */
export const TAR_MTIME = 946684800;

function writeString(buf: Buffer, offset: number, length: number, value: string): void {
  buf.write(value, offset, Math.min(length, Buffer.byteLength(value)), "utf8");
}

function writeOctal(buf: Buffer, offset: number, length: number, value: number): void {
  // length-1 octal digits, then NUL.
  const s = value.toString(8).padStart(length - 1, "0");
  if (s.length > length - 1) throw new Error(`tar: value ${value} does not fit in ${length} bytes`);
  buf.write(`${s}\0`, offset, length, "ascii");
}

function header(
  name: string,
  opts: { mode: number; size: number; type: string; linkname?: string; prefix?: string },
): Buffer {
  const h = Buffer.alloc(BLOCK, 0);
  writeString(h, 0, 100, name);
  writeOctal(h, 100, 8, opts.mode & 0o7777);
  writeOctal(h, 108, 8, 0); // uid
  writeOctal(h, 116, 8, 0); // gid
  writeOctal(h, 124, 12, opts.size);
  writeOctal(h, 136, 12, TAR_MTIME);
  h.write("        ", 148, 8, "ascii"); // checksum placeholder: spaces
  h.write(opts.type, 156, 1, "ascii");
  if (opts.linkname) writeString(h, 157, 100, opts.linkname);
  h.write("ustar\0", 257, 6, "ascii");
  h.write("00", 263, 2, "ascii");
  writeString(h, 265, 32, "root");
  writeString(h, 297, 32, "root");
  if (opts.prefix) writeString(h, 345, 155, opts.prefix);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8, "ascii");
  return h;
}

function pad(size: number): Buffer {
  const rest = size % BLOCK;
  return Buffer.alloc(rest === 0 ? 0 : BLOCK - rest, 0);
}

/** A PAX record: "<len> key=value\n", where len counts the whole record including itself. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len)
    len = String(len).length + Buffer.byteLength(body);
  return `${len}${body}`;
}

/** Split a path into ustar name (<=100 bytes) and prefix (<=155 bytes), or undefined if it cannot be. */
function splitUstar(p: string): { name: string; prefix: string } | undefined {
  if (Buffer.byteLength(p) <= 100) return { name: p, prefix: "" };
  for (let i = p.indexOf("/"); i !== -1; i = p.indexOf("/", i + 1)) {
    const prefix = p.slice(0, i);
    const name = p.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100 && name) return { name, prefix };
  }
  return undefined;
}

const TYPE = { file: "0", symlink: "2", dir: "5" } as const;

async function* blocks(entries: Iterable<TarEntry> | AsyncIterable<TarEntry>): AsyncGenerator<Buffer> {
  for await (const e of entries) {
    const p = e.type === "dir" && !e.path.endsWith("/") ? `${e.path}/` : e.path;
    const content =
      e.type === "file"
        ? typeof e.content === "function"
          ? await e.content()
          : (e.content ?? Buffer.alloc(0))
        : Buffer.alloc(0);
    const split = splitUstar(p);
    const longLink = e.linkname !== undefined && Buffer.byteLength(e.linkname) > 100;
    if (!split || longLink) {
      const pax = Buffer.from(
        (split ? "" : paxRecord("path", p)) + (longLink ? paxRecord("linkpath", e.linkname!) : ""),
        "utf8",
      );
      yield header("PaxHeader", { mode: 0o644, size: pax.length, type: "x" });
      yield pax;
      yield pad(pax.length);
    }
    const names = split ?? { name: p.slice(0, 100), prefix: "" };
    yield header(names.name, {
      mode: e.mode,
      size: content.length,
      type: TYPE[e.type],
      ...(e.linkname !== undefined ? { linkname: longLink ? e.linkname.slice(0, 100) : e.linkname } : {}),
      prefix: names.prefix,
    });
    if (content.length) {
      yield content;
      yield pad(content.length);
    }
  }
  yield Buffer.alloc(BLOCK * 2, 0);
}

/** The archive of these entries, as a stream. */
export function tarStream(entries: Iterable<TarEntry> | AsyncIterable<TarEntry>): Readable {
  return Readable.from(blocks(entries), { objectMode: false });
}

/** The archive of these entries, in memory (tests, small contexts). */
export async function tarBuffer(entries: Iterable<TarEntry> | AsyncIterable<TarEntry>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of blocks(entries)) parts.push(b);
  return Buffer.concat(parts);
}
