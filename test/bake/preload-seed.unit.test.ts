// The local twin ops' pre-load with a seed (the store of a published version with the same images on the same
// base), against a recording stand-in for the Docker engine (a fake dockerode, named so in every test): which
// seed volume is copied and which one makes the pre-load pull instead, what the copy container is (no engine,
// no network, no registry password), and a copy that finds its source empty. The real path (real engine,
// registry and Packer) is test/bake/preload-seed.test.ts.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type Docker from "dockerode";
import type { PreloadSeed } from "../../src/bake/bake.js";
import { makeTwinOps } from "../../src/bake/twin-ops.js";
import { parseConfig } from "../../src/config/load.js";
import { DOCKER_LABEL } from "../../src/config/tags.js";
import { preloadScriptsHash } from "../../src/docker/nested-engine.js";
import { FailureError } from "../../src/errors.js";

const TWIN = `sha256:${"7".repeat(64)}`;
const IMAGE = `127.0.0.1:5000/bench/task-runner@sha256:${"a".repeat(64)}`;
const SEED: PreloadSeed = {
  version: "v20261204-000001-aaaa0001",
  volume: "imgtool-bench-task-runner-v1-store",
};
const config = parseConfig("pipeline: bench\n", { baseDir: "/p" }).config!;

interface Spec {
  Entrypoint: string[];
  Env: string[];
  HostConfig: { Binds: string[]; NetworkMode?: string };
}

/** A fake dockerode: volumes by name (labels), every created container's spec; containers exit with `exit`. */
function fakeDocker(volumes: Record<string, Record<string, string>>, exit = 0) {
  const created: Spec[] = [];
  const volumeLabels: Record<string, Record<string, string>> = {};
  const removed: string[] = [];
  const docker = {
    getImage: () => ({ tag: async () => undefined, remove: async () => undefined }),
    createVolume: async (o: { Name: string; Labels: Record<string, string> }) => {
      volumeLabels[o.Name] = o.Labels;
    },
    getVolume: (name: string) => ({
      inspect: async () => {
        if (!volumes[name]) throw Object.assign(new Error("no such volume"), { statusCode: 404 });
        return { Name: name, Labels: volumes[name] };
      },
      remove: async () => void removed.push(name),
    }),
    createContainer: async (spec: Spec) => {
      created.push(spec);
      return {
        id: "c0ffee0123456789abcdef",
        start: async () => undefined,
        wait: async () => ({ StatusCode: exit }),
        kill: async () => undefined,
        remove: async () => undefined,
        logs: async () => Buffer.from(""),
      };
    },
  };
  return { docker: docker as unknown as Docker, created, volumeLabels, removed };
}

async function finish(
  fake: ReturnType<typeof fakeDocker>,
  seed: PreloadSeed | undefined,
  stackVolumes?: string[],
) {
  const events: string[] = [];
  const ops = makeTwinOps({
    docker: fake.docker,
    registry: { endpoint: "127.0.0.1:5000", user: "AWS", password: "s3cret" },
  });
  const r = await ops.finish([{ source: "twin", arch: "x86_64", id: TWIN }], {
    config,
    role: "task-runner",
    version: "v20261204-000002-bbbb0002",
    regions: ["local"],
    tags: {},
    imageRef: IMAGE,
    emit: (m) => events.push(m),
    stage: "role",
    ...(seed ? { seed } : {}),
    ...(stackVolumes ? { stackVolumes } : {}),
  });
  return { r, events };
}

const labelled = (over: Record<string, string> = {}) => ({
  [SEED.volume]: {
    [DOCKER_LABEL.version]: SEED.version,
    [DOCKER_LABEL.image]: IMAGE,
    [DOCKER_LABEL.preloadScripts]: preloadScriptsHash(),
    ...over,
  },
});

describe("twin pre-load with a seed (fake dockerode)", () => {
  test("a volume labelled as the seed's store, made by these scripts: copied (no engine, no network, no password), and the copy keeps its scripts' label", async () => {
    const fake = fakeDocker(labelled());
    const { r, events } = await finish(fake, SEED);
    assert.equal(r.preloadVolume, "imgtool-bench-task-runner-v20261204-000002-bbbb0002-store");
    assert.equal(fake.created.length, 1);
    const spec = fake.created[0]!;
    assert.deepEqual(spec.Entrypoint.slice(0, 2), ["/bin/sh", "-c"]);
    assert.match(spec.Entrypoint[2]!, /\|\| exit 3; cp -a \/from\/\. \/var\/lib\/docker\/$/);
    assert.ok(spec.HostConfig.Binds.includes(`${SEED.volume}:/from:ro`));
    assert.ok(!spec.HostConfig.Binds.some((b) => b.includes("registry-password")), "no password file");
    assert.equal(spec.HostConfig.NetworkMode, "none");
    assert.deepEqual(spec.Env, []);
    assert.equal(fake.volumeLabels[r.preloadVolume!]![DOCKER_LABEL.preloadScripts], preloadScriptsHash());
    assert.match(events.join("\n"), new RegExp(`\\(a copy of volume ${SEED.volume}: ${SEED.version} holds`));
  });

  for (const [what, volumes, reason] of [
    ["gone", {}, "is gone"],
    [
      "empty and unlabelled (the engine's own for a mounted name that was gone)",
      { [SEED.volume]: {} },
      `is not labelled as ${SEED.version}'s store of ${IMAGE}`,
    ],
    [
      "labelled as another version's",
      labelled({ [DOCKER_LABEL.version]: "v20261203-000001-cccc0001" }),
      "is not labelled as",
    ],
    [
      "made by other pre-load scripts",
      labelled({ [DOCKER_LABEL.preloadScripts]: "0123456789abcdef" }),
      "was made by other pre-load scripts",
    ],
  ] as const) {
    test(`a seed volume ${what}: the pre-load pulls, and says why`, async () => {
      const fake = fakeDocker(volumes as Record<string, Record<string, string>>);
      const { events } = await finish(fake, SEED);
      const spec = fake.created[0]!;
      assert.match(spec.Entrypoint.join(" "), /imgtool-preload$/, "the pull's entrypoint");
      assert.ok(
        spec.HostConfig.Binds.some((b) => b.includes("registry-password")),
        "the login's password file",
      );
      assert.ok(
        events.some((e) => e.includes(`(volume ${SEED.volume}) ${reason}`) && e.endsWith(": pulling")),
      );
      assert.ok(!events.some((e) => e.includes("a copy of volume")));
    });
  }

  test("a stack whose volumes the pre-load fills: a store is copied only if imgtool-stack made it too (its hash is in the label)", async () => {
    const fills = [
      "pgdata,/var/lib/postgresql/data,127.0.0.1:5000/library/postgres@sha256:" + "b".repeat(64),
    ];
    assert.notEqual(preloadScriptsHash(true), preloadScriptsHash(), "imgtool-stack is in the hash");
    // Labelled by a pre-load without fills: pulled (and filled) afresh, saying why.
    const without = fakeDocker(labelled());
    const pulled = await finish(without, SEED, fills);
    assert.match(without.created[0]!.Entrypoint.join(" "), /imgtool-preload$/);
    assert.ok(pulled.events.some((e) => e.includes("was made by other pre-load scripts")));
    assert.ok(pulled.events.some((e) => e.includes("and filling the stack's volumes pgdata")));
    assert.equal(
      without.volumeLabels[pulled.r.preloadVolume!]![DOCKER_LABEL.preloadScripts],
      preloadScriptsHash(true),
    );
    // Labelled by one with fills: copied.
    const withFills = fakeDocker(labelled({ [DOCKER_LABEL.preloadScripts]: preloadScriptsHash(true) }));
    const copied = await finish(withFills, SEED, fills);
    assert.ok(copied.events.some((e) => e.includes(`a copy of volume ${SEED.volume}`)));
  });

  test("a copy that finds its source empty (exit 3): a failure naming the seed and --force; the new volume is removed", async () => {
    const fake = fakeDocker(labelled(), 3);
    await assert.rejects(finish(fake, SEED), (e: unknown) => {
      assert.ok(e instanceof FailureError);
      assert.match(
        e.message,
        new RegExp(
          `by a copy of volume ${SEED.volume} \\(${SEED.version}\\) failed \\(exit 3: it is empty\\)`,
        ),
      );
      assert.match(e.fix ?? "", /--force/);
      return true;
    });
    assert.ok(fake.removed.includes("imgtool-bench-task-runner-v20261204-000002-bbbb0002-store"));
  });
});
