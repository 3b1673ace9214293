/**
 * A small loopback registry that requires credentials, for tests that pull (the aws bake's pre-load step):
 * GET /v2/ and manifests by digest or tag, HTTP Basic auth as ECR takes it (`AWS:<token password>`), and an optional
 * `authorize` hook that decides a pull as ECR's IAM check would (BatchGetImage on the repository). Records
 * every request with whether it carried valid credentials.
 */
import { createHash } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface AuthRegistryRequest {
  method: string;
  path: string;
  status: number;
  authenticated: boolean;
}

export interface AuthRegistry {
  /** 127.0.0.1:PORT */
  readonly host: string;
  /** http://127.0.0.1:PORT */
  readonly endpoint: string;
  readonly requests: AuthRegistryRequest[];
  /** Store a manifest under a repository (and a tag, when given); returns its digest (sha256 of the bytes). */
  addManifest(repository: string, body: string, tag?: string): string;
  close(): Promise<void>;
}

const MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";

export async function startAuthRegistry(opts: {
  user: string;
  password: string;
  /** Is a pull of `repository` allowed (ECR: the token's principal may ecr:BatchGetImage it)? Default: yes. */
  authorize?: (repository: string) => Promise<boolean>;
}): Promise<AuthRegistry> {
  const manifests = new Map<string, string>();
  /** repository:tag -> digest */
  const tags = new Map<string, string>();
  const requests: AuthRegistryRequest[] = [];
  const expected = `Basic ${Buffer.from(`${opts.user}:${opts.password}`).toString("base64")}`;
  const server = http.createServer((req, res) => {
    void (async () => {
      const url = req.url ?? "/";
      const authenticated = req.headers.authorization === expected;
      const answer = (status: number, body = "", headers: Record<string, string> = {}) => {
        requests.push({ method: req.method ?? "", path: url, status, authenticated });
        res.writeHead(status, { "content-type": "application/json", ...headers });
        res.end(req.method === "HEAD" ? undefined : body);
      };
      if (!authenticated) {
        answer(
          401,
          JSON.stringify({ errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] }),
          {
            "www-authenticate": 'Basic realm="stand-in registry"',
          },
        );
        return;
      }
      if (url === "/v2/") return answer(200, "{}");
      const m = /^\/v2\/(.+)\/manifests\/(sha256:[0-9a-f]{64}|[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$/.exec(url);
      if (!m) return answer(404, JSON.stringify({ errors: [{ code: "NAME_UNKNOWN" }] }));
      const [, repository, reference] = m as unknown as [string, string, string];
      const digest = reference.startsWith("sha256:")
        ? reference
        : (tags.get(`${repository}:${reference}`) ?? "");
      if (opts.authorize && !(await opts.authorize(repository))) {
        return answer(403, JSON.stringify({ errors: [{ code: "DENIED", message: "not authorized" }] }));
      }
      const body = manifests.get(`${repository}@${digest}`);
      if (body === undefined) return answer(404, JSON.stringify({ errors: [{ code: "MANIFEST_UNKNOWN" }] }));
      answer(200, body, { "content-type": MANIFEST, "docker-content-digest": digest });
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    host,
    endpoint: `http://${host}`,
    requests,
    addManifest(repository, body, tag) {
      const digest = `sha256:${createHash("sha256").update(body).digest("hex")}`;
      manifests.set(`${repository}@${digest}`, body);
      if (tag) tags.set(`${repository}:${tag}`, digest);
      return digest;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
