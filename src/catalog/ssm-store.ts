/**
 * ParameterStore over SSM Parameter Store (aws target). Only the calls the catalog makes, typed with the SDK's
 * own shapes. Throttling and 5xx are retried by the client's retry strategy (src/aws/clients.ts).
 */
import {
  DeleteParameterCommand,
  GetParameterHistoryCommand,
  GetParametersByPathCommand,
  GetParametersCommand,
  LabelParameterVersionCommand,
  PutParameterCommand,
  UnlabelParameterVersionCommand,
  type SSMClient,
} from "@aws-sdk/client-ssm";
import { errorName } from "../errors.js";
import type { DataType, ParameterStore, StoredParameter, StoredVersion } from "./store.js";

type SsmLike = Pick<SSMClient, "send">;

export class SsmStore implements ParameterStore {
  readonly kind = "ssm" as const;
  readonly maxBatch = 10;
  constructor(private readonly ssm: SsmLike) {}

  async put(
    name: string,
    value: string,
    opts: { dataType: DataType; description?: string },
  ): Promise<number> {
    const r = await this.ssm.send(
      new PutParameterCommand({
        Name: name,
        Value: value,
        Type: "String",
        DataType: opts.dataType,
        Overwrite: true,
        // Metadata can outgrow the standard tier's 4 KB; SSM then picks advanced by itself.
        Tier: "Intelligent-Tiering",
        ...(opts.description ? { Description: opts.description.slice(0, 1024) } : {}),
      }),
    );
    if (r.Version === undefined) throw new Error(`SSM PutParameter ${name} answered without a version`);
    return r.Version;
  }

  async create(name: string, value: string): Promise<void> {
    // Overwrite=false: SSM refuses with ParameterAlreadyExists when the name exists (atomic on its side).
    await this.ssm.send(
      new PutParameterCommand({
        Name: name,
        Value: value,
        Type: "String",
        DataType: "text",
        Overwrite: false,
      }),
    );
  }

  async label(name: string, version: number, labels: string[]): Promise<{ invalid: string[] }> {
    const r = await this.ssm.send(
      new LabelParameterVersionCommand({ Name: name, ParameterVersion: version, Labels: labels }),
    );
    return { invalid: r.InvalidLabels ?? [] };
  }

  async unlabel(name: string, version: number, labels: string[]): Promise<void> {
    if (labels.length === 0) return;
    await this.ssm.send(
      new UnlabelParameterVersionCommand({ Name: name, ParameterVersion: version, Labels: labels }),
    );
  }

  async getMany(selectors: string[]): Promise<{ found: StoredParameter[]; missing: string[] }> {
    if (selectors.length > this.maxBatch) throw new Error(`getMany takes at most ${this.maxBatch} names`);
    const r = await this.ssm.send(new GetParametersCommand({ Names: selectors }));
    const found = (r.Parameters ?? []).map((p) => {
      const selector = p.Selector ?? undefined;
      return {
        name: p.Name ?? "",
        ...(selector ? { selector: selector.replace(/^:/, "") } : {}),
        value: p.Value ?? "",
        version: p.Version ?? 0,
        dataType: (p.DataType ?? "text") as DataType,
        modifiedAt: p.LastModifiedDate ?? new Date(0),
      };
    });
    return { found, missing: r.InvalidParameters ?? [] };
  }

  async history(name: string): Promise<StoredVersion[]> {
    const out: StoredVersion[] = [];
    let NextToken: string | undefined;
    do {
      let r;
      try {
        r = await this.ssm.send(new GetParameterHistoryCommand({ Name: name, MaxResults: 50, NextToken }));
      } catch (e) {
        // The store's contract: a parameter that does not exist has an empty history.
        if (errorName(e) === "ParameterNotFound") return [];
        throw e;
      }
      for (const p of r.Parameters ?? []) {
        out.push({
          name,
          value: p.Value ?? "",
          version: p.Version ?? 0,
          dataType: (p.DataType ?? "text") as DataType,
          modifiedAt: p.LastModifiedDate ?? new Date(0),
          labels: p.Labels ?? [],
        });
      }
      NextToken = r.NextToken;
    } while (NextToken);
    return out.sort((a, b) => a.version - b.version);
  }

  async list(path: string): Promise<string[]> {
    const names: string[] = [];
    let NextToken: string | undefined;
    do {
      const r = await this.ssm.send(
        new GetParametersByPathCommand({ Path: path, Recursive: true, MaxResults: 10, NextToken }),
      );
      for (const p of r.Parameters ?? []) if (p.Name) names.push(p.Name);
      NextToken = r.NextToken;
    } while (NextToken);
    return names.sort();
  }

  async delete(name: string): Promise<void> {
    await this.ssm.send(new DeleteParameterCommand({ Name: name }));
  }
}
