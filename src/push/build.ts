/**
 * The builder of the push flow: one platform's image of a role, built by the Docker engine from the role's
 * build context (the rendered Dockerfile with imgtool's helpers and the ruby-bench checkout, or the user's own
 * Dockerfile), with its OCI labels, and checked to be of the platform's architecture. Build errors come back
 * naming the role, the step and the Dockerfile line. (cdk-assets' container-image builder is the model.)
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { Config } from "../config/load.js";
import { IMAGE_LABEL } from "../config/tags.js";
import { contextEntries, listContext } from "../docker/context.js";
import type { BuildOutcome, BuildRequest, DockerEngine } from "../docker/engine.js";
import { BuildFailedError, DockerfileParseError } from "../docker/errors.js";
import type { BuildStep } from "../docker/progress.js";
import { tarStream, type TarEntry } from "../docker/tar.js";
import { FailureError, UsageError } from "../errors.js";
import type { Exec } from "../exec.js";
import { LABEL_BUILD_ARGS, instructionOfStep } from "../render/dockerfile.js";
import type { PlatformInputs, RoleInputs } from "./inputs.js";
import type { RoleEmit } from "./emit.js";
import type { RubyBenchSource } from "./ruby-bench.js";

export interface BuilderDeps {
  config: Config;
  docker: DockerEngine;
  rubyBench: RubyBenchSource;
  exec: Exec;
  emit: RoleEmit;
  /** The run's interrupt: the build request is closed at once, which makes the engine stop the build. */
  signal?: AbortSignal;
  /** Where SOURCE_DATE_EPOCH is read. @default process.env */
  env?: NodeJS.ProcessEnv;
  /** The run's folder, for the temp files of the reproducible rewrite (asked only then). @default os.tmpdir() */
  tempDir?: () => string;
}

/** What a build adds to the role's result. */
export interface BuildTally {
  steps: { total: number; cached: number };
}

export class ImageBuilder {
  constructor(private readonly deps: BuilderDeps) {}

  /** The git revision of the build context, when it is in a git work tree. */
  async gitRevision(dir: string): Promise<string | undefined> {
    const r = await this.deps.exec(["git", "-C", dir, "rev-parse", "HEAD"], { timeoutMs: 10_000 });
    return r.exitCode === 0 ? r.stdout.trim() : undefined;
  }

  /**
   * SOURCE_DATE_EPOCH of a build: the environment's when set, else the commit time of the context's git HEAD;
   * undefined outside git (the build is then not made reproducible).
   */
  async sourceDateEpoch(dir: string): Promise<number | undefined> {
    const env = (this.deps.env ?? process.env)["SOURCE_DATE_EPOCH"];
    if (env !== undefined && env !== "") {
      if (!/^\d+$/.test(env)) {
        throw new UsageError(`SOURCE_DATE_EPOCH "${env}" is not a number of seconds since 1970.`, {
          fix: "Set SOURCE_DATE_EPOCH to whole seconds (e.g. $(git log -1 --format=%ct)) or unset it.",
        });
      }
      return Number(env);
    }
    const r = await this.deps.exec(["git", "-C", dir, "log", "-1", "--format=%ct"], { timeoutMs: 10_000 });
    const t = r.exitCode === 0 ? Number(r.stdout.trim()) : NaN;
    return Number.isInteger(t) && t > 0 ? t : undefined;
  }

  /** The build context archive of one platform. */
  private async *contextEntries(i: RoleInputs): AsyncGenerator<TarEntry> {
    if (i.mode === "dockerfile") {
      yield* contextEntries(i.appFiles);
      // Docker sends the Dockerfile and .dockerignore even when .dockerignore lists them (the daemon needs them).
      const has = new Set(i.appFiles.map((f) => f.rel));
      for (const rel of [i.dockerfilePath, ".dockerignore"]) {
        if (has.has(rel)) continue;
        const content = await readIfExists(path.join(i.contextDir, rel));
        if (content) yield { path: rel, type: "file", mode: 0o644, content };
      }
      return;
    }
    yield { path: "Dockerfile", type: "file", mode: 0o644, content: Buffer.from(i.dockerfileText) };
    yield* contextEntries(i.helperFiles, "imgtool/bin/");
    yield* contextEntries(i.scriptFiles, "imgtool/scripts/");
    if (i.rubyBench) {
      const dir = await this.deps.rubyBench.checkout(i.rubyBench.repository, i.rubyBench.commit);
      yield* contextEntries(await listContext(dir, { dockerignore: false }), "imgtool/ruby-bench/");
    }
    yield { path: "app", type: "dir", mode: 0o755 };
    yield* contextEntries(i.appFiles, "app/");
  }

  /** Build `ref` for one platform; returns the image ID. */
  async build(
    i: RoleInputs,
    p: PlatformInputs,
    ref: string,
    builtAt: Date,
    gitRevision: string | undefined,
    tally: BuildTally,
  ): Promise<string> {
    const emit = this.deps.emit;
    const base = p.bases[0];
    const rendered = i.mode === "rendered";
    // The rendered Dockerfile's builds are made reproducible (a user's own Dockerfile is built as it is): the
    // label's time is the epoch, not the clock.
    const epoch =
      rendered && base && this.deps.docker.reproduce ? await this.sourceDateEpoch(i.contextDir) : undefined;
    const labels: Record<string, string> = {
      "org.opencontainers.image.created":
        epoch !== undefined ? new Date(epoch * 1000).toISOString() : builtAt.toISOString(),
      "org.opencontainers.image.source": i.contextDir,
      "org.opencontainers.image.revision": gitRevision ?? "",
      "org.opencontainers.image.title": `${this.deps.config.pipeline}/${i.role}`,
      "org.opencontainers.image.base.name": base?.ref ?? "",
      "org.opencontainers.image.base.digest": base?.id ?? "",
      [IMAGE_LABEL.inputsHash]: i.inputsHash,
    };
    // The rendered Dockerfile sets its labels in one step from build args; a user's own Dockerfile gets them
    // from the engine (one step per label, after its own).
    const buildArgs: Record<string, string> = { ...i.buildArgs };
    if (rendered) {
      if (base) buildArgs["BASE_IMAGE"] = base.id;
      for (const [label, arg] of Object.entries(LABEL_BUILD_ARGS)) buildArgs[arg] = labels[label] ?? "";
    }
    emit(i.role, "build", `building ${ref} for ${p.platform.platform} from ${i.dockerfileLabel}`);
    for (let attempt = 1; ; attempt++) {
      const built = await this.runBuild(i, p, {
        context: tarStream(this.contextEntries(i)),
        dockerfile: i.dockerfilePath,
        tag: ref,
        buildArgs,
        labels: rendered ? {} : { ...labels, [IMAGE_LABEL.role]: i.role },
        platform: p.platform.platform,
        ...(attempt > 1 ? { noCache: true } : {}),
        ...(this.deps.signal ? { signal: this.deps.signal } : {}),
      });
      const outcome =
        epoch !== undefined && base
          ? await this.reproduce(i, p, built, { epoch, base: base.id, tag: ref })
          : built;
      // The classic builder can hand back a layer cached for another architecture (a stage FROM scratch has
      // no base to tell them apart), or build on a base of the wrong one: check what came out.
      const info = await this.deps.docker.inspectImage(outcome.imageId);
      if (info && info.architecture !== p.platform.dockerArch) {
        if (attempt === 1) {
          emit(
            i.role,
            "warn",
            `the builder's cache gave a ${info.architecture} image for ${p.platform.platform}: building it again without the cache`,
          );
          continue;
        }
        throw new FailureError(
          `${i.role}: the image built for ${p.platform.platform} is ${info.architecture}: its base image is not ${p.platform.dockerArch}.`,
          { fix: `Give the engine a ${p.platform.dockerArch} base image; nothing was pushed or published.` },
        );
      }
      const cached = outcome.steps.filter((s) => s.cached).length;
      tally.steps.total += outcome.steps.length;
      tally.steps.cached += cached;
      emit(
        i.role,
        "build",
        `built ${outcome.imageId.slice(7, 19)} for ${p.platform.platform}: ${outcome.steps.length} steps, ${cached} from cache`,
        { imageId: outcome.imageId, steps: outcome.steps.length, cached },
      );
      return outcome.imageId;
    }
  }

  /** The build made reproducible (src/docker/reproducible.ts): the same inputs, the same image ID. */
  private async reproduce(
    i: RoleInputs,
    p: PlatformInputs,
    built: BuildOutcome,
    opts: { epoch: number; base: string; tag: string },
  ): Promise<BuildOutcome> {
    const started = Date.now();
    const r = await this.deps.docker.reproduce!(built.imageId, {
      ...opts,
      ...(this.deps.tempDir ? { tempDir: this.deps.tempDir() } : {}),
    });
    this.deps.emit(
      i.role,
      "debug",
      `made ${built.imageId.slice(7, 19)} reproducible as ${r.imageId.slice(7, 19)} for ${p.platform.platform}: ` +
        `${r.layers} layer(s) on the base, ${r.clamped} file time(s) clamped to SOURCE_DATE_EPOCH ${opts.epoch}, ` +
        `${((Date.now() - started) / 1000).toFixed(1)} s`,
      { builtImageId: built.imageId, imageId: r.imageId, epoch: opts.epoch },
    );
    return { ...built, imageId: r.imageId };
  }

  /** One build, its errors turned into ones that name the role, the step and the Dockerfile line. */
  private async runBuild(i: RoleInputs, p: PlatformInputs, req: BuildRequest): Promise<BuildOutcome> {
    const emit = this.deps.emit;
    try {
      return await this.deps.docker.build(req, {
        step: (s: BuildStep) =>
          emit(i.role, "progress", `step ${s.step}/${s.total}: ${s.instruction}`, {
            step: s.step,
            instruction: s.instruction,
            platform: p.platform.platform,
          }),
        cached: (s) =>
          emit(i.role, "progress", `step ${s.step}/${s.total}: from cache`, {
            step: s.step,
            cached: true,
            platform: p.platform.platform,
          }),
        output: (line) => emit(i.role, "debug", line),
      });
    } catch (e) {
      if (this.deps.signal?.aborted) throw e;
      if (e instanceof DockerfileParseError) {
        throw new UsageError(`${i.dockerfileLabel}${e.line ? `:${e.line}` : ""}: ${e.message}`, {
          fix: `The Docker engine refused the Dockerfile${e.line ? `: fix line ${e.line}` : ""}.`,
          cause: e,
        });
      }
      if (e instanceof BuildFailedError) {
        const ins = e.step ? instructionOfStep(i.instructions, e.step.step) : undefined;
        const where = e.step
          ? `step ${e.step.step}/${e.step.total} (${i.dockerfileLabel}${ins ? `:${ins.line}` : ""}: ${e.step.instruction})`
          : "the start";
        const tail = e.output.slice(-5);
        throw new FailureError(
          `${i.role}: the build failed at ${where}: ${e.message}` +
            (tail.length ? `\n  last output:\n${tail.map((l) => `    ${l}`).join("\n")}` : ""),
          { fix: "Fix the failing instruction or what it runs; nothing was pushed or published.", cause: e },
        );
      }
      throw e;
    }
  }
}

async function readIfExists(file: string): Promise<Buffer | undefined> {
  try {
    return await readFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}
