/**
 * The AWS stand-in's SSM Parameter Store: parameters, versions, labels, paths, SecureString, limits.
 * Every operation goes through the real SDK clients made by the project's client factory (see self-test.ts).
 */
import { test, describe } from "node:test";
import {
  DeleteParameterCommand,
  GetParameterCommand,
  GetParameterHistoryCommand,
  GetParametersByPathCommand,
  GetParametersCommand,
  LabelParameterVersionCommand,
  PutParameterCommand,
  UnlabelParameterVersionCommand,
} from "@aws-sdk/client-ssm";
import assert from "node:assert/strict";
import { REGION, OTHER, standin, clients, rejectsWith, useStandin } from "./self-test.js";

useStandin();

// ---------------------------------------------------------------- SSM

describe("SSM Parameter Store", () => {
  test("PutParameter versions, Overwrite, Type, Tier; GetParameter with selectors and decryption", async () => {
    const ssm = clients().ssm;
    const v1 = await ssm.send(new PutParameterCommand({ Name: "/bench/ami", Value: "one", Type: "String" }));
    assert.equal(v1.Version, 1);
    assert.equal(v1.Tier, "Standard");
    await rejectsWith(
      ssm.send(new PutParameterCommand({ Name: "/bench/ami", Value: "two", Type: "String" })),
      "ParameterAlreadyExists",
    );
    const v2 = await ssm.send(new PutParameterCommand({ Name: "/bench/ami", Value: "two", Overwrite: true }));
    assert.equal(v2.Version, 2);
    await rejectsWith(
      ssm.send(new PutParameterCommand({ Name: "/bench/new", Value: "x" })),
      "ValidationException",
      /type/,
    );
    const latest = await ssm.send(new GetParameterCommand({ Name: "/bench/ami" }));
    assert.equal(latest.Parameter?.Value, "two");
    assert.equal(latest.Parameter?.Version, 2);
    assert.equal(latest.Parameter?.DataType, "text");
    assert.equal(latest.Parameter?.ARN, "arn:aws:ssm:us-east-1:123456789012:parameter/bench/ami");
    const first = await ssm.send(new GetParameterCommand({ Name: "/bench/ami:1" }));
    assert.equal(first.Parameter?.Value, "one");
    assert.equal(first.Parameter?.Selector, ":1");
    await rejectsWith(
      ssm.send(new GetParameterCommand({ Name: "/bench/ami:7" })),
      "ParameterVersionNotFound",
    );
    await rejectsWith(
      ssm.send(new GetParameterCommand({ Name: "/bench/none" })),
      "ParameterNotFound",
      undefined,
      400,
    );

    await ssm.send(
      new PutParameterCommand({ Name: "/bench/secret", Value: "hunter2", Type: "SecureString" }),
    );
    const plain = await ssm.send(new GetParameterCommand({ Name: "/bench/secret", WithDecryption: true }));
    assert.equal(plain.Parameter?.Value, "hunter2");
    const sealed = await ssm.send(new GetParameterCommand({ Name: "/bench/secret" }));
    assert.notEqual(sealed.Parameter?.Value, "hunter2");
    assert.ok(
      !Buffer.from(sealed.Parameter?.Value ?? "", "base64")
        .toString()
        .includes("hunter2"),
    );

    const adv = await ssm.send(
      new PutParameterCommand({
        Name: "/bench/big",
        Value: "x".repeat(5000),
        Type: "String",
        Tier: "Intelligent-Tiering",
      }),
    );
    assert.equal(adv.Tier, "Advanced");
    await rejectsWith(
      ssm.send(new PutParameterCommand({ Name: "/bench/big2", Value: "x".repeat(5000), Type: "String" })),
      "ValidationException",
      /4096/,
    );
    // Other regions have their own parameters.
    await rejectsWith(
      clients(OTHER).ssm.send(new GetParameterCommand({ Name: "/bench/ami" })),
      "ParameterNotFound",
    );
  });

  test("GetParameters: at most 10 names, version and label selectors, InvalidParameters as given", async () => {
    const ssm = clients().ssm;
    await ssm.send(new PutParameterCommand({ Name: "/p/a", Value: "a1", Type: "String" }));
    await ssm.send(new PutParameterCommand({ Name: "/p/a", Value: "a2", Type: "String", Overwrite: true }));
    await ssm.send(
      new LabelParameterVersionCommand({ Name: "/p/a", ParameterVersion: 1, Labels: ["stable"] }),
    );
    const out = await ssm.send(
      new GetParametersCommand({
        Names: ["/p/a", "/p/a:1", "/p/a:stable", "/p/a:9", "/p/a:nolabel", "/p/missing"],
      }),
    );
    assert.deepEqual(
      out.Parameters?.map((p) => `${p.Name}${p.Selector ?? ""}=${p.Value}`),
      ["/p/a=a2", "/p/a:1=a1", "/p/a:stable=a1"],
    );
    assert.deepEqual(out.InvalidParameters, ["/p/a:9", "/p/a:nolabel", "/p/missing"]);
    const eleven = Array.from({ length: 11 }, (_, i) => `/p/n${i}`);
    await rejectsWith(ssm.send(new GetParametersCommand({ Names: eleven })), "ValidationException", /10/);
  });

  test("GetParametersByPath: direct children or recursive, MaxResults <= 10, NextToken pages", async () => {
    const ssm = clients().ssm;
    for (const name of ["/fleet/a", "/fleet/b", "/fleet/c", "/fleet/deep/d", "/fleet/deep/e", "/other/x"]) {
      await ssm.send(new PutParameterCommand({ Name: name, Value: name, Type: "String" }));
    }
    const direct = await ssm.send(new GetParametersByPathCommand({ Path: "/fleet" }));
    assert.deepEqual(
      direct.Parameters?.map((p) => p.Name),
      ["/fleet/a", "/fleet/b", "/fleet/c"],
    );
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await ssm.send(
        new GetParametersByPathCommand({ Path: "/fleet/", Recursive: true, MaxResults: 2, NextToken: token }),
      );
      seen.push(...(page.Parameters ?? []).map((p) => p.Name ?? ""));
      token = page.NextToken;
      pages += 1;
    } while (token);
    assert.equal(pages, 3);
    assert.deepEqual(seen, ["/fleet/a", "/fleet/b", "/fleet/c", "/fleet/deep/d", "/fleet/deep/e"]);
    await rejectsWith(
      ssm.send(new GetParametersByPathCommand({ Path: "/fleet", MaxResults: 11 })),
      "ValidationException",
    );
  });

  test("GetParameterHistory: versions with labels and data type, MaxResults <= 50, pagination", async () => {
    const ssm = clients().ssm;
    for (let i = 1; i <= 5; i++) {
      await ssm.send(
        new PutParameterCommand({ Name: "/h", Value: `v${i}`, Type: "String", Overwrite: i > 1 }),
      );
    }
    await ssm.send(new LabelParameterVersionCommand({ Name: "/h", ParameterVersion: 2, Labels: ["blue"] }));
    const p1 = await ssm.send(new GetParameterHistoryCommand({ Name: "/h", MaxResults: 3 }));
    assert.deepEqual(
      p1.Parameters?.map((p) => p.Version),
      [1, 2, 3],
    );
    assert.deepEqual(p1.Parameters?.[1]?.Labels, ["blue"]);
    assert.equal(p1.Parameters?.[0]?.DataType, "text");
    assert.ok(p1.Parameters?.[0]?.LastModifiedDate instanceof Date);
    assert.ok(p1.NextToken);
    const p2 = await ssm.send(
      new GetParameterHistoryCommand({ Name: "/h", MaxResults: 3, NextToken: p1.NextToken }),
    );
    assert.deepEqual(
      p2.Parameters?.map((p) => p.Value),
      ["v4", "v5"],
    );
    assert.equal(p2.NextToken, undefined);
    await rejectsWith(
      ssm.send(new GetParameterHistoryCommand({ Name: "/h", MaxResults: 51 })),
      "ValidationException",
    );
    await rejectsWith(ssm.send(new GetParameterHistoryCommand({ Name: "/nope" })), "ParameterNotFound");
  });

  test("LabelParameterVersion: labels move, bad labels come back in InvalidLabels with HTTP 200, limits", async () => {
    const ssm = clients().ssm;
    for (let i = 1; i <= 3; i++) {
      await ssm.send(
        new PutParameterCommand({ Name: "/l", Value: `v${i}`, Type: "String", Overwrite: i > 1 }),
      );
    }
    const onLatest = await ssm.send(new LabelParameterVersionCommand({ Name: "/l", Labels: ["current"] }));
    assert.equal(onLatest.ParameterVersion, 3);
    await ssm.send(
      new LabelParameterVersionCommand({ Name: "/l", ParameterVersion: 1, Labels: ["current"] }),
    );
    const versions = standin.state.region(REGION).ssm.parameters.get("/l")?.versions ?? [];
    assert.deepEqual(
      versions.map((v) => v.labels),
      [["current"], [], []],
    );

    const mixed = await ssm.send(
      new LabelParameterVersionCommand({
        Name: "/l",
        ParameterVersion: 2,
        Labels: ["ok-label_1.0", "1starts-with-digit", "awsReserved", "SSMx", "has space", "x".repeat(101)],
      }),
    );
    assert.equal(mixed.$metadata.httpStatusCode, 200);
    assert.deepEqual(mixed.InvalidLabels, [
      "1starts-with-digit",
      "awsReserved",
      "SSMx",
      "has space",
      "x".repeat(101),
    ]);
    assert.deepEqual(versions[1]?.labels, ["ok-label_1.0"]);
    const rec = standin.requests.filter((r) => r.operation === "LabelParameterVersion").at(-1);
    assert.equal(rec?.status, 200);

    const ten = Array.from({ length: 10 }, (_, i) => `l${i}`);
    await ssm.send(new LabelParameterVersionCommand({ Name: "/l", ParameterVersion: 3, Labels: ten }));
    await rejectsWith(
      ssm.send(new LabelParameterVersionCommand({ Name: "/l", ParameterVersion: 3, Labels: ["eleventh"] })),
      "ParameterVersionLabelLimitExceeded",
    );
    await rejectsWith(
      ssm.send(new LabelParameterVersionCommand({ Name: "/l", ParameterVersion: 9, Labels: ["x"] })),
      "ParameterVersionNotFound",
    );
  });

  test("UnlabelParameterVersion reports RemovedLabels and InvalidLabels", async () => {
    const ssm = clients().ssm;
    await ssm.send(new PutParameterCommand({ Name: "/u", Value: "v", Type: "String" }));
    await ssm.send(new LabelParameterVersionCommand({ Name: "/u", ParameterVersion: 1, Labels: ["a", "b"] }));
    const out = await ssm.send(
      new UnlabelParameterVersionCommand({ Name: "/u", ParameterVersion: 1, Labels: ["a", "zzz"] }),
    );
    assert.deepEqual(out.RemovedLabels, ["a"]);
    assert.deepEqual(out.InvalidLabels, ["zzz"]);
    const got = await ssm.send(new GetParameterCommand({ Name: "/u:b" }));
    assert.equal(got.Parameter?.Version, 1);
    await rejectsWith(ssm.send(new GetParameterCommand({ Name: "/u:a" })), "ParameterNotFound");
  });

  test("past 100 versions the oldest is dropped silently", async () => {
    const ssm = clients().ssm;
    for (let i = 1; i <= 101; i++) {
      await ssm.send(
        new PutParameterCommand({ Name: "/many", Value: `v${i}`, Type: "String", Overwrite: true }),
      );
    }
    const versions = standin.state.region(REGION).ssm.parameters.get("/many")?.versions ?? [];
    assert.equal(versions.length, 100);
    assert.equal(versions[0]?.version, 2);
    await rejectsWith(ssm.send(new GetParameterCommand({ Name: "/many:1" })), "ParameterVersionNotFound");
    assert.equal((await ssm.send(new GetParameterCommand({ Name: "/many" }))).Parameter?.Version, 101);
    const history = await ssm.send(new GetParameterHistoryCommand({ Name: "/many", MaxResults: 50 }));
    assert.equal(history.Parameters?.[0]?.Version, 2);
  });

  test("a labelled oldest version blocks version 101 with ParameterMaxVersionLimitExceeded", async () => {
    const ssm = clients().ssm;
    for (let i = 1; i <= 100; i++) {
      await ssm.send(
        new PutParameterCommand({ Name: "/pinned", Value: `v${i}`, Type: "String", Overwrite: true }),
      );
    }
    await ssm.send(
      new LabelParameterVersionCommand({ Name: "/pinned", ParameterVersion: 1, Labels: ["golden"] }),
    );
    await rejectsWith(
      ssm.send(new PutParameterCommand({ Name: "/pinned", Value: "v101", Type: "String", Overwrite: true })),
      "ParameterMaxVersionLimitExceeded",
      /Version 1/,
    );
    assert.equal((await ssm.send(new GetParameterCommand({ Name: "/pinned" }))).Parameter?.Version, 100);
    // Moving the label away unblocks the write.
    await ssm.send(
      new LabelParameterVersionCommand({ Name: "/pinned", ParameterVersion: 50, Labels: ["golden"] }),
    );
    const ok = await ssm.send(
      new PutParameterCommand({ Name: "/pinned", Value: "v101", Type: "String", Overwrite: true }),
    );
    assert.equal(ok.Version, 101);
  });

  test("aws:ec2:image: malformed values fail; a missing AMI is accepted but the write is dropped", async () => {
    const { imageId } = standin.addImage(REGION, { name: "catalog-ami" });
    const ssm = clients().ssm;
    const put = (Name: string, Value: string, Overwrite = false) =>
      ssm.send(
        new PutParameterCommand({ Name, Value, Type: "String", DataType: "aws:ec2:image", Overwrite }),
      );
    await rejectsWith(put("/ami/bad", "not-an-ami"), "ValidationException", /not-an-ami/);
    const v1 = await put("/ami/current", imageId);
    assert.equal(v1.Version, 1);
    const ghost = "ami-0fffffffffffffff0";
    const v2 = await put("/ami/current", ghost, true);
    assert.equal(v2.Version, 2, "PutParameter answers success with the new version");
    await rejectsWith(
      ssm.send(new GetParameterCommand({ Name: "/ami/current:2" })),
      "ParameterVersionNotFound",
    );
    const now = await ssm.send(new GetParameterCommand({ Name: "/ami/current" }));
    assert.equal(now.Parameter?.Value, imageId);
    assert.equal(now.Parameter?.DataType, "aws:ec2:image");
    // The AMI exists in us-east-1 only: the same write in another region is dropped.
    const other = await clients(OTHER).ssm.send(
      new PutParameterCommand({
        Name: "/ami/current",
        Value: imageId,
        Type: "String",
        DataType: "aws:ec2:image",
      }),
    );
    assert.equal(other.Version, 1);
    await rejectsWith(
      clients(OTHER).ssm.send(new GetParameterCommand({ Name: "/ami/current" })),
      "ParameterNotFound",
    );
    assert.deepEqual(
      standin.state.region(REGION).ssm.droppedWrites.map((d) => `${d.name}:${d.version}=${d.value}`),
      [`/ami/current:2=${ghost}`],
    );
    const v3 = await put("/ami/current", imageId, true);
    assert.equal(v3.Version, 3);
  });

  test("parameter names: SSM's exceptions for depth (HierarchyLevelLimitExceededException), prefix and length", async () => {
    const ssm = clients().ssm;
    const put = (Name: string) => ssm.send(new PutParameterCommand({ Name, Value: "v", Type: "String" }));
    const levels = (n: number) => Array.from({ length: n }, (_, i) => `/l${i + 1}`).join("");
    await rejectsWith(put(levels(16)), "HierarchyLevelLimitExceededException", /maximum of 15 levels/);
    assert.equal((await put(levels(15))).Version, 1);
    for (const reserved of ["/aws/x", "/ssm/x", "/AWSx/y", "ssmfoo"])
      await rejectsWith(put(reserved), "ValidationException", /can't be prefixed with "aws" or "ssm"/);
    await rejectsWith(put(`/${"n".repeat(1011)}`), "ValidationException", /1011/);
    await rejectsWith(put(`/${"n".repeat(2048)}`), "ValidationException", /less than or equal to 2048/);
    await rejectsWith(put("/bad name"), "ValidationException", /fully qualified/);
  });

  test("DeleteParameter removes every version; deleting again is ParameterNotFound", async () => {
    const ssm = clients().ssm;
    await ssm.send(new PutParameterCommand({ Name: "/d", Value: "v", Type: "String" }));
    await ssm.send(new DeleteParameterCommand({ Name: "/d" }));
    await rejectsWith(ssm.send(new GetParameterCommand({ Name: "/d" })), "ParameterNotFound");
    await rejectsWith(ssm.send(new DeleteParameterCommand({ Name: "/d" })), "ParameterNotFound");
  });
});
