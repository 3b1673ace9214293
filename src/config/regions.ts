/**
 * The one place that knows regions per target: the home region (where bakes run and the catalog is written
 * first) and the regions a target publishes to. On the local target everything is in the one region "local".
 */
import type { Config } from "./load.js";
import type { Target } from "./schema.js";

/** The region name of the local target (its catalog, its "copies"). */
export const LOCAL_REGION = "local";

/** The home region: the config's first aws region (the schema asks for at least one). */
export function homeRegion(config: Pick<Config, "aws">): string {
  const home = config.aws.regions[0];
  if (home === undefined) throw new Error("aws.regions is empty (the config schema requires one region)");
  return home;
}

/** Every region a target's artefacts are published to: aws, the config's regions, home first; local, "local". */
export function targetRegions(config: Pick<Config, "aws">, target: Target): string[] {
  return target === "aws" ? [...config.aws.regions] : [LOCAL_REGION];
}
