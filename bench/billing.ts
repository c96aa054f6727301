/**
 * Billable Cloudflare operations per event, from the metered end-to-end run:
 * - Queues bill a write, a read and a delete per message (per 64 KB; every Syncwire message is
 *   a few KB), and one more read per retry, which the delivery count already contains;
 * - Durable Objects bill per request to an object (each RPC call on a stub is one); the contact
 *   sync makes two per entity group of a queue batch (plan, settle), so per batch they are read
 *   next to the distinct objects the batch addressed; the vendor budgets' requests (capacity
 *   asked and given back, a few per batch) are counted apart;
 * - R2 bills class A (put) and class B (get) operations: only events too large for a message;
 * - D1 bills rows read and rows written (index entries included), as reported in `meta`;
 * - Workers bill per invocation: each webhook request and each consumer batch is one.
 * Everything here is measured at the binding boundary inside the worker (bench/metered-worker.ts),
 * and cross-checked against the ledger the consumer wrote (actions.attempts, audit rows: one per
 * vendor call, bulk or single, so as many as the fakes answered).
 */
import type { EndToEndResult } from "./end-to-end";
import type { BindingMeter } from "./metered-worker";

export interface StatementCost {
  kind: string;
  perEvent: number;
  rowsReadPerEvent: number;
  rowsWrittenPerEvent: number;
}

export interface DurableObjectsPerBatch {
  /** Consumer invocations of the events queue in the phase. */
  batches: number;
  /** Mean per batch, to the entities' objects. */
  requests: number;
  /** Mean per batch, to the vendor budgets' objects. */
  budgetRequests: number;
  /** Mean distinct objects (entities) a batch addressed. */
  objects: number;
  /** Mean distinct entity keys of a batch's messages (before the email index joins them). */
  entityKeys: number;
  /** Mean messages per batch. */
  messages: number;
  /** The largest requests / distinct objects of any batch (2: plan + settle per entity). */
  maxRequestsPerObject: number;
  /** Batches with more than two requests per distinct object. */
  batchesOverTwoPerObject: number;
}

export interface BillingPerEvent {
  events: number;
  direction: "crm->email" | "email->crm";
  source: string;
  queue: { writes: number; reads: number; deletes: number; retries: number; operations: number };
  durableObjectRequests: number;
  /** Of them, to the vendor budgets (BUDGET). */
  budgetRequests: number;
  durableObjectsPerBatch: DurableObjectsPerBatch;
  r2: { classA: number; classB: number };
  d1: { rowsRead: number; rowsWritten: number; roundTrips: number; statements: number; unmeteredStatements: number; byStatement: StatementCost[] };
  workerInvocations: { webhookRequests: number; consumerBatches: number; total: number };
  crossCheck: { deliveriesPerEvent: number; actionAttemptsPerEvent: number; auditRowsPerEvent: number; vendorCallsPerEvent: number; consistent: boolean };
}

const sum = (counter: Record<string, number>): number => Object.values(counter).reduce((a, b) => a + b, 0);
const round = (n: number, digits = 3): number => Math.round(n * 10 ** digits) / 10 ** digits;

export function durableObjectsPerBatch(meter: BindingMeter): DurableObjectsPerBatch {
  const batches = meter.batches.filter((b) => !b.queue.endsWith("dead-letters"));
  const n = Math.max(1, batches.length);
  const mean = (pick: (b: (typeof batches)[number]) => number) => round(batches.reduce((a, b) => a + pick(b), 0) / n, 2);
  const perObject = batches.map((b) => (b.durableObjects === 0 ? (b.durableObjectRequests === 0 ? 0 : Infinity) : b.durableObjectRequests / b.durableObjects));
  return {
    batches: batches.length,
    requests: mean((b) => b.durableObjectRequests),
    budgetRequests: mean((b) => b.budgetRequests),
    objects: mean((b) => b.durableObjects),
    entityKeys: mean((b) => b.entityKeys),
    messages: mean((b) => b.messages),
    maxRequestsPerObject: round(Math.max(0, ...perObject), 2),
    batchesOverTwoPerObject: perObject.filter((r) => r > 2).length,
  };
}

export interface PhaseFigures {
  direction: BillingPerEvent["direction"];
  events: number;
  webhookRequests: number;
  meter: BindingMeter;
  ledger: EndToEndResult["ledger"];
  /** Vendor calls the fakes answered in the phase: each is one audit row, whatever it carried. */
  vendorCalls: number;
  latencyNote: string;
}

export function billingPerEvent(phase: PhaseFigures): BillingPerEvent {
  const n = phase.events;
  const m = phase.meter;
  const writes = sum(m.queueWrites);
  const reads = sum(m.queueDeliveries);
  const deletes = sum(m.queueAcks);
  const byStatement = Object.entries(m.d1ByStatement)
    .map(([kind, s]) => ({ kind, perEvent: round(s.count / n), rowsReadPerEvent: round(s.rowsRead / n), rowsWrittenPerEvent: round(s.rowsWritten / n) }))
    .sort((a, b) => b.rowsWrittenPerEvent + b.rowsReadPerEvent - (a.rowsWrittenPerEvent + a.rowsReadPerEvent));
  const deliveriesPerEvent = round(reads / n);
  const actionAttemptsPerEvent = round(phase.ledger.actionAttempts / n);
  const auditRowsPerEvent = round(phase.ledger.auditRows / n);
  const vendorCallsPerEvent = round(phase.vendorCalls / n);
  return {
    events: n,
    direction: phase.direction,
    source: `measured at the bindings in the end-to-end run, ${phase.direction}, ${phase.latencyNote} (Miniflare's D1 fills meta.rows_read/rows_written from SQLite's counters, as D1 does)`,
    queue: {
      writes: round(writes / n),
      reads: round(reads / n),
      deletes: round(deletes / n),
      retries: round(sum(m.queueRetries) / n),
      operations: round((writes + reads + deletes) / n),
    },
    durableObjectRequests: round(m.durableObjectRequests / n),
    budgetRequests: round((m.durableObjectRequestsByNamespace.BUDGET ?? 0) / n),
    durableObjectsPerBatch: durableObjectsPerBatch(m),
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
      webhookRequests: round(phase.webhookRequests / n),
      consumerBatches: round(m.timing.queueBatches / n),
      total: round((phase.webhookRequests + m.timing.queueBatches) / n),
    },
    // Each delivery that runs the action counts one attempt; each vendor call (one per contact or
    // one per bulk call) is one audit row. A delivery that found no capacity in the vendor budget
    // waits without counting an attempt, so deliveries may then exceed attempts.
    crossCheck: {
      deliveriesPerEvent,
      actionAttemptsPerEvent,
      auditRowsPerEvent,
      vendorCallsPerEvent,
      consistent: deliveriesPerEvent === actionAttemptsPerEvent && phase.ledger.auditRows === phase.vendorCalls,
    },
  };
}

/** Phase (a) of a run: contact.creation webhooks -> member writes. */
export function crmToEmailPhase(run: EndToEndResult): PhaseFigures {
  return {
    direction: "crm->email",
    events: run.settings.contacts,
    webhookRequests: run.webhookRequests,
    meter: run.meter,
    ledger: run.ledger,
    vendorCalls: run.vendor.hubspot.calls + run.vendor.mailchimp.calls,
    latencyNote: `Mailchimp +${run.settings.mailchimpLatencyMs} ms, ${run.settings.bulkCalls ? "bulk calls" : "one call per contact"}`,
  };
}

/** Phase (b) of a run: Mailchimp profile webhooks -> CRM writes; null when not run. */
export function emailToCrmPhase(run: EndToEndResult): PhaseFigures | null {
  const b = run.emailToCrm;
  if (!b) return null;
  return {
    direction: "email->crm",
    events: run.settings.contacts,
    webhookRequests: b.webhookRequests,
    meter: b.meter,
    ledger: b.ledger,
    vendorCalls: b.vendor.hubspot.calls + b.vendor.mailchimp.calls,
    latencyNote: `HubSpot +${b.hubspotLatencyMs} ms`,
  };
}
