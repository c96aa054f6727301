/**
 * Payloads too large for a queue message. A queue message holds 128 KB, a webhook up to 1 MiB
 * (a HubSpot event with a long property value, a Shopify order with hundreds of line items), so
 * such an event's payload is written to R2 before the event is queued, and the message carries
 * the key instead. Everything downstream (consumer, replay) reads the payload through
 * `resolvePayload`, so it sees one shape whatever the size.
 *
 * Why R2 rather than D1: D1 is one writer per database with a 10 GB cap, and the consumer's
 * throughput is made of its D1 round trips; megabyte blobs belong in object storage, which has
 * no size cap and costs the pipeline nothing but one read per large event.
 */
import type { InboundEvent } from "../ingest/event";

export interface PayloadStore {
  put(key: string, json: string): Promise<void>;
  /** The stored JSON, or null when no object has the key. */
  get(key: string): Promise<string | null>;
  delete(keys: string[]): Promise<void>;
}

export function r2PayloadStore(bucket: R2Bucket): PayloadStore {
  return {
    async put(key, json) {
      await bucket.put(key, json, { httpMetadata: { contentType: "application/json" } });
    },
    async get(key) {
      const object = await bucket.get(key);
      return object === null ? null : object.text();
    },
    async delete(keys) {
      // R2 deletes up to 1,000 keys per call.
      for (let i = 0; i < keys.length; i += 1000) await bucket.delete(keys.slice(i, i + 1000));
    },
  };
}

/** One object per event: a provider's redelivery overwrites it with the same bytes. */
export const payloadKey = (eventId: string) => `payloads/${eventId}.json`;

/** The event with its payload moved to the store: what a queue message can carry. */
export async function offloadPayload(store: PayloadStore, event: InboundEvent): Promise<InboundEvent> {
  const key = payloadKey(event.id);
  await store.put(key, JSON.stringify(event.payload));
  return { ...event, payload: {}, payloadRef: key };
}

/**
 * The event's payload as its D1 row keeps it: the JSON itself, or `{}` and the store key when
 * it lives in the store (the row never holds a megabyte the store already has).
 */
export function payloadColumns(event: InboundEvent): { payload: string; payloadRef: string | null } {
  return event.payloadRef ? { payload: "{}", payloadRef: event.payloadRef } : { payload: JSON.stringify(event.payload), payloadRef: null };
}

export class MissingPayloadError extends Error {
  readonly code = "missing_payload";
}

/** The event with its payload in place, read from the store when the message carried a reference. */
export async function resolvePayload(store: PayloadStore, event: InboundEvent): Promise<InboundEvent> {
  if (!event.payloadRef) return event;
  const json = await store.get(event.payloadRef);
  if (json === null) throw new MissingPayloadError(`the stored payload ${event.payloadRef} of ${event.id} does not exist`);
  return { ...event, payload: JSON.parse(json) as Record<string, unknown> };
}
