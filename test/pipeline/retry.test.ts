import { describe, expect, it } from "vitest";
import { MAX_QUEUE_DELAY_SECONDS, pastMaxAge, retryDelaySeconds } from "../../src/pipeline/retry";

const policy = { scheduleSeconds: [0, 1, 5, 30, 300], maxAgeSeconds: 86400 };

describe("retryDelaySeconds", () => {
  it("follows the schedule after each failed attempt, then repeats its last value", () => {
    expect([1, 2, 3, 4, 5, 9].map((n) => retryDelaySeconds(policy, n, null, 0))).toEqual([1, 5, 30, 300, 300, 300]);
  });

  it("adds up to 20% jitter, never less than the schedule", () => {
    expect(retryDelaySeconds(policy, 3, null, 0.999)).toBe(36);
    expect(retryDelaySeconds(policy, 4, null, 0.5)).toBe(330);
    expect(retryDelaySeconds(policy, 4, null, 0.999)).toBe(360);
  });

  it("spreads every step, the 1 s and 5 s ones too (delays are whole seconds, so by at least 1 s)", () => {
    const spread = (attempt: number) => new Set(Array.from({ length: 10 }, (_, i) => retryDelaySeconds(policy, attempt, null, i / 10)));
    expect(spread(1)).toEqual(new Set([1, 2]));
    expect(spread(2)).toEqual(new Set([5, 6]));
    for (const attempt of [3, 4, 5]) expect(spread(attempt).size).toBeGreaterThan(1);
  });

  it("waits for Retry-After when it is longer, and keeps the schedule when it is shorter", () => {
    expect(retryDelaySeconds(policy, 1, 120_000, 0)).toBe(120);
    expect(retryDelaySeconds(policy, 1, 120_000, 0.999)).toBe(144);
    expect(retryDelaySeconds(policy, 4, 2_000, 0)).toBe(300);
    expect(retryDelaySeconds(policy, 1, 1_500, 0)).toBe(2);
  });

  it("caps at the Queues maximum delay of 12 hours", () => {
    expect(retryDelaySeconds(policy, 1, 7 * 86_400_000, 0)).toBe(MAX_QUEUE_DELAY_SECONDS);
  });
});

describe("pastMaxAge", () => {
  it("is true from RETRY_MAX_AGE after the retry window opened", () => {
    expect(pastMaxAge(policy, 0, 86_399_999)).toBe(false);
    expect(pastMaxAge(policy, 0, 86_400_000)).toBe(true);
  });
});
