// SSM's reads are eventually consistent: a parameter PutParameter has just created may not be found by the next
// GetParameters (AWS CloudFormation's documentation of SSM parameters says so; aws/aws-cdk-cli#830 saw it in about
// 1% of runs). The AWS stand-in answers a new parameter as not found for its first reads (newParameterReads), and
// every write that is read back or labelled at once (an artefact, the release record, a record beside the
// artefacts) waits for it with the catalog's read-back, instead of failing the first night's run.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Catalog } from "../../src/catalog/catalog.js";
import { Releases, regionCatalogs } from "../../src/catalog/release.js";
import { FailureError } from "../../src/errors.js";
import { startAwsStandin, type AwsStandin } from "../support/aws-standin/index.js";
import { meta, ssmStoreOn } from "./backends.js";

const UNSEEN = 3;
let standin: AwsStandin;
before(async () => {
  standin = await startAwsStandin({ newParameterReads: UNSEEN });
});
after(async () => {
  await standin.close();
});

let prefixes = 0;
function catalogs(attempts: number) {
  const store = ssmStoreOn(standin);
  const prefix = `/imgtool/eventual${++prefixes}`;
  const make = (n: number) => new Catalog({ store, prefix, readBack: { attempts: n, delayMs: 1 } });
  return { store, prefix, patient: make(attempts), make };
}

const ROLES = ["task-runner", "orchestrator"] as const;
const keys = ROLES.map((role) => ({ role, kind: "image" as const }));

async function publishImages(cat: Catalog) {
  for (const [i, role] of ROLES.entries())
    await cat.publish(
      { role, kind: "image" },
      `registry.example/${role}@sha256:${String(i).repeat(64)}`,
      meta(i),
    );
}

describe(`SSM reads of a new parameter (AWS stand-in: not found for its first ${UNSEEN} reads)`, () => {
  test("the first release is recorded: its read-back waits until SSM answers it; latest points at it", async () => {
    const { patient } = catalogs(UNSEEN + 1);
    await publishImages(patient);
    const releases = new Releases(patient);
    const r = await releases.record(regionCatalogs([patient]), keys);
    assert.equal(r.status, "recorded");
    assert.equal((await releases.read("latest"))?.id, r.release.id);
  });

  test("a record beside the artefacts (putRecord, e.g. boot times) on a new parameter is read back, then labelled", async () => {
    const { patient, store, prefix } = catalogs(UNSEEN + 1);
    const name = `${prefix}/boot/task-runner/x86_64`;
    const version = await patient.putRecord(
      name,
      '{"seconds":1.5}',
      ["v20261205-000000-aaaa0001"],
      "task-runner",
    );
    const { found } = await store.getMany([`${name}:v20261205-000000-aaaa0001`]);
    assert.equal(found[0]?.version, version);
  });

  test("a release that stays unreadable past the read-back fails naming it, and latest is not moved", async () => {
    const { patient, make } = catalogs(UNSEEN + 1);
    await publishImages(patient);
    const hasty = new Releases(make(UNSEEN - 1));
    await assert.rejects(
      hasty.record(regionCatalogs([patient]), keys),
      (e: unknown) => e instanceof FailureError && /did not keep release r\d{8}-/.test(e.message),
    );
    const history = await hasty.history();
    assert.equal(history.length, 1, "the write itself happened");
    assert.deepEqual(history[0]!.labels, [], "nothing labelled: latest points nowhere");
  });
});
