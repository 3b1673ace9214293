// The layer rewriter of reproducible builds (src/docker/reproducible.ts), pure: header times above the epoch
// are clamped (with a valid checksum), times below it and every byte of content pass through unchanged, PAX
// time records are clamped too, and chunk boundaries do not matter.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { TarClamp } from "../../src/docker/reproducible.js";
import { TAR_MTIME, tarBuffer } from "../../src/docker/tar.js";

const EPOCH = 1764547200;

function header(name: string, size: number, mtime: number, type = "0"): Buffer {
  const h = Buffer.alloc(512, 0);
  h.write(name, 0, "utf8");
  h.write("0000644\0", 100, "ascii");
  h.write("0000000\0", 108, "ascii");
  h.write("0000000\0", 116, "ascii");
  h.write(size.toString(8).padStart(11, "0") + "\0", 124, "ascii");
  h.write(mtime.toString(8).padStart(11, "0") + "\0", 136, "ascii");
  h.write(type, 156, "ascii");
  h.write("ustar\0" + "00", 257, "ascii");
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8, "ascii");
  return h;
}
const pad = (n: number) => Buffer.alloc((512 - (n % 512)) % 512, 0);
const mtimeOf = (h: Buffer) => parseInt(h.subarray(136, 148).toString("ascii").replace(/\0.*$/, ""), 8);
function checksumOk(h: Buffer): boolean {
  const c = Buffer.from(h);
  const want = parseInt(
    c
      .subarray(148, 156)
      .toString("ascii")
      .replace(/[\0 ]+$/, ""),
    8,
  );
  c.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of c) sum += b;
  return sum === want;
}
const run = (input: Buffer, chunk: number) => {
  const clamp = new TarClamp(EPOCH);
  const out: Buffer[] = [];
  for (let i = 0; i < input.length; i += chunk) out.push(...clamp.push(input.subarray(i, i + chunk)));
  return { out: Buffer.concat(out), clamped: clamp.clamped };
};

describe("TarClamp", () => {
  test("an archive whose times are all before the epoch passes through byte for byte", async () => {
    const tar = await tarBuffer([
      { path: "a/", type: "dir", mode: 0o755 },
      { path: "a/b.txt", type: "file", mode: 0o644, content: Buffer.from("x".repeat(700)) },
    ]);
    assert.ok(TAR_MTIME < EPOCH);
    for (const chunk of [1, 7, 512, 100_000]) {
      const r = run(tar, chunk);
      assert.ok(r.out.equals(tar), `chunk ${chunk}`);
      assert.equal(r.clamped, 0);
    }
  });

  test("a later time is clamped to the epoch; content and earlier times are kept; the checksum is valid", () => {
    const content = Buffer.from("hello, world\n");
    const input = Buffer.concat([
      header("new.txt", content.length, EPOCH + 5000),
      content,
      pad(content.length),
      header("old.txt", 0, 1000),
      Buffer.alloc(1024, 0),
    ]);
    for (const chunk of [3, 511, 4096]) {
      const { out, clamped } = run(input, chunk);
      assert.equal(clamped, 1);
      assert.equal(out.length, input.length);
      assert.equal(mtimeOf(out.subarray(0, 512)), EPOCH);
      assert.ok(checksumOk(out.subarray(0, 512)));
      assert.ok(out.subarray(512, 512 + content.length).equals(content));
      assert.equal(mtimeOf(out.subarray(1024, 1536)), 1000);
      assert.ok(out.subarray(1024, 1536).equals(input.subarray(1024, 1536)), "an earlier time is rewritten");
    }
  });

  test("PAX mtime/atime records above the epoch are clamped, the size and checksum follow", () => {
    const rec = (k: string, v: string) => {
      const body = ` ${k}=${v}\n`;
      let l = body.length + 1;
      while (String(l).length + body.length !== l) l = String(l).length + body.length;
      return `${l}${body}`;
    };
    const pax = Buffer.from(
      rec("mtime", `${EPOCH + 99}.123456789`) + rec("path", "long/name") + rec("atime", "5"),
    );
    const input = Buffer.concat([
      header("PaxHeader", pax.length, 0, "x"),
      pax,
      pad(pax.length),
      header("long/name", 0, 0),
      Buffer.alloc(1024, 0),
    ]);
    const { out, clamped } = run(input, 64);
    assert.equal(clamped, 1);
    const size = parseInt(out.subarray(124, 136).toString("ascii").replace(/\0.*$/, ""), 8);
    assert.ok(checksumOk(out.subarray(0, 512)));
    const data = out.subarray(512, 512 + size).toString("utf8");
    assert.equal(data, rec("mtime", String(EPOCH)) + rec("path", "long/name") + rec("atime", "5"));
  });
});
