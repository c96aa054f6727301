import { describe, expect, it } from "vitest";
import { MAX_QUEUE_DELAY_SECONDS, pastMaxAge, retryDelaySeconds } from "../../src/pipeline/retry";

const policy = { scheduleSeconds: [0, 1, 5, 30, 300], maxAgeSeconds: 86400 };

describe("retryDelaySeconds", () => {
  it("follows the schedule after each failed attempt, then repeats its last value", () => {
    expect([1, 2, 3, 4, 5, 9].map((n) => retryDelaySeconds(policy, n, null, 0))).toEqual([1, 5, 30, 300, 300, 300]);
  });

  it("adds at most 20% jitter and never less than the schedule", () => {
    expect(retryDelaySeconds(policy, 3, null, 0.999)).toBe(35);
    expect(retryDelaySeconds(policy, 4, null, 0.5)).toBe(330);
    expect(retryDelaySeconds(policy, 1, null, 0.999)).toBe(1);
  });

  it("waits for Retry-After when it is longer, and keeps the schedule when it is shorter", () => {
    expect(retryDelaySeconds(policy, 1, 120_000, 0)).toBe(120);
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
