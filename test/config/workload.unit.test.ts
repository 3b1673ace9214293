// What a role runs, from config (issue 9): config errors name the key; iam-policy --for instance grants exactly
// the declared secrets and the extra statements; the launch waits on the configured health check.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseConfig } from "../../src/config/load.js";
import { parseWord } from "../../src/config/workload.js";
import { healthCheckOf, httpHealthProbe, waitHealthy } from "../../src/launch/health.js";
import type { PolicyDocument } from "../../src/iam/policies.js";
import { runMain } from "../support/cli.js";

const base = { baseDir: "/tmp/imgtool-workload" };
const errorsOf = (yaml: string) => {
  const r = parseConfig(yaml, base);
  assert.equal(r.config, undefined, "expected the config to be refused");
  return r.errors;
};

describe("config: roles.<role>.run and secrets", () => {
  test("an unknown placeholder names the key and the known placeholders", () => {
    const errs = errorsOf("roles:\n  task-runner:\n    run:\n      args: [--run, '{run_idd}']\n");
    assert.equal(errs.length, 1, errs.join("\n"));
    assert.match(
      errs[0]!,
      /^roles\.task-runner\.run\.args\[1\]: "\{run_idd\}" is not allowed: unknown placeholder \{run_idd\}/,
    );
    assert.match(errs[0]!, /\{run_id\}/);
  });

  test("a secret used but not declared names the key and where to declare it", () => {
    const errs = errorsOf(
      "roles:\n  orchestrator:\n    run:\n      env:\n        API_KEY: '{secret:api-key}'\n",
    );
    assert.deepEqual(errs, [
      "roles.orchestrator.run.env.API_KEY: uses {secret:api-key}, which is not declared; declare it under " +
        "secrets.api-key (declared: orchestrator-api-key)",
    ]);
  });

  test("a health port that is not a number names the key", () => {
    const errs = errorsOf(
      "roles:\n  orchestrator:\n    run:\n      health:\n        http: { port: web, path: /up }\n",
    );
    assert.equal(errs.length, 1, errs.join("\n"));
    assert.match(
      errs[0]!,
      /^roles\.orchestrator\.run\.health\.http\.port: "web" is a string, expected number/,
    );
  });

  test("a named volume without a source, and an HTTP check on task runners, name their keys", () => {
    const errs = errorsOf(
      "roles:\n  task-runner:\n    run:\n      volumes: [{ type: volume, target: /data }]\n      health: { http: { path: /up } }\n",
    );
    assert.ok(
      errs.includes(
        "roles.task-runner.run.volumes[0].source: is required for type volume (the named volume)",
      ),
      errs.join("\n"),
    );
    assert.ok(
      errs.some((e) => e.startsWith("roles.task-runner.run.health.http: only the orchestrator")),
      errs.join("\n"),
    );
  });

  test("secrets resolve to an SSM name under the prefix and a local file under the state folder", () => {
    const r = parseConfig(
      "pipeline: seed\nsecrets:\n  api-key: {}\n  db-password: { aws_parameter: /x/db }\n",
      base,
    );
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.config!.secrets, {
      "api-key": {
        aws_parameter: "/imgtool/seed/secrets/api-key",
        local_file: "/tmp/imgtool-workload/.imgtool/secrets/seed-api-key",
      },
      "db-password": {
        aws_parameter: "/x/db",
        local_file: "/tmp/imgtool-workload/.imgtool/secrets/seed-db-password",
      },
    });
  });

  test("words: literal braces, placeholders and secrets split apart", () => {
    assert.deepEqual(parseWord("--url={orchestrator_url}/{{x}}"), [
      { text: "--url=" },
      { placeholder: "orchestrator_url" },
      { text: "/{x}" },
    ]);
    assert.deepEqual(parseWord("Bearer {secret:api-key}"), [{ text: "Bearer " }, { secret: "api-key" }]);
    assert.throws(() => parseWord("a}b"), /lone "\}"/);
  });
});

describe("iam-policy --for instance: exactly the declared secrets and the extra statements", () => {
  test("two declared secrets (one outside the prefix) and an S3 statement", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "imgtool-iam-wl-"));
    try {
      const cfg = path.join(dir, "c.yaml");
      writeFileSync(
        cfg,
        [
          "pipeline: seed",
          "secrets:",
          "  api-key: {}",
          "  db-password: { aws_parameter: /shared/db-password }",
          "roles:",
          "  task-runner:",
          "    run:",
          "      env: { API_KEY: '{secret:api-key}' }",
          "      instance_permissions:",
          "        - { Sid: Results, Action: s3:PutObject, Resource: 'arn:aws:s3:::seed-results/*' }",
          "  orchestrator:",
          "    run:",
          "      env: { API_KEY: '{secret:api-key}', DB: '{secret:db-password}' }",
          "",
        ].join("\n"),
      );
      const r = await runMain(["iam-policy", "--for", "instance", "--config", cfg]);
      assert.equal(r.code, 0, r.stderr);
      const doc = JSON.parse(r.stdout) as PolicyDocument;
      const ssm = doc.Statement.filter((s) => s.Action.includes("ssm:GetParameter"));
      assert.equal(ssm.length, 1);
      assert.deepEqual([ssm[0]!.Resource].flat().sort(), [
        "arn:aws:ssm:*:*:parameter/imgtool/seed/secrets/api-key",
        "arn:aws:ssm:*:*:parameter/shared/db-password",
      ]);
      assert.deepEqual(
        doc.Statement.find((s) => s.Sid === "Results"),
        {
          Sid: "Results",
          Effect: "Allow",
          Action: ["s3:PutObject"],
          Resource: "arn:aws:s3:::seed-results/*",
        },
      );
      assert.ok(!r.stdout.includes("secrets/*"), "no wildcard over the secrets");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("health: a check on a custom path and port is what launch waits on", () => {
  test("the URL is the orchestrator's host at the configured port and path, with the expected status", async () => {
    // The orchestrator's port answers 500 everywhere; the configured port answers 204 on /up only.
    const seen: string[] = [];
    const serve = (handler: http.RequestListener) =>
      new Promise<http.Server>((resolve) => {
        const s = http.createServer(handler);
        s.listen(0, "127.0.0.1", () => resolve(s));
      });
    const app = await serve((req, res) => {
      seen.push(`app ${req.url}`);
      res.statusCode = 500;
      res.end();
    });
    const health = await serve((req, res) => {
      seen.push(`health ${req.url}`);
      res.statusCode = req.url === "/up" ? 204 : 404;
      res.end();
    });
    try {
      const appPort = (app.address() as AddressInfo).port;
      const healthPort = (health.address() as AddressInfo).port;
      const r = parseConfig(
        `roles:\n  orchestrator:\n    run:\n      health: { http: { port: ${healthPort}, path: /up, status: 204 } }\n`,
        base,
      );
      assert.deepEqual(r.errors, []);
      const check = healthCheckOf(
        r.config!.roles.orchestrator.run.health.http,
        `http://127.0.0.1:${appPort}`,
      )!;
      assert.deepEqual(check, { url: `http://127.0.0.1:${healthPort}/up`, status: 204 });
      const probe = httpHealthProbe(5_000);
      const out = await waitHealthy(check.url, {
        probe: (u) => probe(u, check.status),
        timeoutMs: 30_000,
        intervalMs: 50,
      });
      assert.equal(out.healthy, true);
      assert.deepEqual(seen, ["health /up"]);
      assert.equal(await probe(check.url, 200), false, "another status than the expected one is not healthy");
      // The default: /health on the orchestrator's own port, any 2xx.
      const d = parseConfig("", base).config!;
      assert.deepEqual(healthCheckOf(d.roles.orchestrator.run.health.http, "http://10.0.0.5:8080"), {
        url: "http://10.0.0.5:8080/health",
      });
    } finally {
      app.close();
      health.close();
    }
  });
});
