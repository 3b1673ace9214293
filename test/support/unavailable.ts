/**
 * What a test does when a tool it needs (Packer, the Docker engine, a base image) is missing here: on a
 * developer's machine it is skipped with the reason; with CI set it FAILS, because CI ran scripts/setup and a
 * missing tool there means the run proves nothing.
 */

/** True when the environment says this is a CI run (CI=true, as .ci/run and GitHub Actions set it). */
export function inCi(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = (env.CI ?? "").trim().toLowerCase();
  return v !== "" && v !== "false" && v !== "0";
}

/**
 * `reason` (why the test cannot run here), or false when nothing is missing: the value for node:test's `skip`
 * option. Under CI a reason throws instead, so the test file (or suite) fails naming what is missing.
 */
export function unavailable(
  reason: string | false | undefined,
  env: NodeJS.ProcessEnv = process.env,
): string | false {
  if (!reason) return false;
  if (inCi(env)) {
    throw new Error(`${reason}; CI must have it (CI is set, so this test fails instead of skipping)`);
  }
  return reason;
}
