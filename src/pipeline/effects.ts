/**
 * What some actions keep in D1 beside the ledger:
 * - once-ever effects (a flow action with scope `entity-ever`): the first event of an entity to
 *   run the action owns it; a retry of that event runs it again until it is done (the effect is
 *   marked done with the action's settle), after which no event makes it again, not even a
 *   replay of the owner with ?all=true; any other event's action is done without a call;
 * - links: ids one system gave an entity of another (the Stripe customer of a Shopify
 *   customer), kept for good, where a vendor's idempotency keys last only a day.
 * The requests of one invocation share their D1 round trips (D1Effects).
 */
import { Coalescer } from "./coalesce";
import type { Db } from "./ledger";

/** The D1 limit on a statement's bound parameters. */
const MAX_PARAMS = 100;

const chunks = <T>(items: readonly T[], size: number): T[][] => Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size));

export interface Links {
  get(kind: string, key: string): Promise<string | null>;
  /** Several links at once, in the order asked (null where there is none). */
  getMany(keys: readonly (readonly [kind: string, key: string])[]): Promise<(string | null)[]>;
  /** Keeps the first value linked for (kind, key); answers the value kept. */
  put(kind: string, key: string, value: string): Promise<string>;
}

type LinkKey = readonly [kind: string, key: string];

/**
 * The once-ever claims and links of one consumer invocation, each kind of request coalesced
 * (coalesce.ts): the orders of a batch share their round trips.
 */
export class D1Effects implements Links {
  private readonly d1: D1Database;
  private readonly reads: Coalescer<LinkKey, string | null>;
  private readonly writes: Coalescer<{ kind: string; key: string; value: string }, string>;
  private readonly claims: Coalescer<{ key: string; eventId: string; now: number }, { owner: string; done: boolean }>;

  constructor(db: Db, now: () => number) {
    const d1 = (this.d1 = db.$client);
    this.reads = new Coalescer((keys) => this.readLinks(keys, []));
    this.writes = new Coalescer((rows) => {
      const inserts = rows.map((r) => d1.prepare(`INSERT INTO links (kind, key, value, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (kind, key) DO NOTHING`).bind(r.kind, r.key, r.value, now()));
      return this.readLinks(rows.map((r) => [r.kind, r.key] as const), inserts).then((kept) => kept.map((value, i) => value ?? rows[i]!.value));
    });
    this.claims = new Coalescer(async (requests) => {
      const inserts = requests.map((r) => d1.prepare(`INSERT INTO once_effects (key, event_id, created_at) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING`).bind(r.key, r.eventId, r.now));
      const keys = [...new Set(requests.map((r) => r.key))];
      const reads = chunks(keys, MAX_PARAMS).map((part) => d1.prepare(`SELECT key, event_id, done_at FROM once_effects WHERE key IN (${part.map(() => "?").join(", ")})`).bind(...part));
      const results = await d1.batch([...inserts, ...reads]);
      const rows = results.slice(inserts.length).flatMap((r) => r.results as { key: string; event_id: string; done_at: number | null }[]);
      const byKey = new Map(rows.map((row) => [row.key, row]));
      return requests.map((r) => {
        const found = byKey.get(r.key);
        return { owner: found?.event_id ?? r.eventId, done: found !== undefined && found.done_at !== null };
      });
    });
  }

  /**
   * The event that owns the effect `key` (this one if nobody did before), and whether the effect
   * was made: it is marked done in the same D1 batch that settles its action as done.
   */
  claimOnce(key: string, eventId: string, now: number): Promise<{ owner: string; done: boolean }> {
    return this.claims.add({ key, eventId, now });
  }

  get(kind: string, key: string): Promise<string | null> {
    return this.reads.add([kind, key]);
  }

  getMany(keys: readonly LinkKey[]): Promise<(string | null)[]> {
    return Promise.all(keys.map((k) => this.reads.add(k)));
  }

  put(kind: string, key: string, value: string): Promise<string> {
    return this.writes.add({ kind, key, value });
  }

  /** The links of `keys` (null where none), read after `before` in the same round trip. */
  private async readLinks(keys: readonly LinkKey[], before: D1PreparedStatement[]): Promise<(string | null)[]> {
    const reads = chunks(keys, MAX_PARAMS / 2).map((part) =>
      this.d1.prepare(`SELECT kind, key, value FROM links WHERE ${part.map(() => "(kind = ? AND key = ?)").join(" OR ")}`).bind(...part.flat()),
    );
    const results = await this.d1.batch([...before, ...reads]);
    const found = new Map(results.slice(before.length).flatMap((r) => (r.results as { kind: string; key: string; value: string }[]).map((row) => [`${row.kind}\u0000${row.key}`, row.value] as const)));
    return keys.map(([kind, key]) => found.get(`${kind}\u0000${key}`) ?? null);
  }
}
