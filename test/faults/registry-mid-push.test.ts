// Fault: the registry stops mid-push (a loopback proxy in front of the real registry cuts every connection once
// one blob is confirmed, as a stopped registry does), with the real CLI and engine. Afterwards: exit 1, the
// message names the cause and the fix, nothing published, nothing of the run left (no run folder with its temp
// files, no container of the pipeline, doctor finds no leftovers); once the registry is back, a re-run completes
// and uploads only what is missing.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Catalog } from "../../src/catalog/catalog.js";
import { SqliteStore } from "../../src/catalog/sqlite-store.js";
import { DOCKER_LABEL } from "../../src/config/tags.js";
import { runCli } from "../support/cli.js";
import { startRegistryProxy } from "../support/registry-proxy.js";
import { docker, stack, tempProject, type TempProject } from "../push/support.js";

const closers: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c().catch(() => {});
});

interface JsonResult {
  status: string;
  published: boolean;
  layers: { pushed: number; existed: number; mounted: number };
}

const push = (p: TempProject) =>
  runCli(["push", "image", "--role", "orchestrator", "--json", "--config", p.configFile], {
    timeoutMs: 240_000,
  });
const results = (stdout: string) => (JSON.parse(stdout) as { results: JsonResult[] }).results;

async function catalogEntries(p: TempProject) {
  const store = new SqliteStore(path.join(p.stateDir, "catalog.db"));
  try {
    return await new Catalog({ store, prefix: `/imgtool/${p.pipeline}` }).status();
  } finally {
    store.close();
  }
}

describe("fault: the registry stops mid-push", () => {
  test("exit 1 naming the cause and the fix, nothing published or left; a re-run uploads only what is missing", async () => {
    const proxy = await startRegistryProxy(stack.registry.endpoint);
    closers.push(() => proxy.close());
    // An image of three unique layers (FROM scratch: no base layer to compress): a tiny one and two of 8 MB of
    // random bytes, so that one is confirmed while the others are still uploading.
    const ctx = mkdtempSync(path.join(tmpdir(), "imgtool-fault-midpush-"));
    writeFileSync(
      path.join(ctx, "Dockerfile"),
      "FROM scratch\nCOPY a.txt /a.txt\nCOPY b.bin /b.bin\nCOPY c.bin /c.bin\n",
    );
    writeFileSync(path.join(ctx, "a.txt"), `${Date.now()} ${randomBytes(8).toString("hex")}\n`);
    writeFileSync(path.join(ctx, "b.bin"), randomBytes(8 << 20));
    writeFileSync(path.join(ctx, "c.bin"), randomBytes(8 << 20));
    const p = tempProject(
      `roles:\n  orchestrator:\n    app:\n      context: ${ctx}\n      dockerfile: Dockerfile\n`,
      {
        registry: proxy.host,
      },
    );
    proxy.cutAfterBlobs(1);

    const one = await push(p);
    assert.equal(one.code, 1, one.stderr);
    assert.ok(proxy.down, "the proxy did stop");
    assert.equal(results(one.stdout)[0]!.status, "failed");
    assert.match(one.stderr, new RegExp(`the registry ${proxy.host} stopped answering mid-push`));
    assert.match(
      one.stderr,
      /Start the registry again and re-run: layers already uploaded are not uploaded again\. Nothing was published\./,
    );
    assert.doesNotMatch(one.stderr, /internal error|^\s+at .+:\d+:\d+\)?$/m);
    assert.deepEqual(await catalogEntries(p), [], "nothing published");
    // Nothing of the run: its folder (temp files) is gone, no container of the pipeline, doctor finds no leftovers.
    const runs = path.join(p.stateDir, "runs");
    assert.deepEqual(existsSync(runs) ? readdirSync(runs) : [], [], "a run folder is left");
    const containers = await docker.listContainers({
      all: true,
      filters: { label: [`${DOCKER_LABEL.pipeline}=${p.pipeline}`] },
    });
    assert.deepEqual(
      containers.map((c) => c.Names[0]),
      [],
      "a container of the pipeline is left",
    );
    const doctor = await runCli(["doctor", "--json", "--config", p.configFile]);
    const leftovers = (
      JSON.parse(doctor.stdout) as { checks: { part: string; ok: boolean; state: string }[] }
    ).checks.find((c) => c.part === "leftovers");
    assert.equal(leftovers?.ok, true, leftovers?.state);
    // Blobs the daemon knew were in the registry when it stopped (at least the one that triggered the cut).
    const uploadedBefore = [...proxy.confirmedBlobs];
    assert.ok(uploadedBefore.length >= 1, "some blobs were uploaded before the registry stopped");

    proxy.up();
    proxy.reset();
    const two = await push(p);
    assert.equal(two.code, 0, two.stderr);
    const [ok] = results(two.stdout);
    assert.equal(ok!.status, "pushed");
    assert.ok(ok!.published);
    for (const d of uploadedBefore) assert.ok(!proxy.completedBlobs.includes(d), `${d} was uploaded again`);
    assert.ok(ok!.layers.existed + ok!.layers.mounted >= 1, JSON.stringify(ok!.layers));
    assert.equal((await catalogEntries(p)).length, 1, "the re-run published the image once");
  });
});
