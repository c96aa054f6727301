/**
 * What travels on the events queue: an inbound event plus who delivered it.
 */
import { z } from "zod";
import { InboundEvent } from "../ingest/event";

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
});
export type EventMessage = z.infer<typeof EventMessage>;

export function newDelivery(event: InboundEvent, now: number): EventMessage {
  return { event, deliveryId: crypto.randomUUID(), retryFrom: now };
}

// Queues limits: 100 messages and 256 KB per sendBatch, 128 KB per message.
const MAX_BATCH_MESSAGES = 100;
const MAX_BATCH_BYTES = 250_000;

/** Splits messages into sendBatch calls that respect the Queues limits. */
export function toSendBatches(messages: EventMessage[]): MessageSendRequest<EventMessage>[][] {
  // One message cannot be split; its size is the queue's to judge.
  if (messages.length === 1) return [[{ body: messages[0]!, contentType: "json" }]];
  const batches: MessageSendRequest<EventMessage>[][] = [];
  let current: MessageSendRequest<EventMessage>[] = [];
  let bytes = 0;
  for (const body of messages) {
    const size = JSON.stringify(body).length + 100;
    if (current.length > 0 && (current.length === MAX_BATCH_MESSAGES || bytes + size > MAX_BATCH_BYTES)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push({ body, contentType: "json" });
    bytes += size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/** Puts the messages on the queue; resolves only once the queue has accepted all of them. */
export async function enqueue(queue: Queue, messages: EventMessage[]): Promise<void> {
  for (const batch of toSendBatches(messages)) await queue.sendBatch(batch);
}
