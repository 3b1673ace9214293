// Release records on both backends (SSM through the real SDK to the AWS stand-in, and the local SQLite
// catalog): written last and once, channels move in one write, a failed write leaves the previous release,
// rollback of stable and latest, launches resolve through the record in one read, corrupt or foreign values
// are clear errors, and the record's size stays under SSM's standard tier for the largest realistic config.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Catalog } from "../../src/catalog/catalog.js";
import {
  ADVANCED_LIMIT,
  Releases,
  STANDARD_LIMIT,
  regionCatalogs,
  type Release,
} from "../../src/catalog/release.js";
import type { ParameterStore } from "../../src/catalog/store.js";
import { FailureError, UsageError } from "../../src/errors.js";
import { recordingSink } from "../../src/events.js";
import { resolveForLaunch } from "../../src/launch/plan.js";
import { backends, counting, meta, newCatalog, standin, useBackends } from "./backends.js";

useBackends();

const ROLES = ["task-runner", "orchestrator"] as const;
let amiCount = 0;
const keys = ROLES.flatMap((role) => [
  { role, kind: "image" as const },
  { role, kind: "ami" as const, arch: "x86_64" },
]);

/** A store whose next `label` call fails (the local backend's stand-in for a failed write). */
function failingLabel(store: ParameterStore): ParameterStore & { failNextLabel: () => void } {
  const s = Object.create(store) as ParameterStore & { failNextLabel: () => void };
  let fail = false;
  s.failNextLabel = () => (fail = true);
  s.label = async (...a) => {
    if (fail) {
      fail = false;
      throw Object.assign(new Error("the write was refused"), { name: "InternalServerError" });
    }
    return store.label(...a);
  };
  return s;
}

for (const backend of backends) {
  describe(`releases on ${backend.name}`, () => {
    const ssm = backend.name.startsWith("SSM");
    let n = 0;
    const publishAll = async (cat: Catalog) => {
      n++;
      for (const role of ROLES) {
        await cat.publish(
          { role, kind: "image" },
          `registry.example/${role}@sha256:${n.toString(16).padStart(64, "0")}`,
          meta(2 * n),
        );
        await cat.publish({ role, kind: "ami", arch: "x86_64" }, backend.ami(++amiCount), meta(2 * n + 1), {
          dataType: ssm ? "aws:ec2:image" : "text",
        });
      }
    };
    const fixture = () => {
      const store = failingLabel(backend.store());
      const events = recordingSink();
      const cat = newCatalog(store, events);
      const releases = new Releases(cat, { events });
      return { store, cat, events, releases, sources: regionCatalogs([cat]) };
    };

    test("recorded once, last; latest moves with it in one write; the same artefacts record nothing new", async () => {
      const f = fixture();
      await publishAll(f.cat);
      const r1 = await f.releases.record(f.sources, keys);
      assert.equal(r1.status, "recorded");
      assert.match(r1.release.id, /^r\d{8}-\d{6}-[0-9a-f]{8}$/);
      assert.equal((await f.releases.read("latest"))?.id, r1.release.id);
      const again = await f.releases.record(f.sources, keys);
      assert.equal(again.status, "unchanged");
      assert.equal((await f.releases.history()).length, 1, "no second version for the same artefacts");
      const labels = (await f.releases.history())[0]!.labels.sort();
      assert.deepEqual(labels, [r1.release.id, "latest"].sort());
      if (ssm) {
        const writes = standin.requests.filter(
          (q) =>
            q.operation === "LabelParameterVersion" &&
            (q.params as { Name?: string }).Name === f.releases.name,
        );
        assert.equal(writes.length, 1, "id and latest in one LabelParameterVersion");
      }
    });

    test("a required artefact that is not published: no release, and the error names it", async () => {
      const f = fixture();
      await f.cat.publish({ role: "task-runner", kind: "image" }, "registry.example/t@sha256:1", meta(1));
      await assert.rejects(
        f.releases.record(f.sources, keys, keys),
        (e: unknown) => e instanceof FailureError && /task-runner\/ami\/x86_64/.test(e.message),
      );
      assert.deepEqual(await f.releases.history(), []);
    });

    test("promotion and rollback move stable (and latest) in one write; a failed write leaves the previous release", async () => {
      const f = fixture();
      await publishAll(f.cat);
      const r1 = (await f.releases.record(f.sources, keys)).release;
      await f.releases.move("stable", r1.id);
      await publishAll(f.cat);
      const r2 = (await f.releases.record(f.sources, keys)).release;
      assert.notEqual(r2.id, r1.id);

      // The promotion's one write fails: stable stays on r1.
      if (ssm) {
        standin.faults.add({
          service: "ssm",
          operation: "LabelParameterVersion",
          calls: [1],
          kind: "error",
          code: "AccessDeniedException",
          message: "not now",
        });
      } else f.store.failNextLabel();
      await assert.rejects(f.releases.move("stable", r2.id), FailureError);
      standin.faults.clear();
      assert.equal((await f.releases.read("stable"))?.id, r1.id, "stable untouched");

      await f.releases.move("stable", r2.id);
      assert.equal((await f.releases.read("stable"))?.id, r2.id);
      // Rollback of stable: back to the release before, latest stays.
      const back = await f.releases.rollback("stable");
      assert.deepEqual([back.from, back.to], [r2.id, r1.id]);
      assert.equal((await f.releases.read("stable"))?.id, r1.id);
      assert.equal((await f.releases.read("latest"))?.id, r2.id);
      // Rollback of latest to a named release.
      await f.releases.rollback("latest", r1.id);
      assert.equal((await f.releases.read("latest"))?.id, r1.id);
      await assert.rejects(f.releases.rollback("stable"), UsageError, "nothing before r1");
      await assert.rejects(f.releases.rollback("latest", "r20990101-000000-00000000"), UsageError);
    });

    test("a record whose labelling fails leaves latest on the previous release", async () => {
      const f = fixture();
      await publishAll(f.cat);
      const r1 = (await f.releases.record(f.sources, keys)).release;
      await publishAll(f.cat);
      f.store.failNextLabel();
      await assert.rejects(f.releases.record(f.sources, keys), FailureError);
      assert.equal((await f.releases.read("latest"))?.id, r1.id);
      const r2 = await f.releases.record(f.sources, keys);
      assert.equal(r2.status, "recorded", "the next run records it");
      assert.equal((await f.releases.read("latest"))?.id, r2.release.id);
    });

    test("launch resolves a channel through the record in one read, and what a later publish does not change", async () => {
      const f = fixture();
      await publishAll(f.cat);
      const r1 = (await f.releases.record(f.sources, keys)).release;
      await f.releases.move("stable", r1.id);
      await publishAll(f.cat); // published, not yet recorded: latest artefacts moved, no release does
      const c = counting(f.cat.store);
      const cat = newCatalog(c);
      Object.assign(cat, { prefix: f.cat.prefix });
      const want = { amis: [{ role: "task-runner" as const, arch: "x86_64" as const }], images: [...ROLES] };
      const resolved = await resolveForLaunch(cat, want, "stable");
      assert.equal(c.getManyCalls, 1, "one batched read");
      assert.equal(resolved.release, r1.id);
      assert.equal(
        resolved.amis.get("task-runner/x86_64")?.id,
        r1.roles["task-runner"]!.ami!.x86_64!.ids.local,
      );
      assert.equal(resolved.images.get("orchestrator")?.ref, r1.roles.orchestrator!.image!.ref);
      assert.equal(resolved.images.get("orchestrator")?.version, meta(2 * n - 2).version);
    });

    test("a corrupt or foreign release record is a clear error naming the parameter", async () => {
      const f = fixture();
      const v = await f.store.put(f.releases.name, "{not json", { dataType: "text" });
      await f.store.label(f.releases.name, v, ["stable"]);
      await assert.rejects(
        f.releases.read("stable"),
        (e: unknown) =>
          e instanceof FailureError &&
          e.message.includes(f.releases.name) &&
          /not JSON/.test(e.message) &&
          /rollback --channel/.test(e.fix ?? ""),
      );
      const foreign: Release = {
        format: 1,
        id: "r20261201-000000-0000abcd",
        createdAt: "",
        regions: ["local"],
        roles: { orchestrator: { image: { version: "v1", ref: "ami-0123456789abcdef0" } } },
      };
      const v2 = await f.store.put(f.releases.name, JSON.stringify(foreign), { dataType: "text" });
      await f.store.label(f.releases.name, v2, ["latest"]);
      await assert.rejects(
        f.releases.read("latest"),
        (e: unknown) => e instanceof FailureError && /orchestrator's image "ami-/.test(e.message),
      );
    });

    test("bad JSON in a meta, or an AMI id where an image reference belongs: errors naming the parameter", async () => {
      const f = fixture();
      await publishAll(f.cat);
      const metaName = f.cat.metaName({ role: "orchestrator", kind: "image" });
      const mv = await f.store.put(metaName, "{oops", { dataType: "text" });
      await f.store.label(metaName, mv, ["latest"]);
      await assert.rejects(
        f.cat.resolve([{ role: "orchestrator", kind: "image" }], { meta: true }),
        (e: unknown) =>
          e instanceof FailureError && e.message.includes(metaName) && /not a JSON object/.test(e.message),
      );
      const name = f.cat.name({ role: "task-runner", kind: "image" });
      const iv = await f.store.put(name, "ami-0123456789abcdef0", { dataType: "text" });
      await f.store.label(name, iv, ["latest"]);
      await assert.rejects(
        f.releases.record(f.sources, keys),
        (e: unknown) =>
          e instanceof FailureError &&
          e.message.includes(name) &&
          /an AMI id where an image reference belongs/.test(e.message),
      );
    });
  });
}

describe("release record size", () => {
  /** A record as the largest realistic config makes it: 2 roles, 2 architectures, per-region ECR references. */
  async function sized(regions: string[]): Promise<number> {
    let value = "";
    const store = {
      kind: "ssm",
      maxBatch: 10,
      put: async (_n: string, v: string) => ((value = v), 1),
      label: async () => ({ invalid: [] }),
      unlabel: async () => {},
      getMany: async (s: string[]) => ({
        found: s[0]!.endsWith(":1")
          ? [{ name: s[0]!.split(":")[0]!, value, version: 1, dataType: "text", modifiedAt: new Date() }]
          : [],
        missing: [],
      }),
      history: async () => [],
      list: async () => [],
      delete: async () => {},
    } as unknown as ParameterStore;
    const home = newCatalog(store);
    const pipeline = "a-rather-long-pipeline-name-x";
    const sources = regions.map((region) => ({
      region,
      catalog: {
        prefix: home.prefix,
        name: (k: { role: string; kind: string; arch?: string }) =>
          [home.prefix, k.role, k.kind, ...(k.arch ? [k.arch] : [])].join("/"),
        resolve: async (ks: { role: string; kind: string; arch?: string }[]) => ({
          found: ks.map((k) => {
            const ecr = `123456789012.dkr.ecr.${region}.amazonaws.com/${pipeline}/${k.role}@sha256:${"f".repeat(64)}`;
            return {
              key: k,
              name: [home.prefix, k.role, k.kind, ...(k.arch ? [k.arch] : [])].join("/"),
              value: k.kind === "image" ? ecr : "ami-0123456789abcdef0",
              meta: { ...meta(1), image: ecr, preloadVolume: null },
            };
          }),
          missing: [],
        }),
      } as unknown as Catalog,
    }));
    const ks = ROLES.flatMap((role) => [
      { role, kind: "image" as const },
      { role, kind: "ami" as const, arch: "x86_64" },
      { role, kind: "ami" as const, arch: "arm64" },
    ]);
    await new Releases(home).record(sources, ks);
    return Buffer.byteLength(value);
  }
  const SIX = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2", "ap-northeast-1"];

  test("six regions, both roles and architectures, a reference per region: under SSM's 4 KB standard tier", async () => {
    const size = await sized(SIX);
    assert.ok(size < STANDARD_LIMIT && size > 1000, `${size} bytes`);
  });

  test("every region of the aws partition (17): still under the 8 KB advanced limit", async () => {
    const all = [
      ...SIX,
      "us-east-2",
      "us-west-1",
      "ca-central-1",
      "eu-west-2",
      "eu-west-3",
      "eu-north-1",
      "eu-south-1",
      "ap-south-1",
      "ap-southeast-1",
      "ap-northeast-2",
      "sa-east-1",
    ];
    const size = await sized(all);
    assert.ok(size < ADVANCED_LIMIT && size > 2000, `${size} bytes`);
  });
});
