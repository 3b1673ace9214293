// Fault: two publishers of one change at once. Publishers of one pipeline and role take a lease in the
// catalog (src/catalog/lease.ts), so they never interleave: one publishes, the other waits (--wait-lease) and
// then finds it up to date, or fails at once naming the holder; every version name has exactly one value.
// Pushes: two real CLI processes on the local target (real engine and registry). Bakes: the aws path, the
// real SDK against the AWS stand-in (every call judged with the bake policy) and the recording Packer
// stand-in, with the first bake held inside Packer until the second one has met the lease.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { makeAwsClients } from "../../src/aws/clients.js";
import { Ec2Images } from "../../src/aws/ec2.js";
import { bake, type BakeDeps } from "../../src/bake/bake.js";
import { makeAwsBakeOps } from "../../src/bake/aws-ops.js";
import { Catalog } from "../../src/catalog/catalog.js";
import { LeaseHeldError, Leases } from "../../src/catalog/lease.js";
import { SqliteStore } from "../../src/catalog/sqlite-store.js";
import { SsmStore } from "../../src/catalog/ssm-store.js";
import { parseConfig } from "../../src/config/load.js";
import { recordingSink } from "../../src/events.js";
import { processStart } from "../../src/leftovers/runs.js";
import { makePackerRunner, type PackerRunner } from "../../src/packer/runner.js";
import { renderBake, writeRendered } from "../../src/render/packer.js";
import { startAwsStandin, type AwsStandin } from "../support/aws-standin/index.js";
import { runCli } from "../support/cli.js";
import { actorCredentials, actorPolicies } from "../support/iam-referee.js";
import type { TempProject } from "../push/support.js";
import { localEngine } from "../render/helpers.js";
import { unavailable } from "../support/unavailable.js";

// The pushes need the engine stack: loaded only where it is there (test/support/unavailable.ts decides).
const skip = unavailable(localEngine().skip);
let support: typeof import("../push/support.js");

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

interface JsonResult {
  role: string;
  status: string;
  reference: string | null;
  uri: string | null;
  tag: string;
  published: boolean;
  version: string | null;
}

/** A project whose orchestrator image is a small Dockerfile of its own (unique content: a new change). */
function smallProject(): TempProject {
  const ctx = mkdtempSync(path.join(tmpdir(), "imgtool-concurrent-"));
  writeFileSync(path.join(ctx, "Dockerfile"), "FROM scratch\nCOPY a.txt /a.txt\n");
  writeFileSync(path.join(ctx, "a.txt"), `${Date.now()} ${randomBytes(8).toString("hex")}\n`);
  return support.tempProject(
    `roles:\n  orchestrator:\n    app:\n      context: ${ctx}\n      dockerfile: Dockerfile\n`,
  );
}

async function history(p: TempProject) {
  const store = new SqliteStore(path.join(p.stateDir, "catalog.db"));
  try {
    return await new Catalog({ store, prefix: `/imgtool/${p.pipeline}` }).history({
      role: "orchestrator",
      kind: "image",
    });
  } finally {
    store.close();
  }
}

const push = (p: TempProject, extra: string[] = []) =>
  runCli(["push", "image", "--role", "orchestrator", "--json", "--config", p.configFile, ...extra], {
    timeoutMs: 300_000,
  });

describe("fault: two concurrent pushes of one change (local target, real engine)", { skip }, () => {
  before(async () => {
    support = await import("../push/support.js");
  });
  test("both wait for the lease: one builds, pushes and publishes; the other finds it up to date", async () => {
    const p = smallProject();
    const [a, b] = await Promise.all([push(p, ["--wait-lease", "600"]), push(p, ["--wait-lease", "600"])]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    const results = [a, b].map((r) => (JSON.parse(r.stdout) as { results: JsonResult[] }).results[0]!);
    cleanups.push(() => support.dockerCli(["image", "rm", `${results[0]!.uri}:${results[0]!.tag}`]));
    assert.deepEqual(results.map((r) => r.status).sort(), ["pushed", "up-to-date"]);
    assert.equal(results.filter((r) => r.published).length, 1, "exactly one run published");
    assert.equal(results[0]!.reference, results[1]!.reference, "both runs report the same image");
    // One version in the catalog, its name carrying exactly one digest.
    const h = await history(p);
    assert.equal(h.length, 1, JSON.stringify(h));
    assert.equal(h[0]!.value, results[0]!.reference);
    assert.deepEqual(await support.registryTags(`${p.pipeline}/orchestrator`), [results[0]!.tag]);
  });

  test("a push while another run holds the lease fails at once, naming the holder and the fix; nothing is pushed", async () => {
    const p = smallProject();
    const store = new SqliteStore(path.join(p.stateDir, "catalog.db"));
    const holder = new Leases({
      store,
      prefix: `/imgtool/${p.pipeline}`,
      identity: {
        pidStart: processStart(process.pid),
        run: "20261203-101500-4242-beef",
        command: "imgtool push image --role orchestrator",
      },
    });
    try {
      const held = await holder.acquire("orchestrator-image");
      const r = await push(p);
      assert.equal(r.code, 1, r.stderr);
      assert.match(
        r.stderr,
        /lease \/imgtool\/\S+\/leases\/orchestrator-image is held by `imgtool push image --role orchestrator` \(run 20261203-101500-4242-beef, pid \d+ on \S+, since [^)]+\); it expires at /,
      );
      assert.match(r.stderr, /--wait-lease SECONDS/);
      assert.doesNotMatch(r.stderr, /^\s+at .+:\d+:\d+\)?$/m);
      const [result] = (JSON.parse(r.stdout) as { results: JsonResult[] }).results;
      assert.equal(result!.status, "failed");
      assert.equal(result!.published, false);
      assert.deepEqual(await history(p), []);
      assert.deepEqual(await support.registryTags(`${p.pipeline}/orchestrator`), []);
      // The holder's lease is untouched, and once it is released a push goes through.
      assert.equal((await holder.holder("orchestrator-image"))?.token, held.token);
      await holder.release("orchestrator-image", held);
    } finally {
      store.close();
    }
    const again = await push(p);
    assert.equal(again.code, 0, again.stderr);
    const [done] = (JSON.parse(again.stdout) as { results: JsonResult[] }).results;
    cleanups.push(() => support.dockerCli(["image", "rm", `${done!.uri}:${done!.tag}`]));
    assert.equal(done!.status, "pushed");
  });
});

describe("fault: two concurrent bakes of one change (aws path: AWS stand-in + recording Packer)", () => {
  const HOME = "us-east-1";
  const ACCOUNT = "123456789012";
  const FAKE_PACKER = new URL("../bake/fixtures/recording-packer.mjs", import.meta.url).pathname;
  const config = parseConfig(
    [
      "pipeline: bench",
      "roles:",
      "  task-runner:",
      "    instance_types: [c7i.large]",
      "    ruby_bench: { repository: https://example.invalid/ruby-bench.git, ref: main }",
      "    base:",
      `      aws: { owner: "${ACCOUNT}", name: { x86_64: "al2023-ami-*-x86_64", arm64: "al2023-ami-*-arm64" } }`,
      "aws:",
      `  regions: [${HOME}]`,
    ].join("\n"),
    { baseDir: "/p" },
  ).config!;
  let standin: AwsStandin | undefined;
  const start = async () => {
    if (!standin) {
      // Every call judged with `imgtool iam-policy --for bake` (the leases' calls included).
      standin = await startAwsStandin({ iam: { policies: actorPolicies(config) } });
      cleanups.push(() => standin!.close());
    }
    standin.reset();
    return standin;
  };

  /** A bake of task-runner as run `who`, with its own clients, catalog and leases, like a separate process. */
  function bakeDeps(s: AwsStandin, tmp: string, built: string, who: string, packer: PackerRunner, wait = 0) {
    const clients = makeAwsClients({
      region: HOME,
      endpoint: s.endpoint,
      credentials: actorCredentials("bake"),
      retryBaseDelayMs: 5,
    });
    const store = new SsmStore(clients.ssm);
    const catalog = new Catalog({ store, prefix: "/imgtool/bench", readBack: { attempts: 3, delayMs: 5 } });
    const events = recordingSink();
    const deps: BakeDeps = {
      config,
      events,
      packer,
      packerVersion: "Packer v1.11.2",
      render: renderBake,
      writeRendered,
      catalog: async () => catalog,
      resolveCommit: async () => "c".repeat(40),
      gitRevision: async () => "0123456789abcdef",
      ops: makeAwsBakeOps({
        config,
        events,
        ec2: async (r) => new Ec2Images(clients.ec2, r),
        wait: { consecutive: 2, intervalMs: 1, sleep: async () => {} },
      }),
      buildRoot: path.join(tmp, who),
      packerEnv: {
        FAKE_PACKER_LOG: path.join(tmp, "packer.log"),
        FAKE_PACKER_AMIS: `x86_64=${built}`,
        AWS_REGION: HOME,
      },
      lease: new Leases({
        store,
        prefix: "/imgtool/bench",
        identity: {
          host: "ci-1",
          pid: 4000 + who.length,
          run: `run-${who}`,
          command: `imgtool bake ami (${who})`,
        },
        waitSeconds: wait,
        sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 50))),
      }),
    };
    return { deps, catalog };
  }

  function setup(s: AwsStandin) {
    s.addImage(HOME, {
      name: "al2023-ami-2026.3-x86_64",
      architecture: "x86_64",
      creationDate: new Date(Date.UTC(2026, 10, 3)).toISOString(),
    });
    const built = s.addImage(HOME, {
      name: `built-${randomBytes(3).toString("hex")}`,
      architecture: "x86_64",
    });
    const tmp = mkdtempSync(path.join(tmpdir(), "imgtool-concurrent-bake-"));
    writeFileSync(path.join(tmp, "packer.log"), "");
    const builds = () =>
      readFileSync(path.join(tmp, "packer.log"), "utf8")
        .split("\n")
        .filter((l) => l.startsWith('["build"')).length;
    return { built: built.imageId, tmp, builds };
  }

  /** The real runner (recording Packer), whose `build` waits until the test opens the gate. */
  function gatedPacker() {
    const real = makePackerRunner(FAKE_PACKER);
    let open!: () => void;
    let entered!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const inBuild = new Promise<void>((r) => (entered = r));
    const runner: PackerRunner = {
      version: () => real.version(),
      async run(args, opts) {
        if (args[0] === "build") {
          entered();
          await gate;
        }
        return real.run(args, opts);
      },
    };
    return { runner, open, inBuild };
  }

  test("a bake while another bakes the same role fails at once naming it; the first publishes one version", async () => {
    const s = await start();
    const { built, tmp, builds } = setup(s);
    const gate = gatedPacker();
    const a = bakeDeps(s, tmp, built, "a", gate.runner);
    const first = bake(["task-runner"], a.deps);
    await gate.inBuild;
    const b = bakeDeps(s, tmp, built, "b", makePackerRunner(FAKE_PACKER));
    await assert.rejects(
      bake(["task-runner"], b.deps),
      (e: unknown) =>
        e instanceof LeaseHeldError &&
        e.lease === "/imgtool/bench/leases/task-runner-ami" &&
        e.message.includes("`imgtool bake ami (a)` (run run-a, pid 4001 on ci-1") &&
        /aws ssm delete-parameter --name \/imgtool\/bench\/leases\/task-runner-ami/.test(e.fix ?? ""),
    );
    gate.open();
    const [done] = await first;
    assert.equal(done!.status, "built");
    assert.equal(builds(), 1, "one Packer build");
    const h = await a.catalog.history({ role: "task-runner", kind: "ami", arch: "x86_64" });
    assert.deepEqual(
      h.map((x) => [x.version, x.value]),
      [[done!.version, built]],
    );
    // Released: the next bake takes the lease and finds the bake up to date.
    const [again] = await bake(
      ["task-runner"],
      bakeDeps(s, tmp, built, "c", makePackerRunner(FAKE_PACKER)).deps,
    );
    assert.equal(again!.status, "up-to-date");
    assert.equal(again!.version, done!.version);
  });

  test("two bakes started together with --wait-lease: one bakes and publishes, the other waits and is up to date", async () => {
    const s = await start();
    const { built, tmp, builds } = setup(s);
    const gate = gatedPacker();
    const deps = ["a", "b"].map((who) => bakeDeps(s, tmp, built, who, gate.runner, 600));
    const both = Promise.all(deps.map((d) => bake(["task-runner"], d.deps)));
    await gate.inBuild;
    gate.open();
    const results = (await both).map((r) => r[0]!);
    assert.deepEqual(results.map((r) => r.status).sort(), ["built", "up-to-date"]);
    assert.equal(results[0]!.version, results[1]!.version);
    assert.equal(builds(), 1, "one Packer build");
    const h = await deps[0]!.catalog.history({ role: "task-runner", kind: "ami", arch: "x86_64" });
    assert.equal(h.length, 1, JSON.stringify(h));
    assert.equal(
      await new Leases({
        store: deps[0]!.catalog.store,
        prefix: "/imgtool/bench",
        identity: { run: "x", command: "x" },
      }).holder("task-runner-ami"),
      undefined,
    );
  });
});
