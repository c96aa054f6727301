/**
 * One pass of the ingest phase measured against a target: a discarded warm-up, the measured
 * rounds with the pauses the local queue needs between them, and the rounds added up into the
 * figures the report reads. Apart from the load (ingest-load.ts), which is what each round sends,
 * and from ingest.ts, which runs the passes over the three targets.
 */
import { performance } from "node:perf_hooks";
import type { CpuShare } from "./cpu";
import type { IngestFigures, IngestSettings } from "./ingest";
import { drive, signWebhooks, type Load, type Round } from "./ingest-load";

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Rounds added up: counts summed, latencies pooled, CPU shares weighted by duration. */
function combine(rounds: Round[]): Omit<IngestFigures, "reusedRequests" | "warmupRequests" | "consumedDuringRounds"> {
  const seconds = rounds.reduce((a, r) => a + r.seconds, 0);
  const total = (pick: (r: Round) => number) => rounds.reduce((a, r) => a + pick(r), 0);
  const share = (key: keyof CpuShare) =>
    rounds.some((r) => r.cpu[key] === null) ? null : Math.round((total((r) => (r.cpu[key] ?? 0) * r.seconds) / seconds) * 100) / 100;
  const statusCodes: Record<string, number> = {};
  for (const r of rounds) for (const [code, n] of Object.entries(r.statusCodes)) statusCodes[code] = (statusCodes[code] ?? 0) + n;
  const sorted = Float64Array.from(rounds.flatMap((r) => r.latencies)).sort();
  const requests = total((r) => r.requests);
  return {
    requests,
    non2xx: total((r) => r.non2xx),
    errors: total((r) => r.errors),
    timeouts: total((r) => r.timeouts),
    statusCodes,
    durationSeconds: seconds,
    requestsPerSecond: requests / seconds,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    meanMs: sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length),
    cpu: {
      benchNode: share("benchNode"),
      workerd: share("workerd"),
      otherProcesses: share("otherProcesses"),
      // The three targets run side by side, so a peak here would not be any one's: the
      // worker's own peak memory is reported by the end-to-end runs, one worker each.
      workerdPeakMb: null,
    },
  };
}

export interface Target {
  url: string;
  /** Lets the target's queue catch up; called after the warm-up and between rounds. */
  settle(accepted: number): Promise<void>;
  /** Events consumed so far, when the target has a consumer. */
  consumed?(): Promise<number>;
}

/**
 * A fresh signed set (timestamps must be under 5 minutes old), a discarded warm-up, then the
 * measured seconds in rounds with a pause between them. The pause is for Miniflare's local
 * queue, not the worker: its broker keeps one timer per message until the message reaches the
 * backlog, workerd allows an isolate 10,000 active timers, and a flood starves those timers,
 * so after ~10,000 messages without a pause sendBatch fails ("QuotaExceededError") and the
 * worker answers 503. Each round stays well under that.
 */
export async function measure(target: Target, firstEventId: number, load: Load, rounds: number, settings: IngestSettings): Promise<IngestFigures> {
  const pool = await signWebhooks(`${target.url}/webhooks/hubspot`, settings.distinctRequests, firstEventId);
  const cursor = { next: 0 };
  const warmup = await drive(target.url, pool, { ...load, seconds: settings.warmupSeconds }, cursor);
  let accepted = warmup.requests;
  let consumedDuringRounds: number | null = target.consumed ? 0 : null;
  const measured: Round[] = [];
  for (let i = 0; i < rounds; i++) {
    await target.settle(accepted);
    const before = (await target.consumed?.()) ?? 0;
    const round = await drive(target.url, pool, { ...load, seconds: load.seconds / rounds }, cursor);
    if (consumedDuringRounds !== null) consumedDuringRounds += ((await target.consumed?.()) ?? 0) - before;
    accepted += round.requests;
    measured.push(round);
  }
  await target.settle(accepted);
  return { ...combine(measured), reusedRequests: Math.max(0, cursor.next - pool.length), warmupRequests: warmup.requests, consumedDuringRounds };
}

/** Polls `count` until it reaches `expected`, or gives up after maxMs and lets the run go on. */
async function reached(count: () => Promise<number>, expected: number, maxMs = 30_000): Promise<void> {
  const deadline = performance.now() + maxMs;
  while (performance.now() < deadline && (await count()) < expected) {
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/**
 * A target with a consumer: `count` is what it has consumed since it started, and every accepted
 * request is one message, so earlier passes are subtracted to count this pass alone.
 */
export function queued(url: string, count: () => Promise<number>): Target & { passDone(figures: IngestFigures): void } {
  let earlierPasses = 0;
  return {
    url,
    settle: (accepted) => reached(count, earlierPasses + accepted),
    consumed: async () => (await count()) - earlierPasses,
    passDone: (figures) => {
      earlierPasses += figures.warmupRequests + figures.requests;
    },
  };
}
