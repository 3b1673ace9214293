// The boot budget on the local target, everything real (engine, registry, Packer-baked twins, local instances):
// a first pipeline run records the new versions' boot with its steps and promotes them; then a provisioning
// change (made in a copy of the project: no tracked file is touched) bakes into the task runner's twin a docker
// wrapper that adds an 8 s sleep to the boot's image check, and the pipeline refuses to promote, naming that step
// and both numbers; `stable` stays where it was and `status --version` shows the refused version's boot.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { connectDocker } from "../../src/docker/engine.js";
import { dockerHost, readStack } from "../../src/local/stack.js";
import { projectPath } from "../../src/paths.js";
import { localEngine } from "../render/helpers.js";
import { runCli } from "../support/cli.js";
import { makeBenchRepo } from "../support/fixtures/bench-repo.js";
import {
  localPipelineConfig,
  removePipelineArtifacts,
  tempStateDir,
  uniquePipelineName,
} from "../support/local-pipeline.js";
import { copyProject } from "../support/project-copy.js";
import { unavailable } from "../support/unavailable.js";

interface Stage {
  role: string;
  stage: string;
  status: string;
  version: string | null;
  detail?: string;
}
interface PipelineJson {
  ok: boolean;
  promoted: boolean;
  stages: Stage[];
  stable: Record<string, string>;
  smoke: {
    passed: boolean;
    boots: { role: string; instanceId: string; seconds: number; steps: Record<string, number> }[];
  } | null;
  boots: { role: string; version: string; ok: boolean; slowest: { name: string } | null }[];
  error?: { message: string; fix: string | null };
}

const BOOT_STEPS = ["engine-wait", "secret-read", "image-check", "pre-warm", "worker-start"];

// The provisioning change under test: the task runner's twin gets a docker wrapper (first on PATH) whose
// `docker image inspect IMAGE`, the boot's image check, sleeps 8 s (well above what load adds to another step). Only that form (three arguments): the
// pre-warm's own `docker image inspect --format ... IMAGE` must stay as fast as before, or the step that grew
// most would be pre-warm or image-check by chance. Appended to cleanup.sh in the project's copy.
const SLOW_IMAGE_CHECK = `
# test (boot-budget-local): a provisioning change that slows the boot's image check by 8 s.
# cleanup.sh runs in both stages of a staged bake: the role stage finds the wrapper the base stage wrote (and
# must not wrap it again: it would exec itself).
if [[ $IMGTOOL_ROLE == task-runner && ! -e /usr/local/bin/docker ]]; then
  real_docker=$(command -v docker)
  printf '%s\\n' '#!/bin/sh' 'if [ "$#" -eq 3 ] && [ "$1 $2" = "image inspect" ]; then sleep 8; fi' "exec $real_docker \\"\\$@\\"" >/usr/local/bin/docker
  chmod 0755 /usr/local/bin/docker
fi
`;

const engine = localEngine();
const skip = unavailable(engine.skip ?? false);
const stack = readStack(projectPath(".imgtool"));

describe(
  "boot budget on the local target (real engine, Packer-baked twins, the pipeline's smoke launch)",
  { skip },
  () => {
    const dir = mkdtempSync(path.join(tmpdir(), "imgtool-bootbudget-"));
    const stateDir = tempStateDir();
    const pipeline = uniquePipelineName("bb");
    const repo = makeBenchRepo(dir);
    const docker = stack ? connectDocker(dockerHost(stack)) : undefined;
    const copy = copyProject();
    writeFileSync(
      copy.path("packer", "scripts", "cleanup.sh"),
      readFileSync(copy.path("packer", "scripts", "cleanup.sh"), "utf8") + SLOW_IMAGE_CHECK,
    );

    after(async () => {
      if (docker) await removePipelineArtifacts(docker, pipeline);
      copy.remove();
      rmSync(dir, { recursive: true, force: true });
      rmSync(path.dirname(stateDir), { recursive: true, force: true });
    });

    const config = (name: string, extra: string[] = []): Promise<string> =>
      localPipelineConfig({
        file: path.join(dir, `${name}.yaml`),
        pipeline,
        repo: repo.path,
        stateDir,
        extra,
      });
    const pipelineRun = (cfg: string, root?: string) =>
      runCli(["pipeline", "--json", "--config", cfg], {
        env: { DOCKER_HOST: "" },
        timeoutMs: 1_500_000,
        ...(root ? { root } : {}),
      });
    const bakeVersion = (doc: PipelineJson, role: string) =>
      doc.stages.find((s) => s.role === role && s.stage === "bake")!.version!;

    let first: PipelineJson;

    test("first run: each boot step is timed, the boots are recorded with the versions, within budget: promoted", async () => {
      const r = await pipelineRun(await config("first"));
      assert.equal(r.code, 0, r.stderr.slice(-4000));
      first = JSON.parse(r.stdout) as PipelineJson;
      assert.equal(first.promoted, true);
      const tr = first.smoke!.boots.find((b) => b.role === "task-runner")!;
      assert.deepEqual(Object.keys(tr.steps), BOOT_STEPS, "the user-data's steps, in boot order");
      const rows = first.stages.filter((s) => s.stage === "boot");
      assert.deepEqual(rows.map((s) => [s.role, s.status]).sort(), [
        ["orchestrator", "within-budget"],
        ["task-runner", "within-budget"],
      ]);
      assert.ok(
        rows.every((s) => /no previous/.test(s.detail ?? "")),
        "nothing to compare with yet",
      );
      // The task runner's pre-warm is judged apart, against its own ceiling; its step stays in bootSteps.
      assert.match(
        rows.find((s) => s.role === "task-runner")?.detail ?? "",
        /^budget 60 s without pre-warm, .*; pre-warm \d+\.\d{3} s \(ceiling 900 s\)$/,
      );
    });

    test("a provisioning change that adds an 8 s sleep to the image check: promotion refused, naming the step and both numbers", async (t) => {
      const cfg = await config("slow", ["boot_budget:", "  seconds: { task-runner: 2 }"]);
      const r = await pipelineRun(cfg, copy.root);
      assert.equal(r.code, 1, r.stderr.slice(-4000));
      const doc = JSON.parse(r.stdout) as PipelineJson;
      assert.equal(doc.ok, false);
      assert.equal(doc.promoted, false);
      assert.equal(
        doc.stages.find((s) => s.role === "task-runner" && s.stage === "push")?.status,
        "up-to-date",
      );
      assert.equal(doc.stages.find((s) => s.role === "task-runner" && s.stage === "bake")?.status, "built");
      assert.deepEqual(doc.stable, first.stable, "stable still points at the first run's versions");
      assert.equal(
        doc.stages.find((s) => s.stage === "promote"),
        undefined,
        "no promote stage ran",
      );

      // The instance timed the slowed step: at least the 8 s the wrapper sleeps.
      const tr = doc.smoke!.boots.find((b) => b.role === "task-runner")!;
      assert.ok(tr.steps["image-check"]! >= 8, JSON.stringify(tr.steps));
      assert.equal(
        doc.stages.find((s) => s.role === "task-runner" && s.stage === "boot")?.status,
        "over-budget",
      );

      // The refusal names both numbers (the new boot, the budget, the previous version's boot) and the step.
      const v1 = bakeVersion(first, "task-runner");
      const v2 = bakeVersion(doc, "task-runner");
      const msg = doc.error!.message;
      t.diagnostic(msg);
      assert.match(msg, /too slow to boot; `stable` was not moved/);
      const line = msg.split("\n").find((l) => l.includes(`task-runner ${v2}`));
      assert.ok(line, msg);
      assert.match(
        line,
        /boot-to-ready without pre-warm \d+\.\d{3} s \(\d+\.\d{3} s with it\), over its budget of 2 s \(boot_budget\.seconds\.task-runner\)/,
      );
      assert.match(
        line,
        new RegExp(`previous version ${v1}: \\d+\\.\\d{3} s, \\d+\\.\\d{2}x \\(max 1\\.5x\\)`),
      );
      assert.match(
        line,
        new RegExp(
          `(slowest boot step: image-check \\d+\\.\\d{3} s|grew most: image-check) \\(\\+\\d+\\.\\d{3} s since ${v1}\\)`,
        ),
        "the step that the change slowed is named",
      );
      assert.match(doc.error!.fix ?? "", /boot_budget\.seconds\.task-runner/);

      // The refused version's boot is recorded with it.
      const shown = await runCli(["status", "--version", v2, "--json", "--config", cfg]);
      assert.equal(shown.code, 0, shown.stderr);
      const boots = (JSON.parse(shown.stdout) as { boots: { role: string; steps: Record<string, number> }[] })
        .boots;
      assert.equal(boots.length, 1);
      assert.equal(boots[0]!.role, "task-runner");
      assert.ok(boots[0]!.steps["image-check"]! >= 8);
    });
  },
);
