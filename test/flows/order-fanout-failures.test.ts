/**
 * The Shopify fan-out's failure paths (issue 8), through the queue handler and the built-in
 * Salesforce, Postmark and Stripe fakes: Postmark failing twice, Stripe failing between "invoice
 * created" and "finalized", an expired Salesforce token and ten orders sharing one token, and a
 * dead action replayed after its target recovers. Helpers as in order-fanout.test.ts.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { createConnectors } from "../../src/connectors";
import { HttpClient } from "../../src/connectors/http-client";
import { createTransport } from "../../src/connectors/transport";
import { pipelineDeps } from "../../src/pipeline/consumer";
import { replayEvents } from "../../src/pipeline/dead-letters";
import { database } from "../../src/pipeline/ledger";
import type { EventMessage } from "../../src/pipeline/message";
import { r2PayloadStore } from "../../src/pipeline/payloads";
import type { PipelineDeps } from "../../src/pipeline/process";
import { capturingQueue, consume, deadLettersOf, deliver, eventRow } from "../support/messages";
import { sandboxFetch } from "../support/sandbox";
import { actionsOf, call, callsDuring, control, EXT, invoicesOf, orderMessage, type OrderSpec, outbox, resetFanoutFakes, shopifyOrder, stripeData } from "../support/orders";

beforeEach(resetFanoutFakes);

/** 108.00 + 28.50 + 7.95 shipping + 10.50 tax = 154.95: four invoice items. */
const RUNNERS: OrderSpec = {
  lines: [{ title: "Trail Runner", price: "120.00", quantity: 1, discounts: ["12.00"] }, { title: "Running Socks", price: "9.50", quantity: 3 }],
  shipping: ["7.95"],
  totalTax: "10.50",
  taxesIncluded: false,
  totalPrice: "154.95",
};
const contactPath = (customerId: string) => `/services/data/v62.0/sobjects/Contact/${EXT}/${customerId}`;
const tokenRequests = async () => ((await (await sandboxFetch("/salesforce/_sandbox/tokens")).json()) as { requests: number }).requests;

/** The test plays the retry schedule: the event's failed and pending actions are due now. */
const makeDue = (eventId: string) => env.DB.prepare("UPDATE actions SET next_attempt_at = 0 WHERE event_id = ? AND state IN ('failed', 'pending')").bind(eventId).run();

/** Redelivers the message (attempts 2, 3, …) with its actions due, until it is acked or `max` deliveries; answers whether it was acked. */
async function retryUntilAcked(message: EventMessage, max = 4): Promise<boolean> {
  for (let attempt = 2; attempt < 2 + max; attempt++) {
    await makeDue(message.event.id);
    const result = await deliver([message], { attempts: attempt });
    if (result.retryMessages.length === 0) return true;
  }
  return false;
}

/**
 * The worker's own pipeline, whose transport first runs `arm` (one of a fake's fault controls)
 * just before the first request `matches` picks: a fault aimed at one step of a sequence.
 */
function armedBefore(matches: (method: string, path: string) => boolean, arm: () => Promise<unknown>): PipelineDeps {
  const deps = pipelineDeps(env);
  const transport = createTransport(env, deps.config);
  let armed = false;
  const aimed = async (request: Request) => {
    if (!armed && matches(request.method, new URL(request.url).pathname)) {
      armed = true;
      await arm();
    }
    return transport(request);
  };
  return { ...deps, connectorsFor: (context, audit, deadline) => createConnectors(deps.config, new HttpClient({ transport: aimed, audit, redactor: deps.redactor, context, deadline })) };
}
const isFinalize = (method: string, path: string) => method === "POST" && /^\/stripe\/v1\/invoices\/[^/]+\/finalize$/.test(path);

async function replay(eventId: string, all = false): Promise<EventMessage[]> {
  const { queue, sent } = capturingQueue();
  const result = await replayEvents(database(env.DB), queue, r2PayloadStore(env.PAYLOADS), [eventId], Date.now(), { all });
  expect(result.eventIds).toEqual([eventId]);
  return sent.map((s) => s.body as EventMessage);
}

describe("Postmark answering 500 twice", () => {
  it("retries only the email: Salesforce and Stripe get no second call; the email goes out on the third attempt; the event ends done", async () => {
    const order = shopifyOrder(RUNNERS);
    const message = await orderMessage(order.raw);
    await control("/postmark/_sandbox/faults", { failNext: { count: 2, status: 500 } });

    let decided: Awaited<ReturnType<typeof deliver>> | undefined;
    const first = await callsDuring(async () => (decided = await deliver([message])));
    expect(decided!.retryMessages).toHaveLength(1);
    expect(first.postmark.map(call)).toEqual(["POST /email/withTemplate 500"]);
    expect(first.salesforce.map(call)).toContain(`PATCH ${contactPath(order.customerId)} 201`);
    expect(first.stripe.filter((r) => r.path.endsWith("/finalize")).map((r) => r.status)).toEqual([200]);
    expect(await actionsOf(message.event.id)).toMatchObject({ "postmark.welcome": { state: "failed", attempts: 1 }, "salesforce.contact": { state: "done" }, "stripe.invoice": { state: "done" } });
    expect((await eventRow(message.event.id))?.status).toBe("retrying");

    const retries = await callsDuring(() => retryUntilAcked(message).then((acked) => expect(acked).toBe(true)));
    expect(retries.salesforce).toEqual([]);
    expect(retries.stripe).toEqual([]);
    expect(retries.postmark.map(call)).toEqual(["POST /email/withTemplate 500", "POST /email/withTemplate 200"]);
    expect(await outbox(order.email)).toHaveLength(1);
    expect(await actionsOf(message.event.id)).toMatchObject({ "postmark.welcome": { state: "done", attempts: 3 }, "salesforce.contact": { attempts: 1 }, "stripe.invoice": { attempts: 1 } });
    expect((await eventRow(message.event.id))?.status).toBe("done");
  });
});

describe("Stripe failing between 'invoice created' and 'finalized'", () => {
  it("finalize answered 500 before it ran: the retry finalizes that same draft (under the key's next generation: Stripe may have kept a 5xx); no second invoice, no extra item", async () => {
    const order = shopifyOrder(RUNNERS);
    const message = await orderMessage(order.raw);
    const first = await consume([message], armedBefore(isFinalize, () => control("/stripe/_sandbox/faults", { failNext: { count: 1, status: 500 } })));
    expect(first.retryMessages).toHaveLength(1);
    const [draft] = await invoicesOf(order.orderId);
    expect(draft).toMatchObject({ status: "draft", total: 15495 });
    expect((await actionsOf(message.event.id))["stripe.invoice"]).toMatchObject({ state: "failed", attempts: 1 });

    const retry = await callsDuring(() => retryUntilAcked(message).then((acked) => expect(acked).toBe(true)));
    expect(retry.stripe.map(call)).toEqual([`GET /v1/invoices/${draft!.id} 200`, `POST /v1/invoices/${draft!.id}/finalize 200`]);
    expect(retry.stripe[1]!.idempotencyKey).toBe(`syncwire:finalize:${order.orderId}:2`);
    expect([...retry.salesforce, ...retry.postmark]).toEqual([]);
    const invoices = await invoicesOf(order.orderId);
    expect(invoices).toHaveLength(1);
    expect(invoices[0]).toMatchObject({ id: draft!.id, status: "open", total: 15495 });
    expect(invoices[0]!.items).toHaveLength(4);
    expect((await eventRow(message.event.id))?.status).toBe("done");
  });

  it("finalize ran but its answer was a 500 (kept under its key): the retry reads the invoice, finds it open, and is done", async () => {
    const order = shopifyOrder(RUNNERS);
    const message = await orderMessage(order.raw);
    await consume([message], armedBefore(isFinalize, () => control("/stripe/_sandbox/execution-faults", { count: 1, status: 500 })));
    const [invoice] = await invoicesOf(order.orderId);
    expect(invoice).toMatchObject({ status: "open", total: 15495 });
    expect((await actionsOf(message.event.id))["stripe.invoice"]).toMatchObject({ state: "failed", attempts: 1 });

    const retry = await callsDuring(() => retryUntilAcked(message).then((acked) => expect(acked).toBe(true)));
    expect(retry.stripe.map(call)).toEqual([`GET /v1/invoices/${invoice!.id} 200`]);
    expect(await invoicesOf(order.orderId)).toHaveLength(1);
    expect((await actionsOf(message.event.id))["stripe.invoice"]).toMatchObject({ state: "done", attempts: 2, note: expect.stringContaining(invoice!.id) });
  });

  it("the second invoice item answered 503: the retry adds only the missing items to the same draft, then finalizes it", async () => {
    const order = shopifyOrder(RUNNERS);
    const message = await orderMessage(order.raw);
    let items = 0;
    const secondItem = (method: string, path: string) => method === "POST" && path === "/stripe/v1/invoiceitems" && ++items === 2;
    await consume([message], armedBefore(secondItem, () => control("/stripe/_sandbox/faults", { failNext: { count: 1, status: 503 } })));
    const [draft] = await invoicesOf(order.orderId);
    expect(draft).toMatchObject({ status: "draft", items: [{ description: "Trail Runner", amount: 10800 }] });

    const retry = await callsDuring(() => retryUntilAcked(message).then((acked) => expect(acked).toBe(true)));
    expect(retry.stripe.map(call)).toEqual([
      `GET /v1/invoices/${draft!.id} 200`, "POST /v1/invoiceitems 200", "POST /v1/invoiceitems 200", "POST /v1/invoiceitems 200", `POST /v1/invoices/${draft!.id}/finalize 200`,
    ]);
    // The item that answered 503 under the key's next generation (Stripe may keep a 5xx under a key), the others under their first.
    expect(retry.stripe.slice(1, 4).map((r) => r.idempotencyKey)).toEqual([`syncwire:item:${order.orderId}:1:2`, `syncwire:item:${order.orderId}:2`, `syncwire:item:${order.orderId}:3`]);
    const invoices = await invoicesOf(order.orderId);
    expect(invoices).toHaveLength(1);
    expect(invoices[0]).toMatchObject({ id: draft!.id, status: "open", total: 15495 });
    expect(invoices[0]!.items.map((i) => i.amount)).toEqual([10800, 2850, 795, 1050]);
    // Nothing left pending for a later invoice to pull in.
    expect(Object.values((await stripeData()).invoiceItems).filter((i) => i.invoice === null)).toEqual([]);
  });

  it("an item answered 500 without being made, and Stripe kept that 500 under its key: the retry adds it under the key's next generation", async () => {
    const order = shopifyOrder(RUNNERS);
    const message = await orderMessage(order.raw);
    let items = 0;
    const secondItem = (method: string, path: string) => method === "POST" && path === "/stripe/v1/invoiceitems" && ++items === 2;
    await consume([message], armedBefore(secondItem, () => control("/stripe/_sandbox/execution-faults", { count: 1, status: 500, commit: false })));
    const [draft] = await invoicesOf(order.orderId);
    expect(draft).toMatchObject({ status: "draft", items: [{ amount: 10800 }] });

    const retry = await callsDuring(() => retryUntilAcked(message).then((acked) => expect(acked).toBe(true)));
    // The same key would get the saved 500 back for a day: the line is added under generation 2.
    expect(retry.stripe.slice(1, 4).map((r) => r.idempotencyKey)).toEqual([`syncwire:item:${order.orderId}:1:2`, `syncwire:item:${order.orderId}:2`, `syncwire:item:${order.orderId}:3`]);
    const [invoice] = await invoicesOf(order.orderId);
    expect(invoice).toMatchObject({ id: draft!.id, status: "open", total: 15495 });
    expect(invoice!.items.map((i) => i.amount)).toEqual([10800, 2850, 795, 1050]);
  });

  it("an item made though its answer was a 500: the retry finds it on the draft and makes no second one", async () => {
    const order = shopifyOrder(RUNNERS);
    const message = await orderMessage(order.raw);
    let items = 0;
    const secondItem = (method: string, path: string) => method === "POST" && path === "/stripe/v1/invoiceitems" && ++items === 2;
    await consume([message], armedBefore(secondItem, () => control("/stripe/_sandbox/execution-faults", { count: 1, status: 500, commit: true })));
    expect((await invoicesOf(order.orderId))[0]!.items).toHaveLength(2);
    expect(await retryUntilAcked(message)).toBe(true);
    const [invoice] = await invoicesOf(order.orderId);
    expect(invoice).toMatchObject({ status: "open", total: 15495 });
    expect(invoice!.items.map((i) => i.amount)).toEqual([10800, 2850, 795, 1050]);
  });

  it("finalize answered 500 without finalizing, and Stripe kept that 500 under its key: the retry finalizes under the key's next generation", async () => {
    const order = shopifyOrder(RUNNERS);
    const message = await orderMessage(order.raw);
    await consume([message], armedBefore(isFinalize, () => control("/stripe/_sandbox/execution-faults", { count: 1, status: 500, commit: false })));
    const [draft] = await invoicesOf(order.orderId);
    expect(draft).toMatchObject({ status: "draft", total: 15495 });

    const retry = await callsDuring(() => retryUntilAcked(message).then((acked) => expect(acked).toBe(true)));
    expect(retry.stripe.map(call)).toEqual([`GET /v1/invoices/${draft!.id} 200`, `POST /v1/invoices/${draft!.id}/finalize 200`]);
    expect(retry.stripe[1]!.idempotencyKey).toBe(`syncwire:finalize:${order.orderId}:2`);
    expect(await invoicesOf(order.orderId)).toMatchObject([{ id: draft!.id, status: "open", total: 15495 }]);
  });

  it("an order of 12 lines whose last item failed: the retry reads the lines past the 10 an invoice embeds and adds only the last", async () => {
    const lines = Array.from({ length: 12 }, (_, n) => ({ title: `Part ${n + 1}`, price: "5.00", quantity: 1 }));
    const order = shopifyOrder({ lines, totalPrice: "60.00" });
    const message = await orderMessage(order.raw);
    let items = 0;
    const lastItem = (method: string, path: string) => method === "POST" && path === "/stripe/v1/invoiceitems" && ++items === 12;
    await consume([message], armedBefore(lastItem, () => control("/stripe/_sandbox/faults", { failNext: { count: 1, status: 503 } })));
    const [draft] = await invoicesOf(order.orderId);
    expect(draft!.items).toHaveLength(11);

    const retry = await callsDuring(() => retryUntilAcked(message).then((acked) => expect(acked).toBe(true)));
    expect(retry.stripe.map(call)).toEqual([
      `GET /v1/invoices/${draft!.id} 200`, `GET /v1/invoices/${draft!.id}/lines 200`, "POST /v1/invoiceitems 200", `POST /v1/invoices/${draft!.id}/finalize 200`,
    ]);
    expect(retry.stripe[2]!.idempotencyKey).toBe(`syncwire:item:${order.orderId}:11:2`);
    expect(await invoicesOf(order.orderId)).toMatchObject([{ status: "open", total: 6000 }]);
    expect((await invoicesOf(order.orderId))[0]!.items).toHaveLength(12);
  });

  it("the invoice was created but the create answered 500 (kept under its key): the retry finishes that invoice, never a second one", async () => {
    const order = shopifyOrder(RUNNERS);
    const message = await orderMessage(order.raw);
    const isCreate = (method: string, path: string) => method === "POST" && path === "/stripe/v1/invoices";
    await consume([message], armedBefore(isCreate, () => control("/stripe/_sandbox/execution-faults", { count: 1, status: 500 })));
    const [made] = await invoicesOf(order.orderId);
    expect(made).toMatchObject({ status: "draft", items: [] });

    const acked = await retryUntilAcked(message);
    const invoices = await invoicesOf(order.orderId);
    expect((await actionsOf(message.event.id))["stripe.invoice"]).toMatchObject({ state: "done" });
    expect(acked).toBe(true);
    expect(invoices).toHaveLength(1);
    expect(invoices[0]).toMatchObject({ id: made!.id, status: "open", total: 15495 });
  });
});

describe("the Salesforce token", () => {
  it("expired after a first order: one 401, one refresh, one retry of the upsert, success within the same attempt", async () => {
    await deliver([await orderMessage(shopifyOrder(RUNNERS).raw)]);
    expect(await tokenRequests()).toBe(1);
    expect(await control("/salesforce/_sandbox/tokens/expire")).toEqual({ expired: 1 });

    const order = shopifyOrder(RUNNERS);
    const message = await orderMessage(order.raw);
    const calls = await callsDuring(() => deliver([message]));
    expect(calls.salesforce.map(call)).toEqual([`PATCH ${contactPath(order.customerId)} 401`, "POST /services/oauth2/token 200", `PATCH ${contactPath(order.customerId)} 201`]);
    expect(await tokenRequests()).toBe(2);
    expect((await actionsOf(message.event.id))["salesforce.contact"]).toMatchObject({ state: "done", attempts: 1 });
    // The issued token never reaches the audit rows.
    const { results } = await env.DB.prepare("SELECT request_body, response_body FROM audit_log WHERE event_id = ? AND connector = 'salesforce'").bind(message.event.id).all<{ request_body: string | null; response_body: string | null }>();
    expect(results.length).toBeGreaterThanOrEqual(3);
    expect(JSON.stringify(results)).not.toMatch(/00DSB0000000001!/);
  });

  it("a new token rejected too: exactly one refresh (no loop), the Contact action dead, the other two unaffected", async () => {
    await deliver([await orderMessage(shopifyOrder(RUNNERS).raw)]);
    await control("/salesforce/_sandbox/tokens/expire");
    await control("/salesforce/_sandbox/tokens", { lifetimeMs: 0 }); // every new token is expired on arrival

    const order = shopifyOrder(RUNNERS);
    const message = await orderMessage(order.raw);
    const calls = await callsDuring(() => deliver([message]));
    expect(calls.salesforce.map(call)).toEqual([`PATCH ${contactPath(order.customerId)} 401`, "POST /services/oauth2/token 200", `PATCH ${contactPath(order.customerId)} 401`]);
    const actions = await actionsOf(message.event.id);
    expect(actions["salesforce.contact"]).toMatchObject({ state: "dead", attempts: 1 });
    expect(actions["postmark.welcome"]!.state).toBe("done");
    expect(actions["stripe.invoice"]!.state).toBe("done");
    expect((await deadLettersOf(message.event.id)).map((l) => l.action)).toEqual(["salesforce.contact"]);
  });

  it("ten concurrent orders (ten customers, one batch): one token call, ten Contacts created", async () => {
    const orders = Array.from({ length: 10 }, (_, i) => shopifyOrder({ first: `Buyer${i}`, lines: [{ title: "Candle", price: "18.00", quantity: 1 }], totalPrice: "18.00" }));
    const messages = await Promise.all(orders.map((o) => orderMessage(o.raw)));
    const calls = await callsDuring(() => deliver(messages));
    expect(calls.salesforce.filter((r) => r.path === "/services/oauth2/token")).toHaveLength(1);
    expect(calls.salesforce.filter((r) => r.method === "PATCH").map(call).sort()).toEqual(orders.map((o) => `PATCH ${contactPath(o.customerId)} 201`).sort());
    expect(await tokenRequests()).toBe(1);
  });

  it("ten concurrent orders meeting an expired token: still one token call, shared by all ten refreshes", async () => {
    await deliver([await orderMessage(shopifyOrder(RUNNERS).raw)]);
    await control("/salesforce/_sandbox/tokens/expire");
    const orders = Array.from({ length: 10 }, () => shopifyOrder({ lines: [{ title: "Candle", price: "18.00", quantity: 1 }], totalPrice: "18.00" }));
    const messages = await Promise.all(orders.map((o) => orderMessage(o.raw)));
    const calls = await callsDuring(() => deliver(messages));
    expect(calls.salesforce.filter((r) => r.path === "/services/oauth2/token")).toHaveLength(1);
    expect(calls.salesforce.filter((r) => r.method === "PATCH" && r.status === 201)).toHaveLength(10);
    for (const m of messages) expect((await actionsOf(m.event.id))["salesforce.contact"]).toMatchObject({ state: "done", attempts: 1 });
  });
});

describe("a dead action replayed after its target recovers", () => {
  it("Stripe answering 400: only stripe.invoice is dead; replays run only it (again dead while refused, done once recovered)", async () => {
    const order = shopifyOrder(RUNNERS);
    const message = await orderMessage(order.raw);
    await control("/stripe/_sandbox/faults", { failNext: { count: 1, status: 400 } });
    const first = await callsDuring(() => deliver([message]));
    expect(first.stripe.map(call)).toEqual(["POST /v1/customers 400"]);
    expect(await actionsOf(message.event.id)).toMatchObject({ "stripe.invoice": { state: "dead", attempts: 1 }, "salesforce.contact": { state: "done" }, "postmark.welcome": { state: "done" } });
    expect((await eventRow(message.event.id))?.status).toBe("dead");
    expect(await deadLettersOf(message.event.id)).toMatchObject([{ action: "stripe.invoice", replayed_at: null }]);

    // Replayed while Stripe still refuses: it dies again, alone; a new letter is open.
    await control("/stripe/_sandbox/faults", { failNext: { count: 1, status: 400 } });
    const refused = await callsDuring(async () => deliver(await replay(message.event.id)));
    expect([...refused.salesforce, ...refused.postmark]).toEqual([]);
    expect(refused.stripe.map(call)).toEqual(["POST /v1/customers 400"]);
    const letters = await deadLettersOf(message.event.id);
    expect(letters.map((l) => [l.action, l.replayed_at === null])).toEqual([["stripe.invoice", false], ["stripe.invoice", true]]);

    // Recovered: only Stripe runs, the invoice is made and finalized.
    const recovered = await callsDuring(async () => deliver(await replay(message.event.id)));
    expect([...recovered.salesforce, ...recovered.postmark]).toEqual([]);
    const [invoice] = await invoicesOf(order.orderId);
    expect(recovered.stripe.map(call)).toEqual([
      "POST /v1/customers 200", "POST /v1/invoices 200", "POST /v1/invoiceitems 200", "POST /v1/invoiceitems 200", "POST /v1/invoiceitems 200", "POST /v1/invoiceitems 200",
      `POST /v1/invoices/${invoice!.id}/finalize 200`,
    ]);
    expect(invoice).toMatchObject({ status: "open", total: 15495 });
    expect(await outbox(order.email)).toHaveLength(1);
    expect(await actionsOf(message.event.id)).toMatchObject({ "stripe.invoice": { state: "done" }, "salesforce.contact": { attempts: 1 }, "postmark.welcome": { attempts: 1 } });
    expect((await eventRow(message.event.id))?.status).toBe("done");
    expect((await deadLettersOf(message.event.id)).every((l) => l.replayed_at !== null)).toBe(true);
  });

  it("a replay of every action (all) of a finished order sends no second welcome and makes no second invoice", async () => {
    const order = shopifyOrder(RUNNERS);
    const message = await orderMessage(order.raw);
    await deliver([message]);
    const again = await callsDuring(async () => deliver(await replay(message.event.id, true)));
    expect(again.postmark).toEqual([]);
    expect(await outbox(order.email)).toHaveLength(1);
    expect(again.stripe.filter((r) => r.method === "POST" && r.status === 200 && !r.path.endsWith("/finalize"))).toEqual([]);
    expect(await invoicesOf(order.orderId)).toHaveLength(1);
    expect((await eventRow(message.event.id))?.status).toBe("done");
  });
});
