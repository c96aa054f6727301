/**
 * Pruning of finished events: their rows, their ledger rows and their stored payloads go
 * together, in bounded pages, so the job never holds an invocation for long. Events that still
 * need a person (dead, invalid) or are still running are kept whatever their age.
 */
import { log } from "../observability/log";
import { runBatch, type Db } from "./ledger";
import type { PayloadStore } from "./payloads";

const PAGE = 100;

export interface PruneResult {
  events: number;
  payloads: number;
  /** Finished events older than the cutoff remain: the next run goes on. */
  more: boolean;
}

export async function pruneFinishedEvents(db: Db, store: PayloadStore, before: number, maxPages = 10): Promise<PruneResult> {
  const result: PruneResult = { events: 0, payloads: 0, more: false };
  for (let page = 0; page < maxPages; page++) {
    const { results } = await db.$client
      .prepare(`SELECT id, payload_ref FROM events WHERE status IN ('done', 'ignored') AND received_at < ? LIMIT ?`)
      .bind(before, PAGE)
      .all<{ id: string; payload_ref: string | null }>();
    if (results.length === 0) return result;
    // Payloads first: if the rows outlive a failed run, the next run finds and deletes them;
    // the other way round a payload would be left with nothing pointing at it.
    const refs = results.flatMap((r) => (r.payload_ref ? [r.payload_ref] : []));
    if (refs.length > 0) await store.delete(refs);
    const ids = JSON.stringify(results.map((r) => r.id));
    await runBatch(db, [
      db.$client.prepare(`DELETE FROM actions WHERE event_id IN (SELECT value FROM json_each(?))`).bind(ids),
      db.$client.prepare(`DELETE FROM events WHERE id IN (SELECT value FROM json_each(?))`).bind(ids),
    ]);
    result.events += results.length;
    result.payloads += refs.length;
    if (results.length < PAGE) return result;
  }
  result.more = true;
  return result;
}

/** The nightly retention step: finished events older than AUDIT_RETENTION_DAYS. */
export async function pruneOldEvents(db: Db, store: PayloadStore, retentionDays: number, now: number): Promise<PruneResult> {
  const result = await pruneFinishedEvents(db, store, now - retentionDays * 86_400_000);
  log("payloads_pruned", { events: result.events, payloads: result.payloads, more: result.more, retentionDays });
  return result;
}
