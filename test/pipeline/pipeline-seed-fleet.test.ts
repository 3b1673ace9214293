// The seed-interfaces example (examples/seed-fleet, issue 9 section 5) through the whole pipeline on the local
// target, everything real (engine, registry, Packer, nested engines): `imgtool pipeline` on a copy of the example
// in a state folder of its own pushes both images, bakes both twins (the stack's PostgreSQL resolved to a digest
// and pre-loaded), smoke-launches an orchestrator stack (PostgreSQL, web, jobs) and a task runner started with the
// seed's flags only, whose smoke script creates a run with one task per worker and waits until PostgreSQL holds
// every task completed by the runner that claimed it with that run id; then, and only then, `stable` moves. The
// registry sees no request for the stack's PostgreSQL once the smoke launch starts; no secret is printed.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { connectDocker } from "../../src/docker/engine.js";
import { dockerHost, readStack } from "../../src/local/stack.js";
import { projectPath } from "../../src/paths.js";
import { startCli, type CliResult } from "../support/cli.js";
import { removePipelineArtifacts } from "../support/local-pipeline.js";
import {
  copySeedFleet,
  SEED_FLEET_SECRETS,
  SETUP_RUBY_BENCH,
  type SeedFleetCopy,
} from "../support/seed-fleet.js";
import { dockerCli } from "../support/twin-bake.js";
import { unavailable } from "../support/unavailable.js";

interface PipelineJson {
  ok: boolean;
  promoted: boolean;
  stages: { role: string; stage: string; status: string; version: string | null }[];
  stable: Record<string, string>;
  smoke: { passed: boolean; bootToReadySeconds: Record<string, number>; detail: string } | null;
}

const stack = readStack(projectPath(".imgtool"));
const skip = unavailable(
  !stack
    ? "no local stack (run scripts/setup)"
    : !existsSync(SETUP_RUBY_BENCH)
      ? `no ${SETUP_RUBY_BENCH} (scripts/setup makes it)`
      : false,
);

describe("examples/seed-fleet: the whole pipeline on the local target", { skip }, () => {
  const env = stack ? { DOCKER_HOST: dockerHost(stack) } : {};
  const docker = dockerCli(env);
  const registryLog = stack ? path.join(path.dirname(stack.registry.passwordFile), "registry.log") : "";
  let copy: SeedFleetCopy | undefined;
  let pipeline = "";
  let result: CliResult;
  let logFromSmoke: string | undefined;

  before(async () => {
    copy = await copySeedFleet("sf");
    pipeline = copy.pipeline;
    const cli = startCli(
      ["pipeline", "--json", "--out", path.join(copy.dir, "out"), "--config", copy.configFile],
      {
        env,
        timeoutMs: 2_400_000,
      },
    );
    // The bake pulled PostgreSQL from the registry to pre-load it; from the smoke launch on, nothing may.
    let offset: number | undefined;
    cli
      .waitFor(/launching run smoke-/)
      .then(() => (offset = statSync(registryLog).size))
      .catch(() => undefined);
    result = await cli.done;
    if (offset !== undefined) logFromSmoke = readFileSync(registryLog).subarray(offset).toString("utf8");
  });

  after(async () => {
    if (!pipeline) return;
    const names = docker(["ps", "-aq", "--filter", `label=imgtool.pipeline=${pipeline}`]).out.trim();
    if (names) docker(["rm", "-f", ...names.split("\n")]);
    if (stack) await removePipelineArtifacts(connectDocker(dockerHost(stack)), pipeline);
    for (const img of docker(["images", "--format", "{{.Repository}}:{{.Tag}}"]).out.split("\n"))
      if (img.includes(`/${pipeline}/`)) docker(["rmi", "-f", img]);
    copy?.remove();
  });

  test("push, bake, smoke launch (every task complete in PostgreSQL), then stable is promoted", () => {
    assert.equal(result.code, 0, result.stderr.slice(-6000));
    const doc = JSON.parse(result.stdout) as PipelineJson;
    const status = (role: string, stage: string) =>
      doc.stages.find((s) => s.role === role && s.stage === stage)?.status;
    for (const role of ["task-runner", "orchestrator"]) {
      assert.equal(status(role, "push"), "pushed", role);
      assert.equal(status(role, "bake"), "built", role);
    }
    assert.match(result.stderr, /pre-loading .*library\/postgres@sha256:[0-9a-f]{64}/);
    assert.equal(doc.smoke?.passed, true, doc.smoke?.detail);
    assert.equal(doc.smoke?.detail, "smoke script all-tasks-complete.sh passed");
    assert.ok(
      Object.keys(doc.smoke!.bootToReadySeconds).length >= 2,
      "both instances reported boot-to-ready",
    );
    assert.equal(doc.promoted, true);
    assert.equal(status("all", "promote"), "promoted");
    assert.ok(Object.keys(doc.stable).some((n) => /\/orchestrator\/ami\/x86_64$/.test(n)));
    assert.ok(Object.keys(doc.stable).some((n) => /\/task-runner\/ami\/x86_64$/.test(n)));
  });

  test("the stack booted from its baked images: no registry request for PostgreSQL from the smoke launch on", () => {
    assert.notEqual(logFromSmoke, undefined, "the smoke launch was seen starting");
    assert.doesNotMatch(logFromSmoke!, /library\/postgres/);
  });

  test("none of the three secrets is in imgtool's output; nothing of the run is left running", () => {
    for (const name of SEED_FLEET_SECRETS) {
      const value = readFileSync(path.join(copy!.dir, "secrets", name), "utf8").trim();
      assert.ok(value.length >= 16, `${name} was made`);
      assert.ok(!result.stdout.includes(value) && !result.stderr.includes(value), `${name} was printed`);
    }
    const left = docker(["ps", "-q", "--filter", `label=imgtool.pipeline=${pipeline}`]).out.trim();
    assert.equal(left, "");
  });
});
