// The catalog tests' two backends: SSM Parameter Store (through the real SDK client, over HTTP, to the wire-level
// AWS stand-in) and the local SQLite database; and their helpers. Each test file that uses them calls
// useBackends() once: the stand-in and the SQLite folder are started before its tests and removed after them.
import { after, before } from "node:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Catalog, versionName, type ArtifactMeta } from "../../src/catalog/catalog.js";
import { SqliteStore } from "../../src/catalog/sqlite-store.js";
import { SsmStore } from "../../src/catalog/ssm-store.js";
import type { ParameterStore } from "../../src/catalog/store.js";
import { makeAwsClients } from "../../src/aws/clients.js";
import { recordingSink } from "../../src/events.js";
import { startAwsStandin, type AwsStandin } from "../support/aws-standin/index.js";

export const REGION = "us-east-1";

export function meta(n: number, extra: Partial<ArtifactMeta> = {}): ArtifactMeta {
  const hash = `${n.toString(16).padStart(8, "0")}aabbccdd`;
  return {
    version: versionName(new Date(Date.UTC(2026, 10, 29, 0, 0, n)), hash),
    inputsHash: hash,
    builtAt: "2026-11-29T00:00:00Z",
    ...extra,
  };
}

/** Wraps a store and counts getMany calls (one round trip each). */
export function counting(store: ParameterStore): ParameterStore & { getManyCalls: number } {
  const c = Object.create(store) as ParameterStore & { getManyCalls: number };
  c.getManyCalls = 0;
  c.getMany = async (s: string[]) => {
    c.getManyCalls++;
    return store.getMany(s);
  };
  return c;
}

export interface Backend {
  name: string;
  /** A fresh store (new prefix or file per call). */
  store(): ParameterStore;
  /** A valid artefact value for an AMI on this backend. */
  ami(n: number): string;
}

/** The AWS stand-in (started by useBackends() before the calling file's tests). */
export let standin: AwsStandin;
let tmp: string;
let dbCount = 0;

export const backends: Backend[] = [
  {
    name: "local SQLite",
    store: () => new SqliteStore(path.join(tmp, `catalog-${++dbCount}.db`)),
    ami: (n) => `sha256:${n.toString(16).padStart(64, "0")}`,
  },
  {
    name: "SSM over HTTP (AWS stand-in)",
    store: () => ssmStoreOn(standin),
    ami: (n) => standin.addImage(REGION, { name: `bench-${n}` }).imageId,
  },
];

/** An SSM store through the real SDK client, over HTTP, to `on`. */
export function ssmStoreOn(on: AwsStandin): SsmStore {
  return new SsmStore(
    makeAwsClients({
      region: REGION,
      endpoint: on.endpoint,
      credentials: async () => ({ accessKeyId: "AKIDTEST", secretAccessKey: "secret" }),
      retryBaseDelayMs: 5,
      requestTimeoutMs: 2000,
    }).ssm,
  );
}

/** Start the stand-in and the SQLite folder before the calling file's tests; remove both after them. */
export function useBackends(): void {
  before(async () => {
    tmp = mkdtempSync(path.join(tmpdir(), "imgtool-catalog-"));
    standin = await startAwsStandin();
  });
  after(async () => {
    await standin.close();
    rmSync(tmp, { recursive: true, force: true });
  });
}

let prefixCount = 0;
export const newCatalog = (store: ParameterStore, events = recordingSink()) =>
  new Catalog({
    store,
    prefix: `/imgtool/t${++prefixCount}`,
    events,
    readBack: { attempts: 3, delayMs: 10 },
  });
