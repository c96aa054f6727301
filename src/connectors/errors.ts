/**
 * How an outbound call or an action failed. The pipeline only needs the kind:
 * transient -> retry on the schedule; permanent -> dead-letter now; invalid -> the event lacks
 * what the flow needs (kept, visible, never retried).
 */
export type FailureKind = "transient" | "permanent" | "invalid";

export class ActionFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
    /** `capacity`: not sent, the vendor's shared budget had none (budgets/gate.ts): a wait, not a failed attempt. */
    readonly details: { connector?: string; status?: number | null; retryAfterMs?: number | null; capacity?: boolean } = {},
  ) {
    super(message);
    this.name = "ActionFailure";
  }
}

/** CONTRACT 4.2: network errors, timeouts, 408, 425, 429 and 5xx are transient; other 4xx are not. */
export function classifyStatus(status: number): "success" | "transient" | "permanent" {
  if (status >= 200 && status < 300) return "success";
  if (status === 408 || status === 425 || status === 429 || status >= 500) return "transient";
  return "permanent";
}

/** `Retry-After` as seconds or an HTTP date, in ms from `now`; null when absent or unreadable. */
export function parseRetryAfter(value: string | null, now: number): number | null {
  if (!value) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isFinite(date) ? Math.max(0, date - now) : null;
}
