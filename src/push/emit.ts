/** The push flow's events of one role: build, upload and publish emit through the same sink. */
import type { Role } from "../config/schema.js";
import type { EventSink } from "../events.js";

export type RoleEmit = (
  role: Role,
  type: Parameters<EventSink>[0]["type"],
  message: string,
  data?: Record<string, unknown>,
) => void;

export function roleEmitter(events: EventSink): RoleEmit {
  return (role, type, message, data) => events({ type, role, message, ...(data ? { data } : {}) });
}
