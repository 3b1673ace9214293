/** `imgtool config show|get|validate|schema`. */
import { getConfigValue } from "../../config/load.js";
import { configJsonSchema } from "../../config/json-schema.js";
import { UsageError } from "../../errors.js";
import type { Context, GlobalArgs } from "../context.js";

export async function configCommand(
  ctx: Context,
  args: GlobalArgs & { action: "show" | "get" | "validate" | "schema"; path?: string },
): Promise<number> {
  const { out, config } = ctx;
  switch (args.action) {
    case "show":
      out.result(config, () => JSON.stringify(config, null, 2));
      return 0;
    case "get": {
      if (!args.path)
        throw new UsageError("`imgtool config get` needs a dotted path.", {
          fix: "e.g. imgtool config get local.registry_port",
        });
      const value = getConfigValue(config, args.path);
      out.result({ path: args.path, value }, () =>
        typeof value === "object" ? JSON.stringify(value, null, 2) : String(value),
      );
      return 0;
    }
    case "validate":
      out.result({ valid: true, source: config.source }, () =>
        config.source ? `${config.source}: valid` : "no config file: the built-in defaults are valid",
      );
      return 0;
    case "schema":
      out.result(configJsonSchema(), () => JSON.stringify(configJsonSchema(), null, 2));
      return 0;
  }
}
