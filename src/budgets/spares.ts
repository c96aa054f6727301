/**
 * Grants an invocation holds beyond the calls that asked for them, for its next calls: a
 * budget request for Stripe or Salesforce asks for a few spares, so a stream of single calls
 * (an order's customer, invoice, items, finalize) costs a budget request every few calls, not
 * one each. A spare is good only until its grant's freshness ends (the budget counted the call
 * as arriving within its arrival slack); after that it is dropped, spent unused, which is why
 * the budget gives spares only from room nobody is short of (budget.ts spareRoom).
 *
 * Postmark, which has no rate, gets a standing pass instead: its budget is asked at most once a
 * second whether a 429 paused everyone.
 */
export class Spares {
  /** By budget key (vendor and scope): spares, oldest first, each batch good until `until`. */
  private readonly pools = new Map<string, { until: number; count: number }[]>();

  add(key: string, count: number, until: number): void {
    if (count <= 0) return;
    const pool = this.pools.get(key) ?? [];
    pool.push({ until, count });
    this.pools.set(key, pool);
  }

  /** One spare of `key` still good at `now`: the time it is good until, or null when there is none. */
  take(key: string, now: number): number | null {
    const pool = this.pools.get(key);
    if (!pool) return null;
    while (pool.length > 0 && pool[0]!.until < now) pool.shift();
    const batch = pool[0];
    if (!batch) {
      this.pools.delete(key);
      return null;
    }
    if (--batch.count <= 0) pool.shift();
    return batch.until;
  }

  /** A 429: nothing held for `vendor` may be used any more. */
  drop(vendor: string): void {
    for (const key of this.pools.keys()) if (key === vendor || key.startsWith(`${vendor} `)) this.pools.delete(key);
  }
}
