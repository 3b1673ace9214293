// The stack's images at bake time, pure: where a third-party image lives in the stack's registry, and the compose
// file the instance runs (app services on the role's image, others by digest, no build).
import { test } from "node:test";
import assert from "node:assert/strict";
import { parse } from "yaml";
import {
  APP_IMAGE_VAR,
  bakeStack,
  projectBridges,
  renderStack,
  stackImageRef,
  stackVolumes,
  thirdPartyImages,
} from "../../src/bake/stack-images.js";
import { stackVolumeWord } from "../../src/config/stack.js";
import { UsageError } from "../../src/errors.js";

const D = `sha256:${"a".repeat(64)}`;
const COMPOSE = `services:
  db:
    image: postgres:15
    volumes: [pgdata:/var/lib/postgresql/data]
  web:
    build: .
    image: myapp:dev
    ports: ["\${PORT}:3000"]
  jobs:
    build: .
    command: ["bin/jobs"]
volumes:
  pgdata: {}
`;
const stack = { file: "compose.yaml", app_services: ["web", "jobs"], wait_for: ["db", "web"] };

test("a third-party image's repository and reference in the stack's registry", () => {
  assert.deepEqual(stackImageRef("postgres:15"), { repo: "library/postgres", reference: "15" });
  assert.deepEqual(stackImageRef("postgres"), { repo: "library/postgres", reference: "latest" });
  assert.deepEqual(stackImageRef("bitnami/redis:7.2"), { repo: "bitnami/redis", reference: "7.2" });
  assert.deepEqual(stackImageRef("ghcr.io/acme/db:1"), { repo: "acme/db", reference: "1" });
  assert.deepEqual(stackImageRef("localhost:5000/pg@" + D), { repo: "library/pg", reference: D });
});

test("the rendered compose file runs app services on the role's image and others by digest, with no build", () => {
  assert.deepEqual(thirdPartyImages(COMPOSE, stack), ["postgres:15"]);
  const pinned = `127.0.0.1:5000/library/postgres@${D}`;
  const r = renderStack(COMPOSE, stack, new Map([["postgres:15", pinned]]));
  const doc = parse(r.compose) as { services: Record<string, Record<string, unknown>>; volumes: unknown };
  assert.equal(doc.services.db!.image, pinned);
  assert.equal(doc.services.web!.image, APP_IMAGE_VAR);
  assert.equal(doc.services.jobs!.image, APP_IMAGE_VAR);
  assert.equal(doc.services.web!.build, undefined);
  assert.deepEqual(doc.services.web!.ports, ["${PORT}:3000"]);
  assert.deepEqual(doc.volumes, { pgdata: {} });
  assert.deepEqual(r.waitFor, ["db", "web"]);
  assert.deepEqual(r.bridges.words, ["default"], "every service is on the project's default network");
  assert.deepEqual(
    renderStack(COMPOSE, { ...stack, wait_for: undefined }, new Map([["postgres:15", pinned]])).waitFor,
    ["db", "web", "jobs"],
  );
});

test("config errors name the service", () => {
  const noImage = `services:\n  cache:\n    build: ./cache\n  web:\n    build: .\n`;
  assert.throws(
    () => renderStack(noImage, { file: "compose.yaml", app_services: ["web"] }, new Map()),
    (e: Error) => e instanceof UsageError && /services\.cache has no image/.test(e.message),
  );
  assert.throws(
    () => renderStack(COMPOSE, { ...stack, wait_for: ["worker"] }, new Map()),
    (e: Error) => e instanceof UsageError && /"worker", which compose.yaml does not have/.test(e.message),
  );
  assert.throws(
    () => renderStack("nope: 1\n", stack, new Map()),
    (e: Error) => e instanceof UsageError && /has no services/.test(e.message),
  );
});

test("the project's bridge networks, as a local instance names them before Compose runs", () => {
  const compose = `x-app: &app
  networks: [front, back]
services:
  proxy:
    image: nginx
    networks:
      front: {}
      outside: {}
  web:
    <<: *app
    image: app
  db:
    image: postgres
  sidecar:
    image: tool
    network_mode: "service:web"
  metrics:
    image: agent
    networks: [overlaynet, named]
networks:
  back:
    driver_opts: { com.docker.network.bridge.name: br-back0 }
  outside:
    external: true
  overlaynet:
    driver: overlay
  named:
    driver: bridge
    driver_opts: { com.docker.network.bridge.name: "" }
`;
  // front (proxy, web via the merge key), outside is external, back is named by the file, db on default,
  // sidecar shares web's namespace, overlaynet is no bridge, named has an empty name: the engine names it.
  const r = projectBridges(compose, "compose.yaml");
  assert.deepEqual(r.words, ["front", "back", "default", "named"]);
  // The override names each by its line in words, the one the file names too (two local instances at once must
  // not share its interface), and keeps each one's whole definition.
  assert.deepEqual(parse(r.override), {
    networks: {
      front: { driver_opts: { "com.docker.network.bridge.name": "${IMGTOOL_STACK_BRIDGE_0}" } },
      back: { driver_opts: { "com.docker.network.bridge.name": "${IMGTOOL_STACK_BRIDGE_1}" } },
      default: { driver_opts: { "com.docker.network.bridge.name": "${IMGTOOL_STACK_BRIDGE_2}" } },
      named: {
        driver: "bridge",
        driver_opts: { "com.docker.network.bridge.name": "${IMGTOOL_STACK_BRIDGE_3}" },
      },
    },
  });
  const rich = `version: "3.8"
services:
  a:
    image: x
networks:
  default:
    name: shared-\${RUN}
    internal: true
    labels: { team: bench, public: "yes", window: "1:30" }
    ipam: { config: [{ subnet: 10.99.0.0/24 }] }
    driver_opts: { com.docker.network.driver.mtu: "1400" }
`;
  const kept = projectBridges(rich, "compose.yaml");
  assert.deepEqual(kept.words, ["default"]);
  // Read as Compose v1 reads it (YAML 1.1, where an unquoted yes is a boolean and 1:30 a number).
  assert.deepEqual(parse(kept.override, { version: "1.1" }), {
    version: "3.8",
    networks: {
      default: {
        name: "shared-${RUN}",
        internal: true,
        labels: { team: "bench", public: "yes", window: "1:30" },
        ipam: { config: [{ subnet: "10.99.0.0/24" }] },
        driver_opts: {
          "com.docker.network.driver.mtu": "1400",
          "com.docker.network.bridge.name": "${IMGTOOL_STACK_BRIDGE_0}",
        },
      },
    },
  });
  assert.deepEqual(projectBridges("services:\n  a:\n    network_mode: host\n", "compose.yaml"), {
    words: [],
    override: "",
  });
  assert.throws(
    () => projectBridges("services:\n  a:\n    networks: ['a b']\n", "c.yaml"),
    (e: Error) => e instanceof UsageError && /c\.yaml: the network name "a b"/.test(e.message),
  );
  assert.throws(
    () =>
      projectBridges(
        "services:\n  a:\n    networks: [n]\nnetworks:\n  n:\n    driver_opts: { com.docker.network.bridge.name: toolongbridgename0 }\n",
        "c.yaml",
      ),
    (e: Error) =>
      e instanceof UsageError &&
      /networks\.n\.driver_opts\["com.docker.network.bridge.name"\] is "toolongbridgename0"/.test(e.message),
  );
  assert.throws(
    () =>
      projectBridges(
        'services:\n  a:\n    networks: [n]\nnetworks:\n  n:\n    driver_opts: { com.docker.network.bridge.name: "br-${X}" }\n',
        "c.yaml",
      ),
    (e: Error) =>
      e instanceof UsageError &&
      /"br-\$\{X\}", not an interface name/.test(e.message) &&
      /no variable/.test(e.fix ?? ""),
  );
});

test("aws: a stack registry in another region than the role's image registry is a config error, before any login", async () => {
  let logins = 0;
  await assert.rejects(
    bakeStack({
      stack: { ...stack, registry: { aws: "210987654321.dkr.ecr.eu-west-1.amazonaws.com/docker-hub" } },
      target: "aws",
      imageRef: `123456789012.dkr.ecr.us-east-1.amazonaws.com/bench/orchestrator@${D}`,
      settleSeconds: 1,
      login: async () => {
        logins++;
        return {
          endpoint: "https://123456789012.dkr.ecr.us-east-1.amazonaws.com",
          user: "AWS",
          password: "p",
        };
      },
    }),
    (e: Error) =>
      e instanceof UsageError &&
      /roles\.orchestrator\.stack\.registry\.aws: .* is in eu-west-1, the role's image registry in us-east-1/.test(
        e.message,
      ) &&
      /in us-east-1/.test(e.fix ?? ""),
  );
  assert.equal(logins, 0);
});

test("the named volumes the bake fills: declared plain, mounted once, by a third-party service pinned by digest", () => {
  const pg = `127.0.0.1:5000/library/postgres@${D}`;
  const redis = `127.0.0.1:5000/library/redis@${D}`;
  const digests = new Map([
    ["postgres:15", pg],
    ["redis:7", redis],
  ]);
  const file = (services: string, volumes: string) => `services:\n${services}\nvolumes:\n${volumes}\n`;
  const fills = (text: string) => stackVolumes(text, { app_services: ["web"] }, digests);

  // The seed example's shape, short and long syntax; read-only still copies (the engine does).
  assert.deepEqual(fills(COMPOSE.replace("web:", "web:\n    volumes: [/scratch]")), [
    { key: "pgdata", path: "/var/lib/postgresql/data", image: pg },
  ]);
  const long = file(
    `  db:\n    image: postgres:15\n    volumes:\n      - type: volume\n        source: pgdata\n        target: /data\n        read_only: true\n  cache:\n    image: redis:7\n    volumes: ["cache:/data:ro"]`,
    "  pgdata:\n  cache: {}",
  );
  assert.deepEqual(fills(long), [
    { key: "cache", path: "/data", image: redis },
    { key: "pgdata", path: "/data", image: pg },
  ]);

  // Left to the engine at boot: settings that change the volume, two mounts, nocopy, an app service's, a path.
  const skip = (services: string, volumes = "  pgdata: {}") =>
    assert.deepEqual(fills(file(services, volumes)), []);
  const db = "  db:\n    image: postgres:15\n    volumes: [pgdata:/data]";
  for (const settings of [
    "external: true",
    "name: shared",
    "driver: local",
    "labels: {a: b}",
    "driver_opts: {o: bind}",
  ])
    skip(db, `  pgdata: {${settings}}`);
  skip(`${db}\n  backup:\n    image: redis:7\n    volumes: [pgdata:/backup]`);
  skip("  db:\n    image: postgres:15\n    volumes: [pgdata:/data, pgdata:/again]");
  skip("  db:\n    image: postgres:15\n    volumes: [pgdata:/data:nocopy]");
  skip(
    "  db:\n    image: postgres:15\n    volumes:\n      - {type: volume, source: pgdata, target: /data, volume: {nocopy: true}}",
  );
  skip("  web:\n    image: myapp\n    volumes: [pgdata:/data]");
  skip("  db:\n    image: postgres:15\n    volumes: [./pgdata:/data]");
  skip("  db:\n    image: postgres:15\n    volumes: [pgdata:/da ta]");
  skip("  db:\n    image: postgres:15\n    volumes: [undeclared:/data]");
  skip(
    "  db:\n    image: postgres:15\n    volumes:\n      - {type: volume, source: pgdata, target: /data, volume: {subpath: sub}}",
  );
  // A service that may not run: Compose v2 makes no volume for it.
  skip(`${db}\n    profiles: [debug]`);
  skip(`${db}\n    scale: 0`);
  skip(`${db}\n    deploy: {replicas: 0}`);
  assert.equal(fills(file(`${db}\n    deploy: {replicas: 1}`, "  pgdata: {}")).length, 1);
  // Not read without interpolation, or with extends: none at all (another mount may be the same volume).
  skip(`${db}\n  other:\n    image: redis:7\n    volumes: ["\${V}:/x"]`);
  skip(`${db}\n  other:\n    extends: {file: base.yaml, service: x}`);
});

test("a fill list entry is one KEY,PATH,IMAGE word", () => {
  const pinned = `127.0.0.1:5000/library/postgres@${D}`;
  assert.deepEqual(stackVolumes(COMPOSE, stack, new Map([["postgres:15", pinned]])).map(stackVolumeWord), [
    `pgdata,/var/lib/postgresql/data,${pinned}`,
  ]);
});
