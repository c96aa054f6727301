/**
 * Starting a nightly check run: the cron at 02:00 UTC, POST /api/sync-runs, or a test. The run
 * is recorded first (at most one runs at a time, runs.ts), then its first two steps, one page
 * of each side, go on the SYNC queue; the steps carry it from there (steps.ts).
 */
import type { Config } from "../config";
import type { Db } from "../pipeline/ledger";
import type { SyncMessage } from "./messages";
import { insertRun, type StartResult, type Trigger } from "./runs";

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
  const started = await insertRun(deps.db, { id: `run_${crypto.randomUUID()}`, trigger: input.trigger, dryRun: input.dryRun, now });
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
