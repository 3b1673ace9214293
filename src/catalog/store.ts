/**
 * The narrow parameter-store interface under the catalog. Two implementations with the same semantics:
 * SSM Parameter Store (aws target, ./ssm-store.ts) and an embedded SQLite database (local target,
 * ./sqlite-store.ts). Semantics are SSM's: every put is a new version, labels point at one version each and
 * move, at most 100 versions are kept (the oldest is dropped unless it carries a label).
 */

export type DataType = "text" | "aws:ec2:image";

export interface StoredParameter {
  /** Name without selector. */
  name: string;
  /** The selector asked for (":latest", ":3"), if any. */
  selector?: string;
  value: string;
  version: number;
  dataType: DataType;
  modifiedAt: Date;
}

export interface StoredVersion extends StoredParameter {
  labels: string[];
}

export interface ParameterStore {
  /** "ssm" or "local", for messages. */
  readonly kind: "ssm" | "local";
  /** Most names one getMany call takes (SSM GetParameters: 10). */
  readonly maxBatch: number;
  /**
   * Write a new version. Throws an error named `ParameterMaxVersionLimitExceeded` when the store is full and
   * its oldest version carries a label.
   */
  put(name: string, value: string, opts: { dataType: DataType; description?: string }): Promise<number>;
  /**
   * Create a text parameter only when no parameter of that name exists (SSM's `Overwrite=false`), atomically:
   * of two creators, exactly one succeeds; the other gets an error named `ParameterAlreadyExists`.
   */
  create(name: string, value: string): Promise<void>;
  /** Attach labels to a version (moving them from wherever they were). Returns the labels refused. */
  label(name: string, version: number, labels: string[]): Promise<{ invalid: string[] }>;
  unlabel(name: string, version: number, labels: string[]): Promise<void>;
  /** Read up to maxBatch names, each optionally with a selector (`name:label`, `name:3`), in one round trip. */
  getMany(selectors: string[]): Promise<{ found: StoredParameter[]; missing: string[] }>;
  /** Every kept version of one parameter, oldest first, with labels. */
  history(name: string): Promise<StoredVersion[]>;
  /** Names of every parameter under a path (recursive). */
  list(path: string): Promise<string[]>;
  delete(name: string): Promise<void>;
}

/** Error name both stores use when the oldest of 100 versions carries a label (SSM's own name). */
export const VERSION_LIMIT_ERROR = "ParameterMaxVersionLimitExceeded";

/** Error name both stores use when `create` finds the parameter there (SSM's own name). */
export const ALREADY_EXISTS_ERROR = "ParameterAlreadyExists";

export const MAX_VERSIONS = 100;
export const MAX_LABELS_PER_VERSION = 10;

/** SSM's label rules: 1-100 of letters, digits, . - _; not starting with a digit, "aws" or "ssm". */
export function isValidLabel(label: string): boolean {
  return /^[A-Za-z0-9._-]{1,100}$/.test(label) && !/^[0-9]/.test(label) && !/^(aws|ssm)/i.test(label);
}

/** Split `name:selector` into its parts (SSM names never contain ':'). */
export function splitSelector(s: string): { name: string; selector?: string } {
  const i = s.indexOf(":");
  return i < 0 ? { name: s } : { name: s.slice(0, i), selector: s.slice(i + 1) };
}
