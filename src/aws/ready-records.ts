/**
 * The readiness records launched instances publish (aws): SSM parameters `<path>/<instance id>` under one path
 * per run (see `runRecordsPath` in src/config/tags.ts). Read in batches (GetParametersByPath, every page, 10
 * parameters each), deleted in batches (DeleteParameters, 10 names per call). Typed with the SDK's own shapes;
 * the client comes from the one factory (src/aws/clients.ts). What a record says is the launch flow's business.
 */
import { DeleteParametersCommand, GetParametersByPathCommand, type SSMClient } from "@aws-sdk/client-ssm";

type SsmLike = Pick<SSMClient, "send">;

export interface RawRecord {
  /** The full parameter name. */
  name: string;
  /** The last segment of the name (the instance id). */
  key: string;
  value: string;
  lastModified?: Date;
}

export interface ReadyRecordStore {
  /** Every record under `path` (not recursive), every page. */
  list(path: string): Promise<RawRecord[]>;
  /** Every record under `path` and its sub-paths (prune: every run). */
  listAll(path: string): Promise<RawRecord[]>;
  /** Delete the named parameters; names already gone are not an error. Returns the names deleted. */
  remove(names: string[]): Promise<string[]>;
}

export class SsmReadyRecords implements ReadyRecordStore {
  constructor(readonly ssm: SsmLike) {}

  private async byPath(path: string, recursive: boolean): Promise<RawRecord[]> {
    const out: RawRecord[] = [];
    let NextToken: string | undefined;
    do {
      const r = await this.ssm.send(
        new GetParametersByPathCommand({ Path: path, Recursive: recursive, MaxResults: 10, NextToken }),
      );
      for (const p of r.Parameters ?? []) {
        if (!p.Name) continue;
        out.push({
          name: p.Name,
          key: p.Name.slice(p.Name.lastIndexOf("/") + 1),
          value: p.Value ?? "",
          ...(p.LastModifiedDate ? { lastModified: p.LastModifiedDate } : {}),
        });
      }
      NextToken = r.NextToken;
    } while (NextToken);
    return out;
  }

  list(path: string): Promise<RawRecord[]> {
    return this.byPath(path, false);
  }

  listAll(path: string): Promise<RawRecord[]> {
    return this.byPath(path, true);
  }

  async remove(names: string[]): Promise<string[]> {
    const deleted: string[] = [];
    for (let i = 0; i < names.length; i += 10) {
      const r = await this.ssm.send(new DeleteParametersCommand({ Names: names.slice(i, i + 10) }));
      deleted.push(...(r.DeletedParameters ?? []));
    }
    return deleted;
  }
}
