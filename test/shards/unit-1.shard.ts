// One of `npm run test:unit`'s processes: its share of the unit test files (test/support/unit-shard.ts).
import { runUnitShard } from "../support/unit-shard.js";

await runUnitShard(import.meta.url);
