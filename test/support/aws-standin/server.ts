/**
 * The AWS stand-in's loopback HTTP server: routes SigV4-signed SDK requests to the EC2/STS (Query)
 * and SSM/ECR (JSON 1.1) handlers, records every request, applies scripted faults and renders
 * answers and errors in each service's wire protocol.
 */
import { randomUUID } from "node:crypto";
import { appendFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { ec2Handlers } from "./ec2.js";
import { ecrHandlers } from "./ecr.js";
import { authorize, ebsKeyRefusal } from "./iam.js";
import { ServiceError } from "./errors.js";
import type { FaultRegistry } from "./faults.js";
import { QueryParams } from "./params.js";
import type { JsonObject } from "./params.js";
import { runCommandHandlers } from "./instances-ssm.js";
import { ssmHandlers as parameterHandlers, type SsmHandler } from "./ssm.js";

/** SSM: Parameter Store, and what the instances see of it (Run Command, DeleteParameters). */
const ssmHandlers: Readonly<Record<string, SsmHandler>> = { ...parameterHandlers, ...runCommandHandlers };
import type { HandlerContext, ResolvedOptions, StandinState } from "./state.js";
import { stsHandlers, type Sessions } from "./sts.js";
import type { FaultSpec, RecordedRequest, Service } from "./types.js";
import { renderXml } from "./xml.js";
import type { XmlObject } from "./xml.js";

const EC2_XMLNS = "http://ec2.amazonaws.com/doc/2016-11-15/";
const STS_XMLNS = "https://sts.amazonaws.com/doc/2011-06-15/";
const JSON_TARGETS: Record<string, Service> = {
  AmazonSSM: "ssm",
  AmazonEC2ContainerRegistry_V20150921: "ecr",
};

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

interface Route {
  service: Service;
  operation: string;
  region: string;
  /** Parsed input: JSON object (ssm/ecr) or flat form (ec2/sts). */
  params: JsonObject | Record<string, string>;
  /** Set when the request cannot be routed or parsed: answered as this error. */
  problem?: ServiceError;
}

export interface ServerDeps {
  state: StandinState;
  options: ResolvedOptions;
  faults: FaultRegistry;
  requests: RecordedRequest[];
  sessions: Sessions;
}

// ---------------------------------------------------------------- rendering

function errorAnswer(service: Service, code: string, message: string, status: number): Answer {
  const requestId = randomUUID();
  if (service === "ssm" || service === "ecr") {
    return {
      status,
      headers: { "content-type": "application/x-amz-json-1.1", "x-amzn-requestid": requestId },
      body: JSON.stringify({ __type: code, message }),
    };
  }
  if (service === "sts") {
    const body = renderXml(
      "ErrorResponse",
      {
        Error: { Type: status >= 500 ? "Receiver" : "Sender", Code: code, Message: message },
        RequestId: requestId,
      },
      { xmlns: STS_XMLNS, listItem: "member" },
    );
    return { status, headers: { "content-type": "text/xml" }, body };
  }
  const body = renderXml(
    "Response",
    { Errors: { Error: { Code: code, Message: message } }, RequestID: requestId },
    { listItem: "item" },
  );
  return { status, headers: { "content-type": "text/xml;charset=UTF-8" }, body };
}

function successAnswer(service: Service, operation: string, result: JsonObject | XmlObject): Answer {
  const requestId = randomUUID();
  if (service === "ssm" || service === "ecr") {
    return {
      status: 200,
      headers: { "content-type": "application/x-amz-json-1.1", "x-amzn-requestid": requestId },
      body: JSON.stringify(result),
    };
  }
  if (service === "sts") {
    const body = renderXml(
      `${operation}Response`,
      { [`${operation}Result`]: result as XmlObject, ResponseMetadata: { RequestId: requestId } },
      { xmlns: STS_XMLNS, listItem: "member" },
    );
    return { status: 200, headers: { "content-type": "text/xml", "x-amzn-requestid": requestId }, body };
  }
  const body = renderXml(
    `${operation}Response`,
    { requestId, ...(result as XmlObject) },
    { xmlns: EC2_XMLNS, listItem: "item" },
  );
  return { status: 200, headers: { "content-type": "text/xml;charset=UTF-8" }, body };
}

function faultAnswer(service: Service, fault: FaultSpec): Answer {
  const json = service === "ssm" || service === "ecr";
  switch (fault.kind) {
    case "throttle": {
      const code =
        fault.code ??
        (service === "ec2"
          ? "RequestLimitExceeded"
          : service === "sts"
            ? "Throttling"
            : "ThrottlingException");
      const message = fault.message ?? (service === "ec2" ? "Request limit exceeded." : "Rate exceeded");
      return errorAnswer(service, code, message, fault.status ?? 400);
    }
    case "http500": {
      const code =
        fault.code ??
        (service === "ec2"
          ? "InternalError"
          : service === "sts"
            ? "InternalFailure"
            : service === "ssm"
              ? "InternalServerError"
              : "ServerException");
      return errorAnswer(service, code, fault.message ?? "An internal error has occurred", 500);
    }
    case "http503": {
      const code =
        fault.code ??
        (service === "ec2" ? "Unavailable" : json ? "ServiceUnavailableException" : "ServiceUnavailable");
      return errorAnswer(
        service,
        code,
        fault.message ?? "The service is unavailable. Please try again later.",
        503,
      );
    }
    default:
      return errorAnswer(
        service,
        fault.code ?? "InternalError",
        fault.message ?? fault.code ?? "Scripted error",
        fault.status ?? 400,
      );
  }
}

// ---------------------------------------------------------------- routing

/** Region and service from `Authorization: AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request, ...`. */
function credentialScope(authorization: string | undefined): {
  accessKeyId?: string;
  region?: string;
  service?: string;
} {
  const m = /Credential=([^/]+)\/\d{8}\/([^/]+)\/([^/]+)\/aws4_request/.exec(authorization ?? "");
  return m ? { accessKeyId: m[1], region: m[2], service: m[3] } : {};
}

function route(headers: Record<string, string>, body: string): Route {
  const scope = credentialScope(headers["authorization"]);
  const region = scope.region ?? "us-east-1";
  const target = headers["x-amz-target"];
  if (target !== undefined) {
    const dot = target.indexOf(".");
    const service = JSON_TARGETS[target.slice(0, dot)] ?? (scope.service === "ecr" ? "ecr" : "ssm");
    const operation = target.slice(dot + 1);
    let params: JsonObject = {};
    try {
      const parsed: unknown = body ? JSON.parse(body) : {};
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
        throw new Error("not an object");
      params = parsed as JsonObject;
    } catch {
      return {
        service,
        operation,
        region,
        params,
        problem: new ServiceError(
          "SerializationException",
          "Start of structure or map found where not expected.",
        ),
      };
    }
    const known = (service === "ssm" ? ssmHandlers : ecrHandlers)[operation] !== undefined;
    return known
      ? { service, operation, region, params }
      : {
          service,
          operation,
          region,
          params,
          problem: new ServiceError("UnknownOperationException", `Unknown operation ${target}`),
        };
  }
  const form: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(body)) form[k] = v;
  const service: Service = scope.service === "sts" ? "sts" : "ec2";
  const operation = form["Action"] ?? "";
  const known = (service === "sts" ? stsHandlers : ec2Handlers)[operation] !== undefined;
  return known
    ? { service, operation, region, params: form }
    : {
        service,
        operation,
        region,
        params: form,
        problem: new ServiceError(
          "InvalidAction",
          `The action ${operation || "(none)"} is not valid for this web service.`,
        ),
      };
}

/** Run the operation against the state; any error becomes the service's error answer. */
function perform(deps: ServerDeps, r: Route, ebsKeyRefusal?: string): Answer {
  if (r.problem) return errorAnswer(r.service, r.problem.code, r.problem.message, r.problem.status);
  const ctx: HandlerContext = {
    region: r.region,
    state: deps.state.region(r.region),
    all: deps.state,
    options: deps.options,
    now: deps.options.now(),
    ...(ebsKeyRefusal !== undefined ? { ebsKeyRefusal } : {}),
  };
  try {
    switch (r.service) {
      case "ec2":
      case "sts": {
        const handler = (r.service === "ec2" ? ec2Handlers : stsHandlers)[r.operation];
        if (!handler)
          throw new ServiceError(
            "InvalidAction",
            `The action ${r.operation} is not valid for this web service.`,
          );
        return successAnswer(
          r.service,
          r.operation,
          handler(ctx, new QueryParams(r.params as Record<string, string>)),
        );
      }
      default: {
        const handler = (r.service === "ssm" ? ssmHandlers : ecrHandlers)[r.operation];
        if (!handler) throw new ServiceError("UnknownOperationException", `Unknown operation ${r.operation}`);
        return successAnswer(r.service, r.operation, handler(ctx, r.params as JsonObject));
      }
    }
  } catch (e) {
    if (e instanceof ServiceError) return errorAnswer(r.service, e.code, e.message, e.status);
    const detail = e instanceof Error ? (e.stack ?? e.message) : String(e);
    return errorAnswer(
      r.service,
      "InternalError",
      `aws-standin bug in ${r.service}.${r.operation}: ${detail}`,
      500,
    );
  }
}

function flattenHeaders(raw: http.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(", ") : v;
  }
  return out;
}

// ---------------------------------------------------------------- server

export interface StandinServer {
  endpoint: string;
  /** Resolves once no delayed answer is pending. */
  settled(): Promise<void>;
  close(): Promise<void>;
}

export async function startServer(deps: ServerDeps): Promise<StandinServer> {
  const timers = new Set<NodeJS.Timeout>();
  /** Resolved when no delayed answer is pending any more (see `settled`). */
  let waiters: (() => void)[] = [];
  const wake = () => {
    if (timers.size > 0) return;
    const w = waiters;
    waiters = [];
    w.forEach((f) => f());
  };

  /** Requests whose connection is still open, for RecordedRequest.openAtArrival. */
  const open = new Set<RecordedRequest>();
  const handle = async (req: http.IncomingMessage, res: http.ServerResponse, body: string): Promise<void> => {
    const headers = flattenHeaders(req.headers);
    const r = route(headers, body);
    const attempt = Number(/attempt=(\d+)/.exec(headers["amz-sdk-request"] ?? "")?.[1] ?? "1");
    const record: RecordedRequest = {
      service: r.service,
      operation: r.operation,
      region: r.region,
      attempt,
      headers,
      body,
      params: r.params,
      status: 0,
      openAtArrival: 1,
    };
    for (const o of open) if (o.service === r.service && o.operation === r.operation) record.openAtArrival++;
    open.add(record);
    deps.requests.push(record);
    const iam = deps.options.iam;
    const accessKeyId = credentialScope(headers["authorization"]).accessKeyId ?? "";
    // The whole suite's AWS calls, for the check that the IAM policies cover every one (test/iam): calls
    // judged per actor are logged by the authorization step, the others here (action only).
    const judged = iam !== undefined && accessKeyId !== iam.setupKey;
    if (process.env.IMGTOOL_AWS_CALLS_LOG && !judged && accessKeyId !== iam?.setupKey)
      appendFileSync(process.env.IMGTOOL_AWS_CALLS_LOG, `${r.service}:${r.operation}\n`);
    let gone = false;
    res.on("close", () => {
      gone = true;
      open.delete(record);
    });
    const send = (answer: Answer): void => {
      if (gone || res.writableEnded) return;
      record.status = answer.status;
      res.writeHead(answer.status, answer.headers);
      res.end(answer.body);
    };
    const later = (ms: number, fn: () => void): void => {
      const t = setTimeout(() => {
        timers.delete(t);
        fn();
        wake();
      }, ms);
      timers.add(t);
    };

    // Session credentials expire: every service refuses them afterwards, before any policy is looked at.
    const expired = deps.sessions.refusal(
      r.service,
      accessKeyId,
      headers["x-amz-security-token"],
      deps.options.now(),
    );
    if (expired) return send(errorAnswer(r.service, expired.code, expired.message, expired.status));
    if (judged && !r.problem) {
      const refusal = await authorize(iam, {
        service: r.service,
        operation: r.operation,
        region: r.region,
        params: r.params,
        accessKeyId,
        accountId: deps.options.accountId,
        state: deps.state.region(r.region),
      });
      if (refusal) return send(errorAnswer(r.service, refusal.code, refusal.message, refusal.status));
    }
    // EC2 uses the account's default EBS key (a customer-managed one) with the caller's permissions.
    const keyArn = deps.options.ec2Limits?.ebsDefaultKmsKeyArn;
    const keyRefusal =
      judged && !r.problem && keyArn && r.service === "ec2" && r.operation === "RunInstances"
        ? await ebsKeyRefusal(
            iam,
            { region: r.region, accessKeyId, accountId: deps.options.accountId },
            keyArn,
            deps.options.ec2Limits?.ebsDefaultKmsKeyPolicy,
          )
        : undefined;
    const fault = r.problem ? undefined : deps.faults.match(r.service, r.operation);
    if (!fault) return send(perform(deps, r, keyRefusal));
    const applied = fault.applyFirst ? perform(deps, r, keyRefusal) : undefined;
    switch (fault.kind) {
      case "drop":
        req.socket.destroy();
        return;
      case "slow":
        later(fault.delayMs ?? 10_000, () => {
          if (gone) return; // the client gave up: without applyFirst, nothing happened
          send(applied ?? perform(deps, r, keyRefusal));
        });
        return;
      default:
        return send(faultAnswer(r.service, fault));
    }
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      handle(req, res, Buffer.concat(chunks).toString("utf8")).catch((e: unknown) => {
        res.writeHead(500, { "content-type": "text/plain" });
        res.end(`aws-standin bug: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      });
    });
  });
  server.keepAliveTimeout = 1_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    settled: () =>
      new Promise<void>((resolve) => {
        waiters.push(resolve);
        wake();
      }),
    close: () =>
      new Promise<void>((resolve, reject) => {
        for (const t of timers) clearTimeout(t);
        timers.clear();
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
