/**
 * The bench's output: goals checked, a table on stdout, and bench/results.json. Each phase's goals
 * and section of the table are in its own *-report.ts (ingest, end-to-end, orders, reconcile,
 * billing); this file puts them together, in order, with the run's header, the goals' table and
 * the notes.
 */
import { writeFile, rename } from "node:fs/promises";
import { join } from "node:path";
import type { BillingPerEvent } from "./billing";
import { renderBilling } from "./billing-report";
import type { EndToEndResult } from "./end-to-end";
import { endToEndGoals, renderEndToEnd } from "./end-to-end-report";
import { ROOT } from "./harness";
import type { IngestResult } from "./ingest";
import { ingestGoals, renderIngest } from "./ingest-report";
import type { OrdersResult } from "./orders";
import { ordersGoals, renderOrders } from "./orders-report";
import type { ReconcileResult } from "./reconcile";
import { reconcileGoals, renderReconcile } from "./reconcile-report";
import { table } from "./table";

export interface Goal {
  name: string;
  target: string;
  value: number | string;
  /** null: a figure reported for information, with no goal. */
  pass: boolean | null;
}

export interface Results {
  date: string;
  machine: { node: string; cpus: number; cpuModel: string; platform: string; miniflare: string; workerd: string };
  seed: number;
  stateDirectory: string;
  ingest: IngestResult;
  /** With bulk calls (BULK_CALLS=true), the fakes at their documented limits. */
  endToEnd: EndToEndResult[];
  /** CRM -> email with one call per event (BULK_CALLS=false) under the same limits, for comparison. */
  oneCallPerEvent: EndToEndResult;
  /** The Shopify fan-out (issue 8), STRIPE_RATE_LIMIT raised; null when not run. */
  orders: OrdersResult | null;
  /** The nightly check (issue 9) over seeded sandbox contacts; null when not run. */
  reconcile: ReconcileResult | null;
  /** From the +0 ms run: phase (a), and phase (b) when it ran. */
  billingPerEvent: { crmToEmail: BillingPerEvent; emailToCrm: BillingPerEvent | null };
  goals: Goal[];
  notes: string[];
}

export function checkGoals(ingest: IngestResult, runs: EndToEndResult[], oneCall: EndToEndResult, orders: OrdersResult | null, reconcile: ReconcileResult | null): Goal[] {
  return [
    ...ingestGoals(ingest),
    ...endToEndGoals(runs, oneCall),
    // Issue 8's bar: the Shopify fan-out at +0 ms, and every order's effects exactly once.
    ...ordersGoals(orders),
    // Issue 9's bar: the nightly check over 10,000 seeded contacts.
    ...reconcileGoals(reconcile),
  ];
}

export function renderTable(r: Results): string {
  const out: string[] = [];
  out.push(`Syncwire bench  ${r.date}  node ${r.machine.node}  ${r.machine.cpus} CPUs (${r.machine.cpuModel})  miniflare ${r.machine.miniflare}  workerd ${r.machine.workerd}`);
  out.push(`Miniflare state in ${r.stateDirectory}; seed ${r.seed}; everything on 127.0.0.1`);
  out.push("");
  out.push(renderIngest(r.ingest));
  out.push("");
  if (r.endToEnd.length > 0) out.push(renderEndToEnd(r.endToEnd, r.oneCallPerEvent), "");
  if (r.orders) out.push(renderOrders(r.orders), "");
  if (r.reconcile) out.push(renderReconcile(r.reconcile), "");
  out.push(renderBilling(r.billingPerEvent));
  out.push("");
  out.push("GOALS");
  out.push(table(["goal", "target", "measured", "result"], r.goals.map((g) => [g.name, g.target, String(g.value), g.pass === null ? "info" : g.pass ? "PASS" : "FAIL"])));
  if (r.notes.length > 0) out.push("", ...r.notes.map((n) => `note: ${n}`));
  return out.join("\n");
}

/** Written to a temporary file first, so an interrupted run never leaves half a JSON file. */
export async function writeResults(results: Results, path = join(ROOT, "bench/results.json")): Promise<string> {
  await writeFile(`${path}.tmp`, JSON.stringify(results, null, 2) + "\n");
  await rename(`${path}.tmp`, path);
  return path;
}
