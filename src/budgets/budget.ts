/**
 * A vendor account's budget, as plain data and pure functions (the Durable Object in
 * vendor-budget.do.ts stores it and serializes every consumer invocation through it):
 *
 * - a rate: calls per window, for several windows at once (HubSpot: 100 per 10 s and 250,000
 *   per day for a Free/Starter private app). Counted in buckets of a twentieth of the window,
 *   a bucket counting in full until the window has passed all of it, so the count never falls
 *   short of the vendor's own rolling count: the deployment stays under the limit, at the
 *   cost of up to a twentieth of the window's capacity. The vendor counts a call when it
 *   arrives, some time after it was granted (a busy isolate, the network), so a call is
 *   counted as made up to ARRIVAL_SLACK_MS later than its grant: its window ends that much later.
 * - rates within the rate (Stripe limits each endpoint as well as the account): a scope's calls
 *   count in the scope's windows and in the account's, and one request grants calls of several
 *   scopes at once.
 * - connections: calls in flight at once (Mailchimp: 10 per account), each held under a lease
 *   that ends by itself, so a caller that dies cannot keep a connection for ever.
 * - a pause for everyone after the vendor answered 429 (its Retry-After, or a default).
 */
export interface RateWindow {
  limit: number;
  windowMs: number;
}

export interface RateState {
  /** Per window: bucket start -> calls granted in it. */
  buckets: Record<string, number>[];
}

export interface SlotState {
  /** Held connections: id -> lease end (ms). */
  held: Record<string, number>;
}

export interface BudgetState {
  rate: RateState;
  /** Per scope (a Stripe endpoint, "POST /v1/invoiceitems"): its own count, besides the account's. */
  scoped?: Record<string, RateState>;
  slots: SlotState;
  /** No call before this (a 429's Retry-After, for everyone). */
  pausedUntil: number;
}

/** Calls granted now, or none and how long to wait; and what is left of each window after the grant. */
export type Grant = { granted: number; retryAfterMs: number | null; remaining?: number[] };

/** Calls wanted within a scope (null: the account's rate alone), and spares the caller may use soon after. */
export interface RateAsk {
  scope: string | null;
  want: number;
  /** Granted only beyond the whole `want`, and only from room no one is short of (spareRoom). */
  spare?: number;
}

/** Per ask, in order: calls granted now (spares included) and, when fewer than wanted, how long until more; and what is left of the account's windows. */
export type Grants = { granted: number[]; retryAfterMs: (number | null)[]; remaining: number[] };

const BUCKETS_PER_WINDOW = 20;
/** How late after its grant a call may reach the vendor and still be counted where the vendor counts it. */
export const ARRIVAL_SLACK_MS = 1_000;
/** At most a tenth of a window: a one-second window must not lose half its capacity to the slack. */
export const slackOf = (w: RateWindow) => Math.min(ARRIVAL_SLACK_MS, Math.floor(w.windowMs / 10));

export function emptyBudget(windows: readonly RateWindow[]): BudgetState {
  return { rate: { buckets: windows.map(() => ({})) }, slots: { held: {} }, pausedUntil: 0 };
}

const bucketMs = (w: RateWindow) => Math.max(1, Math.ceil(w.windowMs / BUCKETS_PER_WINDOW));

/** Calls counted in `w` at `now`: every bucket that began less than a window ago. */
function used(buckets: Record<string, number>, w: RateWindow, now: number): number {
  let total = 0;
  for (const [start, count] of Object.entries(buckets)) if (Number(start) + bucketMs(w) > now - w.windowMs) total += count;
  return total;
}

/** When the oldest bucket of `w` leaves the window (the earliest a call frees up). */
function nextFree(buckets: Record<string, number>, w: RateWindow, now: number): number {
  const starts = Object.keys(buckets).map(Number).filter((start) => start + bucketMs(w) > now - w.windowMs);
  return starts.length === 0 ? 0 : Math.min(...starts) + bucketMs(w) + w.windowMs - now;
}

function pruneRate(rate: RateState, windows: readonly RateWindow[], now: number): void {
  windows.forEach((w, i) => {
    const buckets = rate.buckets[i] ?? (rate.buckets[i] = {});
    for (const start of Object.keys(buckets)) if (Number(start) + bucketMs(w) <= now - w.windowMs) delete buckets[start];
  });
}

function prune(state: BudgetState, windows: readonly RateWindow[], now: number): void {
  pruneRate(state.rate, windows, now);
  for (const [id, until] of Object.entries(state.slots.held)) if (until <= now) delete state.slots.held[id];
}

/** What is left of each window of `rate` now. */
const leftIn = (rate: RateState, windows: readonly RateWindow[], now: number) => windows.map((w, i) => w.limit - used(rate.buckets[i]!, w, now));

/** How long until `rate` has room again: the latest of its full windows' next free bucket. */
const waitIn = (rate: RateState, windows: readonly RateWindow[], now: number) =>
  Math.max(0, ...windows.map((w, i) => (used(rate.buckets[i]!, w, now) >= w.limit ? nextFree(rate.buckets[i]!, w, now) : 0)));

/** Counts `n` calls granted at `now` in every window of `rate`, where the vendor may count them (ARRIVAL_SLACK_MS). */
function charge(rate: RateState, windows: readonly RateWindow[], n: number, now: number): void {
  windows.forEach((w, i) => {
    const start = String(Math.floor((now + slackOf(w)) / bucketMs(w)) * bucketMs(w));
    const buckets = rate.buckets[i]!;
    buckets[start] = (buckets[start] ?? 0) + n;
  });
}

/**
 * How many spare calls a window can give after a grant that leaves `left`: a spare that its
 * caller does not use in time is spent all the same, so spares come only from room nobody is
 * short of: the upper half of a window of a minute or less, and all but the last hundredth of
 * a longer one (a few spares are nothing to a daily budget).
 */
function spareRoom(w: RateWindow, left: number): number {
  return left - Math.ceil(w.windowMs <= 60_000 ? w.limit / 2 : w.limit / 100);
}

/**
 * Grants up to `want` calls now under every window (all or part of them), or none with the
 * time to wait. A pause after a 429 grants nothing until it ends.
 */
export function acquireRate(state: BudgetState, windows: readonly RateWindow[], want: number, now: number): Grant {
  const grants = acquireRates(state, windows, [], [{ scope: null, want }], now);
  return { granted: grants.granted[0]!, retryAfterMs: grants.retryAfterMs[0]!, remaining: grants.remaining };
}

/**
 * Grants each ask in turn, as much of it as the account's windows and its scope's windows
 * (`scopeWindows`, the same for every scope) both have left; an ask granted less than it wants
 * gets the wait until its windows have room again. One request serves the calls of several
 * scopes that wait at the same moment.
 */
export function acquireRates(state: BudgetState, windows: readonly RateWindow[], scopeWindows: readonly RateWindow[], asks: readonly RateAsk[], now: number): Grants {
  prune(state, windows, now);
  const scopeOf = (scope: string): RateState => {
    const scoped = (state.scoped ??= {});
    const rate = (scoped[scope] ??= { buckets: [] });
    pruneRate(rate, scopeWindows, now);
    return rate;
  };
  const granted: number[] = [];
  const retryAfterMs: (number | null)[] = [];
  for (const ask of asks) {
    if (state.pausedUntil > now) {
      granted.push(0);
      retryAfterMs.push(state.pausedUntil - now);
      continue;
    }
    const scoped = ask.scope === null ? null : scopeOf(ask.scope);
    const all = [...windows, ...(scoped ? scopeWindows : [])];
    const left = [...leftIn(state.rate, windows, now), ...(scoped ? leftIn(scoped, scopeWindows, now) : [])];
    let n = Math.max(0, Math.min(ask.want, ...left));
    if (n === ask.want && ask.spare) n += Math.max(0, Math.min(ask.spare, ...all.map((w, i) => spareRoom(w, left[i]! - n))));
    if (n > 0) {
      charge(state.rate, windows, n, now);
      if (scoped) charge(scoped, scopeWindows, n, now);
    }
    granted.push(n);
    retryAfterMs.push(n >= ask.want ? null : Math.max(1, waitIn(state.rate, windows, now), scoped ? waitIn(scoped, scopeWindows, now) : 0));
  }
  // Scopes whose windows have all passed are dropped, so the state stays the size of what is in use.
  for (const [scope, rate] of Object.entries(state.scoped ?? {})) {
    pruneRate(rate, scopeWindows, now);
    if (rate.buckets.every((b) => Object.keys(b).length === 0)) delete state.scoped![scope];
  }
  return { granted, retryAfterMs, remaining: remaining(state, windows, now) };
}

/**
 * What the vendor says is left in its window (HubSpot's X-HubSpot-RateLimit-Remaining): when
 * it is less than we count, the calls we cannot see (another app on the same account, a
 * person's import) are counted too.
 */
export function learnRemaining(state: BudgetState, windows: readonly RateWindow[], windowIndex: number, remaining: number, now: number): void {
  const w = windows[windowIndex];
  if (!w) return;
  prune(state, windows, now);
  const buckets = state.rate.buckets[windowIndex]!;
  const missing = w.limit - remaining - used(buckets, w, now);
  if (missing <= 0) return;
  const start = String(Math.floor(now / bucketMs(w)) * bucketMs(w));
  buckets[start] = (buckets[start] ?? 0) + missing;
}

/**
 * How soon to ask again when every connection is held: a connection is usually released when
 * its call ends, long before its lease would run out.
 */
export const CONNECTION_RECHECK_MS = 50;

/**
 * Takes up to `want` connections, each held until `now + holdMs` unless released before. With
 * none free, the wait is until one is likely released (CONNECTION_RECHECK_MS) or its lease ends.
 */
export function acquireSlots(state: BudgetState, max: number, want: number, holdMs: number, now: number, newId: () => string): { ids: string[]; retryAfterMs: number | null } {
  prune(state, [], now);
  if (state.pausedUntil > now) return { ids: [], retryAfterMs: state.pausedUntil - now };
  const free = max - Object.keys(state.slots.held).length;
  if (free <= 0) return { ids: [], retryAfterMs: Math.max(1, Math.min(CONNECTION_RECHECK_MS, ...Object.values(state.slots.held).map((until) => until - now))) };
  const ids = Array.from({ length: Math.min(free, want) }, newId);
  for (const id of ids) state.slots.held[id] = now + holdMs;
  return { ids, retryAfterMs: null };
}

export function releaseSlots(state: BudgetState, ids: readonly string[]): void {
  for (const id of ids) delete state.slots.held[id];
}

/** The vendor answered 429: nobody calls it before `now + retryAfterMs`. */
export function pause(state: BudgetState, retryAfterMs: number, now: number): void {
  state.pausedUntil = Math.max(state.pausedUntil, now + retryAfterMs);
}

/** How much of each window is left, for /health and the logs. */
export function remaining(state: BudgetState, windows: readonly RateWindow[], now: number): number[] {
  return windows.map((w, i) => Math.max(0, w.limit - used(state.rate.buckets[i] ?? {}, w, now)));
}
