// The scripts run on the orchestrator through SSM Run Command: shellcheck-clean as POSIX sh (the agent runs `sh`),
// also with hostile values, and their answers parsed; the health script run by sh against a loopback port.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  healthScript,
  healthStatusOf,
  onInstance,
  smokeAnswerOf,
  smokeScript,
} from "../../src/render/remote-checks.js";

const dir = mkdtempSync(path.join(tmpdir(), "imgtool-remote-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const HOSTILE = `fib'; touch CANARY; echo "$(touch CANARY)\``;

function shellcheck(lines: string[]): string {
  const file = path.join(dir, "script.sh");
  writeFileSync(file, lines.join("\n") + "\n");
  const r = spawnSync("shellcheck", ["--shell=sh", file], { encoding: "utf8" });
  return r.status === 0 ? "" : r.stdout + r.stderr;
}

describe("remote checks (Run Command scripts)", () => {
  test("the check goes to the orchestrator's own loopback, never its private address", () => {
    assert.equal(onInstance("http://10.0.3.7:8080/health"), "http://127.0.0.1:8080/health");
    assert.ok(
      healthScript("http://10.0.3.7:8080/health").join("\n").includes("http://127.0.0.1:8080/health"),
    );
    assert.ok(!smokeScript("http://10.0.3.7:8080", "fib", 120).join("\n").includes("10.0.3.7"));
  });

  test("shellcheck-clean as sh, also with a hostile benchmark name; the name stays one quoted word", () => {
    assert.equal(shellcheck(healthScript("http://10.0.0.1:8080/health")), "");
    assert.equal(shellcheck(smokeScript("http://10.0.0.1:8080", "fib", 120)), "");
    assert.equal(shellcheck(smokeScript("http://10.0.0.1:8080", HOSTILE, 120)), "");
  });

  test("the health script run by sh against a loopback port: 200, then no answer (000)", async () => {
    const server = http.createServer((_req, res) => res.writeHead(200).end("ok"));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    const run = (url: string) =>
      new Promise<string>((resolve) =>
        execFile("sh", ["-c", healthScript(url).join("\n")], (_e, stdout) => resolve(stdout)),
      );
    // The address in the URL is never used: the script asks the instance's own loopback.
    assert.equal(healthStatusOf(await run(`http://10.9.9.9:${port}/health`)), 200);
    await new Promise<void>((r) => server.close(() => r()));
    assert.equal(healthStatusOf(await run(`http://10.9.9.9:${port}/health`)), 0);
  });

  test("the smoke script run by sh: a hostile benchmark name arrives intact in the POST body and runs nothing", async () => {
    const bodies: string[] = [];
    const server = http.createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        if (req.method === "POST") {
          bodies.push(body);
          res.writeHead(201, { "content-type": "application/json" }).end('{"id": "t-1", "status": "queued"}');
        } else res.writeHead(200).end('{"id": "t-1", "status": "done", "result": {"status": "ok"}}');
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    const out = await new Promise<string>((resolve) =>
      execFile(
        "sh",
        ["-c", smokeScript(`http://10.9.9.9:${port}`, HOSTILE, 30).join("\n")],
        { cwd: dir },
        (_e, stdout) => resolve(stdout),
      ),
    );
    await new Promise<void>((r) => server.close(() => r()));
    assert.deepEqual(bodies, [JSON.stringify({ benchmark: HOSTILE })]);
    assert.deepEqual(smokeAnswerOf(out), { task: { id: "t-1", status: "done", result: { status: "ok" } } });
    assert.ok(!existsSync(path.join(dir, "CANARY")), "a hostile value ran a command");
  });

  test("answers parsed: refused with a status, a task's JSON, or unreadable", () => {
    assert.deepEqual(smokeAnswerOf("imgtool-smoke refused 422\n"), { refused: 422 });
    assert.deepEqual(
      smokeAnswerOf('noise\nimgtool-smoke task\n{"status":"done","result":{"status":"ok"}}\n'),
      { task: { status: "done", result: { status: "ok" } } },
    );
    assert.ok("unreadable" in smokeAnswerOf("imgtool-smoke task\n<html>"));
    assert.ok("unreadable" in smokeAnswerOf(""));
    assert.equal(healthStatusOf("imgtool-health 503\n"), 503);
    assert.equal(healthStatusOf("nothing"), undefined);
  });
});
