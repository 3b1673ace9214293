// The launch's registry check (src/launch/image-check.ts): only images an instance would pull are asked for,
// each once; a missing one fails before anything starts, naming image, role, version and the fix; a registry
// that cannot answer is a failure that says so.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { checkPulls, registryImageProbe, splitImageRef } from "../../src/launch/image-check.js";
import { recordingSink } from "../../src/events.js";
import { FailureError } from "../../src/errors.js";

const A = "127.0.0.1:5000/bench/orchestrator@sha256:" + "a".repeat(64);
const B = "127.0.0.1:5000/bench/task-runner@sha256:" + "b".repeat(64);

describe("checkPulls", () => {
  test("an image the twin has baked in is not asked for; the others once each", async () => {
    const asked: string[] = [];
    const events = recordingSink();
    await checkPulls(
      [
        { role: "orchestrator", image: A, version: "v1", bakedImage: A },
        { role: "task-runner", image: B, version: "v2", bakedImage: null },
        { role: "task-runner", image: B, version: "v2", bakedImage: null },
      ],
      async (ref) => {
        asked.push(ref);
        return true;
      },
      { label: "stable", events },
    );
    assert.deepEqual(asked, [B]);
    assert.ok(
      events.events.some(
        (e) => e.type === "check" && /every image the instances will pull \(1\)/.test(e.message),
      ),
    );
  });

  test("an image gone from the registry: exit 1, the image, role, version, label and the fix", async () => {
    const e = await checkPulls(
      [{ role: "task-runner", image: B, version: "v2", bakedImage: A }],
      async () => false,
      { label: "latest", events: recordingSink() },
    ).then(
      () => assert.fail("no error"),
      (x: unknown) => x,
    );
    assert.ok(e instanceof FailureError);
    assert.equal(e.exitCode, 1);
    assert.ok(
      e.message.includes(
        `The task-runner image ${B} (version v2, catalog label latest) is gone from the registry 127.0.0.1:5000`,
      ),
      e.message,
    );
    assert.match(e.message, /Nothing was launched\.$/);
    assert.match(e.fix ?? "", /imgtool push image --role task-runner/);
    assert.match(e.fix ?? "", /imgtool rollback --role task-runner --kind image --to <version>/);
  });

  test("a registry that cannot answer: a failure naming it, nothing launched", async () => {
    await assert.rejects(
      checkPulls(
        [{ role: "orchestrator", image: A, version: "v1", bakedImage: null }],
        async () => {
          throw new Error("connect ECONNREFUSED 127.0.0.1:5000");
        },
        { label: "stable", events: recordingSink() },
      ),
      (e: unknown) =>
        e instanceof FailureError &&
        /Could not ask the registry 127\.0\.0\.1:5000 whether .* ECONNREFUSED .*Nothing was launched\./.test(
          e.message,
        ),
    );
  });
});

describe("registryImageProbe", () => {
  test("HEADs the manifest by digest at the image's own registry", async () => {
    const calls: string[] = [];
    const probe = registryImageProbe(async (host) => ({
      headManifest: async (repo: string, ref: string) => {
        calls.push(`${host} ${repo} ${ref}`);
        return repo.endsWith("orchestrator") ? { digest: ref } : undefined;
      },
    }));
    assert.equal(await probe(A), true);
    assert.equal(await probe(B), false);
    assert.deepEqual(calls, [
      `127.0.0.1:5000 bench/orchestrator sha256:${"a".repeat(64)}`,
      `127.0.0.1:5000 bench/task-runner sha256:${"b".repeat(64)}`,
    ]);
  });

  test("splitImageRef: digest, tag, none", () => {
    assert.deepEqual(splitImageRef("h:5000/a/b:t"), { host: "h:5000", repo: "a/b", reference: "t" });
    assert.deepEqual(splitImageRef("h/a"), { host: "h", repo: "a", reference: "latest" });
  });
});
