/**
 * When to try a failed action again (CONTRACT 4.2).
 *
 * RETRY_SCHEDULE lists the seconds before attempt 1, 2, 3, … (default 0,1,5,30,300); past its
 * end the last value repeats. Up to 20% jitter is added, never subtracted, so retries of many
 * events failed by one outage spread out instead of arriving together. A longer `Retry-After`
 * wins. Queues cap a delay at 12 hours.
 */
export const MAX_QUEUE_DELAY_SECONDS = 43_200;
const JITTER = 0.2;

export interface RetryPolicy {
  scheduleSeconds: number[];
  maxAgeSeconds: number;
}

/**
 * Seconds to wait after `attemptsMade` failed attempts (>= 1) before the next one.
 * `random` is in [0, 1); injected so tests can pin it.
 */
export function retryDelaySeconds(policy: RetryPolicy, attemptsMade: number, retryAfterMs: number | null, random: number = Math.random()): number {
  const schedule = policy.scheduleSeconds;
  const base = schedule[Math.min(Math.max(attemptsMade, 1), schedule.length - 1)] ?? 0;
  const jittered = base + Math.floor(random * base * JITTER);
  const asked = retryAfterMs === null ? 0 : Math.ceil(retryAfterMs / 1000);
  return Math.min(MAX_QUEUE_DELAY_SECONDS, Math.max(jittered, asked));
}

/** True once an event has been retrying for longer than RETRY_MAX_AGE. */
export function pastMaxAge(policy: RetryPolicy, retryFrom: number, now: number): boolean {
  return now - retryFrom >= policy.maxAgeSeconds * 1000;
}
