/**
 * The shared vendor budget: the pure counting (windows, connections, a 429's pause, what the
 * vendor says is left), its Durable Object under concurrent callers, and its configuration.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { acquireRate, acquireRates, acquireSlots, CONNECTION_RECHECK_MS, emptyBudget, learnRemaining, pause, releaseSlots, remaining, type RateWindow } from "../../src/budgets/budget";
import { parseConfig } from "../../src/config";

const HUBSPOT: RateWindow[] = [{ limit: 100, windowMs: 10_000 }, { limit: 250_000, windowMs: 86_400_000 }];

/** The most calls granted in any 10 s span, from a log of (time, count). */
function peakInWindow(log: [number, number][], windowMs: number): number {
  let peak = 0;
  for (const [start] of log) peak = Math.max(peak, log.filter(([t]) => t >= start && t < start + windowMs).reduce((n, [, c]) => n + c, 0));
  return peak;
}

describe("rate windows", () => {
  it("never grants more than the limit in any rolling window, asked every 50 ms for a minute", () => {
    const state = emptyBudget(HUBSPOT);
    const log: [number, number][] = [];
    for (let now = 0; now < 60_000; now += 50) {
      const grant = acquireRate(state, HUBSPOT, 7, now);
      if (grant.granted > 0) log.push([now, grant.granted]);
      else expect(grant.retryAfterMs).toBeGreaterThan(0);
    }
    expect(peakInWindow(log, 10_000)).toBeLessThanOrEqual(100);
    // And it does not starve: at least 19/20 of the limit per window over the minute.
    expect(log.reduce((n, [, c]) => n + c, 0)).toBeGreaterThanOrEqual(5 * 95);
  });

  it("grants part of a request when only part fits, and says how long to wait when nothing does", () => {
    const state = emptyBudget(HUBSPOT);
    expect(acquireRate(state, HUBSPOT, 90, 0)).toMatchObject({ granted: 90, retryAfterMs: null });
    // Part of it, and the wait for the rest: the oldest bucket (counted from 1,000, its calls' arrival slack) leaves the window at 11,500.
    expect(acquireRate(state, HUBSPOT, 30, 100)).toMatchObject({ granted: 10, retryAfterMs: 11_400, remaining: [0, 249_900] });
    const none = acquireRate(state, HUBSPOT, 1, 200);
    expect(none.granted).toBe(0);
    // The window, plus the second a call may take to reach the vendor (ARRIVAL_SLACK_MS), plus a bucket at most.
    expect(none.retryAfterMs).toBeGreaterThan(10_000);
    expect(none.retryAfterMs).toBeLessThanOrEqual(11_500);
  });

  it("counts a call as made up to a second after its grant: one that reaches the vendor late is still inside the window", () => {
    const state = emptyBudget(HUBSPOT);
    expect(acquireRate(state, HUBSPOT, 100, 0).granted).toBe(100);
    // The vendor saw these calls arrive as late as 900 ms: at 10,000 + 800 its window still holds them.
    expect(acquireRate(state, HUBSPOT, 1, 10_800).granted).toBe(0);
    expect(acquireRate(state, HUBSPOT, 1, 11_500).granted).toBe(1);
  });

  it("keeps the daily limit too", () => {
    const windows: RateWindow[] = [{ limit: 100, windowMs: 10_000 }, { limit: 250, windowMs: 86_400_000 }];
    const state = emptyBudget(windows);
    let total = 0;
    for (let now = 0; now < 60_000; now += 1_000) total += acquireRate(state, windows, 100, now).granted;
    expect(total).toBe(250);
    expect(remaining(state, windows, 60_000)).toEqual([expect.any(Number), 0]);
  });

  it("counts what the vendor says is used that we did not see", () => {
    const state = emptyBudget(HUBSPOT);
    acquireRate(state, HUBSPOT, 10, 0);
    learnRemaining(state, HUBSPOT, 0, 20, 100); // another app on the account used 70
    expect(acquireRate(state, HUBSPOT, 50, 200).granted).toBe(20);
  });

  it("grants the calls of several scopes (Stripe's endpoints) in one request, each under its scope's limit and all under the account's", () => {
    const account: RateWindow[] = [{ limit: 10, windowMs: 1_000 }];
    const endpoint: RateWindow[] = [{ limit: 4, windowMs: 1_000 }];
    const state = emptyBudget(account);
    const asks = [
      { scope: "POST /v1/invoiceitems", want: 6 },
      { scope: "POST /v1/invoices", want: 2 },
      { scope: null, want: 1 },
      { scope: "POST /v1/customers", want: 5 },
    ];
    const first = acquireRates(state, account, endpoint, asks, 0);
    // 4 items (their endpoint's limit), 2 invoices, 1 unscoped, then the account has 3 left for customers.
    expect(first.granted).toEqual([4, 2, 1, 3]);
    expect(first.retryAfterMs[1]).toBeNull();
    expect(first.retryAfterMs[2]).toBeNull();
    // The window (1 s) plus the arrival slack (a tenth of it) plus a bucket at most.
    for (const i of [0, 3]) expect(first.retryAfterMs[i]).toBeGreaterThan(1_000);
    expect(first.remaining).toEqual([0]);
    // Nothing more for anyone inside the window, and every scope counts again once it has passed.
    expect(acquireRates(state, account, endpoint, [{ scope: "POST /v1/invoices", want: 1 }], 500).granted).toEqual([0]);
    expect(acquireRates(state, account, endpoint, asks, 1_200).granted).toEqual([4, 2, 1, 3]);
  });

  it("drops a scope's counts once its window has passed, so the state holds only what is in use", () => {
    const account: RateWindow[] = [{ limit: 100, windowMs: 1_000 }];
    const state = emptyBudget(account);
    acquireRates(state, account, account, [{ scope: "POST /v1/invoices/{id}/finalize", want: 1 }], 0);
    expect(Object.keys(state.scoped ?? {})).toEqual(["POST /v1/invoices/{id}/finalize"]);
    acquireRates(state, account, account, [{ scope: null, want: 1 }], 5_000);
    expect(state.scoped).toEqual({});
  });

  it("pauses everyone after a 429 until its Retry-After has passed", () => {
    const state = emptyBudget(HUBSPOT);
    pause(state, 5_000, 1_000);
    expect(acquireRate(state, HUBSPOT, 1, 2_000)).toMatchObject({ granted: 0, retryAfterMs: 4_000 });
    expect(acquireRate(state, HUBSPOT, 1, 6_000).granted).toBe(1);
  });
});

describe("connections", () => {
  it("holds at most the maximum at once; a released or expired lease frees its connection", () => {
    const state = emptyBudget([]);
    let n = 0;
    const id = () => `c${++n}`;
    const first = acquireSlots(state, 10, 8, 30_000, 0, id);
    expect(first.ids).toHaveLength(8);
    expect(acquireSlots(state, 10, 5, 30_000, 0, id).ids).toHaveLength(2);
    const none = acquireSlots(state, 10, 1, 30_000, 10, id);
    // Asked again soon: a call usually releases its connection long before its lease (29,990 ms) ends.
    expect(none).toEqual({ ids: [], retryAfterMs: CONNECTION_RECHECK_MS });
    releaseSlots(state, first.ids.slice(0, 3));
    expect(acquireSlots(state, 10, 5, 30_000, 20, id).ids).toHaveLength(3);
    // A caller that died never released: its leases end by themselves.
    expect(acquireSlots(state, 10, 10, 30_000, 30_021, id).ids).toHaveLength(10);
  });
});

describe("the VendorBudget Durable Object", () => {
  it("shares one rate among concurrent callers: together they get at most the limit", async () => {
    const budget = env.BUDGET.getByName(`hubspot:test-${crypto.randomUUID()}`);
    const now = Date.now();
    const grants = await Promise.all(Array.from({ length: 30 }, () => budget.rate(HUBSPOT, 7, now)));
    expect(grants.reduce((n, g) => n + g.granted, 0)).toBe(100);
    expect(grants.filter((g) => g.granted === 0).every((g) => (g.retryAfterMs ?? 0) > 0)).toBe(true);
  });

  it("shares connections, and one 429 pauses every caller", async () => {
    const budget = env.BUDGET.getByName(`mailchimp:test-${crypto.randomUUID()}`);
    const now = Date.now();
    const held = await Promise.all(Array.from({ length: 12 }, () => budget.connections(10, 1, 30_000, now)));
    expect(held.flatMap((h) => h.ids)).toHaveLength(10);
    await budget.release(held.flatMap((h) => h.ids));
    await budget.backOff(2_000, now);
    expect(await budget.connections(10, 1, 30_000, now + 1_000)).toEqual({ ids: [], retryAfterMs: 1_000 });
    expect((await budget.status([], now + 1_000)).pausedUntil).toBe(now + 2_000);
  });
});

describe("configuration", () => {
  const base = { SANDBOX: "true" };
  it("defaults to HubSpot's Free/Starter private-app limits, Mailchimp's 10 connections, Stripe's live rate, Salesforce's daily allocation", () => {
    expect(parseConfig(base).budgets).toEqual({
      hubspot: HUBSPOT,
      mailchimpConnections: 10,
      stripe: [{ limit: 100, windowMs: 1_000 }],
      stripeEndpoint: [{ limit: 25, windowMs: 1_000 }],
      salesforce: [{ limit: 100_000, windowMs: 86_400_000 }],
      postmark: [],
    });
  });

  it("reads the windows of HUBSPOT_RATE_LIMIT", () => {
    expect(parseConfig({ ...base, HUBSPOT_RATE_LIMIT: "190/10s, 1000000/day", MAILCHIMP_MAX_CONNECTIONS: "4", STRIPE_RATE_LIMIT: "25/1s" }).budgets).toMatchObject({
      hubspot: [{ limit: 190, windowMs: 10_000 }, { limit: 1_000_000, windowMs: 86_400_000 }],
      mailchimpConnections: 4,
      stripe: [{ limit: 25, windowMs: 1_000 }],
    });
  });

  it.each(["100", "100/10x", "0/10s", "100/0s", "-5/10s", "lots"])("names HUBSPOT_RATE_LIMIT when it is %s", (value) => {
    expect(() => parseConfig({ ...base, HUBSPOT_RATE_LIMIT: value })).toThrowError(/HUBSPOT_RATE_LIMIT/);
  });
});

describe("spare grants", () => {
  const window: RateWindow[] = [{ limit: 10, windowMs: 1_000 }];

  it("come only with the whole of what is wanted, and only from the upper half of a short window", () => {
    const state = emptyBudget(window);
    // 2 wanted leave 8: 3 of them above the half may be spares.
    expect(acquireRates(state, window, [], [{ scope: null, want: 2, spare: 4 }], 0).granted).toEqual([5]);
    // 5 left: 1 wanted leaves 4, under the half: no spare.
    expect(acquireRates(state, window, [], [{ scope: null, want: 1, spare: 4 }], 10).granted).toEqual([1]);
    // Less than wanted: no spare either, and the wait for the rest.
    const short = acquireRates(state, window, [], [{ scope: null, want: 6, spare: 4 }], 20);
    expect(short.granted).toEqual([4]);
    expect(short.retryAfterMs[0]).toBeGreaterThan(0);
  });

  it("from a daily window, all but its last hundredth", () => {
    const daily: RateWindow[] = [{ limit: 1_000, windowMs: 86_400_000 }];
    const state = emptyBudget(daily);
    expect(acquireRates(state, daily, [], [{ scope: null, want: 985, spare: 10 }], 0).granted).toEqual([990]);
    expect(acquireRates(state, daily, [], [{ scope: null, want: 1, spare: 10 }], 1).granted).toEqual([1]);
  });
});
