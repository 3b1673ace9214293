// The rendered Dockerfile (templates/Dockerfile.hbs through src/render/dockerfile.ts) and the Dockerfile reader:
// instructions with their lines, unknown instructions refused, the linter's verdict, and the provisioning scripts
// it reuses.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { validate } from "dockerfile-utils";
import { projectPath } from "../../src/paths.js";
import {
  CONTAINER_SCRIPTS,
  DockerfileSyntaxError,
  RESERVED_BUILD_ARGS,
  baseImagesOf,
  checkDockerfile,
  healthBuildArgs,
  parseDockerfile,
  renderDockerfile,
} from "../../src/render/dockerfile.js";

describe("Dockerfiles", () => {
  test("instructions with their lines: directives, comments, continuations", () => {
    const text = [
      "# escape=`",
      "# a comment",
      "ARG BASE=imgtool/base:bookworm",
      "FROM ${BASE} AS build",
      "RUN echo one `",
      "  # inside",
      "  two",
      "",
      "FROM build",
      "COPY . /src",
    ].join("\n");
    const ins = parseDockerfile(text);
    assert.deepEqual(
      ins.map((i) => [i.line, i.keyword]),
      [
        [3, "ARG"],
        [4, "FROM"],
        [5, "RUN"],
        [9, "FROM"],
        [10, "COPY"],
      ],
    );
    assert.equal(ins[2]!.args, "echo one    two");
    assert.deepEqual(baseImagesOf(ins, {}), ["imgtool/base:bookworm"], "stage names are not images");
    assert.deepEqual(baseImagesOf(ins, { BASE: "ruby:3.3" }), ["ruby:3.3"], "build args win over defaults");
    assert.deepEqual(baseImagesOf(parseDockerfile("FROM scratch\nCOPY a /a\n"), {}), []);
  });

  test("an unknown instruction is refused with its line, before any build", () => {
    assert.throws(
      () => checkDockerfile(parseDockerfile("FROM imgtool/base:bookworm\n\nFORM x\n")),
      (e: unknown) =>
        e instanceof DockerfileSyntaxError && e.line === 3 && /unknown instruction: FORM/.test(e.message),
    );
    assert.throws(() => checkDockerfile(parseDockerfile("RUN true\n")), /before the first FROM/);
  });

  for (const role of ["task-runner", "orchestrator"] as const) {
    test(`the rendered ${role} Dockerfile passes the Dockerfile linter (dockerfile-utils) with no finding`, () => {
      const text = renderDockerfile({ role, buildArgNames: ["FOO", "BAR_2"] });
      assert.deepEqual(validate(text), []);
      checkDockerfile(parseDockerfile(text));
      const keywords = parseDockerfile(text).map((i) => i.keyword);
      assert.ok(
        keywords.includes("HEALTHCHECK") && keywords.includes("USER"),
        "healthcheck and non-root user",
      );
      // Rarely-changing layers first: the application is the last COPY.
      const copies = parseDockerfile(text).filter((i) => i.keyword === "COPY");
      assert.match(copies.at(-1)!.args, /^app\/ \/app\/$/);
    });
  }

  test("the rendered Dockerfile installs packages with the AMI's own provisioning script, not its own apt-get", () => {
    for (const role of ["task-runner", "orchestrator"] as const) {
      const ins = parseDockerfile(renderDockerfile({ role, buildArgNames: [] }));
      const copy = ins.find((i) => i.keyword === "COPY" && i.args.startsWith("imgtool/scripts/"));
      assert.ok(copy, `${role}: the scripts are copied in`);
      const run = ins.find((i) => i.keyword === "RUN" && i.args.includes("install-packages.sh"));
      assert.ok(run && run.line > copy.line, `${role}: install-packages.sh runs after the copy`);
      assert.ok(
        ins.every((i) => !/apt-get install|dnf install/.test(i.args)),
        `${role}: no inlined package install`,
      );
    }
    for (const f of CONTAINER_SCRIPTS) assert.ok(existsSync(projectPath("packer", "scripts", f)), f);
    // Every file those scripts source (their `# shellcheck source=` lines, as shellcheck follows them) goes along:
    // without lib/core.sh, any roles.<role>.packages failed the image build ("core.sh: No such file").
    for (const f of CONTAINER_SCRIPTS) {
      const text = readFileSync(projectPath("packer", "scripts", f), "utf8");
      for (const m of text.matchAll(/^# shellcheck source=(\S+)/gm)) {
        const sourced = path.posix.join(path.posix.dirname(f), m[1]!);
        assert.ok(
          CONTAINER_SCRIPTS.includes(sourced),
          `${f} sources ${sourced}, which the image does not get`,
        );
      }
    }
  });

  test("the orchestrator's HEALTHCHECK asks the configured HTTP check: path, port and status as build args", () => {
    const text = renderDockerfile({ role: "orchestrator", buildArgNames: [] });
    const ins = parseDockerfile(text);
    const health = ins.filter((i) => i.keyword === "HEALTHCHECK");
    assert.deepEqual(
      health.map((i) => i.args),
      ['--interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["imgtool-healthcheck"]'],
    );
    const args = ins.filter((i) => i.keyword === "ARG").map((i) => i.args);
    const env = ins.find((i) => i.keyword === "ENV" && i.args.includes("IMGTOOL_HEALTH_PATH"));
    for (const name of Object.keys(healthBuildArgs({ path: "/x" }))) {
      assert.ok(args.includes(name), `ARG ${name}`);
      assert.ok(env?.args.includes(`${name}=\${${name}}`), `ENV ${name} for imgtool-healthcheck`);
      assert.ok(RESERVED_BUILD_ARGS.includes(name), `${name} is reserved`);
    }
    assert.ok(env!.line < health[0]!.line);
    assert.doesNotMatch(text, /\/health\b/, "no path in the text: it is a build arg");
    assert.deepEqual(healthBuildArgs({ path: "/healthz", port: 9000, status: 204 }), {
      IMGTOOL_HEALTH_PATH: "/healthz",
      IMGTOOL_HEALTH_PORT: "9000",
      IMGTOOL_HEALTH_STATUS: "204",
    });
    assert.deepEqual(healthBuildArgs({ path: "/health" }), {
      IMGTOOL_HEALTH_PATH: "/health",
      IMGTOOL_HEALTH_PORT: "",
      IMGTOOL_HEALTH_STATUS: "",
    });
    assert.deepEqual(healthBuildArgs(undefined), {});
  });

  test("an orchestrator without an HTTP check: HEALTHCHECK NONE, no health build args; the linter agrees", () => {
    const text = renderDockerfile({ role: "orchestrator", buildArgNames: [], httpHealth: false });
    assert.deepEqual(validate(text), []);
    const ins = parseDockerfile(text);
    assert.deepEqual(
      ins.filter((i) => i.keyword === "HEALTHCHECK").map((i) => i.args),
      ["NONE"],
    );
    assert.doesNotMatch(text, /IMGTOOL_HEALTH_/);
  });

  test("the linter does find problems (so a clean result means something)", () => {
    assert.ok(validate("FROM x\nEXPOSE notaport\nHEALTHCHECK --interval=x CMD true\n").length > 0);
  });

  test("config values never reach the Dockerfile text: only build-arg names do, and they are checked", () => {
    const a = renderDockerfile({ role: "task-runner", buildArgNames: ["GREETING"] });
    const b = renderDockerfile({ role: "task-runner", buildArgNames: ["GREETING"] });
    assert.equal(a, b);
    assert.doesNotMatch(a, /ruby:3\.3|imgtool\/ruby:/, "the base image is a build arg, not text");
    for (const hostile of ["A\nRUN rm -rf /", "A B", "$(id)", "A=1"]) {
      assert.throws(
        () => renderDockerfile({ role: "orchestrator", buildArgNames: [hostile] }),
        /build-arg name/,
      );
    }
  });
});
