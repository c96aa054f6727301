/**
 * End to end, the Shopify fan-out (issue 8): N signed `orders/create` webhooks (one order each,
 * as Shopify sends them; fewer customers than orders, so some customers order twice) into the
 * metered worker, with Salesforce, Postmark and Stripe answered by their fakes served locally
 * at +0 ms (order-fakes.ts). Timed from the first webhook sent to the last invoice finalized.
 * Checked against what the fakes hold at the end: every order has exactly one invoice, finalized,
 * whose total (the sum of its items) is the order's total_price in minor units; one Stripe
 * customer per Shopify customer; one successful Contact upsert per order; one welcome email per
 * customer, never two; no stray invoice item; every event done.
 *
 * The worker runs with STRIPE_RATE_LIMIT raised (settings.stripeRateLimit): the default budget
 * (100/1s, Stripe's live-mode limit) would make the run measure the budget, not Syncwire. What
 * Stripe's documented limits allow in production is computed from the measured calls per order
 * (orders-report.ts).
 */
import { performance } from "node:perf_hooks";
import { startLocalWorker } from "../test/support/local-worker";
import { startCpuWindow, type CpuShare } from "./cpu";
import { ORDER_CREDENTIALS, orderWorkerVars, prng, sendAll, SENDER_HEADERS, track, waitFor } from "./harness";
import { startOrderFakes } from "./order-fakes";
import { makeCustomers, makeOrders, type BenchOrder } from "./shopify-orders";
import { meterDelta, readMeter, waitSettled } from "./worker-readings";

/**
 * Saved Stripe answers the fake keeps (its default). Stripe keeps them a day; the fake keeps
 * the newest ones so its state (a Durable Object value in sandbox mode) stays small. A retry in
 * this run comes within seconds, far inside the last 1000 keys.
 */
const SAVED_STRIPE_KEYS = 1000;

export interface OrdersSettings {
  orders: number;
  customers: number;
  /** Webhook requests in flight at once (Shopify delivers concurrently). */
  senderConcurrency: number;
  /** STRIPE_RATE_LIMIT and STRIPE_ENDPOINT_RATE_LIMIT for this worker. */
  stripeRateLimit: string;
  timeoutMs: number;
  seed: number;
}

export interface OrdersResult {
  settings: OrdersSettings;
  /** Customers with at least one order, and those with two or more. */
  buyers: number;
  repeatBuyers: number;
  discountedOrders: number;
  currencies: Record<string, number>;
  /** First webhook sent -> last webhook answered 202. */
  sendMs: number;
  /** First webhook sent -> last invoice finalized. */
  elapsedMs: number;
  ordersPerSecond: number;
  timedOut: boolean;
  check: {
    /** One finalized invoice with the order's total and currency, one customer, the order's upserts: all of it. */
    ordersExactlyOnce: number;
    ordersWithoutInvoice: number;
    extraInvoices: number;
    invoicesNotFinalized: number;
    wrongTotals: number;
    /** "order #1001: 9880 usd, expected 9890" (the first few). */
    wrongTotalSamples: string[];
    /** Invoice items beyond the lines each order needs (an adjustment line says the figures did not add up), and any left pending. */
    extraItems: number;
    pendingItems: number;
    stripeCustomers: number;
    customersWithoutStripeCustomer: number;
    extraStripeCustomers: number;
    upsertsOk: number;
    /** Customers whose successful upserts are not one per order, or whose Contact lacks their email and last name. */
    customersWrongUpserts: number;
    salesforceContacts: number;
    emailsSent: number;
    customersWelcomedOnce: number;
    customersWelcomedTwice: number;
    customersNotWelcomed: number;
    eventsByStatus: Record<string, number>;
    actionsByState: Record<string, number>;
    deadLetters: number;
    exactlyOnce: boolean;
  };
  vendor: {
    salesforce: { calls: number; tokenCalls: number; upserts: number; status401: number; failed: number };
    postmark: { calls: number; failed: number };
    stripe: { calls: number; byEndpoint: Record<string, number>; replayed: number; failedByStatus: Record<string, number> };
    callsPerOrder: { salesforce: number; postmark: number; stripe: number; total: number; stripeByEndpoint: Record<string, number> };
  };
  /** The worker's own figures over the phase (metered worker). */
  perOrder: {
    /** The D1 statements that wrote the most rows: "insert audit_log 8.05 (16.10 rows)". */
    topWrites: string[];
    durableObjectRequests: number; budgetRequests: number;
    d1RoundTrips: number;
    d1RowsRead: number;
    d1RowsWritten: number;
    queueRetries: number;
    actionAttempts: number;
  };
  /**
   * Where the consumer's time went (metered worker): its invocations (Miniflare's local queue runs
   * one batch at a time, whatever max_concurrency says), messages and wall ms per batch, and the
   * mean wall ms of a vendor call, a D1 round trip and a Durable Object request (the vendor budgets').
   */
  timing: { batches: number; messagesPerBatch: number; batchMs: number; vendorCallMs: number; d1Ms: number; durableObjectMs: number };
  /** Warn and error lines the worker logged, by step, and the first few. */
  logs: { byLevelStep: Record<string, number>; samples: string[] };
  cpu: CpuShare;
  settledMs: number;
}

async function send(url: string, order: BenchOrder): Promise<void> {
  const response = await fetch(`${url}/webhooks/shopify`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-shopify-hmac-sha256": order.hmac,
      "x-shopify-topic": "orders/create",
      "x-shopify-webhook-id": order.webhookId,
      "x-shopify-shop-domain": "syncwire-bench.myshopify.com",
      "x-shopify-api-version": "2025-07",
      "x-shopify-triggered-at": new Date().toISOString(),
      ...SENDER_HEADERS,
    },
    body: order.body,
  });
  const answer = (await response.json()) as { eventIds?: string[] };
  if (response.status !== 202 || answer.eventIds?.length !== 1) throw new Error(`Shopify webhook answered ${response.status}: ${JSON.stringify(answer).slice(0, 300)}`);
}

const per = (n: number, orders: number) => Math.round((n / orders) * 10_000) / 10_000;

/** Warn and error lines of the worker's JSON log, counted by level and step. */
function logFigures(chunks: string[]): OrdersResult["logs"] {
  const byLevelStep: Record<string, number> = {};
  const samples: string[] = [];
  for (const line of chunks.join("").split("\n")) {
    const level = /"level":"(warn|error)"/.exec(line)?.[1] ?? (/^\s*(error|warn)/i.test(line) ? "raw" : null);
    if (level === null) continue;
    const step = /"step":"([^"]+)"/.exec(line)?.[1] ?? "?";
    byLevelStep[`${level} ${step}`] = (byLevelStep[`${level} ${step}`] ?? 0) + 1;
    if (samples.length < 5) samples.push(line.slice(0, 400));
  }
  return { byLevelStep, samples };
}

export async function runOrders(meteredScriptPath: string, settings: OrdersSettings): Promise<OrdersResult> {
  const random = prng(settings.seed ^ 0x0bde_7001);
  const customers = makeCustomers(settings.customers, random);
  const orders = makeOrders(settings.orders, customers, random, ORDER_CREDENTIALS.shopifySecret);
  // Stripe keeps a key's answer 24 hours: the fake keeps every one of the run's.
  const fakes = await startOrderFakes(SAVED_STRIPE_KEYS);
  const logs: string[] = [];
  const vars = { ...orderWorkerVars({ salesforce: fakes.salesforce.url, postmark: fakes.postmark.url, stripe: fakes.stripe.url }), STRIPE_RATE_LIMIT: settings.stripeRateLimit, STRIPE_ENDPOINT_RATE_LIMIT: settings.stripeRateLimit };
  const worker = await startLocalWorker({ vars, scriptPath: meteredScriptPath, logs, assets: false });
  const closeWorker = track(() => worker.close());
  try {
    await (await fetch(`${worker.url}/health`)).arrayBuffer();
    const before = await readMeter(worker);
    const t = fakes.tally;
    const endCpu = startCpuWindow();
    const started = performance.now();
    const deadline = started + settings.timeoutMs;
    await sendAll(orders, settings.senderConcurrency, (order) => send(worker.url, order));
    const sendMs = performance.now() - started;
    const arrived = await waitFor(() => t.stripe.finalized.size >= orders.length, deadline);
    const elapsedMs = (arrived ? t.stripe.lastFinalizeOkAt : performance.now()) - started;
    const cpu = endCpu();
    const settled = await waitSettled(worker, orders.length);
    const meter = meterDelta(settled.meter, before);
    const actions = await worker.query<{ action: string; state: string; n: number }>("SELECT action, state, count(*) AS n FROM actions GROUP BY action, state");
    const [attempts] = await worker.query<{ n: number | null }>("SELECT sum(attempts) AS n FROM actions");

    const check = checkEffects(orders, fakes, settled.ledger.eventsByStatus);
    check.actionsByState = Object.fromEntries(actions.map((a) => [`${a.action} ${a.state}`, a.n]));
    check.deadLetters = settled.ledger.deadLetters;
    check.exactlyOnce = check.exactlyOnce && arrived && check.deadLetters === 0;

    const n = orders.length;
    const sf = t.salesforce;
    const stripeByEndpoint = Object.fromEntries(Object.entries(t.stripe.byEndpoint).map(([k, v]) => [k, per(v, n)]));
    const ordersByCustomer = countBy(orders.map((o) => o.customer.id));
    const budget = meter.durableObjectRequestsByNamespace.BUDGET ?? 0;
    return {
      settings,
      buyers: ordersByCustomer.size,
      repeatBuyers: [...ordersByCustomer.values()].filter((c) => c > 1).length,
      discountedOrders: orders.filter((o) => o.discounted).length,
      currencies: Object.fromEntries(countBy(orders.map((o) => o.currency))),
      sendMs,
      elapsedMs,
      ordersPerSecond: (arrived ? n : t.stripe.finalized.size) / (elapsedMs / 1000),
      timedOut: !arrived,
      check,
      vendor: {
        salesforce: { calls: sf.requests, tokenCalls: sf.tokenCalls, upserts: sf.upserts, status401: sf.status401, failed: sf.failed },
        postmark: { calls: t.postmark.requests, failed: t.postmark.failed },
        stripe: { calls: t.stripe.requests, byEndpoint: { ...t.stripe.byEndpoint }, replayed: t.stripe.replayed, failedByStatus: { ...t.stripe.failedByStatus } },
        callsPerOrder: {
          salesforce: per(sf.requests, n),
          postmark: per(t.postmark.requests, n),
          stripe: per(t.stripe.requests, n),
          total: per(sf.requests + t.postmark.requests + t.stripe.requests, n),
          stripeByEndpoint,
        },
      },
      perOrder: {
        topWrites: Object.entries(meter.d1ByStatement)
          .sort(([, a], [, b]) => b.rowsWritten - a.rowsWritten)
          .slice(0, 5)
          .map(([kind, x]) => `${kind} ${per(x.count, n)} (${per(x.rowsWritten, n)} rows)`),
        durableObjectRequests: per(meter.durableObjectRequests - budget, n),
        budgetRequests: per(budget, n),
        d1RoundTrips: per(meter.d1RoundTrips, n),
        d1RowsRead: per(meter.d1RowsRead, n),
        d1RowsWritten: per(meter.d1RowsWritten, n),
        queueRetries: Object.values(meter.queueRetries).reduce((a, b) => a + b, 0),
        actionAttempts: per(attempts?.n ?? 0, n),
      },
      timing: {
        batches: meter.timing.queueBatches,
        messagesPerBatch: per(meter.batches.filter((b) => b.queue === "syncwire-events").reduce((a, b) => a + b.messages, 0), Math.max(1, meter.timing.queueBatches)),
        batchMs: per(meter.timing.queueBatchMs, Math.max(1, meter.timing.queueBatches)),
        vendorCallMs: per(meter.timing.outboundFetchMs, Math.max(1, meter.timing.outboundFetches)),
        d1Ms: per(meter.timing.d1Ms, Math.max(1, meter.d1RoundTrips)),
        durableObjectMs: per(meter.timing.durableObjectMs, Math.max(1, meter.durableObjectRequests)),
      },
      logs: logFigures(logs),
      cpu,
      settledMs: settled.settledMs,
    };
  } finally {
    await closeWorker();
    await fakes.close();
  }
}

function countBy(keys: string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const k of keys) out.set(k, (out.get(k) ?? 0) + 1);
  return out;
}

/** What the fakes hold at the end, against the orders sent. */
function checkEffects(orders: BenchOrder[], fakes: Awaited<ReturnType<typeof startOrderFakes>>, eventsByStatus: Record<string, number>): OrdersResult["check"] {
  const stripe = fakes.stripe.service.state.data;
  const t = fakes.tally;
  const invoicesByOrder = new Map<string, string[]>();
  for (const inv of Object.values(stripe.invoices)) {
    const key = inv.metadata.shopify_order_id ?? "(none)";
    invoicesByOrder.set(key, [...(invoicesByOrder.get(key) ?? []), inv.id]);
  }
  const itemsByInvoice = new Map<string, { amount: number }[]>();
  let pendingItems = 0;
  for (const item of Object.values(stripe.invoiceItems)) {
    if (item.invoice === null) pendingItems++;
    else itemsByInvoice.set(item.invoice, [...(itemsByInvoice.get(item.invoice) ?? []), item]);
  }
  const stripeCustomersOf = countBy(Object.values(stripe.customers).map((c) => c.metadata.shopify_customer_id ?? "(none)"));
  const ordersByCustomer = countBy(orders.map((o) => o.customer.id));

  let exactly = 0, without = 0, notFinalized = 0, wrongTotals = 0, extraItems = 0;
  const wrongTotalSamples: string[] = [];
  for (const order of orders) {
    const ids = invoicesByOrder.get(order.id) ?? [];
    if (ids.length === 0) without++;
    const invoice = ids.length === 1 ? stripe.invoices[ids[0]!]! : null;
    const items = invoice ? (itemsByInvoice.get(invoice.id) ?? []) : [];
    const total = items.reduce((s, i) => s + i.amount, 0);
    const finalized = invoice !== null && invoice.status !== "draft";
    if (invoice && !finalized) notFinalized++;
    const rightTotal = invoice !== null && total === order.totalMinor && invoice.currency === order.currency.toLowerCase();
    if (invoice && !rightTotal) {
      wrongTotals++;
      if (wrongTotalSamples.length < 5) wrongTotalSamples.push(`order ${order.name} (${order.id}): ${total} ${invoice.currency}, expected ${order.totalMinor} ${order.currency.toLowerCase()}`);
    }
    extraItems += Math.max(0, items.length - order.expectedLines);
    const upserts = t.salesforce.upsertsOkByCustomer.get(order.customer.id) ?? 0;
    if (finalized && rightTotal && stripeCustomersOf.get(order.customer.id) === 1 && upserts === ordersByCustomer.get(order.customer.id)) exactly++;
  }
  const orderIds = new Set(orders.map((o) => o.id));
  const extraInvoices = [...invoicesByOrder].reduce((s, [id, list]) => s + (orderIds.has(id) ? list.length - 1 : list.length), 0);

  let welcomedOnce = 0, welcomedTwice = 0, notWelcomed = 0, wrongUpserts = 0, withoutCustomer = 0;
  const customers = new Map(orders.map((o) => [o.customer.id, o.customer]));
  const sf = fakes.salesforce.service.state.data;
  for (const [id, customer] of customers) {
    const contact = sf.contacts[sf.byExternalId[id] ?? ""];
    if (contact?.fields.Email !== customer.email || contact.fields.LastName !== customer.lastName) wrongUpserts++;
    else if ((t.salesforce.upsertsOkByCustomer.get(id) ?? 0) !== ordersByCustomer.get(id)) wrongUpserts++;
    const sent = t.postmark.sentByRecipient.get(customer.email) ?? [];
    if (sent.length === 1) welcomedOnce++;
    else if (sent.length > 1) welcomedTwice++;
    else notWelcomed++;
    if (!stripeCustomersOf.has(id)) withoutCustomer++;
  }
  const extraStripeCustomers = [...stripeCustomersOf].reduce((s, [id, c]) => s + (customers.has(id) ? c - 1 : c), 0);
  const upsertsOk = [...t.salesforce.upsertsOkByCustomer.values()].reduce((a, b) => a + b, 0);
  const emailsSent = [...t.postmark.sentByRecipient.values()].reduce((a, b) => a + b.length, 0);
  const done = eventsByStatus.done ?? 0;
  return {
    ordersExactlyOnce: exactly,
    ordersWithoutInvoice: without,
    extraInvoices,
    invoicesNotFinalized: notFinalized,
    wrongTotals,
    wrongTotalSamples,
    extraItems,
    pendingItems,
    stripeCustomers: Object.keys(stripe.customers).length,
    customersWithoutStripeCustomer: withoutCustomer,
    extraStripeCustomers,
    upsertsOk,
    customersWrongUpserts: wrongUpserts,
    salesforceContacts: Object.keys(sf.contacts).length,
    emailsSent,
    customersWelcomedOnce: welcomedOnce,
    customersWelcomedTwice: welcomedTwice,
    customersNotWelcomed: notWelcomed,
    eventsByStatus,
    actionsByState: {},
    deadLetters: 0,
    exactlyOnce:
      exactly === orders.length && extraInvoices === 0 && extraItems === 0 && pendingItems === 0 && extraStripeCustomers === 0 &&
      upsertsOk === orders.length && wrongUpserts === 0 && welcomedOnce === customers.size && emailsSent === customers.size && done === orders.length,
  };
}
