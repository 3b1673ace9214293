/** The JSON Schema of the config file, generated from the zod schema (for editors: imgtool.config.schema.json). */
import { z } from "zod";
import { ConfigSchema } from "./schema.js";

export function configJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(ConfigSchema, { io: "input", unrepresentable: "any" }),
    $id: "https://github.com/imgtool/imgtool/imgtool.config.schema.json",
    title: "imgtool config",
  };
}
