/** The Stripe connector through the shared HttpClient against the fake Stripe, in-process; and toMinorUnits. */
import { describe, expect, it } from "vitest";
import { Redactor } from "../../src/audit/redact";
import { AuditBuffer } from "../../src/audit/sink";
import { ActionFailure } from "../../src/connectors/errors";
import { HttpClient } from "../../src/connectors/http-client";
import { STRIPE_API_VERSION, StripeConnector, toMinorUnits, ZERO_DECIMAL_CURRENCIES } from "../../src/connectors/stripe";
import { createFakeStripe, type FakeStripeState, type StripeRequestLogEntry } from "../../src/sandbox/fake-stripe";
import type { FakeService } from "../../src/sandbox/fake-service";

const KEY = "sk_test_sandbox_connector_0123456789";
const SHOPIFY_CUSTOMER = "820982911946154508";

function setup(secretKey = KEY) {
  const fake = createFakeStripe({ secretKey: KEY });
  const audit = new AuditBuffer();
  const http = new HttpClient({
    transport: (req) => fake.handle(req, new URL(req.url).pathname + new URL(req.url).search),
    audit,
    redactor: new Redactor([KEY]),
    context: { eventId: "evt_order_1", entityKey: `shopify-customer:${SHOPIFY_CUSTOMER}`, action: "stripe-invoice", attempt: 1 },
  });
  return { fake, audit, stripe: new StripeConnector(http, { baseUrl: "https://api.stripe.com", secretKey }) };
}

const control = (fake: FakeService<FakeStripeState>, name: string, body: unknown) =>
  fake.handle(new Request(`https://api.stripe.com/_sandbox/${name}`, { method: "POST", body: JSON.stringify(body) }), `/_sandbox/${name}`);

const failure = (promise: Promise<unknown>) => promise.then(() => { throw new Error("expected a failure"); }, (e: unknown) => e as ActionFailure);

async function draftFor(stripe: StripeConnector, currency = "USD", key = "order-1:invoice") {
  const customer = await stripe.createCustomer({ email: "ada@example.com", name: "Ada", metadata: { shopify_customer_id: SHOPIFY_CUSTOMER } }, "customer-1");
  const invoice = await stripe.createInvoice({ customer: customer.id, currency, description: "Order #1001", metadata: { shopify_order_id: "1001" } }, key);
  return { customer, invoice };
}

describe("toMinorUnits", () => {
  it.each([
    ["19.99", "usd", 1999], ["0.10", "USD", 10], ["0.29", "usd", 29], ["1000", "JPY", 1000], ["1000.00", "jpy", 1000],
    ["1500", "KRW", 1500], ["5.124", "kwd", 5124], ["-5", "eur", -500], ["007.5", "gbp", 750], ["40", "isk", 4000],
  ])("%s %s is %i", (amount, currency, expected) => {
    expect(toMinorUnits(amount, currency)).toBe(expected);
  });

  it("never gives -0", () => {
    expect(Object.is(toMinorUnits("-0.00", "usd"), 0)).toBe(true);
  });

  it.each([
    ["19.999", "usd"], ["10.5", "JPY"], ["1e3", "usd"], ["", "usd"], ["1,000.00", "usd"], [" 1.00", "usd"], ["40.10", "ISK"],
    ["90071992547409.92", "usd"], ["1.00", "US"],
  ])("refuses %j %s", (amount, currency) => {
    expect(() => toMinorUnits(amount, currency)).toThrow(RangeError);
  });

  it("lists Stripe's zero-decimal currencies in lowercase", () => {
    expect(ZERO_DECIMAL_CURRENCIES).toHaveLength(16);
    expect(ZERO_DECIMAL_CURRENCIES).toEqual(expect.arrayContaining(["jpy", "krw", "vnd", "clp", "ugx"]));
    expect(ZERO_DECIMAL_CURRENCIES).not.toContain("usd");
  });
});

describe("StripeConnector", () => {
  it("sends form bodies with the pinned Stripe-Version and the caller's Idempotency-Key, audited without the key", async () => {
    const { fake, audit, stripe } = setup();
    const customer = await stripe.createCustomer({ email: "ada@example.com", name: "Ada", metadata: { shopify_customer_id: SHOPIFY_CUSTOMER } }, "shopify-customer-1:stripe-customer");
    expect(customer.metadata.shopify_customer_id).toBe(SHOPIFY_CUSTOMER);
    const [entry] = fake.state.requests as StripeRequestLogEntry[];
    expect(entry).toMatchObject({ method: "POST", path: "/v1/customers", stripeVersion: STRIPE_API_VERSION, idempotencyKey: "shopify-customer-1:stripe-customer" });
    const [row] = audit.drain();
    expect(row).toMatchObject({ connector: "stripe", method: "POST", status: 200, outcome: "success" });
    expect(row!.requestBody).toBe(`email=ada%40example.com&name=Ada&metadata%5Bshopify_customer_id%5D=${SHOPIFY_CUSTOMER}`);
    expect(JSON.stringify(row)).not.toContain(KEY);
  });

  it("creates a draft send_invoice without pending items, attaches items, and finalizes to their total", async () => {
    const { fake, stripe } = setup();
    const customer = await stripe.createCustomer({ email: "ada@example.com" }, "c");
    // A pending item of the customer's (from elsewhere) must not land on the order's invoice.
    await fake.handle(new Request("https://api.stripe.com/v1/invoiceitems", {
      method: "POST",
      headers: { Authorization: `Bearer ${KEY}`, "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ customer: customer.id, amount: "999", currency: "usd" }),
    }), "/v1/invoiceitems");
    const invoice = await stripe.createInvoice({ customer: customer.id, currency: "USD", description: "Order #1001" }, "o1:invoice");
    expect(invoice).toMatchObject({ status: "draft", currency: "usd", total: 0 });
    expect(fake.state.requests.at(-1)!.body).toMatchObject({ collection_method: "send_invoice", days_until_due: "30", auto_advance: "false", pending_invoice_items_behavior: "exclude" });
    const lines = [["Widget x 2", "39.98"], ["Shipping", "5.00"], ["Discount", "-3.00"]] as const;
    for (const [i, [description, amount]] of lines.entries()) {
      const item = await stripe.createInvoiceItem({ customer: customer.id, invoice: invoice.id, amount: toMinorUnits(amount, "USD"), currency: "USD", description }, `o1:item:${i}`);
      expect(item.invoice).toBe(invoice.id);
    }
    const finalized = await stripe.finalizeInvoice(invoice.id, "o1:finalize");
    expect(finalized).toMatchObject({ id: invoice.id, status: "open", total: 4198, amount_due: 4198, lines: { total_count: 3 } });
    expect(await stripe.getInvoice(invoice.id)).toEqual(finalized);
  });

  it("a repeated create with the same key returns the same invoice; other parameters under it fail permanently", async () => {
    const { fake, stripe } = setup();
    const { customer, invoice } = await draftFor(stripe);
    const again = await stripe.createInvoice({ customer: customer.id, currency: "USD", description: "Order #1001", metadata: { shopify_order_id: "1001" } }, "order-1:invoice");
    expect(again.id).toBe(invoice.id);
    expect(Object.keys(fake.state.data.invoices)).toEqual([invoice.id]);
    const error = await failure(stripe.createInvoice({ customer: customer.id, currency: "EUR" }, "order-1:invoice"));
    expect(error).toMatchObject({ kind: "permanent", details: { status: 400 } });
    expect(error.message).toMatch(/Keys for idempotent requests can only be used with the same parameters/);
  });

  it("totals a zero-decimal currency in whole units", async () => {
    const { stripe } = setup();
    const { customer, invoice } = await draftFor(stripe, "JPY");
    await stripe.createInvoiceItem({ customer: customer.id, invoice: invoice.id, amount: toMinorUnits("1000", "JPY"), currency: "JPY" }, "jpy:item:0");
    await stripe.createInvoiceItem({ customer: customer.id, invoice: invoice.id, amount: toMinorUnits("350", "JPY"), currency: "JPY" }, "jpy:item:1");
    expect(await stripe.finalizeInvoice(invoice.id, "jpy:finalize")).toMatchObject({ currency: "jpy", total: 1350 });
  });

  it("finalizing an already finalized invoice under a new key returns it instead of failing", async () => {
    const { fake, stripe } = setup();
    const { customer, invoice } = await draftFor(stripe);
    await stripe.createInvoiceItem({ customer: customer.id, invoice: invoice.id, amount: 500, currency: "usd" }, "i:0");
    const first = await stripe.finalizeInvoice(invoice.id, "fin:1");
    const second = await stripe.finalizeInvoice(invoice.id, "fin:2");
    expect(second).toMatchObject({ id: invoice.id, status: "open", number: first.number });
    expect(fake.state.requests.map((r) => `${r.method} ${r.path} ${r.status}`).slice(-2)).toEqual([
      `POST /v1/invoices/${invoice.id}/finalize 400`,
      `GET /v1/invoices/${invoice.id} 200`,
    ]);
    expect(await failure(stripe.finalizeInvoice("in_missing", "fin:3"))).toMatchObject({ kind: "permanent", details: { status: 404 } });
  });

  it("a 500 saved under the finalize key is replayed on retry; a new key then finishes the same invoice", async () => {
    const { fake, stripe } = setup();
    const { customer, invoice } = await draftFor(stripe);
    await stripe.createInvoiceItem({ customer: customer.id, invoice: invoice.id, amount: 1999, currency: "usd" }, "i:0");
    await control(fake, "execution-faults", { count: 1 });
    expect(await failure(stripe.finalizeInvoice(invoice.id, "fin"))).toMatchObject({ kind: "transient", details: { status: 500 } });
    expect(await failure(stripe.finalizeInvoice(invoice.id, "fin"))).toMatchObject({ kind: "transient", details: { status: 500 } });
    const done = await stripe.finalizeInvoice(invoice.id, "fin:retry-2");
    expect(done).toMatchObject({ id: invoice.id, status: "open", total: 1999 });
    expect(Object.keys(fake.state.data.invoices)).toHaveLength(1);
  });

  it("an outage or a failNext 500 is transient, and the retry with the same key creates one invoice", async () => {
    const { fake, stripe } = setup();
    const customer = await stripe.createCustomer({ email: "ada@example.com" }, "c");
    await control(fake, "faults", { outageSeconds: 60 });
    expect(await failure(stripe.createInvoice({ customer: customer.id, currency: "usd" }, "inv"))).toMatchObject({ kind: "transient", details: { status: 503 } });
    await control(fake, "faults", { outageSeconds: 0, failNext: { count: 1, status: 500 } });
    expect(await failure(stripe.createInvoice({ customer: customer.id, currency: "usd" }, "inv"))).toMatchObject({ kind: "transient", details: { status: 500 } });
    const invoice = await stripe.createInvoice({ customer: customer.id, currency: "usd" }, "inv");
    expect(Object.keys(fake.state.data.invoices)).toEqual([invoice.id]);
  });

  it("treats a 409 for a key still in flight as transient", async () => {
    const { fake, stripe } = setup();
    await control(fake, "faults", { latencyMs: 30 });
    const create = () => stripe.createCustomer({ email: "ada@example.com" }, "same-key");
    const settled = await Promise.allSettled([create(), create()]);
    const rejected = settled.filter((s): s is PromiseRejectedResult => s.status === "rejected");
    expect(settled.filter((s) => s.status === "fulfilled")).toHaveLength(1);
    expect(rejected.map((r) => r.reason)).toMatchObject([{ kind: "transient", details: { status: 409 } }]);
  });

  it("fails permanently on a wrong secret key (401) and sends nothing without an Idempotency-Key", async () => {
    const { fake, stripe } = setup("sk_test_wrong_0000000000000000");
    expect(await failure(stripe.createCustomer({ email: "ada@example.com" }, "c"))).toMatchObject({ kind: "permanent", details: { status: 401 } });
    const { fake: other, stripe: good } = setup();
    expect(await failure(good.createCustomer({ email: "ada@example.com" }, ""))).toMatchObject({ kind: "permanent" });
    expect(other.state.requests).toHaveLength(0);
    expect(fake.state.requests).toHaveLength(1);
  });
});
