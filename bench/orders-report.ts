/**
 * The orders phase (bench/orders.ts) in the bench's output: its goals (issue 8: at least 200
 * orders/s end to end with the fakes at +0 ms; every order exactly once) and its section of the
 * table, with what Stripe's and Salesforce's documented limits allow in production at the
 * measured calls per order (the fakes enforce neither).
 */
import type { Goal } from "./report";
import type { OrdersResult } from "./orders";
import { table } from "./table";

/** docs.stripe.com/rate-limits: live mode, per account, and the default limit of each endpoint (each named API operation). */
export const STRIPE_LIVE_REQUESTS_PER_SECOND = 100;
export const STRIPE_ENDPOINT_REQUESTS_PER_SECOND = 25;
/** SALESFORCE_RATE_LIMIT's default (src/config.ts): an Enterprise org's daily API allocation before per-licence additions. */
export const SALESFORCE_CALLS_PER_DAY = 100_000;
export const ORDERS_GOAL = 200;
const INVOICE_ITEMS = "POST /v1/invoiceitems";

export interface StripeCeiling {
  /** 100 / Stripe calls per order. */
  global: number;
  /** 25 / calls per order of each endpoint; the smallest, and its endpoint. */
  endpoint: number;
  endpointName: string;
  /** 25 / invoice item calls per order. */
  invoiceItems: number;
  binding: "global" | "endpoint";
  ordersPerSecond: number;
}

export function stripeCeiling(o: OrdersResult): StripeCeiling {
  const c = o.vendor.callsPerOrder;
  const global = c.stripe > 0 ? STRIPE_LIVE_REQUESTS_PER_SECOND / c.stripe : Infinity;
  let endpoint = Infinity;
  let endpointName = "-";
  for (const [name, perOrder] of Object.entries(c.stripeByEndpoint)) {
    if (perOrder > 0 && STRIPE_ENDPOINT_REQUESTS_PER_SECOND / perOrder < endpoint) {
      endpoint = STRIPE_ENDPOINT_REQUESTS_PER_SECOND / perOrder;
      endpointName = name;
    }
  }
  const items = c.stripeByEndpoint[INVOICE_ITEMS] ?? 0;
  return {
    global,
    endpoint,
    endpointName,
    invoiceItems: items > 0 ? STRIPE_ENDPOINT_REQUESTS_PER_SECOND / items : Infinity,
    binding: endpoint < global ? "endpoint" : "global",
    ordersPerSecond: Math.min(global, endpoint),
  };
}

const fixed = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : "n/a");

export function ordersGoals(o: OrdersResult | null): Goal[] {
  if (o === null) return [{ name: "every order exactly once (Shopify fan-out)", target: "run", value: "not run", pass: false }];
  const k = o.check;
  const n = o.settings.orders;
  const ceiling = stripeCeiling(o);
  const done = k.eventsByStatus.done ?? 0;
  return [
    {
      name: "end-to-end orders/s, Shopify fan-out, +0 ms",
      target: `>= ${ORDERS_GOAL} orders/s (STRIPE_RATE_LIMIT=${o.settings.stripeRateLimit})`,
      value: `${fixed(o.ordersPerSecond)}${o.timedOut ? " (timed out)" : ""}`,
      pass: !o.timedOut && o.ordersPerSecond >= ORDERS_GOAL,
    },
    {
      name: "vendor calls per order, Shopify fan-out",
      target: "information",
      value: `${fixed(o.vendor.callsPerOrder.total, 3)} (Salesforce ${fixed(o.vendor.callsPerOrder.salesforce, 3)}, Postmark ${fixed(o.vendor.callsPerOrder.postmark, 3)}, Stripe ${fixed(o.vendor.callsPerOrder.stripe, 3)}); ${o.vendor.salesforce.tokenCalls} token call(s)`,
      pass: null,
    },
    {
      name: "Stripe's documented limits, orders/s in production",
      target: "information (the fakes enforce none)",
      value: `${fixed(ceiling.ordersPerSecond, 1)}: ${ceiling.binding === "endpoint" ? `${STRIPE_ENDPOINT_REQUESTS_PER_SECOND}/s on ${ceiling.endpointName} binds` : `${STRIPE_LIVE_REQUESTS_PER_SECOND}/s per account binds`} (invoice items ${fixed(ceiling.invoiceItems, 1)}, account ${fixed(ceiling.global, 1)})`,
      pass: null,
    },
    {
      name: "every order exactly once (Shopify fan-out)",
      target: "1 finalized invoice at total_price, 1 upsert per order, 1 welcome per customer, all done",
      value:
        `${k.ordersExactlyOnce}/${n} orders; welcomed once ${k.customersWelcomedOnce}/${o.buyers}, twice ${k.customersWelcomedTwice}, never ${k.customersNotWelcomed}; ` +
        `wrong totals ${k.wrongTotals}, extra invoices ${k.extraInvoices}, extra items ${k.extraItems}, events done ${done}/${n}${o.timedOut ? " (timed out)" : ""}`,
      pass: k.exactlyOnce && !o.timedOut,
    },
  ];
}

export function renderOrders(o: OrdersResult): string {
  const s = o.settings;
  const k = o.check;
  const v = o.vendor;
  const c = v.callsPerOrder;
  const out: string[] = [];
  const currencies = Object.entries(o.currencies).map(([cur, n]) => `${n} ${cur}`).join(", ");
  out.push(`ORDERS  the Shopify fan-out: ${s.orders} signed orders/create webhooks, one order each (${s.senderConcurrency} in flight), from ${o.buyers} customers (${o.repeatBuyers} ordered more than once),`);
  out.push(`  ${o.discountedOrders} with a discount code; ${currencies} (EUR and JPY with taxes included); first webhook sent -> last invoice finalized`);
  out.push(`  Salesforce, Postmark and Stripe fakes as local servers at +0 ms, no rate enforced; the worker ran with STRIPE_RATE_LIMIT and STRIPE_ENDPOINT_RATE_LIMIT=${s.stripeRateLimit} (raised from the defaults 100/1s and 25/1s, which would measure the budget)`);
  out.push(
    table(["run", "orders/s", "elapsed s", "send s", "exactly once", "right totals", "welcomed 1x / 2x / 0x", "upserts ok", "events done", "DO req/order", "D1 rows r / w per order", "retries", "workerd cores", "worker peak MB"], [
      [
        "fan-out, +0 ms",
        fixed(o.ordersPerSecond, 0) + (o.timedOut ? " (timed out)" : ""),
        fixed(o.elapsedMs / 1000),
        fixed(o.sendMs / 1000),
        `${k.ordersExactlyOnce}/${s.orders}`,
        `${s.orders - k.wrongTotals - k.ordersWithoutInvoice}/${s.orders}`,
        `${k.customersWelcomedOnce} / ${k.customersWelcomedTwice} / ${k.customersNotWelcomed}`,
        `${k.upsertsOk}/${s.orders}`,
        `${k.eventsByStatus.done ?? 0}/${s.orders}`,
        fixed(o.perOrder.durableObjectRequests),
        `${fixed(o.perOrder.d1RowsRead, 1)} / ${fixed(o.perOrder.d1RowsWritten, 1)}`,
        String(o.perOrder.queueRetries),
        o.cpu.workerd === null ? "n/a" : o.cpu.workerd.toFixed(2),
        o.cpu.workerdPeakMb === null ? "n/a" : String(o.cpu.workerdPeakMb),
      ],
    ]),
  );
  const stripeCalls = Object.entries(v.stripe.byEndpoint).sort(([a], [b]) => a.localeCompare(b)).map(([name, n]) => `${name} ${n} (${fixed(c.stripeByEndpoint[name] ?? 0, 3)})`);
  const failed = (f: Record<string, number>) => Object.entries(f).map(([st, n]) => `${n}x${st}`).join(" ") || "0";
  out.push(
    table(["vendor", "calls", "per order", "what (per order)", "non-2xx"], [
      ["Salesforce", String(v.salesforce.calls), fixed(c.salesforce, 3), `${v.salesforce.tokenCalls} token call(s), ${v.salesforce.upserts} Contact upserts (PATCH)`, `${v.salesforce.status401}x401 ${v.salesforce.failed} other`],
      ["Postmark", String(v.postmark.calls), fixed(c.postmark, 3), `${k.emailsSent} welcome emails to ${o.buyers} customers`, String(v.postmark.failed)],
      ["Stripe", String(v.stripe.calls), fixed(c.stripe, 3), stripeCalls.join(", "), `${failed(v.stripe.failedByStatus)}; ${v.stripe.replayed} replayed`],
      ["total", String(v.salesforce.calls + v.postmark.calls + v.stripe.calls), fixed(c.total, 3), "", ""],
    ]),
  );
  const ceiling = stripeCeiling(o);
  out.push(`  Stripe in production (docs.stripe.com/rate-limits; the fake enforces neither): ${STRIPE_LIVE_REQUESTS_PER_SECOND} requests/s per account in live mode -> ${STRIPE_LIVE_REQUESTS_PER_SECOND} / ${fixed(c.stripe, 3)} = ${fixed(ceiling.global, 1)} orders/s;`);
  out.push(`    ${STRIPE_ENDPOINT_REQUESTS_PER_SECOND}/s per endpoint by default -> ${STRIPE_ENDPOINT_REQUESTS_PER_SECOND} / ${fixed(c.stripeByEndpoint[INVOICE_ITEMS] ?? 0, 3)} invoice item calls = ${fixed(ceiling.invoiceItems, 1)} orders/s` +
    (ceiling.endpointName !== INVOICE_ITEMS ? ` (tightest endpoint: ${ceiling.endpointName}, ${fixed(ceiling.endpoint, 1)})` : "") +
    `: ${ceiling.binding === "endpoint" ? "the per-endpoint limit binds" : "the account limit binds"}, ${fixed(ceiling.ordersPerSecond, 1)} orders/s sustained (the budget keeps to both: STRIPE_RATE_LIMIT 100/1s, STRIPE_ENDPOINT_RATE_LIMIT 25/1s)`);
  const sfDay = c.salesforce > 0 ? SALESFORCE_CALLS_PER_DAY / c.salesforce : Infinity;
  out.push(`  Salesforce's ${SALESFORCE_CALLS_PER_DAY.toLocaleString("en-US")} API calls a day (SALESFORCE_RATE_LIMIT default) at ${fixed(c.salesforce, 3)} calls per order: ${Math.floor(sfDay).toLocaleString("en-US")} orders a day (${fixed(sfDay / 86_400)} orders/s averaged over a day)`);
  out.push(`  per order: ${fixed(o.perOrder.actionAttempts)} action attempts, ${fixed(o.perOrder.d1RoundTrips, 1)} D1 round trips, ${fixed(o.perOrder.budgetRequests, 2)} vendor-budget requests; Stripe customers ${k.stripeCustomers} for ${o.buyers} customers, Salesforce Contacts ${k.salesforceContacts}; pending items ${k.pendingItems}; dead letters ${k.deadLetters}; settled ${fixed(o.settledMs / 1000)} s after`);
  const tm = o.timing;
  out.push(`  consumer: ${tm.batches} batches of ${fixed(tm.messagesPerBatch, 1)} orders, ${fixed(tm.batchMs, 0)} ms each (Miniflare runs one at a time; max_concurrency = 10 in production); vendor call ${fixed(tm.vendorCallMs, 1)} ms, D1 round trip ${fixed(tm.d1Ms, 1)} ms, budget request ${fixed(tm.durableObjectMs, 1)} ms on average (wall); bench node ${o.cpu.benchNode === null ? "n/a" : o.cpu.benchNode.toFixed(2)} cores (the fakes)`);
  out.push(`  D1 statements writing the most rows, per order (statements, rows written): ${o.perOrder.topWrites.join("; ")}`);
  out.push(`  actions: ${Object.entries(k.actionsByState).map(([a, n]) => `${a} ${n}`).join(", ")}`);
  for (const sample of k.wrongTotalSamples) out.push(`  wrong total: ${sample}`);
  const levels = Object.entries(o.logs.byLevelStep).map(([ls, n]) => `${n}x ${ls}`).join(", ");
  out.push(`  worker log warn/error lines: ${levels || "none"}`);
  for (const sample of o.logs.samples) out.push(`    ${sample}`);
  return out.join("\n");
}
