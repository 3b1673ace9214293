// The one architecture module: this machine's arch, an EC2 instance type's, and which one each target uses.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { instanceArch, machineArch, targetArch, targetArches } from "../../src/config/arch.js";
import { parseConfig } from "../../src/config/load.js";

function config(yaml: string) {
  const r = parseConfig(yaml, { baseDir: "/tmp" });
  if (!r.config) throw new Error(r.errors.join("\n"));
  return r.config;
}

describe("config/arch", () => {
  test("architectures from instance families (Graviton carries a g)", () => {
    const cases: [string, string][] = [
      ["c7i.large", "x86_64"],
      ["t3.medium", "x86_64"],
      ["m7a.xlarge", "x86_64"],
      ["g4dn.xlarge", "x86_64"],
      ["c5ad.large", "x86_64"],
      ["c7g.large", "arm64"],
      ["m6gd.xlarge", "arm64"],
      ["t4g.small", "arm64"],
      ["a1.medium", "arm64"],
      ["c7gn.large", "arm64"],
      ["x2gd.large", "arm64"],
      ["im4gn.large", "arm64"],
      ["is4gen.large", "arm64"],
      ["g5g.xlarge", "arm64"],
      ["mac1.metal", "x86_64"],
      ["mac2.metal", "arm64"],
    ];
    for (const [t, a] of cases) assert.equal(instanceArch(t), a, t);
  });

  test("machineArch names this machine in EC2's names", () => {
    // eslint-disable-next-line no-restricted-properties -- the independent judge: Node's own answer
    const expected = { arm64: "arm64", x64: "x86_64" }[process.arch as string];
    assert.equal(machineArch(), expected ?? "x86_64");
  });

  test("targetArch: the instance type's on aws, this machine's on the local target", () => {
    // Both architectures, whatever this machine is: one of them is not the machine's.
    for (const t of ["c7i.large", "c7g.large"]) {
      assert.equal(targetArch("aws", t), instanceArch(t), t);
      assert.equal(targetArch("local", t), machineArch(), t);
    }
  });

  test("targetArches: a role's architectures in ARCHES order (aws), this machine's only (local)", () => {
    const c = config(
      "roles:\n  task-runner:\n    instance_types: [c7g.large, c7i.large, m7g.large]\n" +
        "  orchestrator:\n    instance_types: [t4g.small]\n",
    );
    assert.deepEqual(targetArches(c, "task-runner", "aws"), ["x86_64", "arm64"]);
    assert.deepEqual(targetArches(c, "orchestrator", "aws"), ["arm64"]);
    assert.deepEqual(targetArches(c, "task-runner", "local"), [machineArch()]);
    assert.deepEqual(targetArches(c, "orchestrator", "local"), [machineArch()]);
  });
});
