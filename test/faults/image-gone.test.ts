// Fault: a launch whose image is gone from the registry (deleted through the registry's API after it was
// published; a lifecycle policy or a wiped registry does the same). The catalog points at the image and the
// twin has another one baked in, so the instances would have to pull it. With the real CLI, engine and
// registry: exit 1, the message names the image, the role, that it is gone and the fix, and nothing of the run
// is left: no container, no volume, no instance folder, no run record. The launch stops in its checks, before
// anything starts, so the twin here is a stand-in (the base image): no instance is ever made from it.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { Catalog } from "../../src/catalog/catalog.js";
import { SqliteStore } from "../../src/catalog/sqlite-store.js";
import { machineArch } from "../../src/config/arch.js";
import { registryImageProbe } from "../../src/launch/image-check.js";
import { RegistryClient } from "../../src/registry/client.js";
import { localEngine } from "../render/helpers.js";
import { runCli } from "../support/cli.js";
import { unavailable } from "../support/unavailable.js";

const skip = unavailable(localEngine().skip);

describe("fault: a launch whose image is gone from the registry", { skip }, () => {
  // The engine stack is loaded only where it is there (test/support/unavailable.ts decides).
  let s: typeof import("../push/support.js");
  const refs: string[] = [];
  before(async () => {
    s = await import("../push/support.js");
  });
  after(async () => {
    for (const r of refs) await s?.engine.removeImage(r).catch(() => undefined);
  });

  const manifest = (repo: string, digest: string, method: "HEAD" | "DELETE") =>
    fetch(`http://${s.stack.registry.endpoint}/v2/${repo}/manifests/${digest}`, {
      method,
      headers: {
        authorization: `Basic ${Buffer.from(`${s.stack.registry.user}:${s.password}`).toString("base64")}`,
        accept: "application/vnd.docker.distribution.manifest.v2+json",
      },
    });

  test("exit 1 before anything starts, naming the image and the fix; nothing of the run left", async () => {
    const { docker, password, pushLabelledImage, stack } = s;
    const p = s.tempProject();
    const repo = `${p.pipeline}/orchestrator`;
    const uri = `${stack.registry.endpoint}/${repo}`;
    // A small image of its own (one label on the base), pushed, then published.
    const pushed = await pushLabelledImage(uri, "gone", `org.imgtool.test.gone="${p.pipeline}"`);
    refs.push(`${uri}:gone`, pushed.imageId);
    const image = pushed.ref;
    const digest = image.split("@")[1]!;
    const twin = (await docker.getImage("imgtool/base:bookworm").inspect()).Id;
    const store = new SqliteStore(path.join(p.stateDir, "catalog.db"));
    const catalog = new Catalog({ store, prefix: `/imgtool/${p.pipeline}` });
    await catalog.publish({ role: "orchestrator", kind: "image" }, image, {
      version: "v20261203-000001-aaaa0001",
      inputsHash: "1".padStart(16, "0"),
      builtAt: new Date().toISOString(),
    });
    await catalog.publish({ role: "orchestrator", kind: "ami", arch: machineArch() }, twin, {
      version: "v20261203-000001-bbbb0001",
      inputsHash: "2".padStart(16, "0"),
      builtAt: new Date().toISOString(),
      image: `${uri}@sha256:${"0".repeat(64)}`,
    });
    store.close();

    // The fault: the registry no longer has it (asked as the launch asks: src/cli/deps.ts's probe).
    const probe = registryImageProbe(
      async (host) =>
        new RegistryClient({
          endpoint: `http://${host}`,
          credentials: async () => ({ username: stack.registry.user, password }),
        }),
    );
    assert.equal(await probe(image), true, "the pushed image is in the registry");
    assert.equal((await manifest(repo, digest, "DELETE")).status, 202);
    assert.equal((await manifest(repo, digest, "HEAD")).status, 404, "the image is gone from the registry");
    assert.equal(await probe(image), false, "the probe still finds it");

    const runId = `gone-${p.pipeline}`;
    const r = await runCli([
      "launch",
      "--task-runners",
      "0",
      "--channel",
      "latest",
      "--run-id",
      runId,
      "--config",
      p.configFile,
    ]);
    assert.equal(r.code, 1, r.stderr);
    assert.ok(
      r.stderr.includes(
        `The orchestrator image ${image} (version v20261203-000001-aaaa0001, catalog label latest) is gone from the registry ${stack.registry.endpoint}`,
      ),
      r.stderr,
    );
    assert.match(r.stderr, /Nothing was launched\./);
    assert.match(r.stderr, /fix: `imgtool push image --role orchestrator` pushes it again/);
    assert.doesNotMatch(r.stderr, /internal error|This is a bug|^\s+at /m);

    // Nothing of the run: no container, no volume, no instance folder, no run record.
    const containers = await docker.listContainers({
      all: true,
      filters: { label: [`imgtool.pipeline=${p.pipeline}`] },
    });
    assert.deepEqual(
      containers.map((c) => c.Names[0]),
      [],
      "a container of the run is left",
    );
    const volumes = ((await docker.listVolumes()).Volumes ?? [])
      .map((v) => v.Name)
      .filter((n) => n.includes(p.pipeline));
    assert.deepEqual(volumes, [], "a volume of the run is left");
    const runDir = path.join(p.stateDir, "launch", runId);
    assert.equal(existsSync(runDir), false, "an instance folder is left");
    const runs = path.join(p.stateDir, "runs");
    assert.deepEqual(existsSync(runs) ? readdirSync(runs) : [], [], "a run record is left");
  });
});
