/**
 * One Durable Object per vendor account (named `hubspot:<token digest>`, `mailchimp:<key
 * digest>`): every consumer invocation asks it for capacity before calling the vendor, so the
 * deployment as a whole stays under the vendor's limits (CONTRACT 4.11), and one 429 pauses
 * everyone. It holds a few counters: every request is a handful of microseconds, and its
 * state is kept in memory and written through to its SQLite storage (one row).
 *
 * Every method runs without an `await`, so each is atomic against the object's other requests.
 */
import { DurableObject } from "cloudflare:workers";
import { acquireRate, acquireRates, acquireSlots, emptyBudget, learnRemaining, pause, releaseSlots, remaining, type BudgetState, type Grant, type Grants, type RateAsk, type RateWindow } from "./budget";

export class VendorBudget extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private state: BudgetState | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`CREATE TABLE IF NOT EXISTS budget (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL)`);
  }

  /** Up to `want` calls under `windows` now, or none with the wait. */
  rate(windows: RateWindow[], want: number, now: number): Grant {
    return this.change(windows, (state) => acquireRate(state, windows, want, now));
  }

  /** For each ask in turn, calls under the account's `windows` and its scope's `scopeWindows`: one request for every call waiting in an invocation. */
  rates(windows: RateWindow[], scopeWindows: RateWindow[], asks: RateAsk[], now: number): Grants {
    return this.change(windows, (state) => acquireRates(state, windows, scopeWindows, asks, now));
  }

  /** Up to `want` connections of `max`, each held at most `holdMs`, or none with the wait. */
  connections(max: number, want: number, holdMs: number, now: number): { ids: string[]; retryAfterMs: number | null } {
    return this.change([], (state) => acquireSlots(state, max, want, holdMs, now, () => crypto.randomUUID()));
  }

  release(ids: string[]): void {
    this.change([], (state) => releaseSlots(state, ids));
  }

  /** The vendor answered 429: nobody calls before `now + retryAfterMs`. */
  backOff(retryAfterMs: number, now: number): void {
    this.change([], (state) => pause(state, retryAfterMs, now));
  }

  /** What the vendor says is left in one of its windows. */
  learn(windows: RateWindow[], windowIndex: number, left: number, now: number): void {
    this.change(windows, (state) => learnRemaining(state, windows, windowIndex, left, now));
  }

  /** What is left of each window, and until when everyone waits; for /health. */
  status(windows: RateWindow[], now: number): { remaining: number[]; pausedUntil: number | null; connectionsHeld: number } {
    const state = this.load(windows);
    return { remaining: remaining(state, windows, now), pausedUntil: state.pausedUntil > now ? state.pausedUntil : null, connectionsHeld: Object.values(state.slots.held).filter((until) => until > now).length };
  }

  private change<T>(windows: RateWindow[], body: (state: BudgetState) => T): T {
    const state = this.load(windows);
    const result = body(state);
    this.sql.exec(`INSERT INTO budget (id, state) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state`, JSON.stringify(state));
    return result;
  }

  private load(windows: RateWindow[]): BudgetState {
    if (!this.state) {
      const row = this.sql.exec<{ state: string }>(`SELECT state FROM budget WHERE id = 1`).toArray()[0];
      this.state = row ? (JSON.parse(row.state) as BudgetState) : emptyBudget(windows);
    }
    // A configuration with more windows than the stored state: the new ones start empty.
    while (this.state.rate.buckets.length < windows.length) this.state.rate.buckets.push({});
    return this.state;
  }
}
