/**
 * The vendor budgets as one consumer invocation sees them (CONTRACT 4.11): before every call to
 * a vendor with a limit, the HttpClient asks the gate, and the gate asks that vendor account's
 * VendorBudget object. Calls waiting at the same moment ask together (one Durable Object request
 * for all of them), so bulk calls cost one budget request each and a burst of single calls
 * costs few.
 *
 * - HubSpot: one call of the rate (HUBSPOT_RATE_LIMIT). What HubSpot says is left
 *   (X-HubSpot-RateLimit-Remaining, -Daily-Remaining) is taught to the budget when it is low,
 *   so calls the budget cannot see (another app, a person's import) are counted too.
 * - Mailchimp: one of MAILCHIMP_MAX_CONNECTIONS, held while the call is in flight.
 * - Stripe (STRIPE_RATE_LIMIT per account, and STRIPE_ENDPOINT_RATE_LIMIT for each endpoint: Stripe
 *   limits both), Salesforce (SALESFORCE_RATE_LIMIT): one call of the rate.
 * - Postmark, which documents no rate: nothing but the pause after a 429.
 * - A 429 pauses every invocation: until its Retry-After, else for a default.
 * No capacity within the wait a call can afford: it is not sent, and fails as `capacity`, which
 * the pipeline turns into a delayed retry that counts no attempt (never a dead letter).
 */
import { createHash } from "node:crypto";
import type { Config } from "../config";
import { ActionFailure, parseRetryAfter } from "../connectors/errors";
import { log } from "../observability/log";
import type { Grant, RateWindow } from "./budget";

/** What the HttpClient needs: wait for capacity, then report the answer (null: no answer, a network error). */
export interface CallGate {
  /** `endpoint`: the call's method and path (`POST /v1/invoiceitems`), for vendors that limit each endpoint too. */
  enter(connector: string, latestStart: number, endpoint?: string): Promise<(answer: { status: number; headers: Headers } | null) => Promise<void>>;
}

/** The VendorBudget methods the gate uses (its Durable Object stub, or a stand-in). */
export interface BudgetApi {
  status(windows: RateWindow[], now: number): Promise<{ remaining: number[]; pausedUntil: number | null; connectionsHeld: number }>;
  rate(windows: RateWindow[], want: number, now: number): Promise<Grant>;
  connections(max: number, want: number, holdMs: number, now: number): Promise<{ ids: string[]; retryAfterMs: number | null }>;
  release(ids: string[]): Promise<void>;
  backOff(retryAfterMs: number, now: number): Promise<void>;
  learn(windows: RateWindow[], windowIndex: number, left: number, now: number): Promise<void>;
}

/** The longest a call waits in the invocation for capacity; past it, its message waits in the queue. */
export const MAX_WAIT_MS = 10_000;
/** A 429 without Retry-After pauses everyone this long. */
export const DEFAULT_PAUSE_MS = 1_000;
/** A connection is held at most this long (a call's timeout and some): a dead invocation's slot frees itself. */
export const CONNECTION_HOLD_MS = 20_000;
/** Below this share of a window left, what the vendor says is left is taught to the budget. */
const LEARN_BELOW = 0.25;
/** Below this share of the daily window left, it is logged (once per invocation). */
const LOW_DAILY_SHARE = 0.1;
const DAY_MS = 86_400_000;

export function capacityFailure(connector: string, retryAfterMs: number): ActionFailure {
  return new ActionFailure("transient", `${connector}: no capacity in the shared budget for ${Math.ceil(retryAfterMs / 1000)} s; waiting`, {
    connector,
    retryAfterMs,
    capacity: true,
  });
}

export const isCapacityFailure = (error: unknown): error is ActionFailure => error instanceof ActionFailure && error.details.capacity === true;

/** The budget objects' names: one per vendor account, named by a digest of its credential (never the credential). */
export type Vendor = "hubspot" | "mailchimp" | "stripe" | "salesforce" | "postmark";
/** Each enabled vendor's budget, and (Stripe) one budget per endpoint of its account. */
export type BudgetApis = Partial<Record<Vendor, BudgetApi>> & { endpoint?: (vendor: Vendor, endpoint: string) => BudgetApi };

export function budgetName(vendor: Vendor, credential: string): string {
  return `${vendor}:${createHash("sha256").update(credential).digest("hex").slice(0, 24)}`;
}

/** Each enabled vendor's budget object, named by its account's credential. */
export function durableBudgets(ns: DurableObjectNamespace<import("./vendor-budget.do").VendorBudget>, config: Config): BudgetApis {
  const credentials: [Vendor, string | null][] = [
    ["hubspot", config.hubspot.enabled ? config.hubspot.accessToken : null],
    ["mailchimp", config.mailchimp.enabled ? config.mailchimp.apiKey : null],
    ["stripe", config.stripe.enabled ? config.stripe.secretKey : null],
    ["salesforce", config.salesforce.enabled ? `${config.salesforce.loginUrl} ${config.salesforce.clientId}` : null],
    ["postmark", config.postmark.enabled ? config.postmark.serverToken : null],
  ];
  const apis: BudgetApis = {};
  const names = new Map<Vendor, string>();
  for (const [vendor, credential] of credentials) {
    if (credential === null) continue;
    names.set(vendor, budgetName(vendor, credential));
    apis[vendor] = ns.get(ns.idFromName(budgetName(vendor, credential))) as unknown as BudgetApi;
  }
  apis.endpoint = (vendor, endpoint) => ns.get(ns.idFromName(`${names.get(vendor)} ${endpoint}`)) as unknown as BudgetApi;
  return apis;
}

/** The rate windows of a vendor counted by calls (all but Mailchimp, counted by connections). */
function windowsOf(budgets: Config["budgets"], vendor: Exclude<Vendor, "mailchimp">): RateWindow[] {
  return budgets[vendor];
}

/** What is left of each vendor's budget, for GET /health: `low` once a daily window has under a tenth left. */
export async function budgetStatus(apis: BudgetApis, budgets: Config["budgets"], now: number) {
  const iso = (at: number | null) => (at === null ? null : new Date(at).toISOString());
  const entries = await Promise.all(
    (Object.keys(apis).filter((k) => k !== "endpoint") as Vendor[]).map(async (vendor) => {
      if (vendor === "mailchimp") {
        const status = await apis.mailchimp!.status([], now);
        return [vendor, { maxConnections: budgets.mailchimpConnections, connectionsHeld: status.connectionsHeld, pausedUntil: iso(status.pausedUntil) }] as const;
      }
      const windows = windowsOf(budgets, vendor);
      const status = await apis[vendor]!.status(windows, now);
      const left = windows.map((w, i) => ({ limit: w.limit, windowSeconds: w.windowMs / 1000, remaining: status.remaining[i] ?? w.limit }));
      // Under a tenth of a daily window left: the day's budget is nearly spent.
      const low = left.some((w) => w.windowSeconds * 1000 >= DAY_MS && w.remaining < w.limit * LOW_DAILY_SHARE);
      return [vendor, { windows: left, pausedUntil: iso(status.pausedUntil), low }] as const;
    }),
  );
  return Object.fromEntries(entries);
}

interface Waiter {
  latestStart: number;
  resolve(slot: string | null): void;
  reject(error: unknown): void;
}

export class BudgetGate implements CallGate {
  /** By budget key: a vendor, or a vendor's endpoint ("stripe POST /v1/invoiceitems"). */
  private readonly waiting = new Map<string, Waiter[]>();
  private readonly asking = new Set<string>();
  private warnedLow = false;

  constructor(
    private readonly apis: BudgetApis,
    private readonly budgets: Config["budgets"],
    private readonly now: () => number = Date.now,
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
  ) {}

  async enter(connector: string, latestStart: number, endpoint?: string) {
    const vendor = connector as Vendor;
    const api = this.apis[vendor];
    if (!api) return async () => undefined;
    // Stripe limits each endpoint as well as the account: the endpoint's budget first.
    if (vendor === "stripe" && endpoint && this.apis.endpoint && this.budgets.stripeEndpoint.length > 0) {
      const name = stripeEndpoint(endpoint);
      await this.acquire(`${vendor} ${name}`, vendor, this.apis.endpoint(vendor, name), this.budgets.stripeEndpoint, latestStart);
    }
    const slot = await this.acquire(vendor, vendor, api, vendor === "mailchimp" ? [] : windowsOf(this.budgets, vendor), latestStart);
    return async (answer: { status: number; headers: Headers } | null) => {
      const work: Promise<void>[] = [];
      if (slot) work.push(api.release([slot]));
      if (answer?.status === 429) work.push(api.backOff(this.pauseFor(vendor, answer.headers), this.now()));
      else if (answer && vendor === "hubspot") work.push(...this.learn(api, answer.headers));
      // The budget's bookkeeping must not fail a call that was made: a lost release frees itself.
      await Promise.all(work).catch((error: unknown) => log("budget_error", { vendor, error: String(error) }, "warn"));
    };
  }

  /** Capacity for one call from the budget `key` (a vendor, or a vendor's endpoint): a connection's slot, or null. */
  private acquire(key: string, vendor: Vendor, api: BudgetApi, windows: RateWindow[], latestStart: number): Promise<string | null> {
    return new Promise<string | null>((resolve, reject) => {
      const queue = this.waiting.get(key) ?? [];
      queue.push({ latestStart, resolve, reject });
      this.waiting.set(key, queue);
      void this.ask(key, vendor, api, windows);
    });
  }

  /** One request for every call waiting; those that cannot wait for the next capacity are turned away. */
  private async ask(key: string, vendor: Vendor, api: BudgetApi, windows: RateWindow[]): Promise<void> {
    if (this.asking.has(key)) return;
    this.asking.add(key);
    const queue = this.waiting.get(key)!;
    try {
      while (queue.length > 0) {
        const want = queue.length;
        let slots: (string | null)[];
        let retryAfterMs: number | null;
        if (vendor === "mailchimp") {
          const grant = await api.connections(this.budgets.mailchimpConnections, want, CONNECTION_HOLD_MS, this.now());
          slots = grant.ids;
          retryAfterMs = grant.retryAfterMs;
        } else {
          const grant = await api.rate(windows, want, this.now());
          slots = Array.from({ length: grant.granted }, () => null);
          retryAfterMs = grant.retryAfterMs;
          if (key === "hubspot") this.warnIfLow(grant);
        }
        for (const slot of slots) queue.shift()?.resolve(slot);
        if (queue.length === 0) break;
        const wait = Math.max(1, retryAfterMs ?? 1);
        const until = this.now() + wait;
        for (const w of queue.splice(0)) {
          if (wait > MAX_WAIT_MS || until > w.latestStart) w.reject(capacityFailure(vendor, wait));
          else queue.push(w);
        }
        if (queue.length > 0) await this.sleep(wait);
      }
    } catch (error) {
      // The budget unreachable: no call may go out uncounted; they are retried on the schedule.
      const failure = new ActionFailure("transient", `${vendor}: the shared budget did not answer: ${String(error)}`, { connector: vendor });
      for (const w of queue.splice(0)) w.reject(failure);
    } finally {
      this.asking.delete(key);
    }
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
  private warnIfLow(grant: Grant): void {
    if (this.warnedLow || !grant.remaining) return;
    this.budgets.hubspot.forEach((w, i) => {
      const left = grant.remaining?.[i];
      if (w.windowMs >= DAY_MS && left !== undefined && left < w.limit * LOW_DAILY_SHARE && !this.warnedLow) {
        this.warnedLow = true;
        log("budget_low", { vendor: "hubspot", window: `${w.limit}/${w.windowMs / 1000}s`, remaining: left }, "warn");
      }
    });
  }
}

/** A Stripe endpoint as Stripe counts it: the method and the path with its object ids taken out. */
export function stripeEndpoint(endpoint: string): string {
  return endpoint.replace(/\?.*$/, "").replace(/\/[a-z]+_[A-Za-z0-9]+(?=\/|$)/g, "/{id}");
}

function shortest(windows: readonly RateWindow[]): number {
  let best = 0;
  windows.forEach((w, i) => (best = w.windowMs < windows[best]!.windowMs ? i : best));
  return best;
}
