/**
 * The SYNC queue's consumer: each message is one step of a run (steps.ts), run concurrently with
 * the batch's others. A step that fails for a while (a vendor down, D1 unavailable) is retried
 * on RETRY_SCHEDULE up to MAX_STEP_ATTEMPTS times; then, or at once for a permanent failure
 * (HubSpot refusing the token), the run fails with the reason and its staged records go. A
 * step that found no capacity in a vendor's budget waits, as any work does, without counting:
 * failures are counted in the message (a failure sends a fresh copy with `failures` + 1), not by
 * the queue's attempts, which count the waits too.
 */
import { isCapacityFailure } from "../budgets/gate";
import { ActionFailure } from "../connectors/errors";
import { log } from "../observability/log";
import { pipelineDeps } from "../pipeline/consumer";
import { MAX_QUEUE_DELAY_SECONDS, retryDelaySeconds } from "../pipeline/retry";
import { deliverAlert, raiseAlert } from "./alerts";
import { SyncMessage } from "./messages";
import { runStep, type StepDeps } from "./steps";

/** Attempts of one step before its run fails: with the default schedule, about six minutes. */
export const MAX_STEP_ATTEMPTS = 6;
/** wrangler.toml's max_retries for the sync queue is 10: from this attempt a capacity wait re-sends a fresh copy. */
export const REQUEUE_AT_ATTEMPT = 8;

export function reconcileDeps(env: Env): StepDeps & { redact(text: string): string } {
  const deps = pipelineDeps(env);
  return {
    db: deps.db,
    config: deps.config,
    queue: env.SYNC,
    events: env.EVENTS,
    store: deps.store,
    connectorsFor: deps.connectorsFor,
    now: deps.now,
    redact: (text) => deps.redactor.redact(text),
  };
}

export async function consumeSync(batch: MessageBatch<unknown>, env: Env, given?: ReturnType<typeof reconcileDeps>): Promise<void> {
  const deps = given ?? reconcileDeps(env);
  await Promise.all(
    batch.messages.map(async (message) => {
      const parsed = SyncMessage.safeParse(message.body);
      if (!parsed.success) {
        log("nightly_check", { outcome: "malformed_message", messageId: message.id }, "error");
        message.ack();
        return;
      }
      const body = parsed.data;
      if (body.kind === "alert") return deliver(deps, message, body.id);
      try {
        await runStep(deps, body);
        message.ack();
      } catch (error) {
        const text = deps.redact(error instanceof Error ? error.message : String(error));
        if (isCapacityFailure(error)) {
          const delaySeconds = Math.max(1, Math.ceil((error.details.retryAfterMs ?? 1_000) / 1000));
          // The platform counts these waits too (max_retries = 10): near the end, a fresh copy
          // waits instead, so a long capacity pause (HubSpot's daily limit) never drops the step.
          if (message.attempts >= REQUEUE_AT_ATTEMPT) {
            await deps.queue.send(body, { contentType: "json", delaySeconds: Math.min(delaySeconds, MAX_QUEUE_DELAY_SECONDS) });
            message.ack();
          } else message.retry({ delaySeconds });
          return;
        }
        const permanent = error instanceof ActionFailure && error.kind !== "transient";
        const failed = (body.failures ?? 0) + 1;
        if (!permanent && failed < MAX_STEP_ATTEMPTS) {
          const delaySeconds = retryDelaySeconds(deps.config.retry, failed, error instanceof ActionFailure ? (error.details.retryAfterMs ?? null) : null, Math.random());
          log("nightly_check", { runId: body.runId, stage: body.kind, outcome: "retry", attempt: failed, delaySeconds, error: text }, "warn");
          try {
            await deps.queue.send({ ...body, failures: failed }, { contentType: "json", delaySeconds });
            message.ack();
          } catch {
            // The queue refused the copy: the message itself comes back (its failure uncounted).
            message.retry({ delaySeconds });
          }
          return;
        }
        // A cleanup that keeps failing is logged, not a run's failure: its run has ended already.
        if (body.kind === "cleanup") log("nightly_check", { runId: body.runId, stage: "cleanup", outcome: "gave_up", error: text }, "error");
        else await failRun(deps, body.runId, `${body.kind} step failed: ${text}`);
        message.ack();
      }
    }),
  );
}

/** An alert's delivery: retried on the schedule like a step, then left undelivered (the cron offers it again); never a run's failure. */
async function deliver(deps: ReturnType<typeof reconcileDeps>, message: Message<unknown>, id: string): Promise<void> {
  try {
    await deliverAlert(deps, id);
    message.ack();
  } catch (error) {
    if (message.attempts < MAX_STEP_ATTEMPTS) message.retry({ delaySeconds: retryDelaySeconds(deps.config.retry, message.attempts, null, Math.random()) });
    else {
      log("alert", { id, outcome: "undelivered", error: deps.redact(String(error)) }, "error");
      message.ack();
    }
  }
}

/** The run ends as failed with the reason (only while it runs), which is an alert; its staged records go. */
export async function failRun(deps: StepDeps, runId: string, error: string): Promise<void> {
  const now = deps.now();
  const ended = await deps.db.$client
    .prepare(`UPDATE sync_runs SET status = 'failed', phase = 'done', finished_at = ?1, updated_at = ?1, error = ?2 WHERE id = ?3 AND status = 'running' RETURNING id`)
    .bind(now, error.slice(0, 1_000), runId)
    .first();
  // Only a run this ended is a failed run: a late step of one that finished says nothing.
  if (ended) {
    log("nightly_check", { runId, outcome: "failed", error }, "error");
    await raiseAlert(deps, { dedupe: `run:${runId}:run_failed`, kind: "run_failed", runId, text: `Syncwire nightly check failed (run ${runId}): ${error.slice(0, 300)}` });
  }
  await deps.queue.send({ kind: "cleanup", runId } satisfies SyncMessage, { contentType: "json" });
}
