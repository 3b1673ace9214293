/**
 * The Docker engine adapter: a dockerode client for a DOCKER_HOST-style address. Import lazily: it loads
 * dockerode.
 */
import Docker from "dockerode";

/** dockerode for `unix:///path/docker.sock` or `tcp://host:port`. */
export function connectDocker(host: string, opts: { timeoutMs?: number } = {}): Docker {
  const timeout = opts.timeoutMs;
  if (host.startsWith("unix://"))
    return new Docker({ socketPath: host.slice("unix://".length), ...(timeout ? { timeout } : {}) });
  const u = new URL(host.replace(/^tcp:/, "http:"));
  return new Docker({
    host: u.hostname,
    port: Number(u.port || 2375),
    protocol: "http",
    ...(timeout ? { timeout } : {}),
  });
}

export interface EngineInfo {
  version: string;
  apiVersion: string;
}

/** Version of the engine at `host`; throws when it does not answer. */
export async function engineVersion(host: string, timeoutMs = 3000): Promise<EngineInfo> {
  const v = await connectDocker(host, { timeoutMs }).version();
  return { version: v.Version, apiVersion: v.ApiVersion };
}

/** Whether the engine at `host` has an image by that reference. */
export async function imageExists(host: string, ref: string): Promise<boolean> {
  try {
    await connectDocker(host, { timeoutMs: 5000 }).getImage(ref).inspect();
    return true;
  } catch (e) {
    if ((e as { statusCode?: number }).statusCode === 404) return false;
    throw e;
  }
}
