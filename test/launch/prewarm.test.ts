// The task runner's boot pre-warm on the local target (issue 12, section 4), with the real engine and a
// Packer-baked twin (test/launch/fixtures/local.ts): the booted instance's ready record (`launch --json`) carries
// its pre-warm time, and what imgtool-prewarm read, as it recorded in /run/imgtool/prewarm.json, is checked from
// inside the instance against the image's layer folders (its engine's `docker image inspect`), the ruby-bench
// cache and the Rubies the bake recorded: every file under them, none left out.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { execIn, freePort } from "../../src/launch/local.js";
import { projectPath } from "../../src/paths.js";
import { runCli } from "../support/cli.js";
import { unavailable } from "../support/unavailable.js";
import { makeLocalFixture, type LocalFixture } from "./fixtures/local.js";

const skip = unavailable(
  !existsSync(projectPath(".imgtool", "stack.json")) && "the local stack is not set up (scripts/setup)",
);
const RUN = `e2e-pw-${process.pid}`;

describe(
  "the task runner's boot reads what its workers will read (local target, real engine)",
  { skip },
  () => {
    let fx: LocalFixture;
    const imgtool = (args: string[]) => runCli([...args, "--config", fx.configFile], { timeoutMs: 900_000 });
    const inInstance = async (id: string, script: string) => {
      const r = await execIn(fx.docker.getContainer(id), script, 60_000);
      assert.equal(r.exitCode, 0, r.output);
      return r.output.trim();
    };

    before(async () => {
      fx = await makeLocalFixture({ configExtra: `launch:\n  orchestrator_port: ${await freePort()}\n` });
    });
    after(async () => {
      if (fx) await imgtool(["terminate", "--run-id", RUN]).catch(() => undefined);
      await fx?.cleanup();
    });

    test("the ready record has prewarmSeconds; every file of the image's layers, the ruby-bench cache and the Rubies was read", async () => {
      const r = await imgtool([
        "launch",
        "--json",
        "--run-id",
        RUN,
        "--task-runners",
        "1",
        "--workers-per-instance",
        "1",
      ]);
      assert.equal(r.code, 0, r.stderr);
      const doc = JSON.parse(r.stdout) as {
        instances: { role: string; id: string; prewarmSeconds?: number; bootToReadySeconds: number }[];
      };
      const runner = doc.instances.find((i) => i.role === "task-runner")!;
      assert.equal(typeof runner.prewarmSeconds, "number", JSON.stringify(runner));
      assert.ok(runner.prewarmSeconds! >= 0 && runner.prewarmSeconds! <= runner.bootToReadySeconds);
      // The orchestrator does not pre-warm.
      assert.equal(doc.instances.find((i) => i.role === "orchestrator")!.prewarmSeconds, undefined);
      const marker = JSON.parse(await inInstance(runner.id, "cat /run/imgtool/ready")) as Record<
        string,
        unknown
      >;
      assert.equal(marker.prewarmSeconds, runner.prewarmSeconds);

      const rec = JSON.parse(await inInstance(runner.id, "cat /run/imgtool/prewarm.json")) as {
        files: number;
        readErrors: number;
        roots: string[];
        layers: string;
      };
      assert.equal(rec.readErrors, 0);
      assert.equal(rec.layers, "overlay2");
      // What the workers touch, as the instance itself knows it.
      const image = fx.images["task-runner"];
      const layerDirs = (
        await inInstance(
          runner.id,
          `docker image inspect --format '{{.GraphDriver.Data.UpperDir}}:{{.GraphDriver.Data.LowerDir}}' '${image}'`,
        )
      )
        .split(":")
        .filter(Boolean);
      assert.ok(layerDirs.length >= 2, layerDirs.join(" "));
      const rubies = (await inInstance(runner.id, "tail -n +2 /etc/imgtool/rubies.tsv | cut -f3"))
        .split("\n")
        .filter(Boolean);
      assert.ok(rubies.length >= 1);
      for (const dir of [...layerDirs, "/opt/ruby-bench"])
        assert.ok(rec.roots.includes(dir), `${dir} not read`);
      for (const ruby of rubies) {
        const real = await inInstance(runner.id, `readlink -f '${ruby}'`);
        assert.ok(
          rec.roots.some((root) => real === root || real.startsWith(`${root}/`)),
          `${real} (a configured Ruby) not read: ${rec.roots.join(" ")}`,
        );
      }
      // Every regular file under the image's layer folders and the cache was among those read.
      const expected = Number(
        await inInstance(
          runner.id,
          `find ${[...layerDirs, "/opt/ruby-bench"].map((d) => `'${d}'`).join(" ")} -type f -print0 | sort -z -u | tr -cd '\\0' | wc -c`,
        ),
      );
      assert.ok(expected > 0);
      assert.ok(rec.files >= expected, `read ${rec.files} files, the layers and the cache hold ${expected}`);
      const all = Number(
        await inInstance(
          runner.id,
          `find ${rec.roots.map((d) => `'${d}'`).join(" ")} -type f -print0 | sort -z -u | tr -cd '\\0' | wc -c`,
        ),
      );
      assert.equal(rec.files, all);
    });
  },
);
