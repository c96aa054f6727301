/**
 * What travels on the events queue: an inbound event plus who delivered it, and the one way
 * messages are put on the queue (sized in UTF-8 bytes, large payloads moved to the store).
 */
import { z } from "zod";
import { InboundEvent } from "../ingest/event";
import { offloadPayload, type PayloadStore } from "./payloads";

export const EventMessage = z.object({
  event: InboundEvent,
  /**
   * One id per provider delivery (or replay). The consumer treats a second delivery id for a
   * known event as the provider's redelivery (a duplicate), and the same delivery id arriving
   * again as the queue's own redelivery or retry (continue where it left off).
   */
  deliveryId: z.string(),
  /** Start of the retry window that RETRY_MAX_AGE is measured from, epoch ms. */
  retryFrom: z.number(),
  /**
   * Set by a replay: when the consumer first takes this delivery, it makes it the event's owner
   * and puts the failed and dead actions (every finished one with `all`) back to pending. `at`
   * orders replays, so an older replay never takes the event back from a newer one.
   */
  replay: z.object({ all: z.boolean(), at: z.number() }).optional(),
});
export type EventMessage = z.infer<typeof EventMessage>;

export function newDelivery(event: InboundEvent, now: number): EventMessage {
  return { event, deliveryId: crypto.randomUUID(), retryFrom: now };
}

// Queues limits, in bytes (1 KB = 1,000 bytes): 128 KB per message, of which about 100 bytes
// are metadata, and 100 messages or 256 KB per sendBatch.
export const MAX_MESSAGE_BYTES = 127_000;
const MESSAGE_OVERHEAD_BYTES = 100;
const MAX_BATCH_MESSAGES = 100;
const MAX_BATCH_BYTES = 250_000;

/**
 * The UTF-8 size of `text`, counted without encoding it: the limits are in bytes, and a string's
 * `.length` counts UTF-16 code units (1 to 3 bytes each; a surrogate pair, 2 units, is 4 bytes).
 */
export function utf8Bytes(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) continue;
    if (unit < 0x800) bytes += 1;
    else if (unit >= 0xd800 && unit <= 0xdbff && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      // A surrogate pair: 2 units, 4 bytes.
      bytes += 2;
      i++;
    } else bytes += 2;
  }
  return bytes;
}

interface Sized {
  body: EventMessage;
  bytes: number;
}

/** A message and its size; an event too large for a message has its payload moved to the store first. */
async function sized(message: EventMessage, store: PayloadStore): Promise<Sized> {
  const bytes = utf8Bytes(JSON.stringify(message));
  if (bytes <= MAX_MESSAGE_BYTES) return { body: message, bytes };
  const body = { ...message, event: await offloadPayload(store, message.event) };
  return { body, bytes: utf8Bytes(JSON.stringify(body)) };
}

/** Splits messages into sendBatch calls that respect the Queues limits. */
export function toSendBatches(messages: Sized[]): MessageSendRequest<EventMessage>[][] {
  const batches: MessageSendRequest<EventMessage>[][] = [];
  let current: MessageSendRequest<EventMessage>[] = [];
  let bytes = 0;
  for (const { body, bytes: size } of messages) {
    const cost = size + MESSAGE_OVERHEAD_BYTES;
    if (current.length > 0 && (current.length === MAX_BATCH_MESSAGES || bytes + cost > MAX_BATCH_BYTES)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push({ body, contentType: "json" });
    bytes += cost;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/**
 * Puts the messages on the queue; resolves only once the queue has accepted all of them.
 * Any delivery up to the 1 MiB webhook cap fits: payloads over a message's size go to the store.
 */
export async function enqueue(queue: Queue, store: PayloadStore, messages: EventMessage[]): Promise<void> {
  const prepared = await Promise.all(messages.map((m) => sized(m, store)));
  for (const batch of toSendBatches(prepared)) await queue.sendBatch(batch);
}
