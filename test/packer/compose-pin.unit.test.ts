// The Compose release binary that install-stack.sh installs on Amazon Linux (packer/versions.json compose): its
// checksums pinned for both arches, and the url as the script itself (its own line, run by bash) resolves it for
// each arch: the release's asset names are docker-compose-linux-x86_64 and docker-compose-linux-aarch64.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { projectPath } from "../../src/paths.js";
import { loadVersions } from "../../src/versions.js";
import { run } from "../render/helpers.js";

describe("Compose pin (packer/versions.json, install-stack.sh)", () => {
  const compose = loadVersions().compose;

  test("both arches have a SHA-256 pinned (64 lowercase hex digits), different from each other", () => {
    for (const arch of ["x86_64", "arm64"] as const) {
      assert.match(compose.sha256[arch], /^[0-9a-f]{64}$/, `compose.sha256.${arch}`);
    }
    assert.notEqual(compose.sha256.x86_64, compose.sha256.arm64);
  });

  test("the url resolves per arch as install-stack.sh resolves it: the release's asset names", () => {
    const script = readFileSync(projectPath("packer", "scripts", "install-stack.sh"), "utf8");
    const line = script.split("\n").find((l) => /^\s*url=\$\{IMGTOOL_COMPOSE_URL/.test(l));
    assert.ok(line, "install-stack.sh resolves {arch} in IMGTOOL_COMPOSE_URL");
    for (const [arch, asset] of [
      ["x86_64", "docker-compose-linux-x86_64"],
      ["arm64", "docker-compose-linux-aarch64"],
    ] as const) {
      const r = run(["bash", "-c", `set -o nounset; arch=${arch}; ${line.trim()}; printf '%s' "$url"`], {
        env: { IMGTOOL_COMPOSE_URL: compose.url },
      });
      assert.equal(r.code, 0, r.out);
      assert.equal(
        r.stdout,
        `https://github.com/docker/compose/releases/download/${compose.version}/${asset}`,
        arch,
      );
    }
  });
});
