/**
 * Starting a nightly check run: the cron at 02:00 UTC, POST /api/sync-runs, or a test. The run
 * is recorded first (at most one runs at a time, runs.ts), then its first two steps, one page
 * of each side, go on the SYNC queue; the steps carry it from there (steps.ts).
 */
import type { Config } from "../config";
import { log } from "../observability/log";
import type { Db } from "../pipeline/ledger";
import { raiseAlert } from "./alerts";
import type { SyncMessage } from "./messages";
import { insertRun, type StartResult, type Trigger } from "./runs";

/** How long a running run may go without a step before a new start ends it as stalled. */
export const STALLED_AFTER_MS = 60 * 60_000;

export interface StartDeps {
  db: Db;
  config: Config;
  queue: Queue<SyncMessage>;
  now(): number;
}

export type StartOutcome = StartResult | { ok: false; reason: "not_configured"; message: string } | { ok: false; reason: "queue_refused"; error: unknown };

export async function startSyncRun(deps: StartDeps, input: { trigger: Trigger; dryRun: boolean }): Promise<StartOutcome> {
  const { hubspot, mailchimp } = deps.config;
  if (!hubspot.enabled || !mailchimp.enabled) {
    return { ok: false, reason: "not_configured", message: "the nightly check compares HubSpot and Mailchimp: both must be configured" };
  }
  const now = deps.now();
  let started = await insertRun(deps.db, { id: `run_${crypto.randomUUID()}`, trigger: input.trigger, dryRun: input.dryRun, now });
  // A run with no step for an hour has stalled (its messages were lost, or a vendor has refused it
  // capacity all that time): it ends as failed, with an alert, so it cannot hold every later run.
  if (!started.ok && started.reason === "run_in_progress" && started.running && now - started.running.updatedAt > STALLED_AFTER_MS) {
    const stalled = started.running;
    const error = `stalled: no step for ${Math.round((now - stalled.updatedAt) / 60_000)} minutes (a new run was started)`;
    const ended = await deps.db.$client
      .prepare(`UPDATE sync_runs SET status = 'failed', phase = 'done', finished_at = ?1, updated_at = ?1, error = ?2 WHERE id = ?3 AND status = 'running' AND updated_at = ?4 RETURNING id`)
      .bind(now, error, stalled.id, stalled.updatedAt)
      .first();
    if (ended) {
      log("nightly_check", { runId: stalled.id, outcome: "failed", error }, "error");
      await raiseAlert(deps, { dedupe: `run:${stalled.id}:run_failed`, kind: "run_failed", runId: stalled.id, text: `Syncwire nightly check failed (run ${stalled.id}): ${error}` });
      // What it staged goes, as for any run that ends.
      await deps.queue.send({ kind: "cleanup", runId: stalled.id }, { contentType: "json" });
    }
    started = await insertRun(deps.db, { id: `run_${crypto.randomUUID()}`, trigger: input.trigger, dryRun: input.dryRun, now });
  }
  if (!started.ok) return started;
  const runId = started.run.id;
  try {
    await deps.queue.sendBatch(
      (["crm", "email"] as const).map((side) => ({ body: { kind: "scan", runId, side, page: "" } satisfies SyncMessage, contentType: "json" as const })),
    );
  } catch (error) {
    // Nothing of the run is on the queue: it ends here, so the next start is not refused.
    await deps.db.$client
      .prepare(`UPDATE sync_runs SET status = 'failed', phase = 'done', finished_at = ?1, updated_at = ?1, error = ?2 WHERE id = ?3 AND status = 'running'`)
      .bind(deps.now(), "the sync queue did not accept the run's first pages", runId)
      .run();
    return { ok: false, reason: "queue_refused", error };
  }
  return started;
}
