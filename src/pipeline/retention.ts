/**
 * The nightly retention step (AUDIT_RETENTION_DAYS): finished events go with their ledger rows
 * and their stored payloads, audit rows by age. Both work in bounded pages until done or until
 * the step's time budget is spent (a cron invocation may run for minutes, but the nightly
 * check shares it); what is left is taken by the next night's run. Events that still need a
 * person (dead, invalid) or are still running are kept whatever their age.
 */
import { log } from "../observability/log";
import { runBatch, type Db } from "./ledger";
import type { PayloadStore } from "./payloads";

const EVENT_PAGE = 200;
const AUDIT_PAGE = 1_000;
const RETENTION_BUDGET_MS = 60_000;

export interface PruneResult {
  events: number;
  payloads: number;
  auditRows: number;
  /** Rows older than the cutoff remain: the budget ran out. */
  more: boolean;
}

/** Deletes finished events received before `before`, their ledger rows and their payloads, one page at a time. */
export async function pruneFinishedEvents(db: Db, store: PayloadStore, before: number, until: number, now: () => number = Date.now): Promise<Omit<PruneResult, "auditRows">> {
  const result = { events: 0, payloads: 0, more: false };
  while (now() < until) {
    const { results } = await db.$client
      .prepare(`SELECT id, payload_ref FROM events WHERE status IN ('done', 'ignored') AND received_at < ? LIMIT ?`)
      .bind(before, EVENT_PAGE)
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
    if (results.length < EVENT_PAGE) return result;
  }
  result.more = true;
  return result;
}

/** Deletes audit rows created before `before`, one page at a time (by the created_at index). */
async function pruneAuditRows(db: Db, before: number, until: number, now: () => number = Date.now): Promise<{ auditRows: number; more: boolean }> {
  let auditRows = 0;
  while (now() < until) {
    const { meta } = await db.$client
      .prepare(`DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE created_at < ? ORDER BY created_at LIMIT ?)`)
      .bind(before, AUDIT_PAGE)
      .run();
    auditRows += meta.changes;
    if (meta.changes < AUDIT_PAGE) return { auditRows, more: false };
  }
  return { auditRows, more: true };
}

/**
 * Everything older than AUDIT_RETENTION_DAYS, within RETENTION_BUDGET_MS: half of it for each
 * table, and what events leave unused goes to the audit rows, so a backlog of one never
 * starves the other night after night.
 */
export async function pruneExpired(db: Db, store: PayloadStore, retentionDays: number, now: () => number = Date.now): Promise<PruneResult> {
  const started = now();
  const before = started - retentionDays * 86_400_000;
  const events = await pruneFinishedEvents(db, store, before, started + RETENTION_BUDGET_MS / 2, now);
  const audit = await pruneAuditRows(db, before, started + RETENTION_BUDGET_MS, now);
  const result = { ...events, auditRows: audit.auditRows, more: events.more || audit.more };
  log("retention_pruned", { ...result, retentionDays });
  return result;
}
