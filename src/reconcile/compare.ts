/**
 * The comparison and the end of a nightly check run (steps.ts runs them as steps):
 * - compare, CRM side: CRM records in key order, each against the member staged at the address
 *   it is matched by (missing in the list, address, names, subscription);
 * - compare, email side: the members no CRM record matched (missing in the CRM);
 * - each entity with a mismatch is repaired through the pipeline (repairs.ts);
 * - finish: the mismatches counted by kind from their rows (each written once: its id is the
 *   run, the entity, the kind and the field), the run succeeded, its duration;
 * - cleanup: the staged records deleted a chunk at a time, so a run over a million contacts
 *   never holds a long D1 statement.
 */
import { contactKey, emailKey } from "../entities/directory";
import type { Db } from "../pipeline/ledger";
import { enqueue, newDelivery } from "../pipeline/message";
import type { SyncMessage } from "./messages";
import { compareRecords, type Mismatch, type SideRecord } from "./records";
import { raiseAlert, recentMedianMs } from "./alerts";
import { repairEvent, type Repair } from "./repairs";
import type { Side, StepDeps, StepWork } from "./steps";

/** Records compared per step: a bounded D1 read and a bounded batch of mismatch rows. */
export const COMPARE_CHUNK = 500;
/** Staged records deleted per cleanup step. */
const CLEANUP_CHUNK = 5_000;

/**
 * One chunk of the comparison: its mismatch rows, and (unless the run is a dry run) one repair
 * event per entity, queued before the rows are written (repairs.ts: the same ids if the step
 * is done again).
 */
export async function compare(deps: StepDeps, run: { id: string; dryRun: boolean }, side: Side, after: string): Promise<StepWork> {
  const runId = run.id;
  const d1 = deps.db.$client;
  const chunk = deps.sizes?.compare ?? COMPARE_CHUNK;
  const found: { entityKey: string; mismatch: Mismatch }[] = [];
  const repairs: Repair[] = [];
  const note = (entityKey: string, mismatches: Mismatch[], member: SideRecord | null) => {
    for (const mismatch of mismatches) found.push({ entityKey, mismatch });
    if (mismatches.length > 0) repairs.push({ entityKey, kinds: [...new Set(mismatches.map((m) => m.kind))], member });
  };
  let last: string | null = null;
  let read = 0;
  if (side === "crm") {
    const { results } = await d1
      .prepare(
        `SELECT c.key AS key, c.data AS crm, e.data AS email FROM sync_records c
         LEFT JOIN sync_records e ON e.run_id = c.run_id AND e.side = 'email' AND e.key = c.email
         WHERE c.run_id = ?1 AND c.side = 'crm' AND c.key > ?2 ORDER BY c.key LIMIT ?3`,
      )
      .bind(runId, after, chunk)
      .all<{ key: string; crm: string; email: string | null }>();
    for (const row of results) {
      const crm = JSON.parse(row.crm) as SideRecord;
      const email = row.email === null ? null : (JSON.parse(row.email) as SideRecord);
      note(contactKey(row.key), compareRecords(crm, email), email);
      last = row.key;
    }
    read = results.length;
  } else {
    const { results } = await d1
      .prepare(
        `SELECT e.key AS key, e.data AS email FROM sync_records e
         WHERE e.run_id = ?1 AND e.side = 'email' AND e.key > ?2
           AND NOT EXISTS (SELECT 1 FROM sync_records c WHERE c.run_id = e.run_id AND c.side = 'crm' AND c.email = e.key)
         ORDER BY e.key LIMIT ?3`,
      )
      .bind(runId, after, chunk)
      .all<{ key: string; email: string }>();
    for (const row of results) {
      const email = JSON.parse(row.email) as SideRecord;
      note(emailKey(row.key), compareRecords(null, email), email);
      last = row.key;
    }
    read = results.length;
  }
  const now = deps.now();
  const repairIds = new Map<string, string>();
  if (!run.dryRun && repairs.length > 0) {
    const events = await Promise.all(repairs.map((r) => repairEvent(runId, r, now)));
    await enqueue(deps.events, deps.store, events.map((e) => newDelivery(e, now)));
    events.forEach((e) => repairIds.set(e.entityKey!, e.id));
  }
  return { statements: mismatchInserts(deps.db, runId, found, repairIds, now), records: read, next: read === chunk ? last : null };
}

function mismatchInserts(db: Db, runId: string, found: { entityKey: string; mismatch: Mismatch }[], repairIds: Map<string, string>, now: number): D1PreparedStatement[] {
  if (found.length === 0) return [];
  const rows = found.map(({ entityKey, mismatch: m }) => ({
    id: `${runId}:${entityKey}:${m.kind}:${m.field ?? ""}`,
    entity: entityKey,
    kind: m.kind,
    field: m.field,
    crm: m.crmValue,
    email: m.emailValue,
    repair: repairIds.get(entityKey) ?? null,
  }));
  return [
    db.$client
      .prepare(
        `INSERT OR IGNORE INTO sync_mismatches (id, run_id, entity_key, kind, field, crm_value, email_value, repair_event_id, created_at)
         SELECT json_extract(value, '$.id'), ?1, json_extract(value, '$.entity'), json_extract(value, '$.kind'), json_extract(value, '$.field'),
                json_extract(value, '$.crm'), json_extract(value, '$.email'), json_extract(value, '$.repair'), ?2
         FROM json_each(?3)`,
      )
      .bind(runId, now, JSON.stringify(rows)),
  ];
}

export async function finish(deps: StepDeps, runId: string): Promise<void> {
  const d1 = deps.db.$client;
  const { results } = await d1.prepare(`SELECT kind, count(*) AS n FROM sync_mismatches WHERE run_id = ? GROUP BY kind`).bind(runId).all<{ kind: string; n: number }>();
  const byKind = Object.fromEntries(results.map((r) => [r.kind, r.n]));
  const total = results.reduce((sum, r) => sum + r.n, 0);
  const now = deps.now();
  await d1
    .prepare(
      `UPDATE sync_runs SET status = 'succeeded', phase = 'done', finished_at = ?1, updated_at = ?1, mismatches = ?2, mismatches_by_kind = ?3,
         repairs_queued = (SELECT count(DISTINCT repair_event_id) FROM sync_mismatches WHERE run_id = ?4)
       WHERE id = ?4 AND status = 'running'`,
    )
    .bind(now, total, JSON.stringify(byKind), runId)
    .run();
  // The alerts of a finished run, each raised once (its key is recorded): a redelivered finish raises none again.
  const run = await d1
    .prepare(`SELECT started_at, finished_at, crm_records, email_records FROM sync_runs WHERE id = ? AND status = 'succeeded'`)
    .bind(runId)
    .first<{ started_at: number; finished_at: number; crm_records: number; email_records: number }>();
  if (run) await alertsOfFinished(deps, runId, { total, compared: Math.max(run.crm_records, run.email_records), durationMs: run.finished_at - run.started_at });
  await deps.queue.send({ kind: "cleanup", runId } satisfies SyncMessage, { contentType: "json" });
}

async function alertsOfFinished(deps: StepDeps, runId: string, run: { total: number; compared: number; durationMs: number }): Promise<void> {
  const share = deps.config.alertMismatchShare;
  if (run.total > share * run.compared) {
    const percent = run.compared === 0 ? 100 : Math.round((run.total / run.compared) * 1000) / 10;
    await raiseAlert(deps, { dedupe: `run:${runId}:too_many_mismatches`, kind: "too_many_mismatches", runId, text: `Syncwire nightly check found ${run.total} mismatches in ${run.compared} records (${percent}%, over ${share * 100}%) (run ${runId})` });
  }
  const median = await recentMedianMs(deps.db, runId);
  if (median !== null && run.durationMs > 2 * median) {
    await raiseAlert(deps, { dedupe: `run:${runId}:slow_run`, kind: "slow_run", runId, text: `Syncwire nightly check took ${Math.round(run.durationMs / 1000)} s, over twice the median of the last successful runs (${Math.round(median / 1000)} s) (run ${runId})` });
  }
}

export async function cleanup(deps: StepDeps, runId: string): Promise<void> {
  const d1 = deps.db.$client;
  const result = await d1
    .prepare(`DELETE FROM sync_records WHERE rowid IN (SELECT rowid FROM sync_records WHERE run_id = ? LIMIT ?)`)
    .bind(runId, CLEANUP_CHUNK)
    .run();
  if ((result.meta.changes ?? 0) >= CLEANUP_CHUNK) await deps.queue.send({ kind: "cleanup", runId } satisfies SyncMessage, { contentType: "json" });
  else await d1.prepare(`DELETE FROM sync_run_pages WHERE run_id = ?`).bind(runId).run();
}
