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
    finish({
      exitCode: 2,
      stdout: "a".repeat(23_999) + "bc" + "x".repeat(30_000),
      stderr: "e".repeat(9_000),
    });
    const done = await get();
    assert.equal(done.Status, "Failed");
    assert.equal(done.ResponseCode, 2);
    // The FIRST 24,000 characters of stdout, the first 8,000 of stderr: the end of a long output is lost.
    assert.equal(done.StandardOutputContent, "a".repeat(23_999) + "b");
    assert.equal(done.StandardErrorContent, "e".repeat(8_000));
  });

  test("SendCommand: a command whose parameters make a document over 64 KB is MaxDocumentSizeExceeded, and never runs", async () => {
    const id = await instance();
    await bootInstances(standin.state, REGION, clients().ssm);
    let ran = 0;
    setInstanceShell(standin.state, REGION, async () => {
      ran++;
      return { exitCode: 0, stdout: "", stderr: "" };
    });
    // The parameters' JSON in UTF-8 bytes, plus 4 KB for the document's own text, may be at most 64 KB.
    const overhead = JSON.stringify({ commands: [""] }).length;
    const at = (bytes: number) => ({ Parameters: { commands: ["x".repeat(bytes - overhead)] } });
    await send(id, at(60 * 1024));
    await rejectsWith(
      send(id, at(60 * 1024 + 1)),
      "MaxDocumentSizeExceeded",
      /^The size limit of a document is 64 KB\.$/,
    );
    // Counted in UTF-8 bytes, not characters: three-byte characters, 20,475 of them, are just over.
    const euros = "\u20ac".repeat(Math.ceil((60 * 1024 - overhead + 1) / 3));
    await rejectsWith(send(id, { Parameters: { commands: [euros] } }), "MaxDocumentSizeExceeded");
    assert.equal(ran, 1, "only the command within the limit ran");
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
