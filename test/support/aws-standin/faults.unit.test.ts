/**
 * The AWS stand-in's scripted faults: throttles, errors, delays and lost answers, per protocol.
 * Every operation goes through the real SDK clients made by the project's client factory (see self-test.ts).
 */
import { test, describe } from "node:test";
import { DescribeImagesCommand, RunInstancesCommand } from "@aws-sdk/client-ec2";
import {
  CreateRepositoryCommand,
  DescribeImagesCommand as EcrDescribeImagesCommand,
  DescribeRepositoriesCommand,
} from "@aws-sdk/client-ecr";
import { GetParameterCommand, PutParameterCommand } from "@aws-sdk/client-ssm";
import { GetCallerIdentityCommand } from "@aws-sdk/client-sts";
import assert from "node:assert/strict";
import { REGION, standin, clients, rejectsWith, useStandin } from "./self-test.js";

useStandin();

// ---------------------------------------------------------------- faults

describe("faults", () => {
  test("throttle on the first two calls: the SDK retries and the third attempt succeeds", async () => {
    const ssm = clients().ssm;
    await ssm.send(new PutParameterCommand({ Name: "/t", Value: "v", Type: "String" }));
    standin.faults.add({ service: "ssm", operation: "GetParameter", kind: "throttle", calls: [1, 2] });
    const out = await ssm.send(new GetParameterCommand({ Name: "/t" }));
    assert.equal(out.Parameter?.Value, "v");
    assert.equal(out.$metadata.attempts, 3);
    const attempts = standin.requests.filter((r) => r.operation === "GetParameter");
    assert.deepEqual(
      attempts.map((r) => [r.attempt, r.status]),
      [
        [1, 400],
        [2, 400],
        [3, 200],
      ],
    );
    assert.match(attempts[0]?.body ?? "", /"Name":"\/t"/);
  });

  test("throttling answers in each protocol's shape (EC2 RequestLimitExceeded, STS Throttling, ECR ThrottlingException)", async () => {
    const c = clients(REGION, { maxAttempts: 1 });
    standin.faults.add({ operation: "DescribeImages", service: "ec2", kind: "throttle" });
    standin.faults.add({ operation: "GetCallerIdentity", kind: "throttle" });
    standin.faults.add({ operation: "DescribeRepositories", kind: "throttle" });
    await rejectsWith(
      c.ec2.send(new DescribeImagesCommand({})),
      "RequestLimitExceeded",
      /Request limit exceeded/,
      400,
    );
    await rejectsWith(c.sts.send(new GetCallerIdentityCommand({})), "Throttling", /Rate exceeded/, 400);
    await rejectsWith(
      c.ecr.send(new DescribeRepositoriesCommand({})),
      "ThrottlingException",
      /Rate exceeded/,
      400,
    );
  });

  test("HTTP 500 and 503 are retried", async () => {
    const ecr = clients().ecr;
    await ecr.send(new CreateRepositoryCommand({ repositoryName: "retry" }));
    standin.faults.add({ operation: "DescribeRepositories", kind: "http500", calls: [1] });
    standin.faults.add({ operation: "DescribeRepositories", kind: "http503", calls: [2] });
    const out = await ecr.send(new DescribeRepositoriesCommand({}));
    assert.equal(out.repositories?.[0]?.repositoryName, "retry");
    assert.deepEqual(
      standin.requests.filter((r) => r.operation === "DescribeRepositories").map((r) => r.status),
      [500, 503, 200],
    );
    standin.faults.add({ operation: "GetCallerIdentity", kind: "http503" });
    await rejectsWith(
      clients(REGION, { maxAttempts: 2 }).sts.send(new GetCallerIdentityCommand({})),
      "ServiceUnavailable",
      undefined,
      503,
    );
    assert.equal(standin.count("GetCallerIdentity"), 2);
  });

  test("slow: past the client's timeout the SDK retries; without applyFirst nothing happened", async () => {
    const ssm = clients(REGION, { requestTimeoutMs: 300 }).ssm;
    standin.faults.add({ operation: "PutParameter", kind: "slow", delayMs: 600, calls: [1] });
    const out = await ssm.send(
      new PutParameterCommand({ Name: "/slow", Value: "v", Type: "String", Overwrite: true }),
    );
    assert.equal(out.Version, 1, "the first, timed-out attempt did not create a version");
    await standin.settled(); // attempt 1's delayed answer came due: still nothing done for it
    assert.equal(standin.state.region(REGION).ssm.parameters.get("/slow")?.versions.length, 1);
    assert.deepEqual(
      standin.requests.filter((r) => r.operation === "PutParameter").map((r) => [r.attempt, r.status]),
      [
        [1, 0],
        [2, 200],
      ],
    );
    standin.faults.add({ operation: "GetCallerIdentity", kind: "slow", delayMs: 2_000 });
    await rejectsWith(
      clients(REGION, { requestTimeoutMs: 300, maxAttempts: 1 }).sts.send(new GetCallerIdentityCommand({})),
      "TimeoutError",
    );
  });

  test("drop: the connection is destroyed without an answer and the SDK retries", async () => {
    const ssm = clients().ssm;
    standin.faults.add({ operation: "PutParameter", kind: "drop", calls: [1] });
    const out = await ssm.send(new PutParameterCommand({ Name: "/drop", Value: "v", Type: "String" }));
    assert.equal(out.Version, 1);
    assert.deepEqual(
      standin.requests.filter((r) => r.operation === "PutParameter").map((r) => r.status),
      [0, 200],
    );
    standin.faults.add({ operation: "GetParameter", kind: "drop" });
    await assert.rejects(
      clients(REGION, { maxAttempts: 1 }).ssm.send(new GetParameterCommand({ Name: "/drop" })),
      (e: unknown) => {
        assert.ok(e instanceof Error);
        assert.match(`${(e as { code?: string }).code ?? ""} ${e.message}`, /ECONNRESET|socket hang up/);
        return true;
      },
    );
  });

  test("error: RepositoryNotFoundException just after a create, then the repository is there", async () => {
    const ecr = clients().ecr;
    await ecr.send(new CreateRepositoryCommand({ repositoryName: "eventual" }));
    standin.faults.add({
      service: "ecr",
      operation: "DescribeRepositories",
      kind: "error",
      code: "RepositoryNotFoundException",
      message: "The repository with name 'eventual' does not exist",
      calls: [1],
    });
    await rejectsWith(
      ecr.send(new DescribeRepositoriesCommand({ repositoryNames: ["eventual"] })),
      "RepositoryNotFoundException",
      /eventual/,
      400,
    );
    const out = await ecr.send(new DescribeRepositoriesCommand({ repositoryNames: ["eventual"] }));
    assert.equal(out.repositories?.[0]?.repositoryName, "eventual");
  });

  test("applyFirst + slow: RunInstances launches, the answer is late, the retry gets the same reservation", async () => {
    const { imageId } = standin.addImage(REGION, { name: "apply-first" });
    standin.faults.add({
      operation: "RunInstances",
      kind: "slow",
      delayMs: 2_000,
      calls: [1],
      applyFirst: true,
    });
    const ec2 = clients(REGION, { requestTimeoutMs: 300 }).ec2;
    const out = await ec2.send(new RunInstancesCommand({ ImageId: imageId, MinCount: 1, MaxCount: 1 }));
    const runs = standin.requests.filter((r) => r.operation === "RunInstances");
    assert.equal(runs.length, 2);
    const token = (runs[0]?.params as Record<string, string>)["ClientToken"];
    assert.ok(token);
    assert.equal((runs[1]?.params as Record<string, string>)["ClientToken"], token);
    const instances = [...standin.state.region(REGION).ec2.instances.values()];
    assert.equal(instances.length, 1, "exactly one instance despite the retry");
    assert.equal(out.Instances?.[0]?.InstanceId, instances[0]?.instanceId);
  });

  test("applyFirst + drop / throttle: the state changed although the client saw a failure", async () => {
    standin.faults.add({ operation: "PutParameter", kind: "drop", calls: [1], applyFirst: true });
    const once = clients(REGION, { maxAttempts: 1 }).ssm;
    await assert.rejects(once.send(new PutParameterCommand({ Name: "/af", Value: "v1", Type: "String" })));
    const got = await clients().ssm.send(new GetParameterCommand({ Name: "/af" }));
    assert.equal(got.Parameter?.Value, "v1");

    standin.faults.add({ operation: "PutParameter", kind: "throttle", calls: [1], applyFirst: true });
    await rejectsWith(
      once.send(new PutParameterCommand({ Name: "/af", Value: "v2", Type: "String", Overwrite: true })),
      "ThrottlingException",
    );
    const after2 = await clients().ssm.send(new GetParameterCommand({ Name: "/af" }));
    assert.equal(after2.Parameter?.Version, 2);
  });

  test("faults are scoped by service and counted per fault from when they were added", async () => {
    await clients().ec2.send(new DescribeImagesCommand({}));
    standin.faults.add({
      service: "ecr",
      operation: "DescribeImages",
      kind: "error",
      code: "RepositoryNotFoundException",
      calls: [2],
    });
    const c = clients(REGION, { maxAttempts: 1 });
    await c.ec2.send(new DescribeImagesCommand({})); // ec2: not counted
    standin.addEcrImage(REGION, "scoped", { digest: `sha256:${"3".repeat(64)}`, tags: ["x"] });
    await c.ecr.send(new EcrDescribeImagesCommand({ repositoryName: "scoped" })); // ecr call 1
    await rejectsWith(
      c.ecr.send(new EcrDescribeImagesCommand({ repositoryName: "scoped" })),
      "RepositoryNotFoundException",
    );
    const third = await c.ecr.send(new EcrDescribeImagesCommand({ repositoryName: "scoped" }));
    assert.equal(third.imageDetails?.length, 1);
    standin.faults.clear();
    standin.faults.add({ operation: "GetCallerIdentity", kind: "error", code: "AccessDenied", status: 403 });
    await rejectsWith(c.sts.send(new GetCallerIdentityCommand({})), "AccessDenied", undefined, 403);
  });
});
