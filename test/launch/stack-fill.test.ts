// packer/scripts/lib/imgtool-stack `fill` and `filled` (the bake's pre-load of a stack's named volumes, issue 9)
// against the real engine (scripts/setup's dockerd) and Compose v2 as Debian ships it (scripts/fetch-compose-v2):
// fill makes the volume under Compose's name with the project's labels and copies the image's content at the
// path into it, as the engine does when a container first mounts a new volume; Compose then takes that volume as
// its own (no "already exists" warning) and the service sees the content; `filled` (validate.sh's check) passes,
// and names a volume that is missing or labelled for another project.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { projectPath } from "../../src/paths.js";
import { dockerHost, readStack } from "../../src/local/stack.js";
import { dockerCli } from "../support/twin-bake.js";

const SCRIPT = projectPath("packer", "scripts", "lib", "imgtool-stack");
const stack = readStack(projectPath(".imgtool"));
const env = stack ? { DOCKER_HOST: dockerHost(stack) } : {};
const docker = dockerCli(env);
const composeV2 = stack ? path.join(stack.stateDir, "compose-v2", "docker-compose") : "";
const BASE = "imgtool/base:bookworm";
const key = `fill${randomBytes(3).toString("hex")}`;
const volume = `imgtool_${key}`;
let dir: string;

function stackCmd(arg: string) {
  const r = spawnSync("bash", [SCRIPT, arg], {
    encoding: "utf8",
    timeout: 120_000,
    env: {
      ...process.env,
      ...env,
      PATH: `${path.join(dir, "bin")}:${process.env.PATH}`,
      IMGTOOL_STACK_DIR: path.join(dir, "stack"),
    },
  });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

describe(
  "imgtool-stack fill: a stack's named volume made and filled at bake time, as Compose and the engine would",
  { skip: (!stack || !existsSync(composeV2)) && "run scripts/setup" },
  () => {
    before(() => {
      dir = mkdtempSync(path.join(tmpdir(), "imgtool-stack-fill-"));
      mkdirSync(path.join(dir, "bin"));
      mkdirSync(path.join(dir, "stack"));
      // imgtool-stack looks for Compose first; the host's docker CLI has no plugin, so `docker-compose` it is.
      symlinkSync(composeV2, path.join(dir, "bin", "docker-compose"));
      writeFileSync(path.join(dir, "stack", "volumes"), `${key} /etc/apt ${BASE}\n`);
    });
    after(() => {
      spawnSync(composeV2, ["--project-name", "imgtool", "--file", path.join(dir, "compose.yaml"), "down"], {
        env: { ...process.env, ...env },
      });
      docker(["volume", "rm", "-f", volume]);
      rmSync(dir, { recursive: true, force: true });
    });

    test("fill: Compose's name and labels, the image's content at the path; Compose takes it as its own", () => {
      const filled = stackCmd("fill");
      assert.equal(filled.code, 0, filled.out);
      assert.match(
        filled.out,
        new RegExp(`fill: volume ${volume} holds [1-9]\\d* entries of ${BASE} at /etc/apt`),
      );
      const labels = docker([
        "volume",
        "inspect",
        "--format",
        '{{index .Labels "com.docker.compose.project"}} {{index .Labels "com.docker.compose.volume"}}',
        volume,
      ]);
      assert.equal(labels.out.trim(), `imgtool ${key}`);
      // No container is left from the fill (it was created, never started, and removed with its anonymous volumes).
      const left = docker(["ps", "-a", "--filter", `volume=${volume}`, "--format", "{{.ID}}"]);
      assert.equal(left.out.trim(), "");

      // Compose v2, with the project name imgtool-stack gives it: the volume is the project's (no warning), and
      // the service sees the image's content there (Compose did not make a new, empty one).
      writeFileSync(
        path.join(dir, "compose.yaml"),
        [
          "services:",
          "  app:",
          `    image: ${BASE}`,
          '    command: ["ls", "/mnt/apt"]',
          "    volumes:",
          `      - ${key}:/mnt/apt`,
          "volumes:",
          `  ${key}: {}`,
          "",
        ].join("\n"),
      );
      const up = spawnSync(
        composeV2,
        ["--project-name", "imgtool", "--file", path.join(dir, "compose.yaml"), "run", "--rm", "app"],
        { encoding: "utf8", env: { ...process.env, ...env }, timeout: 120_000 },
      );
      assert.equal(up.status, 0, `${up.stdout}${up.stderr}`);
      assert.doesNotMatch(up.stderr, /already exists/, up.stderr);
      assert.match(up.stdout, /^sources\.list\.d$/m, "the image's /etc/apt, copied by the fill");
    });

    test("filled: passes for the filled volume; names one labelled for another project, and one that is missing", () => {
      assert.equal(stackCmd("filled").code, 0);
      docker(["volume", "rm", volume]);
      docker(["volume", "create", "--label", "com.docker.compose.project=other", volume]);
      const other = stackCmd("filled");
      assert.equal(other.code, 1, other.out);
      assert.match(
        other.out,
        new RegExp(`volume ${volume} is labelled "other ", not as volume ${key} of project imgtool`),
      );
      docker(["volume", "rm", volume]);
      const missing = stackCmd("filled");
      assert.equal(missing.code, 1, missing.out);
      assert.match(
        missing.out,
        new RegExp(`volume ${volume} \\(of ${BASE} at /etc/apt\\) is not in the engine`),
      );
      // fill makes it anew, also over a volume that is in the way and held by a container (an interrupted fill's).
      docker(["volume", "create", "--label", "com.docker.compose.project=other", volume]);
      const holder = docker(["create", "--mount", `type=volume,source=${volume},target=/x`, BASE, "true"]);
      assert.equal(holder.code, 0, holder.out);
      const again = stackCmd("fill");
      assert.equal(again.code, 0, again.out);
      assert.equal(stackCmd("filled").code, 0);
      assert.equal(docker(["ps", "-aq", "--filter", `volume=${volume}`]).out.trim(), "");
    });

    test("fill: an image that is not in the store fails, naming it", () => {
      writeFileSync(path.join(dir, "stack", "volumes"), `${key} /data imgtool/not-there:${key}\n`);
      try {
        const r = stackCmd("fill");
        assert.equal(r.code, 1, r.out);
        assert.match(
          r.out,
          new RegExp(`fill: imgtool/not-there:${key} \\(volume ${key}\\) is not in the store`),
        );
      } finally {
        writeFileSync(path.join(dir, "stack", "volumes"), `${key} /etc/apt ${BASE}\n`);
      }
    });
  },
);
