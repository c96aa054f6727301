/**
 * One JSON line per step, for `wrangler tail --format json | jq`. Callers pass ids, names and
 * numbers, never credentials; as a safety net, fields whose names look like secrets are dropped.
 */
export type LogStep =
  | "ingested"
  | "ingest_rejected"
  | "enqueue_failed"
  | "deduped"
  | "event_ignored"
  | "action_attempt"
  | "retry_scheduled"
  | "requeued"
  | "dead_lettered"
  | "replayed"
  | "consumer_error"
  | "audit_unrecorded"
  | "retention_pruned"
  | "conflict_opened"
  | "conflict_resolved"
  | "config_error"
  | "unhandled_error"
  | "budget_low"
  | "budget_error"
  | "nightly_check"
  | "alert";

export interface LogFields {
  eventId?: string;
  source?: string;
  entity?: string | null;
  action?: string;
  attempt?: number;
  outcome?: string;
  durationMs?: number;
  [key: string]: unknown;
}

const SECRET_LIKE = /authorization|token|secret|password|api_?key/i;

export function log(step: LogStep, fields: LogFields = {}, level: "info" | "warn" | "error" = "info"): void {
  const line: Record<string, unknown> = { time: new Date().toISOString(), level, step };
  for (const [key, value] of Object.entries(fields)) {
    // A field never replaces the line's own time, level or step: the jq recipes select on them.
    if (value !== undefined && !SECRET_LIKE.test(key) && !Object.hasOwn(line, key)) line[key] = value;
  }
  const text = JSON.stringify(line);
  if (level === "error") console.error(text);
  else if (level === "warn") console.warn(text);
  else console.log(text);
}
