/**
 * SSM Parameter Store (JSON 1.1) operations of the AWS stand-in: versions, labels and selectors,
 * the 100-version limit, tiers, the asynchronous validation of `aws:ec2:image` parameters, and (when asked:
 * options.newParameterReads) reads that do not see a parameter just created yet.
 */
import { createHash } from "node:crypto";
import { ServiceError, fail } from "./errors.js";
import {
  decodeToken,
  encodeToken,
  optBool,
  optNumber,
  optObjectList,
  optString,
  optStringList,
  reqString,
} from "./params.js";
import type { JsonObject } from "./params.js";
import type { HandlerContext } from "./state.js";
import type { SsmParameter, SsmParameterType, SsmParameterVersion, Tag } from "./types.js";

export type SsmHandler = (ctx: HandlerContext, input: JsonObject) => JsonObject;

const MAX_VERSIONS = 100;
const MAX_LABELS_PER_VERSION = 10;
const TYPES: SsmParameterType[] = ["String", "StringList", "SecureString"];
const DATA_TYPES = ["text", "aws:ec2:image", "aws:ssm:integration"];
const TIERS = ["Standard", "Advanced", "Intelligent-Tiering"];
const DEFAULT_KEY = "alias/aws/ssm";

function validation(message: string): never {
  fail("ValidationException", message);
}

/**
 * SSM's rules for a parameter name, with the exceptions PutParameter answers: ValidationException for the
 * length (at most 2048 in the API, of which SSM keeps 1037: 1011 for the name), the reserved `aws`/`ssm`
 * prefixes and the characters; HierarchyLevelLimitExceededException past 15 levels.
 */
function checkName(name: string): void {
  if (name.length < 1 || name.length > 2048)
    validation(
      `1 validation error detected: Value '${name}' at 'name' failed to satisfy constraint: Member must have length less than or equal to 2048`,
    );
  if (name.length > 1011) validation("Parameter name must be at most 1011 characters long.");
  const bare = name.startsWith("/") ? name.slice(1) : name;
  if (/^(aws|ssm)/i.test(bare)) {
    validation(`Parameter name: can't be prefixed with "aws" or "ssm" (case-insensitive).`);
  }
  if (
    !/^[A-Za-z0-9_.\-/]+$/.test(name) ||
    (name.includes("/") && !name.startsWith("/")) ||
    name.includes("//")
  ) {
    validation(
      "Parameter name must be a fully qualified name: it can consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, numbers and the following 3 symbols .-_",
    );
  }
  if (name.split("/").length - 1 > 15) {
    fail(
      "HierarchyLevelLimitExceededException",
      "A hierarchy can have a maximum of 15 levels. For more information, see Requirements and constraints for parameter names in the Amazon Web Services Systems Manager User Guide.",
    );
  }
}

function arn(ctx: HandlerContext, name: string): string {
  return `arn:aws:ssm:${ctx.region}:${ctx.options.accountId}:parameter/${name.replace(/^\//, "")}`;
}

function latest(p: SsmParameter | undefined): SsmParameterVersion | undefined {
  return p?.versions[p.versions.length - 1];
}

/** A parameter that exists (has at least one readable version). */
function findParameter(ctx: HandlerContext, name: string): SsmParameter | undefined {
  const p = ctx.state.ssm.parameters.get(name);
  return p && p.versions.length ? p : undefined;
}

function notFound(name: string): never {
  fail("ParameterNotFound", `Parameter ${name} not found.`);
}

function requireParameter(ctx: HandlerContext, name: string): SsmParameter {
  return findParameter(ctx, name) ?? notFound(name);
}

function findVersion(p: SsmParameter, version: number): SsmParameterVersion {
  const v = p.versions.find((x) => x.version === version);
  if (!v) {
    fail(
      "ParameterVersionNotFound",
      `Systems Manager could not find version ${version} of ${p.name}. Verify the version and try again.`,
    );
  }
  return v;
}

/** `name`, `name:3` or `name:label`. */
function parseSelector(nameWithSelector: string): {
  name: string;
  selector?: string;
  version?: number;
  label?: string;
} {
  const i = nameWithSelector.lastIndexOf(":");
  if (i < 0) return { name: nameWithSelector };
  const name = nameWithSelector.slice(0, i);
  const selector = nameWithSelector.slice(i + 1);
  if (/^\d+$/.test(selector)) return { name, selector: `:${selector}`, version: Number(selector) };
  return { name, selector: `:${selector}`, label: selector };
}

/** Resolve a (possibly selected) name to a version; errors like GetParameter. */
function resolve(
  ctx: HandlerContext,
  nameWithSelector: string,
): { p: SsmParameter; v: SsmParameterVersion; selector?: string } {
  const sel = parseSelector(nameWithSelector);
  const p = requireParameter(ctx, sel.name);
  // A parameter just created is not seen by every read yet (options.newParameterReads).
  if (p.unseenReads) {
    p.unseenReads -= 1;
    notFound(sel.name);
  }
  if (sel.version !== undefined)
    return { p, v: findVersion(p, sel.version), ...(sel.selector ? { selector: sel.selector } : {}) };
  if (sel.label !== undefined) {
    const v = p.versions.find((x) => x.labels.includes(sel.label ?? ""));
    if (!v) notFound(nameWithSelector);
    return { p, v, ...(sel.selector ? { selector: sel.selector } : {}) };
  }
  const v = latest(p);
  if (!v) notFound(sel.name);
  return { p, v };
}

/** What a reader without kms:Decrypt sees for a SecureString: opaque, and never the plaintext. */
function ciphertext(value: string): string {
  const digest = createHash("sha256").update(value).digest();
  return Buffer.concat([Buffer.from("AQICAHjStandin"), digest, digest]).toString("base64");
}

function shownValue(v: SsmParameterVersion, withDecryption: boolean): string {
  return v.type === "SecureString" && !withDecryption ? ciphertext(v.value) : v.value;
}

function renderParameter(
  ctx: HandlerContext,
  p: SsmParameter,
  v: SsmParameterVersion,
  withDecryption: boolean,
  selector?: string,
): JsonObject {
  return {
    Name: p.name,
    Type: v.type,
    Value: shownValue(v, withDecryption),
    Version: v.version,
    ...(selector ? { Selector: selector } : {}),
    LastModifiedDate: v.lastModifiedDate.getTime() / 1000,
    ARN: arn(ctx, p.name),
    DataType: v.dataType,
  };
}

function pageLimit(input: JsonObject, max: number): number {
  const n = optNumber(input, "MaxResults");
  if (n === undefined) return max;
  if (!Number.isInteger(n) || n < 1 || n > max) {
    validation(
      `1 validation error detected: Value '${n}' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to ${max}`,
    );
  }
  return n;
}

function pageStart(input: JsonObject, scope: string): number {
  const token = optString(input, "NextToken");
  if (token === undefined) return 0;
  const offset = decodeToken(token, scope);
  if (offset === undefined) fail("InvalidNextToken", "The specified token isn't valid.");
  return offset;
}

// ---------------------------------------------------------------- labels

function labelProblem(label: string): boolean {
  return (
    label.length < 1 ||
    label.length > 100 ||
    !/^[A-Za-z0-9_.-]+$/.test(label) ||
    /^\d/.test(label) ||
    /^(aws|ssm)/i.test(label)
  );
}

// ---------------------------------------------------------------- operations

const putParameter: SsmHandler = (ctx, input) => {
  const name = reqString(input, "Name");
  const value = reqString(input, "Value");
  checkName(name);
  if (value.length < 1)
    validation(
      "1 validation error detected: Value at 'value' failed to satisfy constraint: Member must have length greater than or equal to 1",
    );
  const overwrite = optBool(input, "Overwrite") ?? false;
  const typeIn = optString(input, "Type");
  if (typeIn !== undefined && !TYPES.includes(typeIn as SsmParameterType)) {
    validation(
      `1 validation error detected: Value '${typeIn}' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [SecureString, StringList, String]`,
    );
  }
  const tags = optObjectList(input, "Tags");
  if (tags?.length && overwrite) {
    validation(
      "Invalid request: tags and overwrite can't be used together. To create a parameter with tags, please remove overwrite flag. To update tags for an existing parameter, please use AddTagsToResource or RemoveTagsFromResource.",
    );
  }
  const dataType = optString(input, "DataType") ?? "text";
  if (!DATA_TYPES.includes(dataType)) {
    validation(`The following data type is not supported: ${dataType} (Data type names are all lowercase.)`);
  }
  const tierIn = optString(input, "Tier");
  if (tierIn !== undefined && !TIERS.includes(tierIn)) {
    validation(
      `1 validation error detected: Value '${tierIn}' at 'tier' failed to satisfy constraint: Member must satisfy enum value set: [Standard, Advanced, Intelligent-Tiering]`,
    );
  }
  const existing = findParameter(ctx, name);
  const prev = latest(existing);
  if (existing && !overwrite) {
    fail(
      "ParameterAlreadyExists",
      "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.",
    );
  }
  const type = (typeIn ?? prev?.type) as SsmParameterType | undefined;
  if (type === undefined) validation("A parameter type is required when you create a parameter.");
  if (dataType === "aws:ec2:image") {
    if (type !== "String") validation("Parameters with the aws:ec2:image data type must be of type String.");
    if (!/^ami-([0-9a-f]{8}|[0-9a-f]{17})$/.test(value)) {
      validation(
        `Parameter value, ${value}, is not in the valid format ami-12345abcdeEXAMPLE for the aws:ec2:image data type.`,
      );
    }
  }
  const allowedPattern = optString(input, "AllowedPattern");
  if (allowedPattern !== undefined && !new RegExp(allowedPattern).test(value)) {
    fail(
      "ParameterPatternMismatchException",
      `Parameter value, cannot be validated against allowedPattern: ${allowedPattern}`,
    );
  }
  // Tier: Intelligent-Tiering picks the cheapest that fits; Advanced never goes back to Standard.
  const needsAdvanced = Buffer.byteLength(value) > 4096;
  let tier = tierIn ?? prev?.tier ?? "Standard";
  if (tier === "Intelligent-Tiering")
    tier = needsAdvanced || prev?.tier === "Advanced" ? "Advanced" : "Standard";
  if (tier === "Standard" && prev?.tier === "Advanced") {
    validation(
      "This parameter uses the advanced-parameter tier. You can't downgrade a parameter from the advanced-parameter tier to the standard-parameter tier. If necessary, you can delete the advanced parameter and recreate it as a standard parameter.",
    );
  }
  if (tier === "Standard" && needsAdvanced) {
    validation(
      "Standard tier parameters support a maximum parameter value of 4096 characters. To create a larger parameter value, upgrade the parameter to use the advanced-parameter tier.",
    );
  }
  if (Buffer.byteLength(value) > 8192)
    validation("Parameter value exceeds the maximum size of 8192 characters.");
  // The version limit is checked synchronously.
  const oldest = existing?.versions[0];
  if (existing && existing.versions.length >= MAX_VERSIONS && oldest && oldest.labels.length) {
    fail(
      "ParameterMaxVersionLimitExceeded",
      `You attempted to create a new version of ${name} by calling the PutParameter API with the overwrite flag. Version ${oldest.version}, the oldest version, can't be deleted because it has a label associated with it. Move the label to another version of the parameter, and try again.`,
    );
  }
  let record = ctx.state.ssm.parameters.get(name);
  if (!record) {
    record = {
      name,
      versions: [],
      lastVersion: 0,
      tags: [],
      ...(ctx.options.newParameterReads ? { unseenReads: ctx.options.newParameterReads } : {}),
    };
    ctx.state.ssm.parameters.set(name, record);
  }
  record.lastVersion += 1;
  const version = record.lastVersion;
  if (tags?.length) {
    record.tags = tags.map((t): Tag => ({ Key: String(t["Key"] ?? ""), Value: String(t["Value"] ?? "") }));
  }
  const description = optString(input, "Description") ?? (overwrite ? prev?.description : undefined);
  const keyId = type === "SecureString" ? (optString(input, "KeyId") ?? DEFAULT_KEY) : undefined;
  const made: SsmParameterVersion = {
    version,
    value,
    type,
    dataType,
    tier,
    ...(description !== undefined ? { description } : {}),
    ...(keyId !== undefined ? { keyId } : {}),
    ...(allowedPattern !== undefined ? { allowedPattern } : {}),
    labels: [],
    lastModifiedDate: ctx.now,
    lastModifiedUser: `arn:aws:iam::${ctx.options.accountId}:user/standin`,
  };
  // aws:ec2:image is validated asynchronously: success is answered at once; the version becomes readable once
  // the validation has run (options.imageValidationMs later), and only if the AMI is then `available`.
  if (dataType === "aws:ec2:image") {
    ctx.state.ssm.validating.push({
      version: made,
      name,
      at: ctx.now.getTime() + ctx.options.imageValidationMs,
    });
    settleValidations(ctx);
  } else {
    if (record.versions.length >= MAX_VERSIONS) record.versions.shift();
    record.versions.push(made);
  }
  return { Version: version, Tier: tier };
};

/** Finish the aws:ec2:image validations whose time has come: keep the version, or drop the write. */
function settleValidations(ctx: HandlerContext): void {
  const ssm = ctx.state.ssm;
  const due = ssm.validating.filter((w) => w.at <= ctx.now.getTime());
  ssm.validating = ssm.validating.filter((w) => w.at > ctx.now.getTime());
  for (const { name, version } of due) {
    const image = ctx.state.ec2.images.get(version.value);
    const record = ssm.parameters.get(name);
    if (!image || image.state !== "available" || !record) {
      ssm.droppedWrites.push({
        name,
        version: version.version,
        value: version.value,
        reason: image
          ? `AMI ${version.value} is ${image.state}, not available, in ${ctx.region}`
          : `AMI ${version.value} does not exist in ${ctx.region}`,
      });
      continue;
    }
    if (record.versions.length >= MAX_VERSIONS) record.versions.shift();
    record.versions.push(version);
    record.versions.sort((a, b) => a.version - b.version);
  }
}

const getParameter: SsmHandler = (ctx, input) => {
  const name = reqString(input, "Name");
  const { p, v, selector } = resolve(ctx, name);
  return { Parameter: renderParameter(ctx, p, v, optBool(input, "WithDecryption") ?? false, selector) };
};

const getParameters: SsmHandler = (ctx, input) => {
  const names = optStringList(input, "Names") ?? [];
  if (names.length < 1 || names.length > 10) {
    validation(
      `1 validation error detected: Value '[${names.join(", ")}]' at 'names' failed to satisfy constraint: Member must have length ${names.length < 1 ? "greater than or equal to 1" : "less than or equal to 10"}`,
    );
  }
  const withDecryption = optBool(input, "WithDecryption") ?? false;
  const parameters: JsonObject[] = [];
  const invalid: string[] = [];
  for (const name of [...new Set(names)]) {
    try {
      const { p, v, selector } = resolve(ctx, name);
      parameters.push(renderParameter(ctx, p, v, withDecryption, selector));
    } catch (e) {
      if (
        e instanceof ServiceError &&
        (e.code === "ParameterNotFound" || e.code === "ParameterVersionNotFound")
      ) {
        invalid.push(name);
      } else {
        throw e;
      }
    }
  }
  return { Parameters: parameters, InvalidParameters: invalid };
};

function filterMatches(filters: JsonObject[], v: SsmParameterVersion): boolean {
  return filters.every((f) => {
    const key = String(f["Key"] ?? "");
    const option = String(f["Option"] ?? "Equals");
    const values = Array.isArray(f["Values"]) ? f["Values"].map(String) : [];
    if (option !== "Equals") validation(`The AWS stand-in supports only the Equals option (filter ${key}).`);
    switch (key) {
      case "Type":
        return values.includes(v.type);
      case "DataType":
        return values.includes(v.dataType);
      case "Tier":
        return values.includes(v.tier);
      case "Label":
        return values.some((l) => v.labels.includes(l));
      default:
        return validation(
          `The following filter key is not valid: ${key}. Valid filter keys include: [Type, KeyId, Label].`,
        );
    }
  });
}

const getParametersByPath: SsmHandler = (ctx, input) => {
  const path = reqString(input, "Path");
  if (!path.startsWith("/"))
    validation(
      `The parameter doesn't meet the parameter name requirements. The parameter name must begin with a forward slash "/".`,
    );
  const recursive = optBool(input, "Recursive") ?? false;
  const withDecryption = optBool(input, "WithDecryption") ?? false;
  const filters = optObjectList(input, "ParameterFilters") ?? [];
  const limit = pageLimit(input, 10);
  const prefix = path.endsWith("/") ? path : `${path}/`;
  const scope = `bypath:${ctx.region}:${prefix}:${recursive}`;
  const start = pageStart(input, scope);
  const matched = [...ctx.state.ssm.parameters.values()]
    .filter((p) => p.versions.length && p.name.startsWith(prefix))
    .filter((p) => recursive || !p.name.slice(prefix.length).includes("/"))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((p) => ({ p, v: latest(p) }))
    .filter(
      (x): x is { p: SsmParameter; v: SsmParameterVersion } =>
        x.v !== undefined && filterMatches(filters, x.v),
    );
  const page = matched.slice(start, start + limit);
  const end = start + limit;
  return {
    Parameters: page.map(({ p, v }) => renderParameter(ctx, p, v, withDecryption)),
    ...(end < matched.length ? { NextToken: encodeToken(end, scope) } : {}),
  };
};

const getParameterHistory: SsmHandler = (ctx, input) => {
  const name = reqString(input, "Name");
  const p = requireParameter(ctx, name);
  const withDecryption = optBool(input, "WithDecryption") ?? false;
  const limit = pageLimit(input, 50);
  const scope = `history:${ctx.region}:${name}`;
  const start = pageStart(input, scope);
  const page = p.versions.slice(start, start + limit);
  const end = start + limit;
  return {
    Parameters: page.map((v) => ({
      Name: p.name,
      Type: v.type,
      ...(v.keyId ? { KeyId: v.keyId } : {}),
      LastModifiedDate: v.lastModifiedDate.getTime() / 1000,
      LastModifiedUser: v.lastModifiedUser,
      ...(v.description !== undefined ? { Description: v.description } : {}),
      Value: shownValue(v, withDecryption),
      ...(v.allowedPattern !== undefined ? { AllowedPattern: v.allowedPattern } : {}),
      Version: v.version,
      Labels: [...v.labels],
      Tier: v.tier,
      Policies: [],
      DataType: v.dataType,
    })),
    ...(end < p.versions.length ? { NextToken: encodeToken(end, scope) } : {}),
  };
};

function labelsInput(input: JsonObject): string[] {
  const labels = optStringList(input, "Labels") ?? [];
  if (labels.length < 1 || labels.length > 10) {
    validation(
      `1 validation error detected: Value at 'labels' failed to satisfy constraint: Member must have length ${labels.length < 1 ? "greater than or equal to 1" : "less than or equal to 10"}`,
    );
  }
  return labels;
}

const labelParameterVersion: SsmHandler = (ctx, input) => {
  const name = reqString(input, "Name");
  const labels = labelsInput(input);
  const p = requireParameter(ctx, name);
  const requested = optNumber(input, "ParameterVersion");
  const target = requested === undefined ? latest(p) : findVersion(p, requested);
  if (!target) notFound(name);
  const invalid = labels.filter(labelProblem);
  const valid = [...new Set(labels.filter((l) => !labelProblem(l)))];
  const after = new Set([...target.labels, ...valid]);
  if (after.size > MAX_LABELS_PER_VERSION) {
    fail(
      "ParameterVersionLabelLimitExceeded",
      `A parameter version can have maximum ${MAX_LABELS_PER_VERSION} labels. Move one or more labels to another version and try again.`,
    );
  }
  for (const label of valid) {
    for (const v of p.versions) {
      if (v !== target) v.labels = v.labels.filter((l) => l !== label);
    }
    if (!target.labels.includes(label)) target.labels.push(label);
  }
  return { InvalidLabels: invalid, ParameterVersion: target.version };
};

const unlabelParameterVersion: SsmHandler = (ctx, input) => {
  const name = reqString(input, "Name");
  const version = optNumber(input, "ParameterVersion");
  if (version === undefined)
    validation(
      "1 validation error detected: Value null at 'parameterVersion' failed to satisfy constraint: Member must not be null",
    );
  const labels = labelsInput(input);
  const p = requireParameter(ctx, name);
  const target = findVersion(p, version);
  const removed = labels.filter((l) => target.labels.includes(l));
  const invalid = labels.filter((l) => !target.labels.includes(l));
  target.labels = target.labels.filter((l) => !removed.includes(l));
  return { RemovedLabels: removed, InvalidLabels: invalid };
};

const deleteParameter: SsmHandler = (ctx, input) => {
  const name = reqString(input, "Name");
  requireParameter(ctx, name);
  ctx.state.ssm.parameters.delete(name);
  return {};
};

const handlers: Readonly<Record<string, SsmHandler>> = {
  PutParameter: putParameter,
  GetParameter: getParameter,
  GetParameters: getParameters,
  GetParametersByPath: getParametersByPath,
  GetParameterHistory: getParameterHistory,
  LabelParameterVersion: labelParameterVersion,
  UnlabelParameterVersion: unlabelParameterVersion,
  DeleteParameter: deleteParameter,
};

/** Every operation first sees the aws:ec2:image validations that have finished by now. */
export const ssmHandlers: Readonly<Record<string, SsmHandler>> = Object.fromEntries(
  Object.entries(handlers).map(([op, h]): [string, SsmHandler] => [
    op,
    (ctx, input) => {
      settleValidations(ctx);
      return h(ctx, input);
    },
  ]),
);
