/**
 * The nightly check's alerts (CONTRACT 4.9): a run failed, found more mismatches than
 * ALERT_MISMATCH_PERCENT of what it compared, ran longer than twice the median of the last 7
 * successful runs, or no run succeeded in 26 hours. Each is recorded in D1 once (its `dedupe`
 * key: the run and the kind, or the missed period), so a second cron tick or a redelivered step
 * raises nothing twice; then, when ALERT_WEBHOOK_URL is set, it is delivered as a
 * Slack-compatible `{"text": …}` by a message of its own on the SYNC queue, retried apart from
 * the run, so an alert endpoint that is down never fails or slows a run. Without a URL, alerts
 * are recorded and logged only.
 */
import { log } from "../observability/log";
import type { Db } from "../pipeline/ledger";
import type { SyncMessage } from "./messages";

export type AlertKind =
  | "run_failed"
  | "too_many_mismatches"
  | "slow_run"
  | "missed_run"
  // The conditions watched every minute (observability/alerting.ts), and their recoveries.
  | "connector_errors"
  | "backlog"
  | "dead_letters"
  | "old_conflict"
  | "recovered";

export interface AlertDeps {
  db: Db;
  config: { alertWebhookUrl: string | null };
  queue: Queue<SyncMessage>;
  now(): number;
  /** How an alert reaches its endpoint (the platform's fetch). */
  post?: (url: string, init: RequestInit) => Promise<Response>;
}

/** How long an alert endpoint may take to answer. */
const DELIVERY_TIMEOUT_MS = 10_000;

/** Records the alert unless its `dedupe` key was raised before, and queues its delivery; answers whether it was new. */
export async function raiseAlert(deps: AlertDeps, alert: { dedupe: string; kind: AlertKind; runId: string | null; text: string }): Promise<boolean> {
  const id = `alert_${crypto.randomUUID()}`;
  const row = await deps.db.$client
    .prepare(`INSERT INTO alerts (id, dedupe, kind, run_id, text, created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (dedupe) DO NOTHING RETURNING id`)
    .bind(id, alert.dedupe, alert.kind, alert.runId, alert.text, deps.now())
    .first<{ id: string }>();
  if (!row) return false;
  log("alert", { kind: alert.kind, runId: alert.runId ?? undefined, text: alert.text, delivery: deps.config.alertWebhookUrl ? "queued" : "no ALERT_WEBHOOK_URL: recorded only" }, "warn");
  if (deps.config.alertWebhookUrl) {
    // A refused send leaves the alert recorded and undelivered; the next cron tick sends it again (resendUndelivered).
    await deps.queue.send({ kind: "alert", id }, { contentType: "json" }).catch((error: unknown) => log("alert", { id, outcome: "not_queued", error: String(error) }, "error"));
  }
  return true;
}

/** POSTs one recorded alert; throws (so its message is retried) when the endpoint does not take it. */
export async function deliverAlert(deps: AlertDeps, id: string): Promise<void> {
  const url = deps.config.alertWebhookUrl;
  const alert = await deps.db.$client.prepare(`SELECT text, delivered_at FROM alerts WHERE id = ?`).bind(id).first<{ text: string; delivered_at: number | null }>();
  if (!alert || alert.delivered_at !== null || !url) return;
  const post = deps.post ?? ((u, init) => fetch(u, init));
  let failure: string | null = null;
  try {
    const response = await post(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ text: alert.text }),
      signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
    });
    await response.body?.cancel();
    if (!response.ok) failure = `the alert endpoint answered ${response.status}`;
  } catch (error) {
    failure = `the alert endpoint did not answer: ${error instanceof Error ? error.name : "error"}`;
  }
  const now = deps.now();
  await deps.db.$client
    .prepare(`UPDATE alerts SET attempts = attempts + 1, delivered_at = CASE WHEN ?1 IS NULL THEN ?2 ELSE NULL END, last_error = ?1 WHERE id = ?3`)
    .bind(failure, now, id)
    .run();
  if (failure) throw new Error(failure);
}

/** How old an undelivered alert is before the cron offers it again (its own retries take about six minutes). */
const RESEND_AFTER_MS = 60 * 60_000;

/** Alerts recorded but never delivered (their sends were refused, or their retries ran out): queued again, at most 20 a tick. */
export async function resendUndelivered(deps: AlertDeps): Promise<number> {
  if (!deps.config.alertWebhookUrl) return 0;
  const { results } = await deps.db.$client
    .prepare(`SELECT id FROM alerts WHERE delivered_at IS NULL AND created_at < ? ORDER BY created_at LIMIT 20`)
    .bind(deps.now() - RESEND_AFTER_MS)
    .all<{ id: string }>();
  for (const { id } of results) await deps.queue.send({ kind: "alert", id }, { contentType: "json" });
  return results.length;
}

/** The median duration of the last `n` successful runs before `runId`, or null with none. */
export async function recentMedianMs(db: Db, runId: string, n = 7): Promise<number | null> {
  const { results } = await db.$client
    .prepare(`SELECT finished_at - started_at AS ms FROM sync_runs WHERE status = 'succeeded' AND id <> ? AND finished_at IS NOT NULL ORDER BY started_at DESC LIMIT ?`)
    .bind(runId, n)
    .all<{ ms: number }>();
  if (results.length === 0) return null;
  const sorted = results.map((r) => r.ms).sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
