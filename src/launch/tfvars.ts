/**
 * `imgtool launch --emit tfvars`: the ids a launch would use (AMIs per role and architecture, image digests,
 * versions, the API key's parameter name), resolved in one batched catalog call and written as a Terraform
 * variables file, for teams that launch with Terraform. Every value goes through the HCL string escaper.
 */
import type { Catalog } from "../catalog/catalog.js";
import type { Config } from "../config/load.js";
import { ARCHES, ROLES, type Role } from "../config/schema.js";
import { instanceArch, machineArch } from "../config/arch.js";
import { hclString } from "../render/escape.js";
import { amiKey, resolveForLaunch, type Resolved } from "./plan.js";

export interface TfvarsInput {
  pipeline: string;
  label: string;
  region: string;
  instanceTypes: Record<Role, string[]>;
  resolved: Resolved;
  apiKeyParameter: string;
}

/** Resolve what the file holds: each role's AMIs for the architectures of its instance types, and its image. */
export async function resolveTfvars(
  config: Config,
  catalog: Catalog,
  opts: { label: string; region: string; taskRunnerTypes: string[]; local: boolean; apiKeyParameter: string },
): Promise<TfvarsInput> {
  const machine = machineArch();
  const instanceTypes: Record<Role, string[]> = {
    "task-runner": opts.taskRunnerTypes,
    orchestrator: [config.roles.orchestrator.instance_types[0]!],
  };
  const amis = ROLES.flatMap((role) =>
    [...new Set(instanceTypes[role].map((t) => (opts.local ? machine : instanceArch(t))))].map((arch) => ({
      role,
      arch,
    })),
  );
  const resolved = await resolveForLaunch(catalog, { amis, images: [...ROLES] }, opts.label);
  return {
    pipeline: config.pipeline,
    label: opts.label,
    region: opts.region,
    instanceTypes,
    resolved,
    apiKeyParameter: opts.apiKeyParameter,
  };
}

const key = (k: string) => hclString(k);

export function renderTfvars(t: TfvarsInput): string {
  const lines = [
    `# Written by \`imgtool launch --emit tfvars\`: the catalog's ids for pipeline ${t.pipeline}`,
    `# (label ${t.label}, region ${t.region}). Regenerate it rather than editing it.`,
    "",
    `imgtool_region = ${hclString(t.region)}`,
    "",
    "imgtool_amis = {",
  ];
  for (const role of ROLES) {
    const arches = ARCHES.filter((a) => t.resolved.amis.has(amiKey(role, a)));
    if (!arches.length) continue;
    lines.push(`  ${key(role)} = {`);
    for (const a of arches)
      lines.push(`    ${key(a)} = ${hclString(t.resolved.amis.get(amiKey(role, a))!.id)}`);
    lines.push("  }");
  }
  lines.push("}", "", "imgtool_ami_versions = {");
  for (const role of ROLES) {
    const arches = ARCHES.filter((a) => t.resolved.amis.has(amiKey(role, a)));
    if (!arches.length) continue;
    lines.push(`  ${key(role)} = {`);
    for (const a of arches)
      lines.push(`    ${key(a)} = ${hclString(t.resolved.amis.get(amiKey(role, a))!.version)}`);
    lines.push("  }");
  }
  lines.push("}", "", "imgtool_images = {");
  for (const role of ROLES) {
    const img = t.resolved.images.get(role);
    if (img) lines.push(`  ${key(role)} = ${hclString(img.ref)}`);
  }
  lines.push("}", "", "imgtool_image_versions = {");
  for (const role of ROLES) {
    const img = t.resolved.images.get(role);
    if (img) lines.push(`  ${key(role)} = ${hclString(img.version)}`);
  }
  lines.push("}", "", "imgtool_instance_types = {");
  for (const role of ROLES) {
    lines.push(`  ${key(role)} = [${t.instanceTypes[role].map(hclString).join(", ")}]`);
  }
  lines.push("}", "", `imgtool_api_key_parameter = ${hclString(t.apiKeyParameter)}`, "");
  return lines.join("\n");
}
