/**
 * The one shape every source's webhook becomes before it goes on the queue.
 */
import { z } from "zod";
import { sha256Hex } from "./crypto";

/** The webhook sources. */
export const SOURCES = ["hubspot", "mailchimp", "shopify"] as const;
export type Source = (typeof SOURCES)[number];
/** Every origin of an event: the webhook sources and Syncwire itself (a person's choice on a conflict). */
export const EVENT_SOURCES = [...SOURCES, "syncwire"] as const;
export type EventSource = (typeof EVENT_SOURCES)[number];

export const InboundEvent = z.object({
  /** Derived from source + dedupeKey, so a provider's redelivery gets the same id. */
  id: z.string(),
  source: z.enum(EVENT_SOURCES),
  /** The provider's own event type, e.g. `contact.creation`, `subscribe`, `orders/create`. */
  type: z.string(),
  dedupeKey: z.string(),
  /** The entity whose changes this event carries (`contact:<crm id>`, `email:<address>`, `customer:<shopify id>`). */
  entityKey: z.string().nullable(),
  receivedAt: z.number(),
  /** The provider's timestamp of the change, in ms; null when the provider sends none. */
  occurredAt: z.number().nullable(),
  /** The provider's event, ids kept as strings (see parseJsonLossless). */
  payload: z.record(z.string(), z.unknown()),
  /** Set when the payload was too large for a queue message: its key in the payload store (src/pipeline/payloads.ts). */
  payloadRef: z.string().optional(),
});
export type InboundEvent = z.infer<typeof InboundEvent>;

export async function eventIdFor(source: EventSource, dedupeKey: string): Promise<string> {
  return `evt_${(await sha256Hex(`${source}\u0000${dedupeKey}`)).slice(0, 32)}`;
}
