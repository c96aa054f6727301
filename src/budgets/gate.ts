/**
 * The vendor budgets as one consumer invocation sees them (CONTRACT 4.11): before every call to
 * a vendor with a limit, the HttpClient asks the gate, and the gate asks that vendor account's
 * VendorBudget object. Calls waiting at the same moment ask together (one Durable Object request
 * for all of them, whatever their endpoints), so bulk calls cost one budget request each and a
 * burst of single calls costs few. The HttpClient asks for the next calls while its connections
 * are busy, so the requests overlap the calls in flight instead of holding a connection.
 *
 * - HubSpot: one call of the rate (HUBSPOT_RATE_LIMIT). What HubSpot says is left
 *   (X-HubSpot-RateLimit-Remaining, -Daily-Remaining) is taught to the budget when it is low,
 *   so calls the budget cannot see (another app, a person's import) are counted too.
 * - Mailchimp: one of MAILCHIMP_MAX_CONNECTIONS, held while the call is in flight.
 * - Stripe (STRIPE_RATE_LIMIT per account, and STRIPE_ENDPOINT_RATE_LIMIT for each endpoint: Stripe
 *   limits both; the account's object counts both), Salesforce (SALESFORCE_RATE_LIMIT): one call
 *   of the rate.
 * - Postmark, which documents no rate: nothing but the pause after a 429.
 * - A 429 pauses every invocation: until its Retry-After, else for a default.
 * No capacity within the wait a call can afford: it is not sent, and fails as `capacity`, which
 * the pipeline turns into a delayed retry that counts no attempt (never a dead letter).
 */
import type { Config } from "../config";
import { ActionFailure, parseRetryAfter } from "../connectors/errors";
import { log } from "../observability/log";
import { DAY_MS, LOW_DAILY_SHARE, windowsOf, type BudgetApi, type BudgetApis, type Vendor } from "./apis";
import { slackOf, type RateWindow } from "./budget";
import { Spares } from "./spares";

/** Capacity for one call: send it before `freshUntil`, then report its answer (null: no answer, a network error). */
export interface CallPass {
  /**
   * The vendor counts a call when it arrives, and the budget counted it as arriving within its
   * arrival slack (budget.ts): a call not sent by this time asks again.
   */
  freshUntil: number;
  exit(answer: { status: number; headers: Headers } | null): Promise<void>;
}

/** What the HttpClient needs: wait for capacity. */
export interface CallGate {
  /** `endpoint`: the call's method and path (`POST /v1/invoiceitems`), for vendors that limit each endpoint too. */
  enter(connector: string, latestStart: number, endpoint?: string): Promise<CallPass>;
}

/** The longest a call waits in the invocation for capacity; past it, its message waits in the queue. */
export const MAX_WAIT_MS = 10_000;
/** A 429 without Retry-After pauses everyone this long. */
export const DEFAULT_PAUSE_MS = 1_000;
/** A connection is held at most this long (a call's timeout and some): a dead invocation's slot frees itself. */
export const CONNECTION_HOLD_MS = 20_000;
/** Below this share of a window left, what the vendor says is left is taught to the budget. */
const LEARN_BELOW = 0.25;
/**
 * Spares a budget request asks for beyond its calls (spares.ts), for the vendors an order calls
 * one at a time; HubSpot and Mailchimp calls are bulk calls, few and far between.
 */
const SPARES: Partial<Record<Vendor, number>> = { stripe: 4, salesforce: 4 };
/** How long a vendor without a rate (Postmark) goes without asking whether a 429 paused it. */
const PAUSE_RECHECK_MS = 1_000;

export function capacityFailure(connector: string, retryAfterMs: number): ActionFailure {
  return new ActionFailure("transient", `${connector}: no capacity in the shared budget for ${Math.ceil(retryAfterMs / 1000)} s; waiting`, {
    connector,
    retryAfterMs,
    capacity: true,
  });
}

export const isCapacityFailure = (error: unknown): error is ActionFailure => error instanceof ActionFailure && error.details.capacity === true;

interface Waiter {
  /** The Stripe endpoint the call is for (its own limit besides the account's), or null. */
  scope: string | null;
  latestStart: number;
  /** When it began to wait: it waits at most MAX_WAIT_MS in all. */
  since: number;
  resolve(grant: { slot: string | null; freshUntil: number }): void;
  reject(error: unknown): void;
}

export class BudgetGate implements CallGate {
  /** By vendor: the calls waiting for its budget, oldest first. */
  private readonly waiting = new Map<Vendor, Waiter[]>();
  private readonly asking = new Set<Vendor>();
  private readonly spares = new Spares();
  private warnedLow = false;

  constructor(
    private readonly apis: BudgetApis,
    private readonly budgets: Config["budgets"],
    private readonly now: () => number = Date.now,
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
  ) {}

  async enter(connector: string, latestStart: number, endpoint?: string): Promise<CallPass> {
    const vendor = connector as Vendor;
    const api = this.apis[vendor];
    if (!api) return { freshUntil: Infinity, exit: async () => undefined };
    // Stripe limits each endpoint as well as the account: both are counted by one request.
    const scope = vendor === "stripe" && endpoint && this.budgets.stripeEndpoint.length > 0 ? stripeEndpoint(endpoint) : null;
    const spare = this.spares.take(spareKey(vendor, scope), this.now());
    const { slot, freshUntil } =
      spare !== null
        ? { slot: null, freshUntil: this.windowsOf(vendor).length === 0 ? Infinity : spare }
        : await new Promise<{ slot: string | null; freshUntil: number }>((resolve, reject) => {
            const queue = this.waiting.get(vendor) ?? [];
            queue.push({ scope, latestStart, since: this.now(), resolve, reject });
            this.waiting.set(vendor, queue);
            void this.ask(vendor, api);
          });
    return {
      freshUntil,
      exit: async (answer) => {
        const work: Promise<void>[] = [];
        if (slot) work.push(api.release([slot]));
        if (answer?.status === 429) this.spares.drop(vendor);
        if (answer?.status === 429) work.push(api.backOff(this.pauseFor(vendor, answer.headers), this.now()));
        else if (answer && vendor === "hubspot") work.push(...this.learn(api, answer.headers));
        // The budget's bookkeeping must not fail a call that was made: a lost release frees itself.
        await Promise.all(work).catch((error: unknown) => log("budget_error", { vendor, error: String(error) }, "warn"));
      },
    };
  }

  private windowsOf(vendor: Vendor): RateWindow[] {
    return vendor === "mailchimp" ? [] : windowsOf(this.budgets, vendor);
  }

  /** Until when a grant made at `at` may be sent: half the arrival slack, so a call sent just before still arrives within it. */
  private freshUntil(vendor: Vendor, scope: string | null, at: number): number {
    const windows = [...this.windowsOf(vendor), ...(scope ? this.budgets.stripeEndpoint : [])];
    return windows.length === 0 ? Infinity : at + Math.min(...windows.map(slackOf)) / 2;
  }

  /**
   * One request for every call waiting (of every scope); a scope without capacity waits for it
   * while the others go on, and a call that cannot wait that long is turned away.
   */
  private async ask(vendor: Vendor, api: BudgetApi): Promise<void> {
    if (this.asking.has(vendor)) return;
    this.asking.add(vendor);
    const queue = this.waiting.get(vendor)!;
    /** Per scope ("" for none): no capacity before this time. */
    const blocked = new Map<string, number>();
    const blockedUntil = (w: Waiter) => blocked.get(w.scope ?? "") ?? 0;
    try {
      while (queue.length > 0) {
        const now = this.now();
        // Calls that came while the last request was out may have spares waiting for them.
        for (const w of [...queue]) {
          const spare = this.spares.take(spareKey(vendor, w.scope), now);
          if (spare === null) continue;
          queue.splice(queue.indexOf(w), 1);
          w.resolve({ slot: null, freshUntil: this.windowsOf(vendor).length === 0 ? Infinity : spare });
        }
        const ready = queue.filter((w) => blockedUntil(w) <= now);
        if (queue.length === 0) break;
        if (ready.length === 0) {
          await this.sleep(Math.max(1, Math.min(...queue.map(blockedUntil)) - now));
          continue;
        }
        const { granted, waits } = await this.grant(vendor, api, ready, now);
        for (const { waiter, slot } of granted) {
          queue.splice(queue.indexOf(waiter), 1);
          waiter.resolve({ slot, freshUntil: this.freshUntil(vendor, waiter.scope, now) });
        }
        for (const [scope, waitMs] of waits) blocked.set(scope, this.now() + waitMs);
        // A call that cannot wait for its scope's capacity is turned away.
        for (const w of [...queue]) {
          const until = blockedUntil(w);
          if (until - w.since > MAX_WAIT_MS || until > w.latestStart) {
            queue.splice(queue.indexOf(w), 1);
            w.reject(capacityFailure(vendor, until - this.now()));
          }
        }
      }
    } catch (error) {
      // The budget unreachable: no call may go out uncounted; they are retried on the schedule.
      const failure = new ActionFailure("transient", `${vendor}: the shared budget did not answer: ${String(error)}`, { connector: vendor });
      for (const w of queue.splice(0)) w.reject(failure);
    } finally {
      this.asking.delete(vendor);
    }
  }

  /**
   * One budget request for `ready` (oldest first): the waiters it grants, each with its
   * connection (Mailchimp) or null, and for each scope ("" for none) it could not serve in full,
   * the wait until it has capacity again.
   */
  private async grant(vendor: Vendor, api: BudgetApi, ready: Waiter[], now: number): Promise<{ granted: { waiter: Waiter; slot: string | null }[]; waits: Map<string, number> }> {
    const waits = new Map<string, number>();
    if (vendor === "mailchimp") {
      const { ids, retryAfterMs } = await api.connections(this.budgets.mailchimpConnections, ready.length, CONNECTION_HOLD_MS, now);
      if (ids.length < ready.length) waits.set("", Math.max(1, retryAfterMs ?? 1));
      return { granted: ids.map((slot, i) => ({ waiter: ready[i]!, slot })), waits };
    }
    const byScope = new Map<string, Waiter[]>();
    for (const w of ready) {
      const list = byScope.get(w.scope ?? "") ?? [];
      list.push(w);
      byScope.set(w.scope ?? "", list);
    }
    const scopes = [...byScope.keys()];
    const spare = SPARES[vendor] ?? 0;
    const asks = scopes.map((scope) => ({ scope: scope === "" ? null : scope, want: byScope.get(scope)!.length, ...(spare ? { spare } : {}) }));
    const windows = this.windowsOf(vendor);
    const grants = await api.rates(windows, this.budgets.stripeEndpoint, asks, now);
    if (vendor === "hubspot") this.warnIfLow(grants.remaining);
    const granted: { waiter: Waiter; slot: string | null }[] = [];
    scopes.forEach((scope, i) => {
      const n = grants.granted[i] ?? 0;
      const waiting = byScope.get(scope)!;
      for (const waiter of waiting.slice(0, n)) granted.push({ waiter, slot: null });
      if (n < asks[i]!.want) waits.set(scope, Math.max(1, grants.retryAfterMs[i] ?? 1));
      const key = spareKey(vendor, asks[i]!.scope);
      if (n > waiting.length) this.spares.add(key, n - waiting.length, this.freshUntil(vendor, asks[i]!.scope, now));
      // No rate: nothing but a pause could stop the next calls; asked again in a second.
      if (windows.length === 0 && n >= waiting.length) this.spares.add(key, Infinity, now + PAUSE_RECHECK_MS);
    });
    return { granted, waits };
  }

  private pauseFor(vendor: Vendor, headers: Headers): number {
    const retryAfter = parseRetryAfter(headers.get("retry-after"), this.now());
    if (retryAfter !== null) return retryAfter;
    // HubSpot's daily limit: until its next day starts (UTC here; HubSpot counts in the account's time zone).
    if (vendor === "hubspot" && headers.get("x-hubspot-ratelimit-daily-remaining") === "0") return DAY_MS - (this.now() % DAY_MS);
    return DEFAULT_PAUSE_MS;
  }

  /** HubSpot's remaining counts, taught to the budget when they are low. */
  private learn(api: BudgetApi, headers: Headers): Promise<void>[] {
    const windows = this.budgets.hubspot;
    const out: Promise<void>[] = [];
    const teach = (windowMs: number | null, left: string | null) => {
      const remaining = left === null ? Number.NaN : Number(left);
      if (!Number.isFinite(remaining)) return;
      const index = windowMs === null ? shortest(windows) : windows.findIndex((w) => w.windowMs === windowMs);
      const w = windows[index];
      if (w && remaining < w.limit * LEARN_BELOW) out.push(api.learn(windows, index, remaining, this.now()));
    };
    const interval = Number(headers.get("x-hubspot-ratelimit-interval-milliseconds"));
    teach(Number.isFinite(interval) && interval > 0 ? interval : null, headers.get("x-hubspot-ratelimit-remaining"));
    teach(DAY_MS, headers.get("x-hubspot-ratelimit-daily-remaining"));
    return out;
  }

  /** The daily budget nearing its end is logged (also on GET /health). */
  private warnIfLow(remaining: number[]): void {
    if (this.warnedLow) return;
    this.budgets.hubspot.forEach((w, i) => {
      const left = remaining[i];
      if (w.windowMs >= DAY_MS && left !== undefined && left < w.limit * LOW_DAILY_SHARE && !this.warnedLow) {
        this.warnedLow = true;
        log("budget_low", { vendor: "hubspot", window: `${w.limit}/${w.windowMs / 1000}s`, remaining: left }, "warn");
      }
    });
  }
}

/** Where an invocation keeps a vendor's spares: per scope (a Stripe endpoint) when it has one. */
const spareKey = (vendor: Vendor, scope: string | null) => (scope === null ? vendor : `${vendor} ${scope}`);

/** A Stripe endpoint as Stripe counts it: the method and the path with its object ids taken out. */
export function stripeEndpoint(endpoint: string): string {
  return endpoint.replace(/\?.*$/, "").replace(/\/[a-z]+_[A-Za-z0-9]+(?=\/|$)/g, "/{id}");
}

function shortest(windows: readonly RateWindow[]): number {
  let best = 0;
  windows.forEach((w, i) => (best = w.windowMs < windows[best]!.windowMs ? i : best));
  return best;
}
