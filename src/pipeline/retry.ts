/**
 * When to try a failed action again (CONTRACT 4.2).
 *
 * RETRY_SCHEDULE lists the seconds before attempt 1, 2, 3, … (default 0,1,5,30,300); past its
 * end the last value repeats. A longer `Retry-After` wins. Jitter is added on top, never
 * subtracted, so the retries of many events failed by one outage spread out instead of
 * arriving together: up to 20% of the wait, and at least a second's spread, because queue
 * delays are whole seconds (without it the 1 s and 5 s steps would not spread at all).
 * Queues cap a delay at 12 hours.
 */
export const MAX_QUEUE_DELAY_SECONDS = 43_200;
const JITTER = 0.2;

export interface RetryPolicy {
  scheduleSeconds: readonly number[];
  maxAgeSeconds: number;
}

/**
 * Seconds to wait after `attemptsMade` failed attempts (>= 1) before the next one.
 * `random` is in [0, 1); injected so tests can pin it.
 */
export function retryDelaySeconds(policy: RetryPolicy, attemptsMade: number, retryAfterMs: number | null, random: number = Math.random()): number {
  const schedule = policy.scheduleSeconds;
  const scheduled = schedule[Math.min(Math.max(attemptsMade, 1), schedule.length - 1)] ?? 0;
  const asked = retryAfterMs === null ? 0 : Math.ceil(retryAfterMs / 1000);
  const wait = Math.max(scheduled, asked);
  const spread = Math.max(1, Math.round(wait * JITTER));
  return Math.min(MAX_QUEUE_DELAY_SECONDS, wait + Math.floor(random * (spread + 1)));
}

/** True once an event has been retrying for longer than RETRY_MAX_AGE. */
export function pastMaxAge(policy: RetryPolicy, retryFrom: number, now: number): boolean {
  return now - retryFrom >= policy.maxAgeSeconds * 1000;
}
