/**
 * The crons' jobs (CONTRACT 4.9, 4.10): every minute, the missed-run check, the watched
 * conditions (observability/alerting.ts) and alerts left undelivered; at 02:00 UTC also the
 * nightly check run, then retention (what is past AUDIT_RETENTION_DAYS). A run still going from
 * before is left alone (and said so): only one runs at a time.
 */
import { getConfig } from "../config";
import { log } from "../observability/log";
import { database } from "../pipeline/ledger";
import { r2PayloadStore } from "../pipeline/payloads";
import { pruneExpired } from "../pipeline/retention";
import { evaluateAlerts } from "../observability/alerting";
import { raiseAlert, resendUndelivered, type AlertDeps } from "./alerts";
import { syncHealth } from "./health";
import type { SyncMessage } from "./messages";
import { startSyncRun } from "./start";

/** The cron of the nightly check; the every-minute cron only watches (observability/alerting.ts). */
export const NIGHTLY_CRON = "0 2 * * *";

/**
 * Every cron tick: the missed-run check, the watched conditions, alerts left undelivered; and at
 * 02:00 UTC the nightly check run, then retention.
 */
export async function scheduledTick(env: Env, cron: string, now: () => number = Date.now, post?: (url: string, init: RequestInit) => Promise<Response>): Promise<void> {
  const config = getConfig(env);
  const db = database(env.DB);
  const queue = env.SYNC as Queue<SyncMessage>;
  const alerts = { db, config, queue, now, ...(post ? { post } : {}) };
  // Checked before a tick's run starts: a missed night is a missed night, whatever comes next.
  await checkMissedRun(alerts);
  await evaluateAlerts(alerts);
  await resendUndelivered(alerts);
  if (cron === NIGHTLY_CRON) await nightly(env, cron, now);
}

async function checkMissedRun(alerts: AlertDeps): Promise<void> {
  const { missedSince } = await syncHealth(alerts.db, alerts.now());
  if (missedSince === null) return;
  await raiseAlert(alerts, {
    dedupe: `missed:${missedSince}`,
    kind: "missed_run",
    runId: null,
    text: `Syncwire nightly check: no run succeeded since ${new Date(missedSince).toISOString()} (over 26 hours)`,
  });
}

/** The nightly check run, then retention. A run still going from before is left alone (and said so). */
export async function nightly(env: Env, cron: string, now: () => number = Date.now): Promise<void> {
  const config = getConfig(env);
  const db = database(env.DB);
  const queue = env.SYNC as Queue<SyncMessage>;
  const started = await startSyncRun({ db, config, queue, now }, { trigger: "cron", dryRun: false });
  if (started.ok) log("nightly_check", { cron, outcome: "started", runId: started.run.id });
  else if (started.reason === "run_in_progress") log("nightly_check", { cron, outcome: "skipped", reason: "a run is in progress", runId: started.running?.id }, "warn");
  else log("nightly_check", { cron, outcome: "not_started", reason: started.reason === "not_configured" ? started.message : "the sync queue refused the run" }, "error");
  await pruneExpired(db, r2PayloadStore(env.PAYLOADS), config.auditRetentionDays);
}
