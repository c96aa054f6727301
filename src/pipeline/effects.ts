/**
 * What some actions keep in D1 beside the ledger:
 * - once-ever effects (a flow action with scope `entity-ever`): the first event of an entity to
 *   run the action owns it; a retry or replay of that event runs it again (its own effect is
 *   idempotent or not yet made), any other event's is done without a call;
 * - links: ids one system gave an entity of another (the Stripe customer of a Shopify
 *   customer), kept for good, where a vendor's idempotency keys last only a day.
 * Each is one D1 round trip.
 */
import type { Db } from "./ledger";

/** The event that owns the effect `key`: this one if nobody did before. */
export async function claimOnce(db: Db, key: string, eventId: string, now: number): Promise<string> {
  const d1 = db.$client;
  const [, owner] = await d1.batch([
    d1.prepare(`INSERT INTO once_effects (key, event_id, created_at) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING`).bind(key, eventId, now),
    d1.prepare(`SELECT event_id FROM once_effects WHERE key = ?`).bind(key),
  ]);
  return (owner?.results[0] as { event_id: string } | undefined)?.event_id ?? eventId;
}

export interface Links {
  get(kind: string, key: string): Promise<string | null>;
  /** Keeps the first value linked for (kind, key); answers the value kept. */
  put(kind: string, key: string, value: string): Promise<string>;
}

export function d1Links(db: Db, now: () => number): Links {
  const d1 = db.$client;
  return {
    async get(kind, key) {
      const row = await d1.prepare(`SELECT value FROM links WHERE kind = ? AND key = ?`).bind(kind, key).first<{ value: string }>();
      return row?.value ?? null;
    },
    async put(kind, key, value) {
      const [, kept] = await d1.batch([
        d1.prepare(`INSERT INTO links (kind, key, value, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (kind, key) DO NOTHING`).bind(kind, key, value, now()),
        d1.prepare(`SELECT value FROM links WHERE kind = ? AND key = ?`).bind(kind, key),
      ]);
      return (kept?.results[0] as { value: string } | undefined)?.value ?? value;
    },
  };
}
