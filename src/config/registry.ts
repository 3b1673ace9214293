/**
 * Where a registry is, from an image reference or endpoint: pure, so the renderers, the bake and the push all
 * read it the same way.
 */

/**
 * The region of an ECR registry from an image reference or endpoint
 * (`123456789012.dkr.ecr.eu-west-1.amazonaws.com/repo@sha256:...` -> `eu-west-1`, `.amazonaws.com.cn` too);
 * undefined for a registry that is not ECR's. An ECR token is good only for the registry of its region.
 */
export function ecrRegionOf(refOrEndpoint: string): string | undefined {
  const host = refOrEndpoint.replace(/^[a-z]+:\/\//, "").split("/")[0]!;
  return /^\d{12}\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?(?::\d+)?$/.exec(host)?.[1];
}
