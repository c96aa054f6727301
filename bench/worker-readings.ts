/**
 * What a phase reads from the worker it measures, from outside: the metered worker's binding
 * counters (bench/metered-worker.ts) and their difference across a phase, the ledger's counts
 * in D1, and the wait until the consumer has settled every event. Shared by the end-to-end,
 * orders and nightly-check phases, so none of them reaches into another's module for it.
 */
import { performance } from "node:perf_hooks";
import type { LocalWorker } from "../test/support/local-worker";
import { waitFor } from "./harness";
import type { BindingMeter } from "./metered-worker";

const QUEUE = "syncwire-events";

export type LedgerCounts = Awaited<ReturnType<typeof ledgerCounts>>;

async function ledgerCounts(worker: LocalWorker) {
  const statuses = await worker.query<{ status: string; n: number }>("SELECT status, count(*) AS n FROM events GROUP BY status");
  const [attempts] = await worker.query<{ n: number | null }>("SELECT sum(attempts) AS n FROM actions");
  const [audit] = await worker.query<{ n: number }>("SELECT count(*) AS n FROM audit_log");
  const [dead] = await worker.query<{ n: number }>("SELECT count(*) AS n FROM dead_letters");
  return {
    eventsByStatus: Object.fromEntries(statuses.map((r) => [r.status, r.n])),
    actionAttempts: attempts?.n ?? 0,
    auditRows: audit?.n ?? 0,
    deadLetters: dead?.n ?? 0,
  };
}

export async function readMeter(worker: LocalWorker): Promise<BindingMeter> {
  const response = await fetch(`${worker.url}/__bench/meter`);
  return (await response.json()) as BindingMeter;
}

/** `after - before` per key, the keys that did not change left out. */
export function minus(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) if (v - (before[k] ?? 0) !== 0) out[k] = v - (before[k] ?? 0);
  return out;
}

/** What the worker did between two readings of its meter. */
export function meterDelta(after: BindingMeter, before: BindingMeter): BindingMeter {
  const byStatement: BindingMeter["d1ByStatement"] = {};
  for (const [kind, s] of Object.entries(after.d1ByStatement)) {
    const b = before.d1ByStatement[kind] ?? { count: 0, rowsRead: 0, rowsWritten: 0 };
    if (s.count > b.count) byStatement[kind] = { count: s.count - b.count, rowsRead: s.rowsRead - b.rowsRead, rowsWritten: s.rowsWritten - b.rowsWritten };
  }
  const t = after.timing;
  const u = before.timing;
  return {
    queueWrites: minus(after.queueWrites, before.queueWrites),
    queueDeliveries: minus(after.queueDeliveries, before.queueDeliveries),
    queueAcks: minus(after.queueAcks, before.queueAcks),
    queueRetries: minus(after.queueRetries, before.queueRetries),
    d1RoundTrips: after.d1RoundTrips - before.d1RoundTrips,
    d1Statements: after.d1Statements - before.d1Statements,
    d1RowsRead: after.d1RowsRead - before.d1RowsRead,
    d1RowsWritten: after.d1RowsWritten - before.d1RowsWritten,
    d1ByStatement: byStatement,
    d1UnmeteredStatements: after.d1UnmeteredStatements - before.d1UnmeteredStatements,
    durableObjectRequests: after.durableObjectRequests - before.durableObjectRequests,
    durableObjectRequestsByNamespace: minus(after.durableObjectRequestsByNamespace, before.durableObjectRequestsByNamespace),
    batches: after.batches.slice(before.batches.length),
    r2ClassA: after.r2ClassA - before.r2ClassA,
    r2ClassB: after.r2ClassB - before.r2ClassB,
    timing: {
      queueBatches: t.queueBatches - u.queueBatches,
      queueBatchMs: t.queueBatchMs - u.queueBatchMs,
      d1Ms: t.d1Ms - u.d1Ms,
      outboundFetches: t.outboundFetches - u.outboundFetches,
      outboundFetchMs: t.outboundFetchMs - u.outboundFetchMs,
      durableObjectMs: t.durableObjectMs - u.durableObjectMs,
    },
  };
}

/** Waits (up to 15 s) until `events` events are settled in the ledger and every message written is acked. */
export async function waitSettled(worker: LocalWorker, events: number): Promise<{ ledger: LedgerCounts; meter: BindingMeter; settledMs: number }> {
  const started = performance.now();
  let ledger = await ledgerCounts(worker);
  let meter = await readMeter(worker);
  await waitFor(
    async () => {
      ledger = await ledgerCounts(worker);
      meter = await readMeter(worker);
      const settled = (ledger.eventsByStatus.done ?? 0) + (ledger.eventsByStatus.dead ?? 0) + (ledger.eventsByStatus.invalid ?? 0);
      const acked = (meter.queueAcks[QUEUE] ?? 0) >= (meter.queueWrites[QUEUE] ?? 0);
      return settled >= events && acked;
    },
    performance.now() + 15_000,
    50,
  );
  return { ledger, meter, settledMs: performance.now() - started };
}
