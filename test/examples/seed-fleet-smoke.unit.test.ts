// The seed example's smoke script (examples/seed-fleet/smoke/all-tasks-complete.sh), run by the real sh and the
// real curl against a small HTTP server of the test's own that plays the orchestrator's POST /runs: an API key
// holding quotes, backslashes, `$(...)`, backticks or printf's `%` arrives byte for byte as the bearer token; a
// key with a line break is refused before any request. The stack's `docker ps` / `docker exec ... psql` are a
// stand-in here (a script on PATH that names one db container and prints one completed task).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { projectPath } from "../../src/paths.js";

const SCRIPT = projectPath("examples", "seed-fleet", "smoke", "all-tasks-complete.sh");

interface Seen {
  authorization: string[];
  body: string;
}

describe("the seed example's smoke script with real curl (API keys that need quoting)", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "imgtool-seed-smoke-"));
  const seen: Seen[] = [];
  let url = "";
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      const authorization: string[] = [];
      for (let i = 0; i < req.rawHeaders.length; i += 2)
        if (req.rawHeaders[i]!.toLowerCase() === "authorization") authorization.push(req.rawHeaders[i + 1]!);
      seen.push({ authorization, body });
      const ok = req.method === "POST" && req.url === "/runs";
      res.writeHead(ok ? 201 : 404, { "content-type": "application/json" });
      res.end(ok ? '{"id":1}' : "{}");
    });
  });

  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // Stand-in of the stack's docker: one db container; its psql says 1 task, 1 completed, 0 failed.
    const docker = path.join(dir, "docker");
    writeFileSync(
      docker,
      '#!/bin/sh\ncase $1 in\n  ps) echo db1 ;;\n  exec) cat >/dev/null; echo "1|1|0" ;;\n  *) exit 2 ;;\nesac\n',
    );
    chmodSync(docker, 0o755);
  });
  after(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const smoke = (apiKey: string) =>
    new Promise<{ code: number; out: string }>((resolve) => {
      execFile(
        "sh",
        [SCRIPT],
        {
          env: {
            PATH: `${dir}:${process.env.PATH ?? "/usr/bin:/bin"}`,
            IMGTOOL_ORCHESTRATOR_URL: url,
            IMGTOOL_RUN_ID: "smoke-run-1",
            IMGTOOL_WORKERS: "1",
            API_KEY: apiKey,
          },
          timeout: 60_000,
        },
        (err, stdout, stderr) =>
          resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
      );
    });

  const KEYS = [
    "plain-0123456789abcdef",
    'a"quote',
    "back\\slash",
    'both\\"mixed\\\\"',
    "ends-with-backslash\\",
    "$(id) `id` ${HOME} %s %n 'single' ; # & |",
    'header = "x" -K - url = http://evil.invalid/',
  ];

  for (const key of KEYS) {
    test(`the key ${JSON.stringify(key)} arrives as it is, once; the run is created and the check passes`, async () => {
      seen.length = 0;
      const r = await smoke(key);
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, /created run smoke-run-1 with 1 fib task\(s\)/);
      assert.match(r.out, /run smoke-run-1: all 1 task\(s\) complete in PostgreSQL/);
      assert.equal(seen.length, 1, "one request");
      assert.deepEqual(seen[0]!.authorization, [`Bearer ${key}`]);
      assert.deepEqual(JSON.parse(seen[0]!.body), { run_id: "smoke-run-1", tasks: 1, benchmark: "fib" });
    });
  }

  for (const [what, key] of [
    ["a line feed", "abc\nX-Injected: 1"],
    ["a carriage return", "abc\rX-Injected: 1"],
  ]) {
    test(`a key with ${what}: refused before any request`, async () => {
      seen.length = 0;
      const r = await smoke(key!);
      assert.equal(r.code, 1, r.out);
      assert.match(r.out, /API_KEY holds a line break: it cannot be an HTTP header value/);
      assert.equal(seen.length, 0);
    });
  }
});
