/**
 * The Docker daemon's JSON-lines progress streams (build, push, pull), parsed into typed messages.
 *
 * The daemon answers 200 before the work starts and reports failure INSIDE the stream (`errorDetail`), so a
 * stream that merely ends proves nothing: every `errorDetail` is a failure, and a stream that ends without
 * its final result (the built image ID, the pushed digest) is a failure too. That is the classic dockerode
 * bug this module exists to avoid.
 */
import { DaemonStreamError } from "./errors.js";

export interface DaemonMessage {
  stream?: string;
  status?: string;
  id?: string;
  progress?: string;
  progressDetail?: { current?: number; total?: number };
  aux?: Record<string, unknown>;
  errorDetail?: { code?: number; message?: string };
  error?: string;
}

/**
 * Read a daemon stream to its end, calling `onMessage` for each JSON message (messages may be split across
 * chunks or share one). Rejects with {@link DaemonStreamError} on the first `errorDetail`/`error`, and when
 * the stream errors or closes before its end.
 */
export function readDaemonStream(
  stream: NodeJS.ReadableStream,
  onMessage: (m: DaemonMessage) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let partial = "";
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      if (err) {
        reject(err);
        // Stop reading: the daemon cancels the operation when its client goes away.
        (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
      } else resolve();
    };
    const handleLine = (line: string) => {
      const text = line.trim();
      if (!text || done) return;
      let m: DaemonMessage;
      try {
        m = JSON.parse(text) as DaemonMessage;
      } catch {
        // Not JSON (a proxy's error page, a truncated line): keep it as output, never as success.
        m = { stream: `${text}\n` };
      }
      if (m.errorDetail || m.error) {
        finish(
          new DaemonStreamError(m.errorDetail?.message ?? m.error ?? "unknown error", m.errorDetail?.code),
        );
        return;
      }
      try {
        onMessage(m);
      } catch (e) {
        finish(e as Error);
      }
    };
    stream.setEncoding?.("utf8");
    stream.on("data", (chunk: Buffer | string) => {
      const lines = (partial + chunk.toString()).split(/\r?\n/);
      partial = lines.pop() ?? "";
      for (const l of lines) handleLine(l);
    });
    stream.on("end", () => {
      handleLine(partial);
      partial = "";
      finish();
    });
    stream.on("error", (e: Error) =>
      finish(new DaemonStreamError(`the connection to the Docker engine failed: ${e.message}`)),
    );
    stream.on("close", () =>
      finish(new DaemonStreamError("the Docker engine closed the stream before the end of the operation")),
    );
  });
}

/** One instruction as the classic builder announces it: `Step 3/9 : RUN ...`. */
export interface BuildStep {
  step: number;
  total: number;
  instruction: string;
  /** The builder reused its cache for this step (` ---> Using cache`). */
  cached: boolean;
}

const STEP_RE = /^Step (\d+)\/(\d+) : (.*)$/s;

/** Follows a build stream: steps, cache hits, output lines and the final image ID. */
export class BuildStreamParser {
  readonly steps: BuildStep[] = [];
  imageId: string | undefined;
  private outputTail: string[] = [];

  constructor(
    private readonly on: {
      step?: (s: BuildStep) => void;
      cached?: (s: BuildStep) => void;
      output?: (line: string) => void;
    } = {},
  ) {}

  get current(): BuildStep | undefined {
    return this.steps.at(-1);
  }

  /** The last lines of build output (for error messages). */
  get tail(): string[] {
    return [...this.outputTail];
  }

  readonly message = (m: DaemonMessage): void => {
    if (m.aux && typeof m.aux["ID"] === "string") this.imageId = m.aux["ID"];
    if (typeof m.stream !== "string") return;
    for (const raw of m.stream.split("\n")) {
      const line = raw.trimEnd();
      if (!line) continue;
      const s = STEP_RE.exec(line);
      if (s) {
        const step: BuildStep = {
          step: Number(s[1]),
          total: Number(s[2]),
          instruction: s[3]!.trim(),
          cached: false,
        };
        this.steps.push(step);
        this.on.step?.(step);
        continue;
      }
      if (line === " ---> Using cache" && this.current) {
        this.current.cached = true;
        this.on.cached?.(this.current);
        continue;
      }
      if (/^ --->/.test(line) || /^Removing intermediate container /.test(line)) continue;
      if (/^Successfully (built|tagged) /.test(line)) continue;
      this.outputTail.push(line);
      if (this.outputTail.length > 20) this.outputTail.shift();
      this.on.output?.(line);
    }
  };
}

export type LayerStatus =
  "preparing" | "waiting" | "pushing" | "pushed" | "exists" | "mounted" | "retrying" | "other";

export interface LayerProgress {
  id: string;
  status: LayerStatus;
  /** The daemon's own words, e.g. "Mounted from bench/orchestrator" or "Retrying in 5 seconds". */
  text: string;
  current?: number;
  total?: number;
}

function layerStatus(text: string): LayerStatus {
  if (text === "Preparing") return "preparing";
  if (text === "Waiting") return "waiting";
  if (text === "Pushing") return "pushing";
  if (text === "Pushed") return "pushed";
  if (text === "Layer already exists") return "exists";
  if (text.startsWith("Mounted from")) return "mounted";
  if (text.startsWith("Retrying")) return "retrying";
  return "other";
}

/** Follows a push stream: per-layer progress and the final digest (`aux.Digest`). */
export class PushStreamParser {
  digest: string | undefined;
  size: number | undefined;
  /** The last status of each layer. */
  readonly layers = new Map<string, LayerProgress>();
  /** Largest `total` seen per layer while it was pushing: what was uploaded for layers that end "Pushed". */
  private readonly totals = new Map<string, number>();

  constructor(private readonly on: { layer?: (l: LayerProgress) => void } = {}) {}

  readonly message = (m: DaemonMessage): void => {
    if (m.aux && typeof m.aux["Digest"] === "string") {
      this.digest = m.aux["Digest"];
      if (typeof m.aux["Size"] === "number") this.size = m.aux["Size"];
      return;
    }
    if (!m.id || typeof m.status !== "string") return;
    const l: LayerProgress = {
      id: m.id,
      status: layerStatus(m.status),
      text: m.status,
      ...(m.progressDetail?.current !== undefined ? { current: m.progressDetail.current } : {}),
      ...(m.progressDetail?.total !== undefined ? { total: m.progressDetail.total } : {}),
    };
    if (l.total !== undefined) this.totals.set(l.id, Math.max(this.totals.get(l.id) ?? 0, l.total));
    this.layers.set(l.id, l);
    this.on.layer?.(l);
  };

  /** Layers by final status. */
  count(status: LayerStatus): number {
    return [...this.layers.values()].filter((l) => l.status === status).length;
  }

  /** Bytes the daemon reported sending for the layers it pushed (its own progress totals). */
  get bytesPushed(): number {
    let n = 0;
    for (const l of this.layers.values()) if (l.status === "pushed") n += this.totals.get(l.id) ?? 0;
    return n;
  }
}
