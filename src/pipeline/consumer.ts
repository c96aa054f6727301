/**
 * The queue consumers. The batch is processed together (see process.ts), but each message is
 * decided on its own (ack, retry with a delay, or re-enqueue), so one poison message or one
 * exception never fails or repeats the batch.
 */
import { Redactor } from "../audit/redact";
import { getConfig } from "../config";
import { describeIssues } from "../errors";
import { configSecrets, createConnectors } from "../connectors";
import { HttpClient } from "../connectors/http-client";
import { createTransport } from "../connectors/transport";
import { FLOWS } from "../flows/registry";
import { log } from "../observability/log";
import { database, type Db } from "./ledger";
import { EventMessage } from "./message";
import { processBatch, type Decision, type PipelineDeps } from "./process";
import { MAX_QUEUE_DELAY_SECONDS, retryDelaySeconds } from "./retry";
import { recordPlatformDeadLetter, recordUnreadable } from "./dead-letters";

/**
 * wrangler.toml sets max_retries = 100 for the events queue (the platform maximum). Before a
 * message would use up its last retry, the consumer sends a fresh copy and acks the old one,
 * so an outage of any length up to RETRY_MAX_AGE still ends in delivery.
 */
export const REQUEUE_AT_ATTEMPT = 100;

export function pipelineDeps(env: Env): PipelineDeps {
  const config = getConfig(env);
  const transport = createTransport(env, config);
  const redactor = new Redactor(configSecrets(config));
  return {
    db: database(env.DB),
    config,
    flows: FLOWS,
    connectorsFor: (context, audit) => createConnectors(config, new HttpClient({ transport, audit, redactor, context })),
    now: Date.now,
    random: Math.random,
  };
}

export async function consumeEvents(batch: MessageBatch<unknown>, env: Env, deps: PipelineDeps = pipelineDeps(env)): Promise<void> {
  const events: { message: Message<unknown>; body: EventMessage }[] = [];
  for (const message of batch.messages) {
    const parsed = EventMessage.safeParse(message.body);
    if (parsed.success) events.push({ message, body: parsed.data });
    else await deadLetterPoison(deps.db, message, describeIssues(parsed.error), deps.now());
  }
  let decisions: Decision[];
  try {
    decisions = await processBatch(deps, events.map((e) => e.body));
  } catch (error) {
    decisions = events.map(() => ({ kind: "error", error }));
  }
  await Promise.all(
    events.map(({ message, body }, i) => {
      const decision = decisions[i]!;
      if (decision.kind !== "error") return apply(message, body, decision, env);
      // D1 unavailable, a bug in the pipeline itself, …: nothing was acknowledged, so retrying
      // the message loses nothing; the ledger keeps done actions from running twice.
      const delaySeconds = retryDelaySeconds(deps.config.retry, message.attempts, null, deps.random());
      log("consumer_error", { eventId: body.event.id, source: body.event.source, error: String(decision.error), delaySeconds }, "error");
      return apply(message, body, { kind: "retry", delaySeconds }, env);
    }),
  );
}

async function apply(message: Message<unknown>, body: EventMessage, decision: Exclude<Decision, { kind: "error" }>, env: Env): Promise<void> {
  if (decision.kind === "ack") {
    message.ack();
    return;
  }
  const delaySeconds = Math.min(decision.delaySeconds, MAX_QUEUE_DELAY_SECONDS);
  if (message.attempts < REQUEUE_AT_ATTEMPT) {
    message.retry({ delaySeconds });
    return;
  }
  try {
    await env.EVENTS.send(body, { delaySeconds, contentType: "json" });
    message.ack();
    log("requeued", { eventId: body.event.id, source: body.event.source, attempt: message.attempts, delaySeconds });
  } catch (error) {
    log("consumer_error", { eventId: body.event.id, error: `requeue failed: ${String(error)}` }, "error");
    message.retry({ delaySeconds });
  }
}

/** A message that is not an event at all: kept as a dead letter with its raw body, then acked. */
async function deadLetterPoison(db: Db, message: Message<unknown>, problem: string, now: number): Promise<void> {
  try {
    await recordUnreadable(db, `msg_${message.id}`, message.body, `unreadable queue message: ${problem.slice(0, 500)}`, now);
    message.ack();
  } catch (error) {
    log("consumer_error", { error: `could not store poison message: ${String(error)}` }, "error");
    message.retry();
  }
}

/** The dead-letter queue's consumer: what the platform gave up on is stored in D1 for replay. */
export async function consumeDeadLetters(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const db = database(env.DB);
  for (const message of batch.messages) {
    try {
      await recordPlatformDeadLetter(db, message.id, message.body, Date.now());
      message.ack();
    } catch (error) {
      log("consumer_error", { queue: batch.queue, error: String(error) }, "error");
      message.retry();
    }
  }
}
