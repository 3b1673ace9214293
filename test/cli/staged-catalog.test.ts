// `status` and `diff` over a staged bake's catalog (the real CLI, a local catalog of its own; no engine): base
// versions are artefacts of kind "base", listed by `status`, diffed by `diff`; a role version's manifest names
// the base it was built on, so `diff` of two role versions shows a change of base.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after } from "node:test";
import { runCli } from "../support/cli.js";
import { Catalog, versionName } from "../../src/catalog/catalog.js";
import { SqliteStore } from "../../src/catalog/sqlite-store.js";
import { recordingSink } from "../../src/events.js";

describe("status and diff show a staged bake's base versions (real CLI, local catalog)", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "imgtool-staged-catalog-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const state = path.join(dir, "state");
  const config = path.join(dir, "imgtool.config.yaml");
  writeFileSync(config, `pipeline: staged\nlocal:\n  state_dir: ${state}\n`);
  const at = (n: number) => new Date(Date.UTC(2026, 11, 1, 0, 0, n));
  const bases = [versionName(at(1), "b1b1b1b1"), versionName(at(2), "b2b2b2b2")];
  const roles = [versionName(at(3), "r1r1r1r1"), versionName(at(4), "r2r2r2r2")];

  const publish = async () => {
    const store = new SqliteStore(path.join(state, "catalog.db"));
    try {
      const catalog = new Catalog({ store, prefix: "/imgtool/staged", events: recordingSink() });
      for (const [i, version] of bases.entries())
        await catalog.publish(
          { role: "task-runner", kind: "base", arch: "x86_64" },
          `sha256:${`${i + 1}`.repeat(64)}`,
          {
            version,
            inputsHash: `b${i + 1}`.repeat(8),
            builtAt: at(i + 1).toISOString(),
            base: `sha256:${"a".repeat(64)}`,
            stage: "base",
          },
        );
      for (const [i, version] of roles.entries())
        await catalog.publish(
          { role: "task-runner", kind: "ami", arch: "x86_64" },
          `sha256:${`${i + 5}`.repeat(64)}`,
          {
            version,
            inputsHash: `r${i + 1}`.repeat(8),
            builtAt: at(i + 3).toISOString(),
            baseVersion: bases[i],
            manifest: { ruby: ["3.1.2"], base: { version: bases[i], id: `sha256:${`${i + 1}`.repeat(64)}` } },
          },
        );
    } finally {
      store.close();
    }
  };

  test("status lists the base beside the role's twin", async () => {
    await publish();
    const r = await runCli(["status", "--json", "--config", config]);
    assert.equal(r.code, 0, r.stderr);
    const rows = (
      JSON.parse(r.stdout) as {
        artifacts: {
          kind: string;
          current: { version: string } | null;
          previous: { version: string } | null;
        }[];
      }
    ).artifacts;
    const base = rows.find((a) => a.kind === "base");
    assert.equal(base?.current?.version, bases[1]);
    assert.equal(base?.previous?.version, bases[0]);
    assert.equal(rows.find((a) => a.kind === "ami")?.current?.version, roles[1]);
    const text = await runCli(["status", "--config", config]);
    assert.match(text.stdout, new RegExp(`task-runner\\s+base\\s+x86_64\\s+${bases[1]}\\s+${bases[0]}`));
  });

  test("diff of two base versions: what changed in the base", async () => {
    const r = await runCli(["diff", bases[0]!, bases[1]!, "--json", "--config", config]);
    assert.equal(r.code, 0, r.stderr);
    const paths = (JSON.parse(r.stdout) as { changes: { path: string }[] }).changes.map((c) => c.path);
    assert.deepEqual(paths, ["task-runner/base/x86_64.inputsHash", "task-runner/base/x86_64.value"]);
  });

  test("diff of two role versions names the change of base (from the version manifest)", async () => {
    const r = await runCli(["diff", roles[0]!, roles[1]!, "--json", "--config", config]);
    assert.equal(r.code, 0, r.stderr);
    const changes = (JSON.parse(r.stdout) as { changes: { path: string; from: string; to: string }[] })
      .changes;
    const base = changes.find((c) => c.path === "task-runner/ami/x86_64.manifest.base.version");
    assert.deepEqual(base && [base.from, base.to], [JSON.stringify(bases[0]), JSON.stringify(bases[1])]);
  });
});
