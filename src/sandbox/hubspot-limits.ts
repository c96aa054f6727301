/**
 * HubSpot's rate limits in the fake HubSpot, as "API usage guidelines and limits" documents them
 * for private apps: https://developers.hubspot.com/docs/api/usage-details (now at
 * https://developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines).
 *
 * - Free and Starter: 100 requests per 10 seconds per private app and 250,000 per day per
 *   account (the defaults here). Professional and Enterprise: 190 per 10 s and 650,000 or
 *   1,000,000 a day (https://developers.hubspot.com/changelog/increasing-our-api-limits).
 * - Over a limit: "a 429 error response for all subsequent API calls", with the body
 *   {status: "error", message, errorType: "RATE_LIMIT", correlationId, policyName, requestId};
 *   "the message and policyName will indicate which limit you hit": "You have reached your
 *   ten_secondly_rolling limit." with TEN_SECONDLY_ROLLING, "You have reached your daily
 *   limit." with DAILY (the docs' example).
 * - Headers on each answer: X-HubSpot-RateLimit-Daily and -Daily-Remaining ("not included in
 *   the response to API requests authorized using OAuth", so present for a private app's
 *   token), -Interval-Milliseconds, -Max and -Remaining (the window), and -Secondly and
 *   -Secondly-Remaining, which "are still included and will still have accurate data, but the
 *   limit referenced by these headers is no longer enforced" (max / 10 here). 429s carry them too.
 * - "The daily limit resets at midnight based on your time zone setting": the fake's account is
 *   on UTC.
 *
 * Where the docs are silent, decided here:
 * - A 429 does not count against the window or the day. The headers count "API requests still
 *   allowed", and a call turned away was not one of them; so the window rolls: as soon as the
 *   oldest counted call is `intervalMs` old, the next call goes through. 429s are counted apart.
 * - A call that fails authentication is not counted: it names no app (HubSpot answers it 401).
 * - No Retry-After on a 429: HubSpot documents Retry-After for 477 (migration), not for 429;
 *   -Interval-Milliseconds and -Remaining tell when capacity returns.
 * - Limits off (`enabled: false`): nothing is enforced and no X-HubSpot-RateLimit-* header is
 *   sent (a vendor without limits), but the counters still count.
 */
import { jsonResponse, type JsonObject } from "./fake-service";
import { credentialKey, flag, positiveInt, unknownField, type Admission, type Limiter } from "./limits";

export interface HubSpotLimitSettings {
  enabled: boolean;
  /** Calls per window (X-HubSpot-RateLimit-Max). */
  max: number;
  /** The rolling window (X-HubSpot-RateLimit-Interval-Milliseconds). */
  intervalMs: number;
  /** Calls per UTC day (X-HubSpot-RateLimit-Daily). */
  daily: number;
}

/** One access token's usage. */
interface TokenUsage {
  /** When each call counted in the current window arrived, oldest first. */
  calls: number[];
  /** The UTC day `dailyCount` is for, "YYYY-MM-DD". */
  day: string;
  dailyCount: number;
}

export type HubSpotPolicy = "TEN_SECONDLY_ROLLING" | "DAILY";

/** The persisted part (`state.limits` of the fake HubSpot). */
export interface HubSpotLimitState {
  settings: HubSpotLimitSettings;
  /** By credentialKey(token): the token itself is never stored. */
  usage: Record<string, TokenUsage>;
  /** Calls counted since the last reset. */
  accepted: number;
  /** 429s answered since the last reset, by policy. */
  rejected: Record<HubSpotPolicy, number>;
}

/** `false` turns the limits off; an object overrides some defaults (and keeps them on unless it says `enabled: false`). */
export type HubSpotLimitOption = Partial<HubSpotLimitSettings> | false;

export const HUBSPOT_DEFAULT_LIMITS: Readonly<HubSpotLimitSettings> = { enabled: true, max: 100, intervalMs: 10_000, daily: 250_000 };

const SETTINGS = ["enabled", "max", "intervalMs", "daily", "dailyCount", "resetCounters"] as const;
const DAY_MS = 86_400_000;

export function createHubSpotLimiter(opts: {
  accessToken: string;
  option: HubSpotLimitOption | undefined;
  /** The fake's current state (the host may swap it). */
  holder: () => { limits?: HubSpotLimitState };
}): Limiter {
  const key = credentialKey(opts.accessToken);
  const initial = (): HubSpotLimitSettings =>
    opts.option === false ? { ...HUBSPOT_DEFAULT_LIMITS, enabled: false } : { ...HUBSPOT_DEFAULT_LIMITS, ...(opts.option ?? {}) };
  const fresh = (): HubSpotLimitState => ({ settings: initial(), usage: {}, accepted: 0, rejected: { TEN_SECONDLY_ROLLING: 0, DAILY: 0 } });

  /** The stored state, created on first use and completed when stored by an older version. */
  const ensure = (): HubSpotLimitState => {
    const holder = opts.holder();
    const st = (holder.limits ??= fresh());
    st.settings = { ...initial(), ...st.settings };
    st.usage ??= {};
    st.accepted ??= 0;
    st.rejected ??= { TEN_SECONDLY_ROLLING: 0, DAILY: 0 };
    return st;
  };

  return {
    admit(request: Request, now: number): Admission | null {
      if (bearerToken(request) !== opts.accessToken) return null;
      const st = ensure();
      const usage = usageAt(st, key, now);
      const s = st.settings;
      const policy: HubSpotPolicy | null = !s.enabled ? null
        : usage.dailyCount >= s.daily ? "DAILY"
        : usage.calls.length >= s.max ? "TEN_SECONDLY_ROLLING"
        : null;
      if (policy !== null) {
        st.rejected[policy] += 1;
        return { rejection: rateLimited(policy), headers: rateHeaders(s, usage, now), release: () => undefined };
      }
      usage.calls.push(now);
      // Only with the limits off can the window hold more than `max`; it is kept bounded.
      if (usage.calls.length > s.max) usage.calls.splice(0, usage.calls.length - s.max);
      usage.dailyCount += 1;
      st.accepted += 1;
      return { rejection: null, headers: s.enabled ? rateHeaders(s, usage, now) : {}, release: () => undefined };
    },

    view(now: number): JsonObject {
      const st = ensure();
      const usage = usageAt(st, key, now);
      return {
        ...st.settings,
        window: usage.calls.length,
        day: usage.day,
        dailyCount: usage.dailyCount,
        accepted: st.accepted,
        rejected: st.rejected.TEN_SECONDLY_ROLLING + st.rejected.DAILY,
        rejectedByPolicy: { ...st.rejected },
      };
    },

    configure(input: JsonObject, now: number): string | null {
      const unknown = unknownField(input, SETTINGS);
      if (unknown !== null) return unknown;
      const enabled = flag(input, "enabled");
      const max = positiveInt(input, "max");
      const intervalMs = positiveInt(input, "intervalMs");
      const daily = positiveInt(input, "daily");
      const dailyCount = input.dailyCount;
      const resetCounters = flag(input, "resetCounters");
      for (const v of [enabled, max, intervalMs, daily, resetCounters]) if (typeof v === "string") return v;
      if (dailyCount !== undefined && !(typeof dailyCount === "number" && Number.isSafeInteger(dailyCount) && dailyCount >= 0)) {
        return "dailyCount must be an integer >= 0";
      }
      const st = ensure();
      // Counters (window, day, 429s) back to zero, the data and settings kept: e.g. after seeding.
      if (resetCounters === true) Object.assign(st, { usage: {}, accepted: 0, rejected: { TEN_SECONDLY_ROLLING: 0, DAILY: 0 } });
      if (typeof enabled === "boolean") st.settings.enabled = enabled;
      if (typeof max === "number") st.settings.max = max;
      if (typeof intervalMs === "number") st.settings.intervalMs = intervalMs;
      if (typeof daily === "number") st.settings.daily = daily;
      // Today's count for the fake's token, e.g. to test the end of the day without 250,000 calls.
      if (typeof dailyCount === "number") usageAt(st, key, now).dailyCount = dailyCount;
      return null;
    },

    reset(): void {
      opts.holder().limits = fresh();
    },
  };
}

/** The token's usage at `now`: calls older than the window dropped, the count of a past day zeroed. */
function usageAt(st: HubSpotLimitState, key: string, now: number): TokenUsage {
  const day = utcDay(now);
  const usage = (st.usage[key] ??= { calls: [], day, dailyCount: 0 });
  if (usage.day !== day) {
    usage.day = day;
    usage.dailyCount = 0;
  }
  // A call counts while it is less than intervalMs old.
  const horizon = now - st.settings.intervalMs;
  let expired = 0;
  while (expired < usage.calls.length && (usage.calls[expired] ?? 0) <= horizon) expired++;
  if (expired > 0) usage.calls.splice(0, expired);
  return usage;
}

function utcDay(now: number): string {
  return new Date(Math.floor(now / DAY_MS) * DAY_MS).toISOString().slice(0, 10);
}

function rateHeaders(s: HubSpotLimitSettings, usage: TokenUsage, now: number): Record<string, string> {
  const secondly = Math.max(1, Math.round((s.max * 1000) / s.intervalMs));
  const lastSecond = usage.calls.filter((t) => t > now - 1000).length;
  return {
    "X-HubSpot-RateLimit-Daily": String(s.daily),
    "X-HubSpot-RateLimit-Daily-Remaining": String(Math.max(0, s.daily - usage.dailyCount)),
    "X-HubSpot-RateLimit-Interval-Milliseconds": String(s.intervalMs),
    "X-HubSpot-RateLimit-Max": String(s.max),
    "X-HubSpot-RateLimit-Remaining": String(Math.max(0, s.max - usage.calls.length)),
    "X-HubSpot-RateLimit-Secondly": String(secondly),
    "X-HubSpot-RateLimit-Secondly-Remaining": String(Math.max(0, secondly - lastSecond)),
  };
}

/** HubSpot's 429 body, fields in the order of the docs' example. */
export function rateLimited(policy: HubSpotPolicy): Response {
  const message = policy === "DAILY" ? "You have reached your daily limit." : "You have reached your ten_secondly_rolling limit.";
  const body = { status: "error", message, errorType: "RATE_LIMIT", correlationId: crypto.randomUUID(), policyName: policy, requestId: crypto.randomUUID() };
  return jsonResponse(body, 429, "application/json;charset=utf-8");
}

export function bearerToken(request: Request): string | null {
  const match = /^Bearer\s+(.+)$/i.exec(request.headers.get("Authorization") ?? "");
  return match?.[1]?.trim() ?? null;
}
