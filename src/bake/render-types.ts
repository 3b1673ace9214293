/**
 * The render API the bake flow consumes (implemented by src/render/packer.ts). Kept here as types so the flow
 * takes rendering as a dependency.
 */
import type { Role, Target } from "../config/schema.js";

export interface BakeInputs {
  version: string;
  inputsHash: string;
  gitRevision: string;
  rubyBenchCommit: string;
  image?: { ref: string; registry?: { endpoint: string; user: string; passwordEnv: string } };
  base?: string;
}

export interface RenderedBake {
  role: Role;
  target: Target;
  files: Record<string, string>;
  hashedFiles: string[];
  varFile: string;
  manifestFile: string;
  buildArgs: string[];
}
