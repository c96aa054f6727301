/**
 * The cron's job (`0 2 * * *`, CONTRACT 4.9): the missed-run check, then the nightly check run,
 * then retention (what is past AUDIT_RETENTION_DAYS). A run still going from before is left
 * alone (and said so): only one runs at a time. Alerts recorded but never delivered are offered
 * to ALERT_WEBHOOK_URL again.
 */
import { getConfig } from "../config";
import { log } from "../observability/log";
import { database } from "../pipeline/ledger";
import { r2PayloadStore } from "../pipeline/payloads";
import { pruneExpired } from "../pipeline/retention";
import { raiseAlert, resendUndelivered } from "./alerts";
import { syncHealth } from "./health";
import type { SyncMessage } from "./messages";
import { startSyncRun } from "./start";

export async function nightly(env: Env, cron: string, now: () => number = Date.now, post?: (url: string, init: RequestInit) => Promise<Response>): Promise<void> {
  const config = getConfig(env);
  const db = database(env.DB);
  const queue = env.SYNC as Queue<SyncMessage>;
  const alerts = { db, config, queue, now, ...(post ? { post } : {}) };

  // Checked before this tick's run starts: a missed night is a missed night, whatever comes next.
  const { missedSince } = await syncHealth(db, now());
  if (missedSince !== null) {
    await raiseAlert(alerts, {
      dedupe: `missed:${missedSince}`,
      kind: "missed_run",
      runId: null,
      text: `Syncwire nightly check: no run succeeded since ${new Date(missedSince).toISOString()} (over 26 hours)`,
    });
  }
  await resendUndelivered(alerts);

  const started = await startSyncRun({ db, config, queue, now }, { trigger: "cron", dryRun: false });
  if (started.ok) log("nightly_check", { cron, outcome: "started", runId: started.run.id });
  else if (started.reason === "run_in_progress") log("nightly_check", { cron, outcome: "skipped", reason: "a run is in progress", runId: started.running?.id }, "warn");
  else log("nightly_check", { cron, outcome: "not_started", reason: started.reason === "not_configured" ? started.message : "the sync queue refused the run" }, "error");
  await pruneExpired(db, r2PayloadStore(env.PAYLOADS), config.auditRetentionDays);
}
