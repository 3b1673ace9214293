// The Packer plugins of the bake (packer/versions.json packer.required_plugins). HashiCorp publishes plugin
// releases on releases.hashicorp.com since amazon 1.3.10 and docker 1.1.2, without the SHA256SUMS file on GitHub
// that `packer init` downloads for a github.com source (hashicorp/packer-plugin-amazon#586 and #596, with Packer
// 1.8 to 1.14.1; hashicorp/packer-plugin-docker#220). Given a range, Packer picks the newest release and
// `packer init` fails: the aws bake's first step on its first night.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { projectPath } from "../../src/paths.js";
import { versionAtLeast } from "../../src/render/packer.js";
import { loadVersions } from "../../src/versions.js";

/** The last release of each plugin with its checksum file on GitHub (the issues above). */
const LAST_ON_GITHUB = { amazon: "1.3.9", docker: "1.1.1" } as const;

describe("Packer plugin pins (packer/versions.json, the nightly workflow)", () => {
  const plugins = loadVersions().packer.required_plugins;
  const workflow = parse(readFileSync(projectPath(".github", "workflows", "nightly-rebake.yml"), "utf8")) as {
    env: Record<string, string>;
  };
  const packer = workflow.env.PACKER_VERSION!;

  test("every plugin is an exact pin", () => {
    for (const [name, p] of Object.entries(plugins)) assert.match(p.version, /^= \d+\.\d+\.\d+$/, name);
  });

  test("no pin is newer than the plugin's last release on GitHub, where the workflow's Packer looks", () => {
    assert.match(packer, /^\d+\.\d+\.\d+$/, "env.PACKER_VERSION");
    for (const [name, last] of Object.entries(LAST_ON_GITHUB)) {
      const pinned = plugins[name as keyof typeof plugins].version.replace(/^= /, "");
      assert.ok(
        versionAtLeast(last, pinned),
        `${name} ${pinned} is not on GitHub (last: ${last}): Packer ${packer} cannot install it`,
      );
    }
  });
});
