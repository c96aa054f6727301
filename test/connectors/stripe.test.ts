/**
 * The Stripe connector through the shared HttpClient against the fake Stripe, in-process; and
 * toMinorUnits. Last, the order's invoice (flows/order-fanout/invoice.ts) over this connector,
 * with links in memory, when a create ran but answered 500 and Stripe replays that 500.
 */
import { describe, expect, it } from "vitest";
import { Redactor } from "../../src/audit/redact";
import { AuditBuffer } from "../../src/audit/sink";
import { ActionFailure } from "../../src/connectors/errors";
import { HttpClient } from "../../src/connectors/http-client";
import { STRIPE_API_VERSION, StripeConnector, toMinorUnits, ZERO_DECIMAL_CURRENCIES } from "../../src/connectors/stripe";
import { invoiceOrder } from "../../src/flows/order-fanout/invoice";
import { parseOrder } from "../../src/flows/order-fanout/order";
import type { Links } from "../../src/pipeline/effects";
import { createFakeStripe, type FakeStripeState, type StripeRequestLogEntry } from "../../src/sandbox/fake-stripe";
import type { FakeService } from "../../src/sandbox/fake-service";

const KEY = "sk_test_sandbox_connector_0123456789";
const SHOPIFY_CUSTOMER = "820982911946154508";

function setup(secretKey = KEY, before?: (request: Request) => Promise<unknown>) {
  const fake = createFakeStripe({ secretKey: KEY });
  const audit = new AuditBuffer();
  const http = new HttpClient({
    transport: async (req) => {
      await before?.(req);
      return fake.handle(req, new URL(req.url).pathname + new URL(req.url).search);
    },
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

describe("StripeConnector lists", () => {
  it("listInvoices: GET /v1/invoices with customer, status and limit, newest first, page by page", async () => {
    const { fake, stripe } = setup();
    const { customer, invoice: oldest } = await draftFor(stripe, "USD", "k1");
    const middle = await stripe.createInvoice({ customer: customer.id, currency: "usd", metadata: { shopify_order_id: "1002" } }, "k2");
    const newest = await stripe.createInvoice({ customer: customer.id, currency: "usd", metadata: { shopify_order_id: "1003" } }, "k3");
    const other = await stripe.createCustomer({ email: "bob@example.com" }, "c-bob");
    await stripe.createInvoice({ customer: other.id, currency: "usd" }, "k4");
    await stripe.createInvoiceItem({ customer: customer.id, invoice: middle.id, amount: 700, currency: "usd" }, "i");
    await stripe.finalizeInvoice(middle.id, "f");

    const page = await stripe.listInvoices({ customer: customer.id, limit: 2 });
    expect(page).toMatchObject({ object: "list", has_more: true, url: "/v1/invoices" });
    expect(page.data.map((i) => i.id)).toEqual([newest.id, middle.id]);
    const [entry] = (fake.state.requests as StripeRequestLogEntry[]).slice(-1);
    expect(entry).toMatchObject({ method: "GET", path: `/v1/invoices?customer=${customer.id}&limit=2`, status: 200, stripeVersion: STRIPE_API_VERSION, idempotencyKey: null });
    const rest = await stripe.listInvoices({ customer: customer.id, limit: 2, startingAfter: middle.id });
    expect([rest.data.map((i) => i.id), rest.has_more]).toEqual([[oldest.id], false]);
    expect(rest.data[0]!.metadata.shopify_order_id).toBe("1001");

    const open = await stripe.listInvoices({ customer: customer.id, status: "open", limit: 10 });
    expect(open.data.map((i) => [i.id, i.status, i.total])).toEqual([[middle.id, "open", 700]]);
    expect(fake.state.requests.at(-1)!.path).toBe(`/v1/invoices?customer=${customer.id}&status=open&limit=10`);
  });

  it("listCustomers: GET /v1/customers with the exact email and limit", async () => {
    const { fake, stripe } = setup();
    const first = await stripe.createCustomer({ email: "ada@example.com", metadata: { shopify_customer_id: SHOPIFY_CUSTOMER } }, "c1");
    await stripe.createCustomer({ email: "ADA@example.com" }, "c2");
    const second = await stripe.createCustomer({ email: "ada@example.com", metadata: { shopify_order_id: "1001" } }, "c3");
    const page = await stripe.listCustomers({ email: "ada@example.com", limit: 100 });
    expect(page).toMatchObject({ object: "list", has_more: false, url: "/v1/customers" });
    expect(page.data.map((c) => [c.id, c.metadata])).toEqual([[second.id, { shopify_order_id: "1001" }], [first.id, { shopify_customer_id: SHOPIFY_CUSTOMER }]]);
    expect(fake.state.requests.at(-1)).toMatchObject({ method: "GET", path: "/v1/customers?email=ada%40example.com&limit=100", status: 200 });
    const one = await stripe.listCustomers({ email: "ada@example.com", limit: 1 });
    expect([one.data.map((c) => c.id), one.has_more]).toEqual([[second.id], true]);
  });

  it("refuses a limit outside 1..100 without sending anything", async () => {
    const { fake, stripe } = setup();
    for (const limit of [0, 101, 2.5]) {
      expect(await failure(stripe.listCustomers({ email: "ada@example.com", limit }))).toMatchObject({ kind: "permanent", message: expect.stringMatching(/list limit/) });
    }
    expect(fake.state.requests).toHaveLength(0);
  });

  it("a failed list is classified like any call: 5xx transient, 4xx permanent", async () => {
    const { fake, stripe } = setup();
    await control(fake, "faults", { failNext: { count: 1, status: 503 } });
    expect(await failure(stripe.listInvoices({ customer: "cus_x", limit: 10 }))).toMatchObject({ kind: "transient", details: { status: 503 } });
    expect(await failure(stripe.listInvoices({ customer: "cus_nope", limit: 10 }))).toMatchObject({ kind: "permanent", details: { status: 400 } });
  });
});

// ---- the order's invoice after a create that ran but answered 500 ------------------------------

const ORDER_ID = "820982911946154508";
const GUEST_ORDER_ID = "820982911946154999";

function memoryLinks(): Links & { rows: Map<string, string> } {
  const rows = new Map<string, string>();
  return {
    rows,
    get: async (kind, key) => rows.get(`${kind} ${key}`) ?? null,
    getMany: async (keys) => keys.map(([kind, key]) => rows.get(`${kind} ${key}`) ?? null),
    put: async (kind, key, value) => {
      if (!rows.has(`${kind} ${key}`)) rows.set(`${kind} ${key}`, value);
      return rows.get(`${kind} ${key}`)!;
    },
  };
}

/** 12.00 + 2 x 3.50 = 19.00: two invoice items. */
const order = (guest = false) =>
  parseOrder({
    id: guest ? GUEST_ORDER_ID : ORDER_ID,
    name: "#1001",
    email: "ada@example.com",
    currency: "USD",
    total_price: "19.00",
    line_items: [{ title: "Mug", quantity: 1, price: "12.00" }, { title: "Coaster", quantity: 2, price: "3.50" }],
    customer: guest ? null : { id: SHOPIFY_CUSTOMER, email: "ada@example.com", first_name: "Ada" },
  });

/**
 * The connector over a fake whose flow's next `POST path` runs and then answers 500 (an execution
 * fault, kept under its key like Stripe keeps it), `times` times; `commit: false` undoes its effect.
 */
function faultyOn(path: string, commit = true, times = 1) {
  let left = times;
  let ctx: ReturnType<typeof setup>;
  const arm = async (request: Request) => {
    // Only the flow's own calls (its keys start with syncwire:), not a test's setup.
    if (left > 0 && request.method === "POST" && new URL(request.url).pathname === path && request.headers.get("idempotency-key")?.startsWith("syncwire:")) {
      left -= 1;
      await control(ctx.fake, "execution-faults", { count: 1, commit });
    }
  };
  ctx = setup(KEY, arm);
  return ctx;
}

const calls = (fake: FakeService<FakeStripeState>, from: number) =>
  (fake.state.requests as StripeRequestLogEntry[]).slice(from).map((r) => `${r.method} ${r.path.split("?")[0]} ${r.status}${r.idempotencyKey ? ` ${r.idempotencyKey}` : ""}`);

describe("invoiceOrder after a call whose answer was lost", () => {
  it("asks again under the same key: Stripe answers what it kept, and nothing is made twice", async () => {
    const fake = createFakeStripe({ secretKey: KEY });
    let lose = true;
    const http = new HttpClient({
      // The first item call reaches Stripe and runs; its answer never comes back.
      transport: async (req) => {
        const answer = await fake.handle(req, new URL(req.url).pathname + new URL(req.url).search);
        if (lose && new URL(req.url).pathname === "/v1/invoiceitems") {
          lose = false;
          throw new TypeError("Network connection lost.");
        }
        return answer;
      },
      audit: new AuditBuffer(),
      redactor: new Redactor([KEY]),
      context: { eventId: "evt_order_1", entityKey: null, action: "stripe-invoice", attempt: 1 },
    });
    const stripe = new StripeConnector(http, { baseUrl: "https://api.stripe.com", secretKey: KEY });
    const links = memoryLinks();
    expect(await failure(invoiceOrder(order(), stripe, links))).toMatchObject({ kind: "transient", details: { status: null } });
    const from = fake.state.requests.length;
    expect(await invoiceOrder(order(), stripe, links)).toMatch(/open, total 1900 usd$/);
    // The draft already holds line 0; line 1 goes under its first key; no note moved any key on.
    expect(calls(fake, from).filter((c) => c.startsWith("POST /v1/invoiceitems"))).toEqual([`POST /v1/invoiceitems 200 syncwire:item:${ORDER_ID}:1`]);
    expect([...links.rows.values()].filter((v) => v === "unsettled")).toEqual([]);
    expect(Object.values(fake.state.data.invoiceItems)).toHaveLength(2);
  });
});

describe("invoiceOrder after a create that answered 500", () => {
  it("a first attempt makes only the creates: customer, invoice, items, finalize", async () => {
    const { fake, stripe } = setup();
    const links = memoryLinks();
    expect(await invoiceOrder(order(), stripe, links)).toMatch(/^invoice in_\w+ open, total 1900 usd$/);
    expect(calls(fake, 0).map((c) => c.split(" ").slice(0, 2).join(" "))).toEqual([
      "POST /v1/customers", "POST /v1/invoices", "POST /v1/invoiceitems", "POST /v1/invoiceitems", expect.stringMatching(/^POST \/v1\/invoices\/in_\w+\/finalize$/),
    ]);
  });

  it("the invoice made but answered 500: the retry finds it among the customer's invoices, links it and finishes it", async () => {
    const { fake, stripe } = faultyOn("/v1/invoices");
    const links = memoryLinks();
    expect(await failure(invoiceOrder(order(), stripe, links))).toMatchObject({ kind: "transient", details: { status: 500 } });
    const [made] = Object.values(fake.state.data.invoices);
    expect(links.rows.get(`stripe-invoice ${ORDER_ID}`)).toBe("unsettled");

    const from = fake.state.requests.length;
    expect(await invoiceOrder(order(), stripe, links)).toBe(`invoice ${made!.id} open, total 1900 usd`);
    expect(calls(fake, from)).toEqual([
      "GET /v1/invoices 200",
      `POST /v1/invoiceitems 200 syncwire:item:${ORDER_ID}:0`,
      `POST /v1/invoiceitems 200 syncwire:item:${ORDER_ID}:1`,
      `POST /v1/invoices/${made!.id}/finalize 200 syncwire:finalize:${ORDER_ID}`,
    ]);
    expect(Object.keys(fake.state.data.invoices)).toEqual([made!.id]);
    expect(links.rows.get(`stripe-invoice ${ORDER_ID}:2`)).toBe(made!.id);

    // Later runs follow the links without asking Stripe to find it again.
    const later = fake.state.requests.length;
    expect(await invoiceOrder(order(), stripe, links)).toBe(`invoice ${made!.id} open, total 1900 usd`);
    expect(calls(fake, later)).toEqual([`GET /v1/invoices/${made!.id} 200`]);
  });

  it("the invoice create answered 500 and made nothing: the retry finds none and creates it under the key's next generation", async () => {
    const { fake, stripe } = faultyOn("/v1/invoices", false, 2);
    const links = memoryLinks();
    await failure(invoiceOrder(order(), stripe, links));
    // The second attempt meets the same fault on generation 2: generation 3 makes it.
    expect(await failure(invoiceOrder(order(), stripe, links))).toMatchObject({ kind: "transient", details: { status: 500 } });
    expect(fake.state.data.invoices).toEqual({});
    const replayed = await stripe.createInvoice({ customer: Object.keys(fake.state.data.customers)[0]!, currency: "usd", description: "Shopify order #1001", metadata: { shopify_order_id: ORDER_ID } }, `syncwire:invoice:${ORDER_ID}`).catch((e: unknown) => e);
    expect(replayed).toMatchObject({ kind: "transient", details: { status: 500 } }); // Stripe keeps replaying the 500

    const from = fake.state.requests.length;
    expect(await invoiceOrder(order(), stripe, links)).toMatch(/open, total 1900 usd$/);
    expect(calls(fake, from).slice(0, 2)).toEqual(["GET /v1/invoices 200", `POST /v1/invoices 200 syncwire:invoice:${ORDER_ID}:3`]);
    expect(Object.keys(fake.state.data.invoices)).toHaveLength(1);
  });

  it("the customer made but answered 500: the retry finds it by email and Shopify id, and makes no second customer", async () => {
    const { fake, stripe } = faultyOn("/v1/customers");
    const links = memoryLinks();
    // Another Stripe customer with the same email, not this Shopify customer's.
    const stranger = await stripe.createCustomer({ email: "ada@example.com", metadata: { shopify_customer_id: "1" } }, "stranger");
    expect(await failure(invoiceOrder(order(), stripe, links))).toMatchObject({ kind: "transient", details: { status: 500 } });
    const made = Object.values(fake.state.data.customers).find((c) => c.id !== stranger.id)!;

    const from = fake.state.requests.length;
    await invoiceOrder(order(), stripe, links);
    expect(calls(fake, from).slice(0, 2)).toEqual(["GET /v1/customers 200", `POST /v1/invoices 200 syncwire:invoice:${ORDER_ID}`]);
    expect(fake.state.requests[from]!.path).toBe("/v1/customers?email=ada%40example.com&limit=100");
    expect(Object.keys(fake.state.data.customers).sort()).toEqual([stranger.id, made.id].sort());
    expect(Object.values(fake.state.data.invoices).map((i) => i.customer)).toEqual([made.id]);
    expect(links.rows.get(`stripe-customer ${SHOPIFY_CUSTOMER}:2`)).toBe(made.id);
  });

  it("a guest's customer that answered 500 and made nothing: created under the next generation", async () => {
    const { fake, stripe } = faultyOn("/v1/customers", false);
    const links = memoryLinks();
    await failure(invoiceOrder(order(true), stripe, links));
    expect(fake.state.data.customers).toEqual({});
    const from = fake.state.requests.length;
    await invoiceOrder(order(true), stripe, links);
    expect(calls(fake, from).slice(0, 2)).toEqual(["GET /v1/customers 200", `POST /v1/customers 200 syncwire:customer:order-${GUEST_ORDER_ID}:2`]);
    expect(Object.values(fake.state.data.customers).map((c) => c.metadata)).toEqual([{ shopify_order_id: GUEST_ORDER_ID }]);
  });

  it("a refused create (4xx) made nothing and notes nothing: the retry creates with the same key, without a lookup", async () => {
    const { fake, stripe } = setup();
    const links = memoryLinks();
    await control(fake, "faults", { failNext: { count: 1, status: 400 } });
    expect(await failure(invoiceOrder(order(), stripe, links))).toMatchObject({ kind: "permanent", details: { status: 400 } });
    expect(links.rows.size).toBe(0);
    await invoiceOrder(order(), stripe, links);
    expect(calls(fake, 1)[0]).toBe(`POST /v1/customers 200 syncwire:customer:${SHOPIFY_CUSTOMER}`);
  });
});
