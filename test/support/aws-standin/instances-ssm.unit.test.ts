/**
 * The AWS stand-in's Run Command and DeleteParameters, as strict as AWS: SendCommand only to running, managed
 * instances and only with AWS-RunShellScript and its parameters; an invocation unknown at first, then Pending,
 * InProgress, Success or Failed; DeleteParameters in batches of 1 to 10. Through the real SDK (see self-test.ts).
 */
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { RunInstancesCommand } from "@aws-sdk/client-ec2";
import {
  DeleteParametersCommand,
  GetCommandInvocationCommand,
  PutParameterCommand,
  SendCommandCommand,
} from "@aws-sdk/client-ssm";
import { bootInstances, setInstanceShell } from "./instances-ssm.js";
import { REGION, standin, clients, rejectsWith, useStandin } from "./self-test.js";

useStandin();

let amis = 0;
async function instance(profile = true): Promise<string> {
  const { imageId } = standin.addImage(REGION, { name: `rc-${++amis}`, architecture: "x86_64" });
  const r = await clients().ec2.send(
    new RunInstancesCommand({
      ImageId: imageId,
      InstanceType: "c7i.large",
      MinCount: 1,
      MaxCount: 1,
      ...(profile ? { IamInstanceProfile: { Name: "imgtool-instances" } } : {}),
    }),
  );
  return r.Instances![0]!.InstanceId!;
}

const send = (id: string, extra: Record<string, unknown> = {}) =>
  clients().ssm.send(
    new SendCommandCommand({
      DocumentName: "AWS-RunShellScript",
      InstanceIds: [id],
      Parameters: { commands: ["echo hi"] },
      ...extra,
    }),
  );

describe("Run Command", () => {
  test("SendCommand refuses what AWS refuses: unmanaged, not running, unknown document, bad parameters and timeouts", async () => {
    const id = await instance();
    await rejectsWith(send(id), "InvalidInstanceId", /not in a valid state/);
    const bare = await instance(false);
    await bootInstances(standin.state, REGION, clients().ssm);
    await rejectsWith(send(bare), "InvalidInstanceId", undefined);
    await rejectsWith(send(id, { DocumentName: "AWS-RunPowerShellScript" }), "InvalidDocument");
    await rejectsWith(send(id, { Parameters: {} }), "InvalidParameters");
    await rejectsWith(send(id, { Parameters: { commands: ["true"], sudo: ["yes"] } }), "InvalidParameters");
    await rejectsWith(send(id, { TimeoutSeconds: 10 }), "ValidationException");
    await rejectsWith(send("i-0000000000000dead"), "InvalidInstanceId");
    standin.state.region(REGION).ec2.instances.get(id)!.state = "stopped";
    await rejectsWith(send(id), "InvalidInstanceId");
  });

  test("an invocation: unknown at first, Pending, InProgress while the script runs, then Success or Failed with its output", async () => {
    const id = await instance();
    await bootInstances(standin.state, REGION, clients().ssm);
    let finish!: (r: { exitCode: number; stdout: string; stderr: string }) => void;
    setInstanceShell(standin.state, REGION, () => new Promise((r) => (finish = r)));
    const sent = await send(id, { Parameters: { commands: ["work"], executionTimeout: ["60"] } });
    const get = () =>
      clients().ssm.send(
        new GetCommandInvocationCommand({ CommandId: sent.Command!.CommandId!, InstanceId: id }),
      );
    await rejectsWith(get(), "InvocationDoesNotExist");
    assert.equal((await get()).Status, "Pending");
    assert.equal((await get()).Status, "InProgress");
    finish({ exitCode: 2, stdout: "x".repeat(30_000), stderr: "bad" });
    const done = await get();
    assert.equal(done.Status, "Failed");
    assert.equal(done.ResponseCode, 2);
    assert.equal(done.StandardOutputContent!.length, 24_000, "GetCommandInvocation shows 24,000 characters");
    assert.equal(done.StandardErrorContent, "bad");
  });
});

describe("DeleteParameters", () => {
  test("1 to 10 names; the deleted and the missing ones answered apart", async () => {
    const ssm = clients().ssm;
    for (const n of ["/r/a", "/r/b"])
      await ssm.send(new PutParameterCommand({ Name: n, Value: "v", Type: "String" }));
    const r = await ssm.send(new DeleteParametersCommand({ Names: ["/r/a", "/r/b", "/r/gone"] }));
    assert.deepEqual(r.DeletedParameters, ["/r/a", "/r/b"]);
    assert.deepEqual(r.InvalidParameters, ["/r/gone"]);
    await rejectsWith(
      ssm.send(new DeleteParametersCommand({ Names: Array.from({ length: 11 }, (_, i) => `/r/${i}`) })),
      "ValidationException",
    );
    await rejectsWith(ssm.send(new DeleteParametersCommand({ Names: [] })), "ValidationException");
  });
});
