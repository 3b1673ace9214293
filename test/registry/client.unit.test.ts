// The registry client against a registry that accepts connections and drops them at once (a registry being
// stopped, a proxy cut): fetch stays unsettled until the timeout, and that timeout must keep the process alive,
// or a command (`imgtool doctor`) ends silently with exit 0. The server here is unref'd so that nothing but the
// client's own timer holds the process: without it, node:test reports the pending promise as a failure.
import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { RegistryClient, RegistryUnreachableError } from "../../src/registry/client.js";

test("a registry that drops every connection: ping rejects with RegistryUnreachableError after the timeout", async () => {
  const dropping = net.createServer((s) => s.destroy());
  await new Promise<void>((r) => dropping.listen(0, "127.0.0.1", r));
  dropping.unref();
  const host = `127.0.0.1:${(dropping.address() as net.AddressInfo).port}`;
  try {
    await assert.rejects(
      new RegistryClient({ endpoint: `http://${host}`, timeoutMs: 300 }).ping(),
      (e: unknown) =>
        e instanceof RegistryUnreachableError &&
        e.message.startsWith(`GET ${host}/v2/: the registry did not answer`),
    );
  } finally {
    dropping.close();
  }
});
