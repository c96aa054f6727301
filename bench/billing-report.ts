/**
 * The billable operations per event (bench/billing.ts) in the bench's output: Queues, Durable
 * Objects, R2, D1 and Worker invocations per event of both ways of the +0 ms run, D1 by
 * statement, and the cross-check against the ledger. Apart from billing.ts, which computes them.
 */
import type { BillingPerEvent } from "./billing";
import { num, table } from "./table";

export function renderBilling(billing: { crmToEmail: BillingPerEvent; emailToCrm: BillingPerEvent | null }): string {
  const out: string[] = [];
  const a = billing.crmToEmail;
  const c = billing.emailToCrm;
  const both = (pick: (b: BillingPerEvent) => string): string[] => [pick(a), c ? pick(c) : "not run"];
  out.push(`BILLABLE OPERATIONS PER EVENT  measured at the bindings in the +0 ms run (Miniflare's D1 fills meta.rows_read/rows_written from SQLite's counters, as D1 does)`);
  out.push(
    table(["operation", "CRM -> email", "email -> CRM", "how"], [
      ["Queue operations", ...both((b) => num(b.queue.operations, 2)), `write + read + delete per message (${a.queue.writes} + ${a.queue.reads} + ${a.queue.deletes}; retries ${both((b) => String(b.queue.retries)).join(" / ")})`],
      ["Durable Object requests", ...both((b) => num(b.durableObjectRequests, 2)), "RPC calls on ENTITY, SANDBOX_HOST and BUDGET stubs (get or getByName)"],
      ["  to the vendor budgets", ...both((b) => num(b.budgetRequests, 3)), `capacity asked and given back (BUDGET); per batch ${both((b) => num(b.durableObjectsPerBatch.budgetRequests, 1)).join(" / ")}`],
      ["  per queue batch", ...both((b) => num(b.durableObjectsPerBatch.requests, 1)), "to the entities' objects, mean over the events queue's consumer invocations"],
      ["  distinct objects per batch", ...both((b) => num(b.durableObjectsPerBatch.objects, 1)), `entities that reached their object; messages per batch ${both((b) => num(b.durableObjectsPerBatch.messages, 1)).join(" / ")}`],
      ["  most requests per object", ...both((b) => num(b.durableObjectsPerBatch.maxRequestsPerObject, 2)), "in any one batch (plan + settle = 2)"],
      ["R2 operations (class A / B)", ...both((b) => `${num(b.r2.classA, 3)} / ${num(b.r2.classB, 3)}`), "payload store: events over a queue message's 128 KB only"],
      ["D1 rows read", ...both((b) => num(b.d1.rowsRead, 2)), `round trips ${both((b) => String(b.d1.roundTrips)).join(" / ")}, statements ${both((b) => String(b.d1.statements)).join(" / ")}`],
      ["D1 rows written", ...both((b) => num(b.d1.rowsWritten, 2)), "index entries included, as D1 bills them"],
      ["Worker invocations", ...both((b) => num(b.workerInvocations.total, 3)), `webhook + consumer batch (${a.workerInvocations.webhookRequests} + ${a.workerInvocations.consumerBatches}${c ? `; ${c.workerInvocations.webhookRequests} + ${c.workerInvocations.consumerBatches}` : ""})`],
    ]),
  );
  const kinds = [...new Set([...a.d1.byStatement.map((x) => x.kind), ...(c?.d1.byStatement.map((x) => x.kind) ?? [])])];
  const stmt = (b: BillingPerEvent | null, kind: string) => {
    const x = b?.d1.byStatement.find((y) => y.kind === kind);
    return x ? `${num(x.perEvent, 2)} / ${num(x.rowsReadPerEvent, 2)} / ${num(x.rowsWrittenPerEvent, 2)}` : "-";
  };
  out.push(table(["D1 statement (per event / rows read / rows written)", "CRM -> email", "email -> CRM"], kinds.map((k) => [k, stmt(a, k), stmt(c, k)])));
  for (const b of [a, c]) {
    if (!b) continue;
    const cc = b.crossCheck;
    out.push(`        ledger cross-check ${b.direction}: ${cc.deliveriesPerEvent} deliveries, ${cc.actionAttemptsPerEvent} action attempts, ${cc.auditRowsPerEvent} audit rows and ${cc.vendorCallsPerEvent} vendor calls per event -> ${cc.consistent ? "consistent" : "INCONSISTENT"}`);
  }
  return out.join("\n");
}
