// Write the documents generated from the config schema: imgtool.config.schema.json,
// imgtool.config.example.yaml and the README's config reference. `--check` fails when one is stale.
import { readFileSync, writeFileSync } from "node:fs";
import { configJsonSchema } from "../src/config/json-schema.js";
import { exampleYaml, withReference } from "../src/config/docs.js";
import { projectPath } from "../src/paths.js";

const check = process.argv.includes("--check");
const files: [string, string][] = [
  ["imgtool.config.schema.json", `${JSON.stringify(configJsonSchema(), null, 2)}\n`],
  ["imgtool.config.example.yaml", exampleYaml()],
  ["README.md", withReference(readFileSync(projectPath("README.md"), "utf8"))],
];
let stale = 0;
for (const [file, text] of files) {
  const p = projectPath(file);
  let old: string;
  try {
    old = readFileSync(p, "utf8");
  } catch {
    old = "";
  }
  if (old === text) continue;
  if (check) {
    console.error(`${file} is out of date: run \`npm run schema\``);
    stale++;
  } else {
    writeFileSync(p, text);
    console.log(`wrote ${file}`);
  }
}
process.exitCode = stale ? 1 : 0;
