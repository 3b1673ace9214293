/** Open the catalog for a target: SSM in the home region (aws), or <state_dir>/catalog.db (local). */
import path from "node:path";
import type { AwsClients } from "../aws/clients.js";
import type { Config } from "../config/load.js";
import type { Target } from "../config/schema.js";
import type { EventSink } from "../events.js";
import { Catalog } from "./catalog.js";

export async function openCatalog(opts: {
  target: Target;
  config: Config;
  events: EventSink;
  aws: () => Promise<AwsClients>;
}): Promise<Catalog> {
  if (opts.target === "aws") {
    const { SsmStore } = await import("./ssm-store.js");
    const clients = await opts.aws();
    return new Catalog({
      store: new SsmStore(clients.ssm),
      prefix: opts.config.aws.ssm_prefix,
      region: clients.region,
      events: opts.events,
    });
  }
  const { SqliteStore } = await import("./sqlite-store.js");
  const store = new SqliteStore(path.join(opts.config.local.state_dir, "catalog.db"));
  return new Catalog({
    store,
    prefix: `/imgtool/${opts.config.pipeline}`,
    region: "local",
    events: opts.events,
  });
}
