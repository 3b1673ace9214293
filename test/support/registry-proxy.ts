/**
 * A loopback HTTP proxy in front of the real local registry, for tests: it forwards everything (bodies
 * streamed both ways, the Host header kept, so the registry's upload URLs point back at the proxy), records
 * every request, counts blob uploads, and plays the faults a registry can have mid-push:
 * - `unauthorizedOnce(match)`: answer the next matching request 401, as a registry does when the token expired;
 * - `cutAfterBlobs(n)`: once n uploaded blobs have been confirmed to the client (the HEAD a client makes after
 *   committing an upload, answered 200), stop answering: every connection, new or open, is cut, like a
 *   registry that was stopped; `up()` brings it back;
 * - `fail(match, status, body)`: answer matching requests with an error status and body.
 */
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";

export interface ProxiedRequest {
  method: string;
  path: string;
  status: number;
  /** Bytes of request body forwarded (blob data for PATCH/PUT uploads). */
  bodyBytes: number;
  /** Answered by the proxy itself (a fault), not by the registry. */
  faulted: boolean;
}

type Match = (method: string, path: string) => boolean;

export interface RegistryProxy {
  /** 127.0.0.1:PORT */
  readonly host: string;
  /** http://127.0.0.1:PORT */
  readonly endpoint: string;
  readonly requests: ProxiedRequest[];
  /** Digests of blob uploads the registry completed (PUT .../blobs/uploads/...?digest= answered 201). */
  readonly completedBlobs: string[];
  /** Of those, the ones the client checked afterwards (HEAD answered 200 and sent): it knows they are there. */
  readonly confirmedBlobs: string[];
  /** Bytes of blob data uploaded (PATCH and PUT bodies under /blobs/uploads/). */
  uploadedBytes(): number;
  /** Requests that changed something in the registry (POST, PATCH, PUT, DELETE). */
  writes(): ProxiedRequest[];
  unauthorizedOnce(match: Match): void;
  fail(match: Match, status: number, body: unknown): void;
  cutAfterBlobs(n: number): void;
  /** Forget every fault not played yet. */
  clearFaults(): void;
  /** Answer again after a cut. */
  up(): void;
  readonly down: boolean;
  /** Forget recorded requests and completed blobs (faults stay). */
  reset(): void;
  close(): Promise<void>;
}

export const isBlobUpload: Match = (m, p) =>
  (m === "POST" || m === "PATCH" || m === "PUT") && p.includes("/blobs/uploads/");
export const isManifestPut: Match = (m, p) => m === "PUT" && p.includes("/manifests/");

export async function startRegistryProxy(target: string): Promise<RegistryProxy> {
  const [targetHost, targetPort] = target.replace(/^https?:\/\//, "").split(":");
  const requests: ProxiedRequest[] = [];
  const completedBlobs: string[] = [];
  const confirmedBlobs: string[] = [];
  const sockets = new Set<Socket>();
  const once: Match[] = [];
  const failures: { match: Match; status: number; body: unknown }[] = [];
  let cutAfter: number | undefined;
  let down = false;
  // Its own connection pool to the registry, closed with the proxy.
  const agent = new http.Agent({ keepAlive: true });

  /** Stop answering: cut every connection, but let `keep` finish sending what it was sent (a graceful FIN). */
  const goDown = (keep?: Socket) => {
    down = true;
    for (const s of sockets) {
      if (s === keep) s.end();
      else s.destroy();
    }
  };

  const server = http.createServer((req, res) => {
    const method = req.method ?? "GET";
    const url = req.url ?? "/";
    const pathOnly = url.split("?")[0]!;
    const record: ProxiedRequest = { method, path: url, status: 0, bodyBytes: 0, faulted: false };
    requests.push(record);
    if (down) {
      req.socket.destroy();
      return;
    }
    const fault = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      record.status = status;
      record.faulted = true;
      req.resume();
      const text = JSON.stringify(body);
      res.writeHead(status, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(text),
        "docker-distribution-api-version": "registry/2.0",
        ...headers,
      });
      res.end(text);
    };
    const i = once.findIndex((m) => m(method, pathOnly));
    if (i >= 0) {
      once.splice(i, 1);
      fault(
        401,
        {
          errors: [
            {
              code: "UNAUTHORIZED",
              message: "authentication required",
              detail: "token expired (test proxy)",
            },
          ],
        },
        { "www-authenticate": 'Basic realm="imgtool-local"' },
      );
      return;
    }
    const f = failures.find((x) => x.match(method, pathOnly));
    if (f) {
      fault(f.status, f.body);
      return;
    }
    const upstream = http.request(
      { host: targetHost, port: Number(targetPort), method, path: url, headers: req.headers, agent },
      (ures) => {
        record.status = ures.statusCode ?? 0;
        if (down) {
          // Stopped while this request was in flight: the client never hears the answer.
          ures.resume();
          req.socket.destroy();
          return;
        }
        if (method === "PUT" && pathOnly.includes("/blobs/uploads/") && ures.statusCode === 201) {
          const digest = new URL(url, "http://x").searchParams.get("digest");
          if (digest) completedBlobs.push(digest);
        }
        const checked = /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(pathOnly)?.[1];
        if (method === "HEAD" && ures.statusCode === 200 && checked && completedBlobs.includes(checked)) {
          res.on("finish", () => {
            if (confirmedBlobs.includes(checked)) return;
            confirmedBlobs.push(checked);
            if (cutAfter !== undefined && confirmedBlobs.length >= cutAfter) {
              cutAfter = undefined;
              // This answer was sent; from now on nothing answers: the registry "was stopped".
              goDown(req.socket);
            }
          });
        }
        res.writeHead(ures.statusCode ?? 502, ures.headers);
        ures.pipe(res);
      },
    );
    upstream.on("error", () => {
      if (!res.headersSent) fault(502, { errors: [{ code: "UNAVAILABLE", message: "upstream error" }] });
      else res.destroy();
    });
    req.on("data", (c: Buffer) => (record.bodyBytes += c.length));
    req.pipe(upstream);
  });
  server.on("connection", (s: Socket) => {
    if (down) {
      s.destroy();
      return;
    }
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    completedBlobs,
    confirmedBlobs,
    uploadedBytes: () =>
      requests
        .filter((r) => (r.method === "PATCH" || r.method === "PUT") && r.path.includes("/blobs/uploads/"))
        .reduce((n, r) => n + r.bodyBytes, 0),
    writes: () => requests.filter((r) => ["POST", "PATCH", "PUT", "DELETE"].includes(r.method)),
    unauthorizedOnce: (m) => once.push(m),
    fail: (match, status, body) => failures.push({ match, status, body }),
    cutAfterBlobs: (n) => {
      cutAfter = n;
    },
    clearFaults: () => {
      once.length = 0;
      failures.length = 0;
      cutAfter = undefined;
    },
    up: () => {
      down = false;
    },
    get down() {
      return down;
    },
    reset: () => {
      requests.length = 0;
      completedBlobs.length = 0;
      confirmedBlobs.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        agent.destroy();
        server.close(() => resolve());
      }),
  };
}
