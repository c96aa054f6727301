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
import { app } from "../../src/http/app";
import type { EventMessage } from "../../src/pipeline/message";
import { capturingQueue, deliver, eventRow } from "../support/messages";
import { sandboxFetch, waitFor } from "../support/sandbox";
import { signedShopify } from "../support/webhooks";
import { actionsOf, call, callsDuring, EXT, invoicesOf, orderMessage, type OrderSpec, outbox, requests, resetFanoutFakes, shopifyOrder, stripeData } from "../support/orders";

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
