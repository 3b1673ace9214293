/**
 * `imgtool render`: writes what a bake would hand to Packer (HCL, scripts, build.env, the variables file) for
 * inspection, and runs nothing. What only a bake resolves (the version, the ruby-bench commit, the published
 * image, the base AMI or image digest) gets a placeholder, and the output says which.
 */
import path from "node:path";
import { ROLES, type Role } from "../../config/schema.js";
import type { Context, GlobalArgs } from "../context.js";
import type { BakeStageName } from "../../render/packer.js";

export interface RenderArgs {
  role: Role | "all";
  out: string;
  "packer-version"?: string;
  /** staged (the default): the base and role stages of `bake ami` (one folder each); full: the single build. */
  stage?: "full" | "staged";
}

interface RenderResult {
  role: Role;
  /** A staged render: which stage these files are. */
  stage?: BakeStageName;
  target: string;
  dir: string;
  written: boolean;
  files: string[];
  renderedHash: string;
  buildArgs: string[];
  initArgs: string[];
  pluginsFile: string;
  minPackerVersion: string;
  sources: { name: string; arch: string; instanceType: string | null }[];
  placeholders: Record<string, string>;
  notes: string[];
}

export async function renderCommand(ctx: Context, args: GlobalArgs & RenderArgs): Promise<number> {
  const { renderBake, writeRendered, renderedHash, renderInputs, RENDER_PLACEHOLDER_VERSION } =
    await import("../../render/packer.js");
  const roles = args.role === "all" ? [...ROLES] : [args.role];
  const results: RenderResult[] = [];
  const stages: (BakeStageName | undefined)[] = args.stage === "full" ? [undefined] : ["base", "role"];
  for (const role of roles)
    for (const stage of stages) {
      const ref = ctx.config.roles[role].ruby_bench.ref;
      const inputs = renderInputs(ctx.config, role, {
        ...(ctx.target === "aws" ? { region: ctx.homeRegion } : {}),
        ...(args["packer-version"] ? { packerVersion: args["packer-version"] } : {}),
        ...(stage ? { stage } : {}),
      });
      // The hash of the rendered files: the part of a bake's inputs hash that the bake records as its
      // renderedHash (a bake also hashes the resolved base, commit and image).
      const hash = renderedHash(renderBake(ctx.config, role, ctx.target, inputs));
      const r = renderBake(ctx.config, role, ctx.target, { ...inputs, inputsHash: hash });
      const dir = path.resolve(args.out, ctx.target, role, ...(stage ? [stage] : []));
      if (!ctx.dryRun) await writeRendered(r, dir);
      results.push({
        role,
        ...(stage ? { stage } : {}),
        target: ctx.target,
        dir,
        written: !ctx.dryRun,
        files: Object.keys(r.files).sort(),
        renderedHash: hash,
        buildArgs: r.buildArgs,
        initArgs: r.initArgs,
        pluginsFile: r.pluginsFile,
        minPackerVersion: r.minPackerVersion,
        sources: r.sources.map((s) => ({ name: s.name, arch: s.arch, instanceType: s.instanceType ?? null })),
        placeholders: {
          version: RENDER_PLACEHOLDER_VERSION,
          inputsHash: "the hash of the rendered files only",
          gitRevision: "unknown",
          rubyBenchCommit:
            stage === "base"
              ? "not an input of the base stage"
              : `the ref ${JSON.stringify(ref)}, not resolved to a commit`,
          image: stage === "base" ? "not an input of the base stage" : "none: the pre-load step skips",
          base:
            stage === "role"
              ? "the base stage's artefact, found through the catalog at bake time (here: the configured base)"
              : ctx.target === "aws"
                ? "not resolved: the source_ami_filter picks the newest match at build time"
                : "the configured base image, not resolved to a digest",
        },
        notes: r.notes,
      });
    }
  ctx.out.result({ results }, () =>
    results
      .map((r) =>
        [
          `${r.written ? "rendered" : "would render (--dry-run)"} ${r.role}${r.stage ? ` ${r.stage} stage` : ""} (${r.target}) into ${r.dir}: ${r.files.length} files, rendered-files hash ${r.renderedHash.slice(0, 12)}`,
          `  placeholders, since render builds nothing: version ${r.placeholders.version!}, ruby-bench commit = ${r.placeholders.rubyBenchCommit!}, image = ${r.placeholders.image!}, base = ${r.placeholders.base!}`,
          ...r.notes.map((n) => `  note: ${n}`),
          `  to build: cd ${r.dir} && ${r.target === "aws" ? `packer ${r.initArgs.join(" ")} && ` : ""}packer ${r.buildArgs.join(" ")}` +
            (r.pluginsFile.includes("/")
              ? ""
              : "  (Packer >= 1.7; for an older Packer render with --packer-version)"),
        ].join("\n"),
      )
      .join("\n"),
  );
  return 0;
}
