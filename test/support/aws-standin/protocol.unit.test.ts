/**
 * The AWS stand-in's protocol layer: routing by service and operation, the request record, protocol errors, reset.
 * Every operation goes through the real SDK clients made by the project's client factory (see self-test.ts).
 */
import { test, describe } from "node:test";
import { DescribeImagesCommand } from "@aws-sdk/client-ec2";
import {
  CreateRepositoryCommand,
  DescribeImagesCommand as EcrDescribeImagesCommand,
} from "@aws-sdk/client-ecr";
import { PutParameterCommand } from "@aws-sdk/client-ssm";
import { GetCallerIdentityCommand } from "@aws-sdk/client-sts";
import assert from "node:assert/strict";
import { REGION, OTHER, standin, clients, rejectsWith, useStandin } from "./self-test.js";

useStandin();

// ---------------------------------------------------------------- routing and recording

describe("routing and recording", () => {
  test("STS GetCallerIdentity answers the account; the request is recorded with region, attempt and form", async () => {
    const out = await clients(OTHER).sts.send(new GetCallerIdentityCommand({}));
    assert.equal(out.Account, "123456789012");
    assert.equal(out.Arn, "arn:aws:iam::123456789012:user/standin");
    assert.ok(out.UserId);
    assert.equal(standin.requests.length, 1);
    const r = standin.requests[0];
    assert.equal(r?.service, "sts");
    assert.equal(r?.operation, "GetCallerIdentity");
    assert.equal(r?.region, OTHER);
    assert.equal(r?.attempt, 1);
    assert.equal(r?.status, 200);
    assert.deepEqual(r?.params, { Action: "GetCallerIdentity", Version: "2011-06-15" });
    assert.match(r?.headers["authorization"] ?? "", /\/eu-west-1\/sts\/aws4_request/);
    assert.equal(standin.count("GetCallerIdentity", "sts"), 1);
    assert.equal(standin.count("GetCallerIdentity", "ec2"), 0);
  });

  test("EC2 and ECR operations of the same name are told apart; JSON params are parsed", async () => {
    const c = clients();
    await c.ec2.send(new DescribeImagesCommand({ Owners: ["self"] }));
    await c.ecr.send(new CreateRepositoryCommand({ repositoryName: "bench" }));
    await c.ecr.send(new EcrDescribeImagesCommand({ repositoryName: "bench" }));
    assert.equal(standin.count("DescribeImages"), 2);
    assert.equal(standin.count("DescribeImages", "ec2"), 1);
    assert.equal(standin.count("DescribeImages", "ecr"), 1);
    const ecrReq = standin.requests.find((r) => r.service === "ecr" && r.operation === "DescribeImages");
    assert.deepEqual(ecrReq?.params, { repositoryName: "bench" });
    const ec2Req = standin.requests.find((r) => r.service === "ec2");
    assert.equal((ec2Req?.params as Record<string, string>)["Owner.1"], "self");
  });

  test("request bodies are recorded verbatim, so tests can look for planted secrets", async () => {
    await clients().ssm.send(
      new PutParameterCommand({ Name: "/bench/token", Value: "s3cr3t-PLANTED", Type: "SecureString" }),
    );
    const hits = standin.requests.filter((r) => r.body.includes("s3cr3t-PLANTED"));
    assert.equal(hits.length, 1);
    assert.equal(hits[0]?.operation, "PutParameter");
  });

  test("unknown JSON operations and Query actions are answered with the protocol's error", async () => {
    const json = await fetch(standin.endpoint, {
      method: "POST",
      headers: { "x-amz-target": "AmazonSSM.NoSuchThing", "content-type": "application/x-amz-json-1.1" },
      body: "{}",
    });
    assert.equal(json.status, 400);
    assert.equal(((await json.json()) as { __type: string }).__type, "UnknownOperationException");
    const query = await fetch(standin.endpoint, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "Action=NoSuchAction&Version=2016-11-15",
    });
    assert.equal(query.status, 400);
    assert.match(await query.text(), /<Code>InvalidAction<\/Code>/);
    assert.equal(standin.requests.length, 2);
  });

  test("reset clears state, requests and faults", async () => {
    standin.addImage(REGION, { name: "to-forget" });
    standin.faults.add({ operation: "GetCallerIdentity", kind: "error", code: "AccessDenied" });
    await rejectsWith(clients().sts.send(new GetCallerIdentityCommand({})), "AccessDenied");
    standin.reset();
    assert.equal(standin.requests.length, 0);
    assert.equal(standin.state.region(REGION).ec2.images.size, 0);
    const out = await clients().sts.send(new GetCallerIdentityCommand({}));
    assert.equal(out.Account, "123456789012");
  });
});
