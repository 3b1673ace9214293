// Session credentials expire (issue 10, section 4: "STS credentials expire"). The AWS stand-in issues session
// credentials on its own clock and, once they expired, every service refuses them with its own code (EC2
// RequestExpired, STS ExpiredToken, SSM ExpiredTokenException). The project's clients renew credentials and repeat
// the call once; when the source cannot renew (the same expired session comes back), the call fails with a clear
// error that names the fix (the workflow's role session length), not the service's bare code.
import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { GetCallerIdentityCommand } from "@aws-sdk/client-sts";
import { makeAwsClients, type AwsClients } from "../../src/aws/clients.js";
import { Ec2Instances } from "../../src/aws/ec2-instances.js";
import { SsmReadyRecords } from "../../src/aws/ready-records.js";
import { parseConfig } from "../../src/config/load.js";
import { FailureError } from "../../src/errors.js";
import { startAwsStandin, type AwsStandin, type SessionCredentials } from "../support/aws-standin/index.js";
import { ACTOR_KEYS, actorPolicies, SETUP_KEY } from "../support/iam-referee.js";

const REGION = "us-east-1";
const config = parseConfig("pipeline: bench\n", { baseDir: "/" }).config!;

describe("session credentials that expire (AWS stand-in)", () => {
  let standin: AwsStandin;
  let clock = Date.parse("2026-12-03T06:00:00Z");
  const open: AwsClients[] = [];
  before(async () => {
    standin = await startAwsStandin({
      now: () => new Date(clock),
      iam: { policies: actorPolicies(config), setupKey: SETUP_KEY },
    });
  });
  beforeEach(() => standin.reset());
  after(async () => {
    for (const c of open) for (const k of ["ec2", "ssm", "sts"] as const) c[k].destroy();
    await standin.close();
  });
  const clientsWith = (credentials: () => Promise<SessionCredentials>) => {
    const c = makeAwsClients({
      region: REGION,
      endpoint: standin.endpoint,
      credentials,
      retryBaseDelayMs: 5,
    });
    open.push(c);
    return c;
  };
  const answered = (operation: string) =>
    standin.requests.filter((r) => r.operation === operation).map((r) => r.status);

  test("each service refuses an expired session with its own code; the credentials' source cannot renew: a clear error", async () => {
    const session = standin.issueSession(ACTOR_KEYS.launch, 3600);
    const c = clientsWith(async () => session);
    const ec2 = new Ec2Instances(c.ec2);
    assert.deepEqual(await ec2.byTags({ "imgtool:pipeline": "bench" }), [], "valid for an hour");
    clock += 3600_000; // the job outlived its role session

    const cases: [string, () => Promise<unknown>, string][] = [
      ["DescribeInstances", () => ec2.byTags({ "imgtool:pipeline": "bench" }), "RequestExpired"],
      [
        "GetParametersByPath",
        () => new SsmReadyRecords(c.ssm).list("/imgtool/bench/runs/r1"),
        "ExpiredTokenException",
      ],
      ["GetCallerIdentity", () => c.sts.send(new GetCallerIdentityCommand({})), "ExpiredToken"],
    ];
    for (const [operation, call, code] of cases) {
      await assert.rejects(call(), (e: unknown) => {
        assert.ok(e instanceof FailureError, String(e));
        assert.match(
          e.message,
          new RegExp(
            `^The AWS credentials expired \\(the session ended at 2026-12-03T07:00:00\\.000Z\\): \\S+ ${operation} was refused \\(${code}: `,
          ),
        );
        assert.match(e.fix ?? "", /role-duration-seconds/);
        assert.match(e.fix ?? "", /MaxSessionDuration/);
        assert.equal(errorCode(e.cause), code);
        return true;
      });
      // Refused once: renewing brought the same session back, so the call was not repeated.
      assert.equal(answered(operation).filter((s) => s >= 400).length, 1, operation);
    }
  });

  test("a source that renews: the refused call gets new credentials and is repeated once, and succeeds", async () => {
    const issued: SessionCredentials[] = [];
    const c = clientsWith(async () => {
      issued.push(standin.issueSession(ACTOR_KEYS.launch, 3600));
      return { ...issued.at(-1)!, expiration: new Date(Date.now() + 3600_000) };
    });
    const records = new SsmReadyRecords(c.ssm);
    const ec2 = new Ec2Instances(c.ec2);
    assert.deepEqual(await records.list("/imgtool/bench/runs/r1"), []);
    await ec2.byTags({ "imgtool:pipeline": "bench" });
    assert.equal(issued.length, 1, "one session serves every client of the factory");
    clock += 2 * 3600_000;
    assert.deepEqual(await records.list("/imgtool/bench/runs/r1"), []);
    assert.deepEqual(await ec2.byTags({ "imgtool:pipeline": "bench" }), []);
    assert.equal(issued.length, 2, "renewed once, for both clients");
    assert.deepEqual(answered("GetParametersByPath"), [200, 400, 200]);
    assert.deepEqual(
      answered("DescribeInstances"),
      [200, 200],
      "the other client already had the new session",
    );
  });

  test("an unknown session token is an invalid token, not an expired one", async () => {
    const c = clientsWith(async () => ({
      accessKeyId: ACTOR_KEYS.launch,
      secretAccessKey: "secret",
      sessionToken: "FwoGZXIvYXdzEforged",
      expiration: new Date(clock + 3600_000),
    }));
    await assert.rejects(
      new SsmReadyRecords(c.ssm).list("/imgtool/bench/runs/r1"),
      (e: unknown) => errorCode(e) === "UnrecognizedClientException",
    );
  });
});

function errorCode(e: unknown): string | undefined {
  return (e as { name?: string } | undefined)?.name;
}
