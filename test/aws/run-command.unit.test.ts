// SSM Run Command through the real SDK to the wire-level AWS stand-in, as the launch actor (every call judged by
// the IAM referee with `imgtool iam-policy --for launch`): an instance whose agent is not registered yet is
// unreachable, not an error; a script's output and exit code come back; another pipeline's instance is denied.
// The stand-in runs each script with `sh` on this machine (standing for the instance).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { makeAwsClients } from "../../src/aws/clients.js";
import { ssmRunOnInstance } from "../../src/aws/run-command.js";
import { RUN_COMMAND_PARAMETERS_MAX_BYTES, runShellCommandBytes } from "../../src/aws/run-command-limits.js";
import { isImgtoolError } from "../../src/errors.js";
import { bootInstances, sentCommands, setInstanceShell } from "../support/aws-standin/instances-ssm.js";
import { actorCredentials } from "../support/iam-referee.js";
import { REGION, awsFixture, launchOnStandin, type AwsFixture } from "../launch/aws-support.js";

let fx: AwsFixture;
before(async () => {
  fx = await awsFixture();
});
after(async () => {
  await fx.close();
});

const instanceClients = () =>
  makeAwsClients({
    region: REGION,
    endpoint: fx.standin.endpoint,
    credentials: actorCredentials("instance"),
  });

describe("Run Command (AWS stand-in)", () => {
  test("unreachable before the agent registers; then the script's output and exit code, polled past Pending", async () => {
    const { result } = await launchOnStandin(fx, { runId: "rc-1", taskRunners: 0, wait: false });
    const id = result.orchestrator.id!;
    let polls = 0;
    const run = ssmRunOnInstance(fx.clients.ssm, {
      sleep: async () => {
        polls++;
      },
    });
    const early = await run(id, ["echo hi"], { timeoutSeconds: 30 });
    assert.equal(early.status, "Unreachable");
    assert.match(early.stderr, /not in a valid state/);

    const inst = instanceClients();
    await bootInstances(fx.standin.state, REGION, inst.ssm);
    const ok = await run(id, ["printf 'imgtool %s\\n' \"$((40 + 2))\"", "echo oops >&2"], {
      timeoutSeconds: 30,
    });
    assert.deepEqual(ok, { status: "Success", exitCode: 0, stdout: "imgtool 42\n", stderr: "oops\n" });
    assert.ok(polls >= 1, "GetCommandInvocation was asked again after InvocationDoesNotExist / Pending");
    const failed = await run(id, ["exit 3"], { timeoutSeconds: 30 });
    assert.equal(failed.status, "Failed");
    assert.equal(failed.exitCode, 3);
    assert.deepEqual(
      sentCommands(fx.standin.state, REGION).map((c) => c.commands),
      [["printf 'imgtool %s\\n' \"$((40 + 2))\"", "echo oops >&2"], ["exit 3"]],
      "the refused command never ran",
    );
    const send = fx.standin.requests.filter((r) => r.operation === "SendCommand").at(-1)!;
    assert.equal((send.params as { DocumentName: string }).DocumentName, "AWS-RunShellScript");
    inst.ssm.destroy();
  });

  test("an instance without an instance profile never registers: unreachable", async () => {
    const ec2 = fx.standin.state.region(REGION).ec2;
    const { result } = await launchOnStandin(fx, { runId: "rc-2", taskRunners: 0, wait: false });
    const id = result.orchestrator.id!;
    delete ec2.instances.get(id)!.iamInstanceProfile;
    const inst = instanceClients();
    await bootInstances(fx.standin.state, REGION, inst.ssm);
    const r = await ssmRunOnInstance(fx.clients.ssm, { sleep: async () => {} })(id, ["true"], {
      timeoutSeconds: 30,
    });
    assert.equal(r.status, "Unreachable");
    inst.ssm.destroy();
  });

  test("long output: SSM keeps the first 24,000 characters of stdout and 8,000 of stderr, and the outcome says it was cut", async () => {
    const { result } = await launchOnStandin(fx, { runId: "rc-4", taskRunners: 0, wait: false });
    const id = result.orchestrator.id!;
    const inst = instanceClients();
    await bootInstances(fx.standin.state, REGION, inst.ssm);
    const run = ssmRunOnInstance(fx.clients.ssm, { sleep: async () => {} });
    const r = await run(
      id,
      ["head -c 100000 /dev/zero | tr '\\0' o", "echo the-end", "head -c 20000 /dev/zero | tr '\\0' e >&2"],
      { timeoutSeconds: 30 },
    );
    assert.equal(r.status, "Success");
    assert.equal(r.stdout, "o".repeat(24_000), "the end of stdout is lost");
    assert.equal(r.stderr, "e".repeat(8_000));
    assert.deepEqual(r.truncated, { stdout: true, stderr: true });
    const short = await run(id, ["echo short"], { timeoutSeconds: 30 });
    assert.equal(short.truncated, undefined);
    inst.ssm.destroy();
  });

  test("a command over SSM's size: a usage error (exit 2) naming the command, its size and the limit, before anything is sent", async () => {
    const before = fx.standin.requests.filter((r) => r.operation === "SendCommand").length;
    const script = ["#" + "x".repeat(RUN_COMMAND_PARAMETERS_MAX_BYTES)];
    await assert.rejects(
      ssmRunOnInstance(fx.clients.ssm, { sleep: async () => {} })("i-0123456789abcdef0", script, {
        timeoutSeconds: 30,
        comment: "imgtool smoke check big.sh",
      }),
      (e: unknown) => {
        assert.ok(isImgtoolError(e));
        assert.equal(e.exitCode, 2);
        assert.equal(
          e.message,
          `The Run Command "imgtool smoke check big.sh" for i-0123456789abcdef0 has ${runShellCommandBytes(script, 30)} bytes of parameters; SSM Run Command takes at most ${RUN_COMMAND_PARAMETERS_MAX_BYTES} (its documents have at most 64 KB).`,
        );
        assert.match(e.fix ?? "", /smaller/);
        return true;
      },
    );
    assert.equal(fx.standin.requests.filter((r) => r.operation === "SendCommand").length, before);
  });

  test("the largest command imgtool sends is one the stand-in (as strict as SSM) accepts", async () => {
    const { result } = await launchOnStandin(fx, { runId: "rc-5", taskRunners: 0, wait: false });
    const id = result.orchestrator.id!;
    const inst = instanceClients();
    await bootInstances(fx.standin.state, REGION, inst.ssm);
    const fill = RUN_COMMAND_PARAMETERS_MAX_BYTES - runShellCommandBytes(["#"], 30);
    const script = ["#" + "x".repeat(fill)];
    assert.equal(runShellCommandBytes(script, 30), RUN_COMMAND_PARAMETERS_MAX_BYTES);
    const r = await ssmRunOnInstance(fx.clients.ssm, { sleep: async () => {} })(id, script, {
      timeoutSeconds: 30,
    });
    assert.equal(r.status, "Success");
    inst.ssm.destroy();
  });

  test("another pipeline's instance: SendCommand is denied (AccessDeniedException), and nothing runs", async () => {
    // Its own stand-in: the denial is provoked on purpose, and stays out of the suite's IAM coverage check.
    const deny = await awsFixture({ denialsExpected: true });
    const inst = makeAwsClients({
      region: REGION,
      endpoint: deny.standin.endpoint,
      credentials: actorCredentials("instance"),
    });
    try {
      const { result } = await launchOnStandin(deny, { runId: "rc-3", taskRunners: 0, wait: false });
      const id = result.orchestrator.id!;
      await bootInstances(deny.standin.state, REGION, inst.ssm);
      deny.standin.state.region(REGION).ec2.instances.get(id)!.tags["imgtool:pipeline"] = "other";
      setInstanceShell(deny.standin.state, REGION, async () => assert.fail("the script ran"));
      await assert.rejects(
        ssmRunOnInstance(deny.clients.ssm, { sleep: async () => {} })(id, ["true"], { timeoutSeconds: 30 }),
        (e: Error) =>
          e.name === "AccessDeniedException" && /ssm:SendCommand on resource: .*instance\//.test(e.message),
      );
      assert.equal(sentCommands(deny.standin.state, REGION).length, 0);
    } finally {
      inst.ssm.destroy();
      await deny.close();
    }
  });
});
