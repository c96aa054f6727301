/**
 * The Shopify fan-out (issue 8), through the queue handler and the built-in Salesforce, Postmark
 * and Stripe fakes: one order, a second order of the same customer, the same webhook and the same
 * queue message more than once, and the money (JPY, shipping, tax, discounts). The failure paths
 * are in order-fanout-failures.test.ts.
 *
 * Orders are Shopify REST Admin order resources whose ids are raw 18-digit JSON integers (beyond
 * 2^53), parsed by the product's own ingest (parseShopifyWebhook) and wrapped by newDelivery.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { AuditBuffer } from "../../src/audit/sink";
import { getConfig } from "../../src/config";
import { redactorFor } from "../../src/connectors";
import { HttpClient } from "../../src/connectors/http-client";
import { SalesforceConnector } from "../../src/connectors/salesforce";
import { createTransport } from "../../src/connectors/transport";
import { app } from "../../src/http/app";
import { parseShopifyWebhook } from "../../src/ingest/shopify";
import { newDelivery, type EventMessage } from "../../src/pipeline/message";
import { SANDBOX_CREDENTIALS } from "../../src/sandbox/credentials";
import { capturingQueue, deliver, eventRow } from "../support/messages";
import { sandboxFetch, waitFor } from "../support/sandbox";
import { signedShopify } from "../support/webhooks";

// ---- helpers (shared in spirit with order-fanout-failures.test.ts) -----------------------------

type Vendor = "salesforce" | "postmark" | "stripe";
const VENDORS: Vendor[] = ["salesforce", "postmark", "stripe"];
interface Logged { method: string; path: string; status: number; body: Record<string, unknown> | null; idempotencyKey?: string | null; stripeVersion?: string | null }
interface Line { title: string; price: string; quantity: number; discounts?: string[] }
interface OrderSpec { customerId?: string | null; email?: string; first?: string; last?: string; name?: string; currency?: string; lines: Line[]; shipping?: string[]; totalTax?: string; taxesIncluded?: boolean; totalPrice: string }

let seq = 0;
/** An 18-digit Shopify id: over 2^53, so a trip through a JS number would change its last digits. */
const id18 = (prefix: string) => `${prefix}${String(Math.floor(Math.random() * 1e9)).padStart(9, "0")}${String(++seq % 1000).padStart(3, "0")}`;
const EXT = "Shopify_Customer_Id__c";
const STRIPE_AUTH = { authorization: `Bearer ${SANDBOX_CREDENTIALS.STRIPE_SECRET_KEY}` };

/** The orders/create body as Shopify sends it: ids as bare integers in the raw JSON. */
function shopifyOrder(spec: OrderSpec) {
  const orderId = id18("820982");
  const customerId = spec.customerId === undefined ? id18("115310") : spec.customerId;
  const email = spec.email ?? `buyer.${orderId.slice(-6)}@example.com`;
  const currency = spec.currency ?? "USD";
  const n = (id: string) => `__n:${id}`; // becomes a bare JSON integer below
  const money = (amount: string) => ({ shop_money: { amount, currency_code: currency }, presentment_money: { amount, currency_code: currency } });
  const order = {
    id: n(orderId), admin_graphql_api_id: `gid://shopify/Order/${orderId}`, app_id: n("580111"), browser_ip: "203.0.113.7", buyer_accepts_marketing: false,
    cancel_reason: null, cancelled_at: null, checkout_id: n(id18("901414")), confirmation_number: "KQ5XAH2PN", contact_email: email, created_at: "2026-05-01T09:15:00-04:00",
    currency, presentment_currency: currency, email, financial_status: "paid", fulfillment_status: null, name: spec.name ?? "#1001", order_number: 1001,
    processed_at: "2026-05-01T09:15:00-04:00", source_name: "web", tags: "", test: false, token: "b1946ac92492d2347c6235b4d2611184",
    subtotal_price: "0", total_discounts: "0", total_line_items_price: "0", total_price: spec.totalPrice, total_price_set: money(spec.totalPrice),
    total_tax: spec.totalTax ?? "0.00", taxes_included: spec.taxesIncluded ?? false, total_weight: 0,
    line_items: spec.lines.map((l, i) => ({
      id: n(id18("866550")), admin_graphql_api_id: "gid://shopify/LineItem/1", fulfillable_quantity: l.quantity, fulfillment_service: "manual", gift_card: false, grams: 200,
      name: l.title, price: l.price, price_set: money(l.price), product_exists: true, product_id: n(id18("632910")), quantity: l.quantity, requires_shipping: true,
      sku: `SKU-${i + 1}`, taxable: true, title: l.title, total_discount: "0.00", variant_id: n(id18("808950")), variant_title: null, vendor: "Syncwire Test Shop",
      tax_lines: [], duties: [],
      discount_allocations: (l.discounts ?? []).map((amount) => ({ amount, amount_set: money(amount), discount_application_index: 0 })),
    })),
    shipping_lines: (spec.shipping ?? []).map((price) => ({ id: n(id18("271878")), code: "Standard", discounted_price: price, price, source: "shopify", title: "Standard Shipping", tax_lines: [], discount_allocations: [] })),
    customer: spec.customerId === null ? null : {
      id: n(customerId!), email, first_name: spec.first ?? "Ada", last_name: spec.last ?? "Lovelace", state: "enabled", verified_email: true, currency,
      created_at: "2026-04-30T12:00:00-04:00", admin_graphql_api_id: `gid://shopify/Customer/${customerId}`, tags: "", note: null, tax_exempt: false,
    },
  };
  const raw = JSON.stringify(order).replace(/"__n:(\d+)"/g, "$1");
  return { raw, orderId, customerId: customerId as string, email };
}

/** The queue message ingest makes of a verified orders/create delivery. */
async function orderMessage(raw: string, webhookId: string = crypto.randomUUID()): Promise<EventMessage> {
  const parsed = await parseShopifyWebhook(raw, { topic: "orders/create", webhookId, triggeredAt: new Date().toISOString() }, Date.now());
  if (!parsed.ok) throw new Error(parsed.message);
  return newDelivery(parsed.events[0]!, Date.now());
}

const control = async (path: string, body?: unknown) => {
  const res = await sandboxFetch(path, body === undefined ? { method: "POST" } : { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return res.json();
};

/**
 * Empties the three fakes, and first makes this isolate's Salesforce connector drop any token it
 * cached in an earlier test (the cache is per isolate, by design): a 401 on its next call makes it
 * forget the token, and a 401 on the token call leaves nothing cached.
 */
async function resetFanoutFakes(): Promise<void> {
  await control("/salesforce/_sandbox/faults", { failNext: { count: 2, status: 401 } });
  const config = getConfig(env);
  if (!config.salesforce.enabled) throw new Error("salesforce must be enabled in sandbox mode");
  const http = new HttpClient({ transport: createTransport(env, config), audit: new AuditBuffer(), redactor: redactorFor(config), context: { eventId: null, entityKey: null, action: null, attempt: 1 } });
  await new SalesforceConnector(http, config.salesforce, redactorFor(config)).upsertContact("0", { LastName: "flush" }).catch(() => undefined);
  for (const v of VENDORS) await control(`/${v}/_sandbox/reset`);
}

const requests = async (v: Vendor) => ((await (await sandboxFetch(`/${v}/_sandbox/requests`)).json()) as { requests: Logged[] }).requests;
const call = (r: Logged) => `${r.method} ${r.path.split("?")[0]} ${r.status}`;

/** Each fake's calls made while `run` ran. */
async function callsDuring(run: () => Promise<unknown>): Promise<Record<Vendor, Logged[]>> {
  const before = await Promise.all(VENDORS.map(async (v) => (await requests(v)).length));
  await run();
  const after = await Promise.all(VENDORS.map(async (v, i) => (await requests(v)).slice(before[i])));
  return { salesforce: after[0]!, postmark: after[1]!, stripe: after[2]! };
}

async function outbox(to?: string) {
  const res = await sandboxFetch(`/postmark/_sandbox/outbox${to ? `?to=${encodeURIComponent(to)}` : ""}`);
  return ((await res.json()) as { messages: { To: string; TemplateAlias: string; TemplateModel: Record<string, unknown>; Tag: string | null; Metadata: Record<string, string>; From: string }[] }).messages;
}

interface StripeData { customers: Record<string, { id: string; metadata: Record<string, string> }>; invoices: Record<string, { id: string; customer: string; status: string; metadata: Record<string, string> }>; invoiceItems: Record<string, { id: string; invoice: string | null; amount: number; description: string | null }> }
const stripeData = async () => (await (await sandboxFetch("/stripe/_sandbox/state")).json()) as StripeData;

/** The order's invoices as Stripe renders them (GET /v1/invoices/:id), found by their metadata. */
async function invoicesOf(orderId: string) {
  const data = await stripeData();
  const ids = Object.values(data.invoices).filter((i) => i.metadata.shopify_order_id === orderId).map((i) => i.id);
  return Promise.all(
    ids.map(async (id) => {
      const invoice = (await (await sandboxFetch(`/stripe/v1/invoices/${id}`, { headers: STRIPE_AUTH })).json()) as { id: string; customer: string; status: string; total: number; amount_due: number; currency: string; metadata: Record<string, string> };
      const items = Object.values(data.invoiceItems).filter((it) => it.invoice === id).map((it) => ({ description: it.description, amount: it.amount }));
      return { ...invoice, items };
    }),
  );
}

async function actionsOf(eventId: string) {
  const { results } = await env.DB.prepare("SELECT action, state, attempts, note, last_error FROM actions WHERE event_id = ? ORDER BY action").bind(eventId).all<{ action: string; state: string; attempts: number; note: string | null; last_error: string | null }>();
  return Object.fromEntries(results.map((r) => [r.action, r]));
}

// ---- tests -------------------------------------------------------------------------------------

beforeEach(resetFanoutFakes);

/** USD with a discount on one line, shipping and tax on top: 161.98 + 24.50 + 12.00 + 15.38 = 213.86. */
const SWEATERS: Omit<OrderSpec, "customerId"> = {
  lines: [{ title: "Merino Sweater", price: "89.99", quantity: 2, discounts: ["18.00"] }, { title: "Beanie", price: "24.50", quantity: 1 }],
  shipping: ["12.00"],
  totalTax: "15.38",
  taxesIncluded: false,
  totalPrice: "213.86",
};

describe("one order fans out to Salesforce, Postmark and Stripe", () => {
  it("makes exactly one token call, one Contact upsert (201), one welcome email and one finalized invoice of the order's total", async () => {
    const order = shopifyOrder({ ...SWEATERS, name: "#1001" });
    const message = await orderMessage(order.raw);
    expect(message.event.entityKey).toBe(`customer:${order.customerId}`);
    const calls = await callsDuring(() => deliver([message]));

    // Salesforce: the client-credentials token, then the upsert by external id, the 18-digit id exact in the path.
    expect(calls.salesforce.map(call)).toEqual(["POST /services/oauth2/token 200", `PATCH /services/data/v62.0/sobjects/Contact/${EXT}/${order.customerId} 201`]);
    expect(calls.salesforce[1]!.body).toEqual({ FirstName: "Ada", LastName: "Lovelace", Email: order.email });
    expect(((await (await sandboxFetch("/salesforce/_sandbox/tokens")).json()) as { requests: number }).requests).toBe(1);

    // Postmark: one templated welcome naming the order.
    expect(calls.postmark.map(call)).toEqual(["POST /email/withTemplate 200"]);
    const mail = await outbox();
    expect(mail).toHaveLength(1);
    expect(mail[0]).toMatchObject({ To: order.email, TemplateAlias: "welcome", Tag: "welcome", TemplateModel: { order_name: "#1001", email: order.email }, Metadata: { shopify_order_id: order.orderId, shopify_customer_id: order.customerId } });

    // Stripe: customer, draft invoice, one item per line + shipping + tax, finalize; each keyed and version-pinned.
    const [invoice] = await invoicesOf(order.orderId);
    expect(calls.stripe.map(call)).toEqual([
      "POST /v1/customers 200", "POST /v1/invoices 200",
      "POST /v1/invoiceitems 200", "POST /v1/invoiceitems 200", "POST /v1/invoiceitems 200", "POST /v1/invoiceitems 200",
      `POST /v1/invoices/${invoice!.id}/finalize 200`,
    ]);
    expect(calls.stripe.map((r) => r.idempotencyKey)).toEqual([
      `syncwire:customer:${order.customerId}`, `syncwire:invoice:${order.orderId}`,
      ...[0, 1, 2, 3].map((i) => `syncwire:item:${order.orderId}:${i}`), `syncwire:finalize:${order.orderId}`,
    ]);
    expect(new Set(calls.stripe.map((r) => r.stripeVersion))).toEqual(new Set(["2024-06-20"]));
    expect(calls.stripe[0]!.body).toMatchObject({ email: order.email, name: "Ada Lovelace", metadata: { shopify_customer_id: order.customerId } });
    expect(invoice).toMatchObject({ status: "open", currency: "usd", total: 21386, amount_due: 21386, metadata: { shopify_order_id: order.orderId } });
    expect((await stripeData()).customers[invoice!.customer]!.metadata).toEqual({ shopify_customer_id: order.customerId });

    expect(Object.values(await actionsOf(message.event.id)).map((a) => [a.action, a.state, a.attempts])).toEqual([
      ["postmark.welcome", "done", 1], ["salesforce.contact", "done", 1], ["stripe.invoice", "done", 1],
    ]);
    expect((await eventRow(message.event.id))?.status).toBe("done");
  });

  it("a second order of the same customer: no second email (done, with a note), a Contact update (200), a second invoice for the same Stripe customer", async () => {
    const first = shopifyOrder({ ...SWEATERS, name: "#1001" });
    const firstMessage = await orderMessage(first.raw);
    await deliver([firstMessage]);
    const [firstInvoice] = await invoicesOf(first.orderId);

    const second = shopifyOrder({ customerId: first.customerId, email: first.email, name: "#1002", lines: [{ title: "Scarf", price: "35.00", quantity: 1 }], totalPrice: "35.00" });
    const message = await orderMessage(second.raw);
    const calls = await callsDuring(() => deliver([message]));

    expect(calls.salesforce.map(call)).toEqual([`PATCH /services/data/v62.0/sobjects/Contact/${EXT}/${first.customerId} 200`]);
    expect(calls.postmark).toEqual([]);
    expect(await outbox(first.email)).toHaveLength(1);
    const actions = await actionsOf(message.event.id);
    expect(actions["postmark.welcome"]).toMatchObject({ state: "done", attempts: 1, note: `already done for customer:${first.customerId} (by event ${firstMessage.event.id})` });
    expect(actions["salesforce.contact"]!.note).toMatch(/^Contact 003\w+ updated$/);

    expect(calls.stripe.map(call).filter((c) => c.startsWith("POST /v1/customers"))).toEqual([]);
    const [secondInvoice] = await invoicesOf(second.orderId);
    expect(secondInvoice).toMatchObject({ status: "open", total: 3500, customer: firstInvoice!.customer });
    expect(secondInvoice!.id).not.toBe(firstInvoice!.id);
    expect(Object.values((await stripeData()).customers).filter((c) => c.metadata.shopify_customer_id === first.customerId)).toHaveLength(1);
    expect((await eventRow(message.event.id))?.status).toBe("done");
  });

  it("a guest's order (no customer) still invoices and welcomes, but writes no Contact", async () => {
    const order = shopifyOrder({ customerId: null, lines: [{ title: "Gift Card", price: "50.00", quantity: 1 }], totalPrice: "50.00" });
    const message = await orderMessage(order.raw);
    expect(message.event.entityKey).toBe(`order:${order.orderId}`);
    const calls = await callsDuring(() => deliver([message]));
    expect(calls.salesforce).toEqual([]);
    expect((await actionsOf(message.event.id))["salesforce.contact"]).toMatchObject({ state: "done", note: expect.stringContaining("guest") });
    expect(await outbox(order.email)).toHaveLength(1);
    expect(await invoicesOf(order.orderId)).toMatchObject([{ status: "open", total: 5000 }]);
  });
});

describe("the same order more than once", () => {
  it("the same webhook three times through the HTTP route (one X-Shopify-Webhook-Id): one event, one of each effect", async () => {
    const order = shopifyOrder(SWEATERS);
    const webhookId = crypto.randomUUID();
    const { queue, sent } = capturingQueue();
    const answers: string[][] = [];
    for (let i = 0; i < 3; i++) {
      const res = await app.fetch(await signedShopify(order.raw, { webhookId }), { ...env, EVENTS: queue });
      expect(res.status).toBe(202);
      answers.push(((await res.json()) as { eventIds: string[] }).eventIds);
    }
    expect(answers[1]).toEqual(answers[0]);
    expect(answers[2]).toEqual(answers[0]);
    expect(sent).toHaveLength(3);
    const [one, two, three] = sent.map((s) => s.body as EventMessage);
    // Shopify's three deliveries: one in a batch of its own, the other two together.
    await deliver([one]);
    await deliver([two, three]);

    const salesforce = await requests("salesforce");
    expect(salesforce.filter((r) => r.method === "PATCH" && r.status < 300).map((r) => r.path)).toEqual([`/services/data/v62.0/sobjects/Contact/${EXT}/${order.customerId}`]);
    expect(await outbox(order.email)).toHaveLength(1);
    expect((await requests("stripe")).filter((r) => r.path === "/v1/invoices" && r.method === "POST")).toHaveLength(1);
    expect(await invoicesOf(order.orderId)).toMatchObject([{ status: "open", total: 21386 }]);
    expect(await eventRow(answers[0]![0]!)).toMatchObject({ status: "done", duplicates: 2 });
  });

  it("the same webhook three times through the worker and its real queue: one of each effect", async () => {
    const order = shopifyOrder({ lines: [{ title: "Tote Bag", price: "19.99", quantity: 3 }], totalPrice: "59.97" });
    const webhookId = crypto.randomUUID();
    const ids = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const res = await app.fetch(await signedShopify(order.raw, { webhookId }), env);
      expect(res.status).toBe(202);
      for (const id of ((await res.json()) as { eventIds: string[] }).eventIds) ids.add(id);
    }
    expect(ids.size).toBe(1);
    const [eventId] = [...ids];
    await waitFor(async () => {
      const row = await eventRow(eventId!);
      return row?.status === "done" && row.duplicates === 2;
    }, 15_000, "the event done with two duplicates");
    expect((await requests("salesforce")).filter((r) => r.method === "PATCH" && r.status < 300)).toHaveLength(1);
    expect(await outbox(order.email)).toHaveLength(1);
    expect(await invoicesOf(order.orderId)).toMatchObject([{ status: "open", total: 5997 }]);
  });

  it("a queue message delivered twice (again later, and twice in one batch): no second call at all", async () => {
    const order = shopifyOrder(SWEATERS);
    const message = await orderMessage(order.raw);
    await deliver([message]);
    const again = await callsDuring(async () => {
      const later = await deliver([message], { attempts: 2 });
      expect(later.explicitAcks).toEqual(later.ids);
      const twice = await deliver([message, message], { attempts: 3 });
      expect([...twice.explicitAcks].sort()).toEqual([...twice.ids].sort());
    });
    expect(again).toEqual({ salesforce: [], postmark: [], stripe: [] });

    // Twice in the first batch of a new order: each effect once.
    const fresh = shopifyOrder({ lines: [{ title: "Mug", price: "12.00", quantity: 1 }], totalPrice: "12.00" });
    const freshMessage = await orderMessage(fresh.raw);
    const calls = await callsDuring(() => deliver([freshMessage, freshMessage]));
    expect(calls.salesforce.filter((r) => r.method === "PATCH").map(call)).toEqual([`PATCH /services/data/v62.0/sobjects/Contact/${EXT}/${fresh.customerId} 201`]);
    expect(calls.postmark).toHaveLength(1);
    expect(calls.stripe.filter((r) => r.path.endsWith("/finalize"))).toHaveLength(1);
    expect(await invoicesOf(fresh.orderId)).toHaveLength(1);
  });
});

describe("money: the finalized invoice's total is total_price, exactly, in minor units", () => {
  it("USD with discount_allocations, shipping and tax on top: one item per line item, plus shipping and tax", async () => {
    const order = shopifyOrder(SWEATERS);
    await deliver([await orderMessage(order.raw)]);
    const [invoice] = await invoicesOf(order.orderId);
    expect(invoice).toMatchObject({ status: "open", currency: "usd", total: 21386 });
    expect(invoice!.items).toEqual([
      { description: "Merino Sweater x 2", amount: 16198 },
      { description: "Beanie", amount: 2450 },
      { description: "Shipping", amount: 1200 },
      { description: "Tax", amount: 1538 },
    ]);
  });

  it("JPY (no minor unit): yen are whole units, never multiplied by 100", async () => {
    // 3200 x 2 + (1500 - 300) + 800 shipping + 840 tax = 9240 yen; Shopify writes some amounts with ".00".
    const order = shopifyOrder({
      currency: "JPY",
      lines: [{ title: "Matcha Set", price: "3200.00", quantity: 2 }, { title: "Chasen Whisk", price: "1500", quantity: 1, discounts: ["300.00"] }],
      shipping: ["800"],
      totalTax: "840",
      taxesIncluded: false,
      totalPrice: "9240.00",
    });
    await deliver([await orderMessage(order.raw)]);
    const [invoice] = await invoicesOf(order.orderId);
    expect(invoice).toMatchObject({ status: "open", currency: "jpy", total: 9240, amount_due: 9240 });
    expect(invoice!.items.map((i) => i.amount)).toEqual([6400, 1200, 800, 840]);
  });

  it("tax included in the prices (taxes_included true) adds no tax item", async () => {
    const order = shopifyOrder({ currency: "EUR", lines: [{ title: "Espresso Cups", price: "29.90", quantity: 2 }], shipping: ["4.90"], totalTax: "10.33", taxesIncluded: true, totalPrice: "64.70" });
    await deliver([await orderMessage(order.raw)]);
    const [invoice] = await invoicesOf(order.orderId);
    expect(invoice).toMatchObject({ currency: "eur", total: 6470 });
    expect(invoice!.items).toEqual([{ description: "Espresso Cups x 2", amount: 5980 }, { description: "Shipping", amount: 490 }]);
  });

  it("a JPY amount with fractional yen cannot be invoiced: the invoice action is invalid (dead, no Stripe call), the other two still happen", async () => {
    const order = shopifyOrder({ currency: "JPY", lines: [{ title: "Sencha", price: "980.5", quantity: 1 }], totalPrice: "980.5" });
    const message = await orderMessage(order.raw);
    const calls = await callsDuring(() => deliver([message]));
    expect(calls.stripe).toEqual([]);
    const actions = await actionsOf(message.event.id);
    expect(actions["stripe.invoice"]).toMatchObject({ state: "dead", attempts: 1, last_error: expect.stringMatching(/^invalid: .*980\.5 JPY cannot be invoiced/) });
    expect(actions["salesforce.contact"]!.state).toBe("done");
    expect(actions["postmark.welcome"]!.state).toBe("done");
    expect((await eventRow(message.event.id))?.status).toBe("invalid");
  });
});
