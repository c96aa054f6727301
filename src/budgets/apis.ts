/**
 * The vendor budgets' Durable Objects as the rest of the worker reaches them: one object per
 * vendor account, named by a digest of its credential (never the credential), the methods the
 * gate (gate.ts) and GET /health use, and what /health shows of each.
 */
import { createHash } from "node:crypto";
import type { Config } from "../config";
import type { Grant, Grants, RateAsk, RateWindow } from "./budget";

export const DAY_MS = 86_400_000;
/** Below this share of the daily window left, a budget is `low` (GET /health, and logged once per invocation). */
export const LOW_DAILY_SHARE = 0.1;

/** The VendorBudget methods the gate uses (its Durable Object stub, or a stand-in). */
export interface BudgetApi {
  status(windows: RateWindow[], now: number): Promise<{ remaining: number[]; pausedUntil: number | null; connectionsHeld: number }>;
  rate(windows: RateWindow[], want: number, now: number): Promise<Grant>;
  rates(windows: RateWindow[], scopeWindows: RateWindow[], asks: RateAsk[], now: number): Promise<Grants>;
  connections(max: number, want: number, holdMs: number, now: number): Promise<{ ids: string[]; retryAfterMs: number | null }>;
  release(ids: string[]): Promise<void>;
  backOff(retryAfterMs: number, now: number): Promise<void>;
  learn(windows: RateWindow[], windowIndex: number, left: number, now: number): Promise<void>;
}

/** The budget objects' names: one per vendor account, named by a digest of its credential (never the credential). */
export type Vendor = "hubspot" | "mailchimp" | "stripe" | "salesforce" | "postmark";
/** Each enabled vendor's budget (Stripe's counts its endpoints too). */
export type BudgetApis = Partial<Record<Vendor, BudgetApi>>;

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
  for (const [vendor, credential] of credentials) {
    if (credential !== null) apis[vendor] = ns.get(ns.idFromName(budgetName(vendor, credential))) as unknown as BudgetApi;
  }
  return apis;
}

/** The rate windows of a vendor counted by calls (all but Mailchimp, counted by connections). */
export function windowsOf(budgets: Config["budgets"], vendor: Exclude<Vendor, "mailchimp">): RateWindow[] {
  return budgets[vendor];
}

/** What is left of each vendor's budget, for GET /health: `low` once a daily window has under a tenth left. */
export async function budgetStatus(apis: BudgetApis, budgets: Config["budgets"], now: number) {
  const iso = (at: number | null) => (at === null ? null : new Date(at).toISOString());
  const entries = await Promise.all(
    (Object.keys(apis) as Vendor[]).map(async (vendor) => {
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
