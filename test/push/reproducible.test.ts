// Reproducible builds of the rendered Dockerfile (real engine): two builds of the same inputs, each without the
// builder's cache and at another clock time, give the same image ID; the builder alone gives two (so the
// rewrite is what makes them equal); the label's and the config's times are SOURCE_DATE_EPOCH; without it the
// epoch is the context's git commit time.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { DockerEngine } from "../../src/docker/engine.js";
import { recordingSink } from "../../src/events.js";
import { exec } from "../../src/exec.js";
import { ImageBuilder } from "../../src/push/build.js";
import { roleEmitter } from "../../src/push/emit.js";
import { prepareRole } from "../../src/push/inputs.js";
import { gitRubyBench } from "../../src/push/ruby-bench.js";
import { makeBenchRepo } from "../support/fixtures/bench-repo.js";
import { docker, dockerCli, engine, tempProject } from "./support.js";

const EPOCH = 1764547200; // 2025-12-01T00:00:00Z
const images: string[] = [];
after(async () => {
  for (const ref of images.reverse()) await engine.removeImage(ref).catch(() => undefined);
});

describe("reproducible builds of the rendered Dockerfile (real engine)", () => {
  test("the same inputs, built twice without the cache at two clock times, give the same image ID", async (t) => {
    const repo = makeBenchRepo();
    const p = tempProject(`roles:\n  task-runner:\n    ruby_bench:\n      repository: ${repo.path}\n`);
    const rubyBench = gitRubyBench({ cacheDir: path.join(p.stateDir, "rb"), exec });
    const inputs = await prepareRole("task-runner", p.config, "local", { docker: engine, rubyBench });
    const built: string[] = [];
    const noCache: DockerEngine = {
      ...engine,
      build: async (req, on) => {
        const o = await engine.build({ ...req, noCache: true }, on);
        built.push(o.imageId);
        images.push(o.imageId);
        return o;
      },
    };
    const events = recordingSink();
    // The run's folder: the rewrite keeps its temp files there and leaves nothing behind.
    const runDir = mkdtempSync(path.join(tmpdir(), "imgtool-repro-run-"));
    let asked = 0;
    const builder = new ImageBuilder({
      config: p.config,
      docker: noCache,
      rubyBench,
      exec,
      emit: roleEmitter(events),
      env: { SOURCE_DATE_EPOCH: String(EPOCH) },
      tempDir: () => {
        asked++;
        return runDir;
      },
    });
    const tally = { steps: { total: 0, cached: 0 } };
    const ref = (n: string) => `imgtool-repro/${p.pipeline}:${n}`;
    images.push(ref("a"), ref("b"));
    const p0 = inputs.platforms[0]!;
    const a = await builder.build(inputs, p0, ref("a"), new Date("2026-12-01T10:00:00Z"), "rev", tally);
    const b = await builder.build(inputs, p0, ref("b"), new Date("2026-12-02T11:22:33Z"), "rev", tally);

    assert.equal(tally.steps.cached, 0, "a step came from the builder's cache");
    assert.equal(built.length, 2);
    assert.notEqual(built[0], built[1], "the classic builder alone gave the same ID twice");
    assert.equal(a, b, "two builds of the same inputs gave two image IDs");
    assert.equal(asked, 2, "the rewrite did not use the run's folder");
    assert.deepEqual(readdirSync(runDir), [], "the rewrite left temp files in the run's folder");

    const info = await docker.getImage(ref("b")).inspect();
    assert.equal(info.Id, a, "the tag names the reproducible image");
    assert.equal(info.Config.Labels["org.opencontainers.image.created"], "2025-12-01T00:00:00.000Z");
    assert.equal(info.Created, "2025-12-01T00:00:00Z");
    assert.equal((await docker.getImage(ref("a")).inspect()).Id, a);
    // The base's layers are the base's; the image still runs as the app user.
    const base = await docker.getImage(p0.bases[0]!.id).inspect();
    assert.deepEqual(info.RootFS.Layers?.slice(0, base.RootFS.Layers!.length), base.RootFS.Layers);
    const ran = await dockerCli([
      "run",
      "--rm",
      "--entrypoint",
      "sh",
      ref("a"),
      "-c",
      "id -un; stat -c %Y /app /opt/ruby-bench /usr/local/bin",
    ]);
    const [user, ...times] = ran.trim().split("\n");
    assert.equal(user, "app");
    // No "last changed" day in the app user's shadow entry: useradd's today would differ on another day.
    const shadow = await dockerCli([
      "run",
      "--rm",
      "--user",
      "0",
      "--entrypoint",
      "grep",
      ref("a"),
      "^app:",
      "/etc/shadow",
    ]);
    assert.match(shadow.trim(), /^app:!::/);
    for (const x of times) assert.ok(Number(x) <= EPOCH, `a file time after the epoch: ${x}`);
    for (const e of events.events.filter((e) => / reproducible as /.test(e.message))) t.diagnostic(e.message);
    assert.ok(
      events.events.some((e) =>
        /made \S+ reproducible as \S+ .* clamped to SOURCE_DATE_EPOCH/.test(e.message),
      ),
    );
  });

  test("without SOURCE_DATE_EPOCH, the epoch is the context's git commit time", async () => {
    const p = tempProject();
    const builder = (env: NodeJS.ProcessEnv) =>
      new ImageBuilder({
        config: p.config,
        docker: engine,
        rubyBench: gitRubyBench({ cacheDir: path.join(p.stateDir, "rb"), exec }),
        exec,
        emit: roleEmitter(recordingSink()),
        env,
      });
    const dir = p.config.roles.orchestrator.app.context;
    const commit = Number(
      execFileSync("git", ["-C", dir, "log", "-1", "--format=%ct"], { encoding: "utf8" }),
    );
    assert.ok(commit > 0);
    assert.equal(await builder({}).sourceDateEpoch(dir), commit);
    const bad = builder({ SOURCE_DATE_EPOCH: "yesterday" });
    await assert.rejects(bad.sourceDateEpoch(dir), /SOURCE_DATE_EPOCH "yesterday" is not a number/);
  });
});
