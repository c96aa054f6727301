/**
 * The audit trail of outbound calls (CONTRACT 4.8). Calls are buffered per message and
 * written in the same D1 batch that settles the message's actions, so an audit row costs no
 * extra round trip and is on disk before the message is acknowledged.
 */

import { rollupStatements } from "../observability/metrics";

export type AuditOutcome = "success" | "transient" | "permanent";

export interface AuditRecord {
  eventId: string | null;
  entityKey: string | null;
  action: string | null;
  connector: string;
  method: string;
  url: string;
  requestBody: string | null;
  status: number | null;
  responseBody: string | null;
  durationMs: number;
  attempt: number;
  outcome: AuditOutcome;
  error: string | null;
  createdAt: number;
  /** A bulk call's row: every event it served (CONTRACT 4.11); absent for a call made for one group. */
  served?: string[];
}

export interface AuditSink {
  record(row: AuditRecord): void;
}

export const MAX_REQUEST_BODY = 16_384;
export const MAX_RESPONSE_BODY = 4_096;

export class AuditBuffer implements AuditSink {
  private rows: AuditRecord[] = [];

  record(row: AuditRecord): void {
    this.rows.push(row);
  }

  /** Takes the buffered rows, leaving the buffer empty. */
  drain(): AuditRecord[] {
    const rows = this.rows;
    this.rows = [];
    return rows;
  }
}

// D1 allows 100 bound parameters per statement; an audit row binds 15.
const ROWS_PER_INSERT = 6;
const COLUMNS =
  "event_id, entity_key, action, connector, method, url, request_body, status, response_body, duration_ms, attempt, outcome, error, created_at, served";
const insertSql = new Map<number, string>();

/**
 * Insert statements for `rows`, with their metrics rollups (observability/metrics.ts), ready for a D1 batch. Hand-written SQL (columns as in
 * src/db/schema.ts): this runs for every outbound call, and building it with drizzle's query
 * builder cost more CPU than everything else the audit does.
 */
export function auditInserts(d1: D1Database, rows: AuditRecord[]): D1PreparedStatement[] {
  const statements: D1PreparedStatement[] = [];
  for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) {
    const chunk = rows.slice(i, i + ROWS_PER_INSERT);
    let sql = insertSql.get(chunk.length);
    if (!sql) {
      sql = `INSERT INTO audit_log (${COLUMNS}) VALUES ${Array(chunk.length).fill(`(${Array(15).fill("?").join(", ")})`).join(", ")}`;
      insertSql.set(chunk.length, sql);
    }
    const values = chunk.flatMap((r) => [
      r.eventId, r.entityKey, r.action, r.connector, r.method, r.url, r.requestBody, r.status,
      r.responseBody, r.durationMs, r.attempt, r.outcome, r.error, r.createdAt, r.served ? JSON.stringify(r.served) : null,
    ]);
    statements.push(d1.prepare(sql).bind(...values));
  }
  // The metrics' rollups go with the rows they count, in the same batch: counted once, or not at all.
  return [...statements, ...rollupStatements(d1, rows)];
}
