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
  enter(connector: string, latestStart: number): Promise<(answer: { status: number; headers: Headers } | null) => Promise<void>>;
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
export function budgetName(vendor: "hubspot" | "mailchimp", credential: string): string {
  return `${vendor}:${createHash("sha256").update(credential).digest("hex").slice(0, 24)}`;
}

export function durableBudgets(ns: DurableObjectNamespace<import("./vendor-budget.do").VendorBudget>, config: Config): Partial<Record<"hubspot" | "mailchimp", BudgetApi>> {
  const stub = (name: string) => ns.get(ns.idFromName(name)) as unknown as BudgetApi;
  return {
    ...(config.hubspot.enabled ? { hubspot: stub(budgetName("hubspot", config.hubspot.accessToken)) } : {}),
    ...(config.mailchimp.enabled ? { mailchimp: stub(budgetName("mailchimp", config.mailchimp.apiKey)) } : {}),
  };
}

/** What is left of each vendor's budget, for GET /health: `low` once a daily window has under a tenth left. */
export async function budgetStatus(apis: Partial<Record<"hubspot" | "mailchimp", BudgetApi>>, budgets: Config["budgets"], now: number) {
  const [hubspot, mailchimp] = await Promise.all([apis.hubspot?.status(budgets.hubspot, now), apis.mailchimp?.status([], now)]);
  return {
    ...(hubspot && {
      hubspot: {
        windows: budgets.hubspot.map((w, i) => ({ limit: w.limit, windowSeconds: w.windowMs / 1000, remaining: hubspot.remaining[i] ?? w.limit })),
        pausedUntil: hubspot.pausedUntil === null ? null : new Date(hubspot.pausedUntil).toISOString(),
        low: budgets.hubspot.some((w, i) => w.windowMs >= DAY_MS && (hubspot.remaining[i] ?? w.limit) < w.limit * LOW_DAILY_SHARE),
      },
    }),
    ...(mailchimp && {
      mailchimp: {
        maxConnections: budgets.mailchimpConnections,
        connectionsHeld: mailchimp.connectionsHeld,
        pausedUntil: mailchimp.pausedUntil === null ? null : new Date(mailchimp.pausedUntil).toISOString(),
      },
    }),
  };
}

interface Waiter {
  latestStart: number;
  resolve(slot: string | null): void;
  reject(error: unknown): void;
}

export class BudgetGate implements CallGate {
  private readonly waiting = { hubspot: [] as Waiter[], mailchimp: [] as Waiter[] };
  private readonly asking = { hubspot: false, mailchimp: false };
  private warnedLow = false;

  constructor(
    private readonly apis: Partial<Record<"hubspot" | "mailchimp", BudgetApi>>,
    private readonly budgets: Config["budgets"],
    private readonly now: () => number = Date.now,
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
  ) {}

  async enter(connector: string, latestStart: number) {
    const vendor = connector === "hubspot" || connector === "mailchimp" ? connector : null;
    const api = vendor ? this.apis[vendor] : undefined;
    if (!vendor || !api) return async () => undefined;
    const slot = await new Promise<string | null>((resolve, reject) => {
      this.waiting[vendor].push({ latestStart, resolve, reject });
      void this.ask(vendor, api);
    });
    return async (answer: { status: number; headers: Headers } | null) => {
      const work: Promise<void>[] = [];
      if (slot) work.push(api.release([slot]));
      if (answer?.status === 429) work.push(api.backOff(this.pauseFor(vendor, answer.headers), this.now()));
      else if (answer && vendor === "hubspot") work.push(...this.learn(api, answer.headers));
      // The budget's bookkeeping must not fail a call that was made: a lost release frees itself.
      await Promise.all(work).catch((error: unknown) => log("budget_error", { vendor, error: String(error) }, "warn"));
    };
  }

  /** One request for every call waiting; those that cannot wait for the next capacity are turned away. */
  private async ask(vendor: "hubspot" | "mailchimp", api: BudgetApi): Promise<void> {
    if (this.asking[vendor]) return;
    this.asking[vendor] = true;
    const queue = this.waiting[vendor];
    try {
      while (queue.length > 0) {
        const want = queue.length;
        let slots: (string | null)[];
        let retryAfterMs: number | null;
        if (vendor === "hubspot") {
          const grant = await api.rate(this.budgets.hubspot, want, this.now());
          slots = Array.from({ length: grant.granted }, () => null);
          retryAfterMs = grant.retryAfterMs;
          this.warnIfLow(grant);
        } else {
          const grant = await api.connections(this.budgets.mailchimpConnections, want, CONNECTION_HOLD_MS, this.now());
          slots = grant.ids;
          retryAfterMs = grant.retryAfterMs;
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
      this.asking[vendor] = false;
    }
  }

  private pauseFor(vendor: "hubspot" | "mailchimp", headers: Headers): number {
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

function shortest(windows: readonly RateWindow[]): number {
  let best = 0;
  windows.forEach((w, i) => (best = w.windowMs < windows[best]!.windowMs ? i : best));
  return best;
}
