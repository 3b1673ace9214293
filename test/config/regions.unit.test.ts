// The one regions module: the home region and the regions a target publishes to.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { parseConfig } from "../../src/config/load.js";
import { homeRegion, LOCAL_REGION, targetRegions } from "../../src/config/regions.js";

function config(yaml: string) {
  const r = parseConfig(yaml, { baseDir: "/tmp" });
  if (!r.config) throw new Error(r.errors.join("\n"));
  return r.config;
}

describe("config/regions", () => {
  test("home is the first configured region; us-east-1 when none is configured", () => {
    assert.equal(homeRegion(config("aws:\n  regions: [eu-west-1, us-east-2]\n")), "eu-west-1");
    assert.equal(homeRegion(config("")), "us-east-1");
    assert.throws(() => homeRegion({ aws: { regions: [] } } as never), /aws.regions is empty/);
  });

  test("aws publishes to every configured region, home first; local to the one region local", () => {
    const c = config("aws:\n  regions: [eu-west-1, us-east-2]\n");
    assert.deepEqual(targetRegions(c, "aws"), ["eu-west-1", "us-east-2"]);
    assert.deepEqual(targetRegions(c, "local"), [LOCAL_REGION]);
    assert.equal(LOCAL_REGION, "local");
    // A copy: the caller may not change the config through it.
    targetRegions(c, "aws").push("ap-south-1");
    assert.deepEqual(c.aws.regions, ["eu-west-1", "us-east-2"]);
  });
});
