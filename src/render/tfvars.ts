/**
 * `imgtool launch --emit tfvars`: the ids a launch would use (AMIs per role and architecture, image digests,
 * versions, the API key's parameter name), written as a Terraform variables file, for teams that launch with
 * Terraform. Pure: the launch resolves the ids ({@link resolveTfvars} in src/launch/plan.ts), this renders them.
 * Every value goes through the HCL string escaper.
 */
import { ARCHES, ROLES, type Arch, type Role } from "../config/schema.js";
import { hclString } from "./escape.js";

export interface TfvarsInput {
  pipeline: string;
  label: string;
  region: string;
  instanceTypes: Record<Role, string[]>;
  /** The AMI per role and architecture (those the launch would use), with its catalog version. */
  amis: Partial<Record<Role, Partial<Record<Arch, { id: string; version: string }>>>>;
  /** Each role's image reference (URI@sha256:...) with its catalog version. */
  images: Partial<Record<Role, { ref: string; version: string }>>;
  apiKeyParameter: string;
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
    const arches = ARCHES.filter((a) => t.amis[role]?.[a]);
    if (!arches.length) continue;
    lines.push(`  ${key(role)} = {`);
    for (const a of arches) lines.push(`    ${key(a)} = ${hclString(t.amis[role]![a]!.id)}`);
    lines.push("  }");
  }
  lines.push("}", "", "imgtool_ami_versions = {");
  for (const role of ROLES) {
    const arches = ARCHES.filter((a) => t.amis[role]?.[a]);
    if (!arches.length) continue;
    lines.push(`  ${key(role)} = {`);
    for (const a of arches) lines.push(`    ${key(a)} = ${hclString(t.amis[role]![a]!.version)}`);
    lines.push("  }");
  }
  lines.push("}", "", "imgtool_images = {");
  for (const role of ROLES) {
    const img = t.images[role];
    if (img) lines.push(`  ${key(role)} = ${hclString(img.ref)}`);
  }
  lines.push("}", "", "imgtool_image_versions = {");
  for (const role of ROLES) {
    const img = t.images[role];
    if (img) lines.push(`  ${key(role)} = ${hclString(img.version)}`);
  }
  lines.push("}", "", "imgtool_instance_types = {");
  for (const role of ROLES) {
    lines.push(`  ${key(role)} = [${t.instanceTypes[role].map(hclString).join(", ")}]`);
  }
  lines.push("}", "", `imgtool_api_key_parameter = ${hclString(t.apiKeyParameter)}`, "");
  return lines.join("\n");
}
