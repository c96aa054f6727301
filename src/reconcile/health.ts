/**
 * What GET /health says of the nightly check (CONTRACT 5): the last run, and `degraded` when no
 * run succeeded in the 26 hours before now. The hours count from the worker's first start (a row
 * in worker_state, written the first time anything asks), so a fresh install is not degraded.
 */
import type { Db } from "../pipeline/ledger";
import { latestRun, toSyncRun, type SyncRun } from "./runs";

/** A day and two hours: a nightly run may start late or run long without this firing. */
export const MISSED_AFTER_MS = 26 * 60 * 60_000;

/** When the worker first started: the first time this was asked (a read after that; /health is polled). */
export async function firstStart(db: Db, now: number): Promise<number> {
  const d1 = db.$client;
  const known = await d1.prepare(`SELECT value FROM worker_state WHERE key = 'first_start'`).first<{ value: string }>();
  if (known) return Number(known.value);
  const [, row] = await d1.batch([
    d1.prepare(`INSERT INTO worker_state (key, value, updated_at) VALUES ('first_start', ?, ?) ON CONFLICT (key) DO NOTHING`).bind(String(now), now),
    d1.prepare(`SELECT value FROM worker_state WHERE key = 'first_start'`),
  ]);
  return Number((row?.results[0] as { value: string } | undefined)?.value ?? now);
}

export interface SyncHealth {
  lastSyncRun: SyncRun | null;
  /** Since when no run has succeeded (the last success's end, or the first start), when that is over MISSED_AFTER_MS. */
  missedSince: number | null;
}

export async function syncHealth(db: Db, now: number): Promise<SyncHealth> {
  const [last, succeeded, started] = await Promise.all([latestRun(db), latestRun(db, "succeeded"), firstStart(db, now)]);
  const since = Math.max(succeeded ? (succeeded.finishedAt ?? succeeded.startedAt) : -Infinity, started);
  return { lastSyncRun: last ? toSyncRun(last) : null, missedSince: now - since > MISSED_AFTER_MS ? since : null };
}
