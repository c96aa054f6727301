/**
 * Reading dead letters for the operations API (GET /api/dead-letters): newest first, with the
 * same keyset paging as every list, filtered by state (open: not replayed yet), source, action
 * or event. Replay is in dead-letters.ts.
 */
import { and, desc, eq, isNotNull, isNull, type SQL } from "drizzle-orm";
import { olderThan, pageOf, pageSize } from "../db/paging";
import { deadLetters } from "../db/schema";
import type { Failure } from "../errors";
import type { Db } from "./ledger";

export interface DeadLetter {
  id: string;
  eventId: string;
  /** The action that died; null for a message that could not be read as an event at all. */
  action: string | null;
  source: string;
  reason: string;
  /** The raw queue message, kept only when it could not be read as an event. */
  body: string | null;
  createdAt: string;
  /** When it was last replayed; null while it is open. */
  replayedAt: string | null;
  replayCount: number;
}

export interface DeadLetterQuery {
  status?: "open" | "replayed";
  source?: string;
  action?: string;
  eventId?: string;
  limit?: number;
  cursor?: string;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export async function listDeadLetters(db: Db, query: DeadLetterQuery): Promise<{ ok: true; items: DeadLetter[]; nextCursor: string | null } | Failure> {
  const limit = pageSize(query.limit);
  const conditions: SQL[] = [];
  if (query.status === "open") conditions.push(isNull(deadLetters.replayedAt));
  if (query.status === "replayed") conditions.push(isNotNull(deadLetters.replayedAt));
  if (query.source) conditions.push(eq(deadLetters.source, query.source));
  if (query.action) conditions.push(eq(deadLetters.action, query.action));
  if (query.eventId) conditions.push(eq(deadLetters.eventId, query.eventId));
  const after = olderThan(query.cursor, deadLetters.createdAt, deadLetters.id);
  if (!after.ok) return after;
  const rows = await db
    .select()
    .from(deadLetters)
    .where(and(...conditions, after.where))
    .orderBy(desc(deadLetters.createdAt), desc(deadLetters.id))
    .limit(limit + 1);
  const { page, nextCursor } = pageOf(rows, limit, (r) => ({ t: r.createdAt, id: r.id }));
  return { ok: true, items: page.map((r) => ({ ...r, createdAt: iso(r.createdAt)!, replayedAt: iso(r.replayedAt) })), nextCursor };
}
