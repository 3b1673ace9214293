/** `imgtool doctor`: one line per part, with version, state and the command that fixes it. */
import { existsSync } from "node:fs";
import path from "node:path";
import { runDoctor, type DoctorProbes } from "../../doctor/doctor.js";
import { exec } from "../../exec.js";
import { dockerHost, readStack, registryPassword } from "../../local/stack.js";
import { loadVersions } from "../../versions.js";
import type { Context, GlobalArgs } from "../context.js";
import { table } from "../output.js";

export function realProbes(ctx: Context): DoctorProbes {
  return {
    nodeVersion: () => process.version,
    async dockerVersion(host) {
      const { engineVersion } = await import("../../docker/engine.js");
      return (await engineVersion(host)).version;
    },
    async imageExists(host, ref) {
      const { imageExists } = await import("../../docker/engine.js");
      return imageExists(host, ref);
    },
    async registry(endpoint, user, password) {
      const url = `http://${endpoint}/v2/`;
      const signal = AbortSignal.timeout(3000);
      const anon = await fetch(url, { signal });
      const auth = await fetch(url, {
        signal,
        headers: { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}` },
      });
      return {
        anonymous: anon.status,
        authenticated: auth.status,
        api: auth.headers.get("docker-distribution-api-version"),
      };
    },
    async packerVersion() {
      const r = await exec(["packer", "version"], { timeoutMs: 10_000 });
      if (r.notFound || r.exitCode !== 0) return null;
      return r.stdout.split("\n")[0]?.trim() ?? null;
    },
    async catalog(file) {
      const { CatalogDamagedError, SqliteStore } = await import("../../catalog/sqlite-store.js");
      if (!existsSync(file)) return { state: "absent" };
      try {
        new SqliteStore(file).close();
        return { state: "ok" };
      } catch (e) {
        if (!(e instanceof CatalogDamagedError)) throw e;
        return { state: "damaged", problem: e.problem, fix: e.fix ?? "" };
      }
    },
    async awsIdentity() {
      const { assertCredentials } = await import("../../aws/clients.js");
      return assertCredentials(await ctx.aws());
    },
  };
}

export async function doctor(ctx: Context, _args: GlobalArgs): Promise<number> {
  const stateDir = ctx.config.local.state_dir;
  const stack = readStack(stateDir);
  let password: string | null = null;
  if (stack) {
    try {
      password = registryPassword(stack);
    } catch {
      password = null;
    }
  }
  const bases = new Set<string>(Object.keys(loadVersions().local_bases));
  for (const r of Object.values(ctx.config.roles)) {
    bases.add(r.base.local.image);
    bases.add(r.app.base_image.local);
  }
  const checks = await runDoctor(
    {
      target: ctx.target,
      stack: stack
        ? {
            dockerHost: stack.docker.host,
            registry: { endpoint: stack.registry.endpoint, user: stack.registry.user, password },
          }
        : undefined,
      dockerHost: dockerHost(stack),
      baseImages: [...bases],
      setupCommand: "scripts/setup",
      catalogFile: path.join(stateDir, "catalog.db"),
    },
    realProbes(ctx),
  );
  const ok = checks.every((c) => c.ok);
  ctx.out.result(
    { target: ctx.target, ok, checks },
    () =>
      table(
        ["PART", "VERSION", "STATE", "FIX"],
        checks.map((c) => [c.part, c.version ?? "-", c.ok ? c.state : `FAIL ${c.state}`, c.fix ?? ""]),
      ) + `\n${ok ? "All parts ok." : "Some parts need attention: run the FIX commands above."}`,
  );
  return ok ? 0 : 1;
}
