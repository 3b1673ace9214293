/**
 * Where the real-engine stack tests take their third-party images (PostgreSQL) from. Default: the project's
 * local registry, where scripts/setup (scripts/build-stack-images) put library/postgres:15 from docker/postgres.
 *
 * IMGTOOL_TEST_STACK_REGISTRY (host:port/path, e.g. 127.0.0.1:5000/mine) points them at another path of that
 * registry: a checkout whose docker/postgres differs from the one setup pushed tests its own image there (build
 * docker/postgres and push it as PATH/library/postgres:15) without replacing the image other checkouts use.
 */
export const TEST_STACK_REGISTRY: string | undefined = process.env.IMGTOOL_TEST_STACK_REGISTRY || undefined;

/** The `registry` entry of a stack's config line (with its leading comma), empty by default. */
export function stackRegistryEntry(): string {
  return TEST_STACK_REGISTRY ? `, registry: { local: ${JSON.stringify(TEST_STACK_REGISTRY)} }` : "";
}

/** The registry API path of the stack's PostgreSQL (`/v2/library/postgres/` by default), as a pattern. */
export function postgresRegistryPath(): RegExp {
  const prefix = TEST_STACK_REGISTRY ? TEST_STACK_REGISTRY.replace(/^[^/]*\/?/, "") : "";
  const repo = `${prefix ? `${prefix}/` : ""}library/postgres`;
  return new RegExp(`/v2/${repo.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}/`);
}
