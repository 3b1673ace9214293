/**
 * The core never prints: it emits these events and the CLI decides how to show them
 * (plain lines, a progress display, or nothing with --json). See src/cli/output.ts for the level table.
 */
export type ImgtoolEventType =
  | "start"
  | "check"
  | "found"
  | "skip"
  | "build"
  | "progress"
  | "push"
  | "publish"
  | "launch"
  | "ready"
  | "warn"
  | "fail"
  | "debug"
  | "done";

export interface ImgtoolEvent {
  type: ImgtoolEventType;
  /** Human sentence: what happened. */
  message: string;
  /** Role (task-runner, orchestrator) when the event concerns one. */
  role?: string;
  /** Extra structured data for --json consumers and --verbose. */
  data?: Record<string, unknown>;
}

export type EventSink = (event: ImgtoolEvent) => void;

/** A sink that drops everything: for callers that do not care. */
export const ignoreEvents: EventSink = () => {};

/** A sink that records events in memory (tests, reports). */
export function recordingSink(): EventSink & { events: ImgtoolEvent[] } {
  const events: ImgtoolEvent[] = [];
  const sink = ((e: ImgtoolEvent) => {
    events.push(e);
  }) as EventSink & { events: ImgtoolEvent[] };
  sink.events = events;
  return sink;
}
