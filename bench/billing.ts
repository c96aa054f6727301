/**
 * Billable Cloudflare operations per event, from the metered end-to-end run:
 * - Queues bill a write, a read and a delete per message (per 64 KB; every Syncwire message is
 *   a few KB), and one more read per retry, which the delivery count already contains;
 * - Durable Objects bill per request to an object;
 * - R2 bills class A (put) and class B (get) operations: only events too large for a message;
 * - D1 bills rows read and rows written (index entries included), as reported in `meta`;
 * - Workers bill per invocation: each webhook request and each consumer batch is one.
 * Everything here is measured at the binding boundary inside the worker (bench/metered-worker.ts),
 * and cross-checked against the ledger the consumer wrote (actions.attempts, audit rows).
 */
import type { EndToEndResult } from "./end-to-end";

export interface StatementCost {
  kind: string;
  perEvent: number;
  rowsReadPerEvent: number;
  rowsWrittenPerEvent: number;
}

export interface BillingPerEvent {
  events: number;
  source: string;
  queue: { writes: number; reads: number; deletes: number; retries: number; operations: number };
  durableObjectRequests: number;
  r2: { classA: number; classB: number };
  d1: { rowsRead: number; rowsWritten: number; roundTrips: number; statements: number; unmeteredStatements: number; byStatement: StatementCost[] };
  workerInvocations: { webhookRequests: number; consumerBatches: number; total: number };
  crossCheck: { deliveriesPerEvent: number; actionAttemptsPerEvent: number; auditRowsPerEvent: number; consistent: boolean };
}

const sum = (counter: Record<string, number>): number => Object.values(counter).reduce((a, b) => a + b, 0);
const round = (n: number, digits = 3): number => Math.round(n * 10 ** digits) / 10 ** digits;

export function billingPerEvent(run: EndToEndResult): BillingPerEvent {
  const n = run.settings.contacts;
  const m = run.meter;
  const writes = sum(m.queueWrites);
  const reads = sum(m.queueDeliveries);
  const deletes = sum(m.queueAcks);
  const byStatement = Object.entries(m.d1ByStatement)
    .map(([kind, s]) => ({ kind, perEvent: round(s.count / n), rowsReadPerEvent: round(s.rowsRead / n), rowsWrittenPerEvent: round(s.rowsWritten / n) }))
    .sort((a, b) => b.rowsWrittenPerEvent + b.rowsReadPerEvent - (a.rowsWrittenPerEvent + a.rowsReadPerEvent));
  const deliveriesPerEvent = round(reads / n);
  const actionAttemptsPerEvent = round(run.ledger.actionAttempts / n);
  const auditRowsPerEvent = round(run.ledger.auditRows / n);
  return {
    events: n,
    source: `measured at the bindings in the end-to-end run with Mailchimp +${run.settings.mailchimpLatencyMs} ms (Miniflare's D1 fills meta.rows_read/rows_written from SQLite's counters, as D1 does)`,
    queue: {
      writes: round(writes / n),
      reads: round(reads / n),
      deletes: round(deletes / n),
      retries: round(sum(m.queueRetries) / n),
      operations: round((writes + reads + deletes) / n),
    },
    durableObjectRequests: round(m.durableObjectRequests / n),
    r2: { classA: round(m.r2ClassA / n), classB: round(m.r2ClassB / n) },
    d1: {
      rowsRead: round(m.d1RowsRead / n),
      rowsWritten: round(m.d1RowsWritten / n),
      roundTrips: round(m.d1RoundTrips / n),
      statements: round(m.d1Statements / n),
      unmeteredStatements: m.d1UnmeteredStatements,
      byStatement,
    },
    workerInvocations: {
      webhookRequests: round(run.webhookRequests / n),
      consumerBatches: round(m.timing.queueBatches / n),
      total: round((run.webhookRequests + m.timing.queueBatches) / n),
    },
    // Each delivery that runs the action counts one attempt and audits two calls (GET + PUT).
    crossCheck: {
      deliveriesPerEvent,
      actionAttemptsPerEvent,
      auditRowsPerEvent,
      consistent: deliveriesPerEvent === actionAttemptsPerEvent && auditRowsPerEvent === 2 * actionAttemptsPerEvent,
    },
  };
}
