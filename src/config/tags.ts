/**
 * The one table of keys imgtool marks things with: AWS tag keys (bake instance, AMI, snapshots, ECR
 * repositories, launched instances), Docker label keys (twins, pre-load volumes, local instances, workers) and
 * the image labels every pushed image carries. The code and the templates (renderTemplate passes `tag`,
 * `label` and `imageLabel` to every template) read the keys from here.
 */

/** AWS tag keys. */
export const TAG = {
  pipeline: "imgtool:pipeline",
  role: "imgtool:role",
  /** The AMI's (or twin's) version: what the instance boots from. */
  version: "imgtool:version",
  /** The container image's version: what its workers run. */
  imageVersion: "imgtool:image-version",
  inputsHash: "imgtool:inputs-hash",
  gitRevision: "imgtool:git-revision",
  arch: "imgtool:arch",
  runId: "imgtool:run-id",
  /** A staged bake's stage ("base" on base AMIs); absent on role AMIs and single-stage bakes. */
  stage: "imgtool:stage",
  /** On a role AMI: the version of the base AMI it was built from. */
  baseVersion: "imgtool:base-version",
} as const;

/** Docker label keys on containers and volumes imgtool makes (local target) and on the workers it starts. */
export const DOCKER_LABEL = {
  /** What a local launch made (value: instance, ...). */
  launch: "imgtool.launch",
  pipeline: "imgtool.pipeline",
  role: "imgtool.role",
  runId: "imgtool.run-id",
  version: "imgtool.version",
  instanceType: "imgtool.instance-type",
  port: "imgtool.port",
  /** A worker's CPU state (JSON: cpu, sibling, siblingIdle, isolated, governor, turbo), set by the user-data. */
  cpuState: "imgtool.cpu",
  /** The image a pre-load volume holds. */
  image: "imgtool.image",
  /** The hash of the scripts that made a pre-load volume's store (a copy keeps its source's). */
  preloadScripts: "imgtool.preload-scripts",
  /**
   * The run (process) that made a container or volume: its run record is `<state>/runs/<id>/run.json`. Found
   * by `imgtool doctor` when that run died without cleaning up (src/leftovers/).
   */
  owner: "imgtool.owner",
} as const;

/** Labels inside images: the twin's and the pushed container images' own. */
export const IMAGE_LABEL = {
  pipeline: "org.imgtool.pipeline",
  role: "org.imgtool.role",
  inputsHash: "org.imgtool.inputs-hash",
  rubyBenchCommit: "org.imgtool.ruby-bench.commit",
  /** On the local base images scripts/setup builds: the hash of the spec they were built from. */
  baseSpec: "org.imgtool.base-spec",
  /** On a staged bake's twin: its stage ("base" / "role"). */
  stage: "org.imgtool.stage",
  /** On a base twin: its version (with {@link IMAGE_LABEL.inputsHash}: found again by another catalog). */
  version: "org.imgtool.version",
  /** On a role-stage twin: the version of the base twin it was built from. */
  baseVersion: "org.imgtool.base-version",
} as const;

/**
 * The repository of a local base twin's engine-wide tag (`imgtool-base-twin/<role>:h-<inputs hash>`, see
 * src/bake/twin-ops.ts sharedBaseTag): a base twin is shared by every pipeline on the engine with its inputs.
 */
export const SHARED_BASE_REPO = "imgtool-base-twin/";

/** What every template gets besides its own context. */
export const TEMPLATE_KEYS = { tag: TAG, label: DOCKER_LABEL, imageLabel: IMAGE_LABEL } as const;

/**
 * Where launched instances publish their readiness records (aws): one SSM parameter per instance,
 * `<ssm_prefix>/runs/<run id>/<instance id>`, written by the instance role (which may write nothing else under the
 * prefix), read by the launcher in batches (GetParametersByPath), removed by terminate and prune.
 */
export const runRecordsRoot = (ssmPrefix: string): string => `${ssmPrefix.replace(/\/$/, "")}/runs`;
export const runRecordsPath = (ssmPrefix: string, runId: string): string =>
  `${runRecordsRoot(ssmPrefix)}/${runId}`;
