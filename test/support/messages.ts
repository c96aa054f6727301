/** Queue messages built the way ingest builds them, for calling the consumer directly. */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import worker from "../../src/index";
import { consumeEvents } from "../../src/pipeline/consumer";
import type { PipelineDeps } from "../../src/pipeline/process";
import { parseHubSpotBatch } from "../../src/ingest/hubspot";
import { newDelivery, type EventMessage } from "../../src/pipeline/message";
import { hubspotEvent } from "./webhooks";

export async function contactCreated(contactId: string, overrides: Partial<EventMessage> = {}): Promise<EventMessage> {
  const parsed = await parseHubSpotBatch(JSON.stringify([hubspotEvent(contactId)]), Date.now());
  if (!parsed.ok) throw new Error(parsed.message);
  return { ...newDelivery(parsed.events[0]!, Date.now()), ...overrides };
}

let sequence = 0;

/**
 * A MessageBatch that records what the consumer decided per message. (The plugin's own
 * createMessageBatch drops retry delays, and the delay is what these tests are about.)
 */
export function recordingBatch(queue: string, bodies: unknown[], attempts: number) {
  const decisions: { acks: string[]; retries: { msgId: string; delaySeconds?: number }[] } = { acks: [], retries: [] };
  const messages = bodies.map((body) => {
    const id = `msg-${++sequence}`;
    return {
      id,
      timestamp: new Date(),
      attempts,
      body,
      ack: () => void decisions.acks.push(id),
      retry: (options?: QueueRetryOptions) => void decisions.retries.push({ msgId: id, ...(options?.delaySeconds === undefined ? {} : { delaySeconds: options.delaySeconds }) }),
    };
  });
  const batch: MessageBatch<unknown> = {
    queue,
    messages,
    metadata: { metrics: { backlogCount: messages.length, backlogBytes: 0 } },
    ackAll: () => messages.forEach((m) => m.ack()),
    retryAll: (options?: QueueRetryOptions) => messages.forEach((m) => m.retry(options)),
  };
  return { batch, decisions };
}

/** Delivers `bodies` to the worker's queue handler as one batch and returns what it decided. */
export async function deliver(bodies: unknown[], options: { attempts?: number; queue?: string } = {}) {
  const { batch, decisions } = recordingBatch(options.queue ?? "syncwire-events", bodies, options.attempts ?? 1);
  const ctx = createExecutionContext();
  await worker.queue(batch, env);
  await waitOnExecutionContext(ctx);
  return { explicitAcks: decisions.acks, retryMessages: decisions.retries, ids: batch.messages.map((m) => m.id) };
}

/** Like `deliver`, through `consumeEvents` with the given deps (a stand-in D1 or network behind them). */
export async function consume(bodies: unknown[], deps: PipelineDeps, options: { attempts?: number } = {}) {
  const { batch, decisions } = recordingBatch("syncwire-events", bodies, options.attempts ?? 1);
  await consumeEvents(batch, env, deps);
  return { explicitAcks: decisions.acks, retryMessages: decisions.retries, ids: batch.messages.map((m) => m.id) };
}

export async function actionRow(eventId: string) {
  return env.DB.prepare("SELECT * FROM actions WHERE event_id = ?").bind(eventId).first<{
    state: string;
    attempts: number;
    last_error: string | null;
    last_status: number | null;
    next_attempt_at: number | null;
  }>();
}

export async function eventRow(eventId: string) {
  return env.DB.prepare("SELECT * FROM events WHERE id = ?").bind(eventId).first<{ status: string; duplicates: number; last_error: string | null }>();
}

export async function deadLettersOf(eventId: string) {
  const { results } = await env.DB.prepare("SELECT * FROM dead_letters WHERE event_id = ? ORDER BY created_at").bind(eventId).all<{
    id: string;
    action: string | null;
    reason: string;
    replayed_at: number | null;
  }>();
  return results;
}

/** A stand-in for a Queue binding that keeps what it is sent, so a test decides what is delivered and when. */
export function capturingQueue() {
  const sent: { body: unknown; delaySeconds?: number }[] = [];
  const queue = {
    async send(body: unknown, options?: QueueSendOptions) {
      sent.push({ body, ...(options?.delaySeconds === undefined ? {} : { delaySeconds: options.delaySeconds }) });
    },
    async sendBatch(messages: Iterable<MessageSendRequest>) {
      for (const m of messages) sent.push({ body: m.body });
    },
  } as unknown as Queue;
  return { queue, sent };
}

export interface SeededRow {
  action: string;
  flow?: string;
  state: "pending" | "running" | "done" | "failed" | "dead";
  attempts?: number;
  claimToken?: string | null;
  nextAttemptAt?: number | null;
}

/**
 * Writes what an earlier consumer left behind for `message`: its event row (owned by the
 * message's delivery) and ledger rows, as a crash, a deploy or a lost lease leaves them.
 */
export async function seedLedger(message: EventMessage, rows: SeededRow[], status = "processing"): Promise<void> {
  const e = message.event;
  const now = Date.now();
  await env.DB.batch([
    env.DB.prepare(
      "INSERT INTO events (id, source, type, dedupe_key, entity_key, delivery_id, payload, status, received_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ).bind(e.id, e.source, e.type, e.dedupeKey, e.entityKey, message.deliveryId, JSON.stringify(e.payload), status, now, now),
    ...rows.map((r) =>
      env.DB.prepare(
        "INSERT INTO actions (event_id, action, flow, entity_key, state, attempts, claim_token, next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      ).bind(e.id, r.action, r.flow ?? r.action.split(".")[0]!, e.entityKey, r.state, r.attempts ?? 1, r.claimToken ?? null, r.nextAttemptAt ?? null, now, now),
    ),
  ]);
}
