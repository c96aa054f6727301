/**
 * The cron's job (`0 2 * * *`, CONTRACT 4.9): start the nightly check run, then prune what is
 * past AUDIT_RETENTION_DAYS. A run still going from before is left alone (and said so): only one
 * runs at a time.
 */
import { getConfig } from "../config";
import { log } from "../observability/log";
import { database } from "../pipeline/ledger";
import { r2PayloadStore } from "../pipeline/payloads";
import { pruneExpired } from "../pipeline/retention";
import { startSyncRun } from "./start";

export async function nightly(env: Env, cron: string, now: () => number = Date.now): Promise<void> {
  const config = getConfig(env);
  const db = database(env.DB);
  const started = await startSyncRun({ db, config, queue: env.SYNC, now }, { trigger: "cron", dryRun: false });
  if (started.ok) log("nightly_check", { cron, outcome: "started", runId: started.run.id });
  else if (started.reason === "run_in_progress") log("nightly_check", { cron, outcome: "skipped", reason: "a run is in progress", runId: started.running?.id }, "warn");
  else log("nightly_check", { cron, outcome: "not_started", reason: started.reason === "not_configured" ? started.message : "the sync queue refused the run" }, "error");
  await pruneExpired(db, r2PayloadStore(env.PAYLOADS), config.auditRetentionDays);
}
