/**
 * What some actions keep in D1 beside the ledger:
 * - once-ever effects (a flow action with scope `entity-ever`): the first event of an entity to
 *   run the action owns it; a retry of that event runs it again until it is done (the effect is
 *   marked done with the action's settle), after which no event makes it again, not even a
 *   replay of the owner with ?all=true; any other event's action is done without a call;
 * - links: ids one system gave an entity of another (the Stripe customer of a Shopify
 *   customer), kept for good, where a vendor's idempotency keys last only a day.
 * Each is one D1 round trip.
 */
import type { Db } from "./ledger";

/**
 * The event that owns the effect `key` (this one if nobody did before), and whether the effect
 * was made: it is marked done in the same D1 batch that settles its action as done.
 */
export async function claimOnce(db: Db, key: string, eventId: string, now: number): Promise<{ owner: string; done: boolean }> {
  const d1 = db.$client;
  const [, row] = await d1.batch([
    d1.prepare(`INSERT INTO once_effects (key, event_id, created_at) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING`).bind(key, eventId, now),
    d1.prepare(`SELECT event_id, done_at FROM once_effects WHERE key = ?`).bind(key),
  ]);
  const found = row?.results[0] as { event_id: string; done_at: number | null } | undefined;
  return { owner: found?.event_id ?? eventId, done: found?.done_at !== null && found?.done_at !== undefined };
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
