/**
 * Mailchimp's connection limit in the fake Mailchimp.
 *
 * https://mailchimp.com/developer/marketing/docs/fundamentals/ (API limits): "Each user account
 * is permitted up to 10 simultaneous connections, and you'll receive an error message if you
 * reach the limit. We don't throttle based on volume."
 * https://mailchimp.com/developer/marketing/docs/errors/: 429 TooManyRequests, "You have
 * exceeded the limit of 10 simultaneous connections." (RFC 7807 problem details, like every
 * Mailchimp error; the detail names the configured limit, 10 by default).
 *
 * So: no window and no daily count, only the calls in flight at once, per API key (the fake
 * accepts one key, the account's). A call is in flight from its arrival until its answer is
 * made, the fake's added latency (faults `latencyMs`) included, so a test with latency sees the
 * concurrency. The call that would be connection N+1 gets the 429 at once and holds no
 * connection. Mailchimp documents no rate-limit headers and no Retry-After, so none are sent.
 * A call that fails authentication is not counted (it names no account).
 *
 * The connections open right now are in memory (they end with the process); the peak, the
 * calls counted and the 429s answered are persisted with the settings.
 */
import { mailchimpProblem, type JsonObject } from "./fake-service";
import { credentialKey, flag, positiveInt, unknownField, type Admission, type Limiter } from "./limits";
import { checkAuth } from "./mailchimp-member";

export interface MailchimpLimitSettings {
  enabled: boolean;
  /** Simultaneous connections allowed per API key. */
  maxConnections: number;
}

/** The persisted part (`state.limits` of the fake Mailchimp). */
export interface MailchimpLimitState {
  settings: MailchimpLimitSettings;
  /** Calls let through since the last reset. */
  accepted: number;
  /** 429s answered since the last reset. */
  rejected: number;
  /** The most connections open at once since the last reset. */
  peak: number;
}

export type MailchimpLimitOption = Partial<MailchimpLimitSettings> | false;

export const MAILCHIMP_DEFAULT_LIMITS: Readonly<MailchimpLimitSettings> = { enabled: true, maxConnections: 10 };

const SETTINGS = ["enabled", "maxConnections", "resetCounters"] as const;

export function createMailchimpLimiter(opts: {
  apiKey: string;
  option: MailchimpLimitOption | undefined;
  holder: () => { limits?: MailchimpLimitState };
}): Limiter {
  const key = credentialKey(opts.apiKey);
  const open = new Map<string, number>();
  const initial = (): MailchimpLimitSettings =>
    opts.option === false ? { ...MAILCHIMP_DEFAULT_LIMITS, enabled: false } : { ...MAILCHIMP_DEFAULT_LIMITS, ...(opts.option ?? {}) };
  const fresh = (): MailchimpLimitState => ({ settings: initial(), accepted: 0, rejected: 0, peak: 0 });
  const ensure = (): MailchimpLimitState => {
    const holder = opts.holder();
    const st = (holder.limits ??= fresh());
    st.settings = { ...initial(), ...st.settings };
    st.accepted ??= 0;
    st.rejected ??= 0;
    st.peak ??= 0;
    return st;
  };
  const inFlight = () => [...open.values()].reduce((sum, n) => sum + n, 0);

  return {
    admit(request: Request): Admission | null {
      if (checkAuth(request, opts.apiKey) !== null) return null;
      const st = ensure();
      const current = open.get(key) ?? 0;
      if (st.settings.enabled && current >= st.settings.maxConnections) {
        st.rejected += 1;
        const detail = `You have exceeded the limit of ${st.settings.maxConnections} simultaneous connections.`;
        return { rejection: mailchimpProblem(429, "Too Many Requests", detail), headers: {}, release: () => undefined };
      }
      open.set(key, current + 1);
      st.accepted += 1;
      st.peak = Math.max(st.peak, current + 1);
      let released = false;
      return {
        rejection: null,
        headers: {},
        release: () => {
          if (released) return;
          released = true;
          const left = (open.get(key) ?? 1) - 1;
          if (left > 0) open.set(key, left);
          else open.delete(key);
        },
      };
    },

    view(): JsonObject {
      const st = ensure();
      return { ...st.settings, inFlight: inFlight(), peak: st.peak, accepted: st.accepted, rejected: st.rejected };
    },

    configure(input: JsonObject): string | null {
      const unknown = unknownField(input, SETTINGS);
      if (unknown !== null) return unknown;
      const enabled = flag(input, "enabled");
      const maxConnections = positiveInt(input, "maxConnections");
      const resetCounters = flag(input, "resetCounters");
      for (const v of [enabled, maxConnections, resetCounters]) if (typeof v === "string") return v;
      const st = ensure();
      // Counters back to zero (the peak to the connections open now), the settings kept.
      if (resetCounters === true) Object.assign(st, { accepted: 0, rejected: 0, peak: inFlight() });
      if (typeof enabled === "boolean") st.settings.enabled = enabled;
      if (typeof maxConnections === "number") st.settings.maxConnections = maxConnections;
      return null;
    },

    reset(): void {
      // Connections open now stay open (they are real); the counters start again from them.
      const st = fresh();
      st.peak = inFlight();
      opts.holder().limits = st;
    },
  };
}
