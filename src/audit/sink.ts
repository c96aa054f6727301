/**
 * The audit trail of outbound calls (CONTRACT 4.8). Calls are buffered per message and
 * written in the same D1 batch that settles the message's actions, so an audit row costs no
 * extra round trip and is on disk before the message is acknowledged.
 */
import type { DrizzleD1Database } from "drizzle-orm/d1";
import { auditLog } from "../db/schema";

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
}

export interface AuditSink {
  record(row: AuditRecord): void;
}

export const MAX_REQUEST_BODY = 16_384;
export const MAX_RESPONSE_BODY = 4_096;

export function truncate(text: string | null, max: number): string | null {
  if (text === null || text.length <= max) return text;
  return `${text.slice(0, max)}…[truncated ${text.length - max} chars]`;
}

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

// D1 allows 100 bound parameters per statement; an audit row binds 14.
const ROWS_PER_INSERT = 7;

/** Insert statements for `rows`, ready for `db.batch`. */
export function auditInserts(db: DrizzleD1Database<Record<string, unknown>>, rows: AuditRecord[]) {
  const statements = [];
  for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) {
    statements.push(db.insert(auditLog).values(rows.slice(i, i + ROWS_PER_INSERT)));
  }
  return statements;
}

