/**
 * The queue consumers. The batch is processed together (see process.ts), but each message is
 * decided on its own (ack, retry with a delay, re-enqueue or dead-letter), so one poison
 * message or one exception never fails or repeats the batch, and no failure retries at once:
 * every retry waits on RETRY_SCHEDULE.
 */
import pLimit from "p-limit";
import { durableBudgets } from "../budgets/apis";
import { BudgetGate } from "../budgets/gate";
import { ConfigError, DEFAULT_RETRY, getConfig } from "../config";
import { createConnectors, redactorFor } from "../connectors";
import { HttpClient } from "../connectors/http-client";
import { createTransport } from "../connectors/transport";
import { durableCoordinators } from "../entities/directory";
import { describeIssues } from "../errors";
import { FLOWS } from "../flows/registry";
import { log } from "../observability/log";
import { recordGaveUp, recordPlatformDeadLetter, recordUnreadable } from "./dead-letters";
import { database } from "./ledger";
import { EventMessage } from "./message";
import { MissingPayloadError, r2PayloadStore } from "./payloads";
import { processBatch, type Decision, type PipelineDeps } from "./process";
import { SETTLE_WINDOW_MS } from "./settle";
import { MAX_QUEUE_DELAY_SECONDS, pastMaxAge, retryDelaySeconds, type RetryPolicy } from "./retry";

/**
 * wrangler.toml sets max_retries = 100 for both queues (the platform maximum). From attempt 90
 * on, the consumer sends a fresh copy instead of retrying and acks the old one, so an outage
 * of any length up to RETRY_MAX_AGE still ends in delivery, and a dead letter that could not
 * be stored is never deleted by the platform; ten attempts leave room for sends that fail.
 */
export const REQUEUE_AT_ATTEMPT = 90;

/** Everything the pipeline needs for one invocation; throws ConfigError when the configuration cannot run. */
export function pipelineDeps(env: Env): PipelineDeps {
  const config = getConfig(env);
  const transport = createTransport(env, config);
  const redactor = redactorFor(config);
  // One bound per invocation: a Worker opens at most 6 connections at once anyway, and a call
  // waiting for one must not have its timeout running.
  const limit = pLimit(config.outboundConcurrency);
  // The vendors' budgets, shared with every other invocation (CONTRACT 4.11).
  const gate = new BudgetGate(durableBudgets(env.BUDGET, config), config.budgets);
  return {
    db: database(env.DB),
    store: r2PayloadStore(env.PAYLOADS),
    config,
    flows: FLOWS,
    coordinators: durableCoordinators(env.ENTITY),
    redactor,
    connectorsFor: (context, audit, deadline) => createConnectors(config, new HttpClient({ transport, audit, redactor, context, limit, gate, deadline })),
    now: Date.now,
    random: Math.random,
    settleWindowMs: SETTLE_WINDOW_MS,
  };
}

export async function consumeEvents(batch: MessageBatch<unknown>, env: Env, given?: PipelineDeps): Promise<void> {
  let deps: PipelineDeps;
  try {
    deps = given ?? pipelineDeps(env);
  } catch (error) {
    return waitForConfiguration(batch, env.EVENTS, error);
  }
  const events: { message: Message<unknown>; body: EventMessage }[] = [];
  const poison: Promise<void>[] = [];
  for (const message of batch.messages) {
    const parsed = EventMessage.safeParse(message.body);
    if (parsed.success) events.push({ message, body: parsed.data });
    else poison.push(deadLetterPoison(deps, message, describeIssues(parsed.error)));
  }
  // Every message's work is waited for, even when one part fails; the failure is then thrown,
  // so the messages it left undecided are retried (index.ts) rather than acked by returning.
  const results = await Promise.allSettled([
    ...poison,
    processBatch(
      deps,
      events.map((e) => e.body),
      (i, decision) => apply(deps, events[i]!.message, events[i]!.body, decision, env.EVENTS),
    ),
  ]);
  const failed = results.find((r) => r.status === "rejected");
  if (failed) throw failed.reason;
}

async function apply(deps: PipelineDeps, message: Message<unknown>, body: EventMessage, decision: Decision, queue: Queue): Promise<void> {
  switch (decision.kind) {
    case "ack":
      message.ack();
      return;
    case "retry":
      return retryLater(message, body, decision.delaySeconds, queue, redactWith(deps));
    case "error": {
      // D1 unavailable, a payload that cannot be read, a bug: nothing was acknowledged, so
      // retrying loses nothing, and the ledger keeps done actions from running twice.
      const error = deps.redactor.redact(String(decision.error));
      const where = { eventId: body.event.id, source: body.event.source, entity: body.event.entityKey };
      // R2 reads what was written before the message was sent: a missing payload never appears.
      const permanent = decision.error instanceof MissingPayloadError;
      if (permanent || pastMaxAge(deps.config.retry, body.retryFrom, deps.now())) {
        const reason = permanent ? `permanent: ${error}` : `gave up after RETRY_MAX_AGE (${deps.config.retry.maxAgeSeconds} s): ${error}`;
        try {
          await recordGaveUp(deps.db, body, reason, deps.now(), `dl_gaveup_${message.id}`);
          message.ack();
          return;
        } catch (storeError) {
          log("consumer_error", { ...where, error: `could not dead-letter: ${deps.redactor.redact(String(storeError))}` }, "error");
        }
      }
      const delaySeconds = retryDelaySeconds(deps.config.retry, message.attempts, null, deps.random());
      log("consumer_error", { ...where, error, delaySeconds }, "error");
      return retryLater(message, body, delaySeconds, queue, redactWith(deps));
    }
  }
}

/** Retries after `delaySeconds`; near the platform's retry limit, as a fresh copy instead. */
async function retryLater(message: Message<unknown>, body: unknown, delaySeconds: number, queue: Queue, redact: Redact = asIs): Promise<void> {
  const delay = Math.min(delaySeconds, MAX_QUEUE_DELAY_SECONDS);
  if (message.attempts < REQUEUE_AT_ATTEMPT) {
    message.retry({ delaySeconds: delay });
    return;
  }
  try {
    await queue.send(body, { delaySeconds: delay, contentType: "json" });
    message.ack();
    log("requeued", { messageId: message.id, attempt: message.attempts, delaySeconds: delay });
  } catch (error) {
    log("consumer_error", { messageId: message.id, error: `requeue failed: ${redact(String(error))}` }, "error");
    message.retry({ delaySeconds: delay });
  }
}

type Redact = (text: string) => string;
const asIs: Redact = (text) => text;
const redactWith = (deps: PipelineDeps): Redact => (text) => deps.redactor.redact(text);

/**
 * The configuration's redactor. Without a readable configuration there are no secrets to know
 * of, and what is logged then (queue and D1 errors) holds none of ours.
 */
export function redactorOf(env: Env): Redact {
  try {
    const redactor = redactorFor(getConfig(env));
    return (text) => redactor.redact(text);
  } catch {
    return asIs;
  }
}

/** The scheduled wait after `attempts` deliveries, for failures that have no policy of their own. */
function scheduledDelay(attempts: number, policy: RetryPolicy = DEFAULT_RETRY): number {
  return retryDelaySeconds(policy, attempts, null);
}

/**
 * The configuration cannot run (GET /health names the keys): nothing can be processed, and
 * nothing is the events' fault, so every message waits on the schedule, none is dead-lettered.
 */
async function waitForConfiguration(batch: MessageBatch<unknown>, queue: Queue, error: unknown): Promise<void> {
  const keys = error instanceof ConfigError ? error.issues.map((i) => i.key) : [];
  log("config_error", { queue: batch.queue, keys, messages: batch.messages.length, error: error instanceof ConfigError ? "invalid configuration" : String(error) }, "error");
  await Promise.all(batch.messages.map((m) => retryLater(m, m.body, scheduledDelay(m.attempts), queue)));
}

/** A message that is not an event at all: kept as a dead letter with its raw body, then acked. */
async function deadLetterPoison(deps: PipelineDeps, message: Message<unknown>, problem: string): Promise<void> {
  try {
    await recordUnreadable(deps.db, `msg_${message.id}`, message.body, `unreadable queue message: ${problem.slice(0, 500)}`, deps.now());
    message.ack();
  } catch (error) {
    log("consumer_error", { messageId: message.id, error: `could not store poison message: ${deps.redactor.redact(String(error))}` }, "error");
    message.retry({ delaySeconds: scheduledDelay(message.attempts, deps.config.retry) });
  }
}

/** The dead-letter queue's consumer: what the platform gave up on is stored in D1 for replay. */
export async function consumeDeadLetters(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const db = database(env.DB);
  const redact = redactorOf(env);
  await Promise.all(
    batch.messages.map(async (message) => {
      try {
        await recordPlatformDeadLetter(db, message.id, message.body, Date.now());
        message.ack();
      } catch (error) {
        // Never let the platform delete what could not be stored: wait, and near the retry
        // limit send a fresh copy to this same queue.
        log("consumer_error", { queue: batch.queue, messageId: message.id, error: redact(String(error)) }, "error");
        await retryLater(message, message.body, scheduledDelay(message.attempts), env.DEAD_LETTERS, redact);
      }
    }),
  );
}
