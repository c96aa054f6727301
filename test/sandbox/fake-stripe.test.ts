/** The fake Stripe, driven in-process: auth, form bodies, idempotent requests, invoices and their items, faults. */
import { describe, expect, it } from "vitest";
import { createFakeStripe, type FakeStripeState, type StripeRequestLogEntry } from "../../src/sandbox/fake-stripe";
import type { FakeService } from "../../src/sandbox/fake-service";

const KEY = "sk_test_sandbox_0123456789abcdef";
const OTHER_KEY = "sk_test_sandbox_fedcba9876543210";
const T0 = Date.parse("2026-01-01T00:00:00.000Z");
const SHOPIFY_ID = "820982911946154508"; // beyond 2^53: must stay a string

type Json = Record<string, any>;
interface Opts { key?: string; idem?: string; version?: string; auth?: string | null; json?: boolean }

function setup() {
  const clock = { now: T0 };
  const fake = createFakeStripe({ secretKey: [KEY, OTHER_KEY], now: () => clock.now });
  return { fake, clock };
}

async function call(fake: FakeService<FakeStripeState>, method: string, path: string, params?: Record<string, string>, o: Opts = {}) {
  const headers = new Headers();
  const auth = o.auth === undefined ? `Bearer ${o.key ?? KEY}` : o.auth;
  if (auth !== null) headers.set("Authorization", auth);
  if (o.idem) headers.set("Idempotency-Key", o.idem);
  if (o.version) headers.set("Stripe-Version", o.version);
  let body: string | undefined;
  if (params) {
    headers.set("Content-Type", o.json ? "application/json" : "application/x-www-form-urlencoded");
    body = o.json ? JSON.stringify(params) : new URLSearchParams(params).toString();
  }
  const res = await fake.handle(new Request(`https://api.stripe.com${path}`, { method, headers, body }), path);
  return { status: res.status, headers: res.headers, json: (await res.json()) as Json };
}

const control = (fake: FakeService<FakeStripeState>, name: string, body: unknown) =>
  fake.handle(new Request(`https://api.stripe.com/_sandbox/${name}`, { method: "POST", body: JSON.stringify(body) }), `/_sandbox/${name}`);

async function customer(fake: FakeService<FakeStripeState>, email = "ada@example.com") {
  return (await call(fake, "POST", "/v1/customers", { email, name: "Ada", "metadata[shopify_customer_id]": SHOPIFY_ID })).json.id as string;
}

const draft = async (fake: FakeService<FakeStripeState>, cus: string, extra: Record<string, string> = {}, o: Opts = {}) =>
  call(fake, "POST", "/v1/invoices", { customer: cus, currency: "usd", collection_method: "send_invoice", days_until_due: "30", auto_advance: "false", ...extra }, o);

describe("authentication and requests", () => {
  it("answers 401 without a key or with a wrong one, showing the wrong key only masked, and creates nothing", async () => {
    const { fake } = setup();
    const none = await call(fake, "POST", "/v1/customers", { email: "a@example.com" }, { auth: null });
    expect(none.status).toBe(401);
    expect(none.json.error).toMatchObject({ type: "invalid_request_error", message: expect.stringMatching(/^You did not provide an API key/) });
    const wrong = await call(fake, "POST", "/v1/customers", { email: "a@example.com" }, { key: "sk_test_wrong_key_1234" });
    expect(wrong.status).toBe(401);
    expect(wrong.json.error.message).toBe("Invalid API Key provided: sk_test_**********1234");
    expect(Object.keys(fake.state.data.customers)).toHaveLength(0);
    // Basic auth with the key as the user name, as `curl -u sk_test_…:` sends it.
    expect((await call(fake, "GET", "/v1/invoices/in_x", undefined, { auth: `Basic ${btoa(`${KEY}:`)}` })).status).toBe(404);
  });

  it("reads nested form parameters, keeps 18-digit ids as strings and logs the body and Stripe-Version", async () => {
    const { fake } = setup();
    const created = await call(fake, "POST", "/v1/customers", { email: "ada@example.com", "metadata[shopify_customer_id]": SHOPIFY_ID }, { idem: "k1", version: "2024-06-20" });
    expect(created.status).toBe(200);
    expect(created.json).toMatchObject({ object: "customer", email: "ada@example.com", metadata: { shopify_customer_id: SHOPIFY_ID } });
    expect(created.json.id).toMatch(/^cus_[A-Za-z0-9]{14}$/);
    expect(created.headers.get("Stripe-Version")).toBe("2024-06-20");
    expect((await call(fake, "GET", `/v1/customers/${created.json.id}`)).json).toEqual(created.json);
    const [entry] = fake.state.requests as StripeRequestLogEntry[];
    expect(entry).toMatchObject({ method: "POST", path: "/v1/customers", status: 200, stripeVersion: "2024-06-20", idempotencyKey: "k1" });
    expect(entry!.body).toEqual({ email: "ada@example.com", metadata: { shopify_customer_id: SHOPIFY_ID } });
  });

  it("refuses JSON bodies, unknown parameters, non-integer amounts and unknown objects in Stripe's error shape", async () => {
    const { fake } = setup();
    expect((await call(fake, "POST", "/v1/customers", { email: "a@example.com" }, { json: true })).status).toBe(400);
    expect((await call(fake, "POST", "/v1/customers", { emial: "a@example.com" })).json.error).toMatchObject({ code: "parameter_unknown", param: "emial" });
    const cus = await customer(fake);
    const { json: invoice } = await draft(fake, cus);
    const float = await call(fake, "POST", "/v1/invoiceitems", { customer: cus, invoice: invoice.id, amount: "10.99", currency: "usd" });
    expect(float.json.error).toEqual({ type: "invalid_request_error", code: "parameter_invalid_integer", param: "amount", message: "Invalid integer: 10.99", doc_url: expect.any(String) });
    const missing = await call(fake, "GET", "/v1/customers/cus_nope");
    expect(missing.status).toBe(404);
    expect(missing.json.error).toMatchObject({ code: "resource_missing", param: "id", message: "No such customer: 'cus_nope'" });
  });
});

describe("idempotent requests", () => {
  it("replays the first answer for the same key and parameters, and creates one object", async () => {
    const { fake } = setup();
    const params = { email: "ada@example.com", name: "Ada" };
    const first = await call(fake, "POST", "/v1/customers", params, { idem: "order-1:customer" });
    const again = await call(fake, "POST", "/v1/customers", { name: "Ada", email: "ada@example.com" }, { idem: "order-1:customer" });
    expect(again.status).toBe(first.status);
    expect(again.json).toEqual(first.json);
    expect(first.headers.get("Idempotent-Replayed")).toBeNull();
    expect(again.headers.get("Idempotent-Replayed")).toBe("true");
    expect(Object.keys(fake.state.data.customers)).toEqual([first.json.id]);
  });

  it("refuses the key with other parameters or on another endpoint, and scopes keys per API key", async () => {
    const { fake } = setup();
    await call(fake, "POST", "/v1/customers", { email: "ada@example.com" }, { idem: "k" });
    const other = await call(fake, "POST", "/v1/customers", { email: "bob@example.com" }, { idem: "k" });
    expect(other.status).toBe(400);
    expect(other.json.error).toEqual({
      type: "idempotency_error",
      message: "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than 'k' if you meant to execute a different request.",
    });
    expect((await call(fake, "POST", "/v1/invoiceitems", { email: "ada@example.com" }, { idem: "k" })).json.error.type).toBe("idempotency_error");
    const otherAccountKey = await call(fake, "POST", "/v1/customers", { email: "bob@example.com" }, { idem: "k", key: OTHER_KEY });
    expect(otherAccountKey.status).toBe(200);
    expect(Object.keys(fake.state.data.customers)).toHaveLength(2);
  });

  it("saves nothing for a request that failed validation, but saves an executed error", async () => {
    const { fake } = setup();
    expect((await call(fake, "POST", "/v1/invoices", { currency: "usd" }, { idem: "inv" })).json.error.code).toBe("parameter_missing");
    const cus = await customer(fake);
    // Had the 400 been saved, other parameters under its key would be an idempotency_error.
    const created = await draft(fake, cus, {}, { idem: "inv" });
    expect(created.status).toBe(200);
    await call(fake, "POST", `/v1/invoices/${created.json.id}/finalize`, undefined, { idem: "fin-1" });
    const late = { customer: cus, invoice: created.json.id, amount: "100", currency: "usd" };
    const refused = await call(fake, "POST", "/v1/invoiceitems", late, { idem: "late" });
    expect(refused.json.error.code).toBe("invoice_not_editable");
    const replayed = await call(fake, "POST", "/v1/invoiceitems", late, { idem: "late" });
    expect(replayed.status).toBe(400);
    expect(replayed.headers.get("Idempotent-Replayed")).toBe("true");
  });

  it("forgets a key after 24 hours", async () => {
    const { fake, clock } = setup();
    await call(fake, "POST", "/v1/customers", { email: "ada@example.com" }, { idem: "k" });
    clock.now += 24 * 3600 * 1000;
    expect((await call(fake, "POST", "/v1/customers", { email: "bob@example.com" }, { idem: "k" })).status).toBe(200);
    expect(Object.keys(fake.state.data.customers)).toHaveLength(2);
  });

  it("keeps at most maxSavedKeys answers, forgetting the oldest first", async () => {
    const fake = createFakeStripe({ secretKey: KEY, maxSavedKeys: 2 });
    for (const key of ["a", "b", "c"]) await call(fake, "POST", "/v1/customers", { email: `${key}@example.com` }, { idem: key });
    expect((await call(fake, "POST", "/v1/customers", { email: "other@example.com" }, { idem: "a" })).status).toBe(200);
    expect((await call(fake, "POST", "/v1/customers", { email: "other@example.com" }, { idem: "c" })).json.error.type).toBe("idempotency_error");
  });

  it("answers 409 idempotency_key_in_use to a request whose key is in flight, without saving it", async () => {
    const { fake } = setup();
    await control(fake, "faults", { latencyMs: 30 });
    const send = () => call(fake, "POST", "/v1/customers", { email: "ada@example.com" }, { idem: "same" });
    const answers = await Promise.all([send(), send()]);
    expect(answers.map((a) => a.status).sort()).toEqual([200, 409]);
    expect(answers.find((a) => a.status === 409)!.json.error).toMatchObject({ type: "idempotency_error", code: "idempotency_key_in_use" });
    const retry = await send();
    expect(retry.headers.get("Idempotent-Replayed")).toBe("true");
    expect(Object.keys(fake.state.data.customers)).toHaveLength(1);
  });
});

describe("invoices and invoice items", () => {
  it("leaves pending items off a new invoice unless they are attached or the invoice asks for them", async () => {
    const { fake } = setup();
    const cus = await customer(fake);
    const pending = await call(fake, "POST", "/v1/invoiceitems", { customer: cus, amount: "500", currency: "usd" });
    expect(pending.json.invoice).toBeNull();
    const { json: invoice } = await draft(fake, cus);
    expect(invoice).toMatchObject({ status: "draft", total: 0, lines: { data: [], total_count: 0 } });
    const attached = await call(fake, "POST", "/v1/invoiceitems", { customer: cus, invoice: invoice.id, amount: "1999", currency: "usd" });
    expect(attached.json.invoice).toBe(invoice.id);
    const read = (await call(fake, "GET", `/v1/invoices/${invoice.id}`)).json;
    expect(read).toMatchObject({ total: 1999, lines: { total_count: 1, data: [{ invoice_item: attached.json.id, amount: 1999 }] } });
    expect((await call(fake, "GET", `/v1/invoiceitems/${pending.json.id}`)).json.invoice).toBeNull();
    const including = await draft(fake, cus, { pending_invoice_items_behavior: "include" });
    expect(including.json).toMatchObject({ total: 500, lines: { data: [{ invoice_item: pending.json.id }] } });
  });

  it("pulls pending items in by default only for API versions before 2022-08-01", async () => {
    const { fake } = setup();
    const cus = await customer(fake);
    const old = { version: "2020-08-27" };
    expect((await draft(fake, cus, {}, old)).json.error.code).toBe("invoice_no_customer_line_items");
    await call(fake, "POST", "/v1/invoiceitems", { customer: cus, amount: "700", currency: "usd" });
    expect((await draft(fake, cus, {}, old)).json.total).toBe(700);
  });

  it("finalizes once: totals of the attached items, a number and a due date; a second finalize is refused", async () => {
    const { fake, clock } = setup();
    const cus = await customer(fake);
    const { json: invoice } = await draft(fake, cus);
    for (const amount of ["1999", "500", "-300"]) await call(fake, "POST", "/v1/invoiceitems", { customer: cus, invoice: invoice.id, amount, currency: "usd" });
    clock.now += 60_000;
    const first = await call(fake, "POST", `/v1/invoices/${invoice.id}/finalize`, undefined, { idem: "fin" });
    const at = Math.floor(clock.now / 1000);
    expect(first.json).toMatchObject({ status: "open", total: 2199, amount_due: 2199, due_date: at + 30 * 86_400, status_transitions: { finalized_at: at } });
    expect(first.json.number).toMatch(/^[0-9A-F]{8}-0001$/);
    const replay = await call(fake, "POST", `/v1/invoices/${invoice.id}/finalize`, undefined, { idem: "fin" });
    expect(replay.json).toEqual(first.json);
    const second = await call(fake, "POST", `/v1/invoices/${invoice.id}/finalize`, undefined, { idem: "fin-again" });
    expect(second.status).toBe(400);
    expect(second.json.error).toMatchObject({ code: "invoice_already_finalized", message: "This invoice is already finalized, you can't re-finalize a non-draft invoice." });
  });

  it("keeps zero-decimal amounts whole, refuses a currency other than the invoice's, and marks a zero invoice paid", async () => {
    const { fake } = setup();
    const cus = await customer(fake);
    const { json: yen } = await draft(fake, cus, { currency: "JPY" });
    expect(yen.currency).toBe("jpy");
    const usdItem = await call(fake, "POST", "/v1/invoiceitems", { customer: cus, invoice: yen.id, amount: "1000", currency: "usd" });
    expect(usdItem.json.error).toMatchObject({ param: "currency" });
    await call(fake, "POST", "/v1/invoiceitems", { customer: cus, invoice: yen.id, amount: "1000" }); // currency from the invoice
    expect((await call(fake, "POST", `/v1/invoices/${yen.id}/finalize`)).json).toMatchObject({ currency: "jpy", total: 1000, amount_due: 1000 });
    const { json: empty } = await draft(fake, cus);
    expect((await call(fake, "POST", `/v1/invoices/${empty.id}/finalize`)).json).toMatchObject({ status: "paid", total: 0, paid: true });
  });
});

describe("lists", () => {
  const ids = (list: Json) => (list.data as Json[]).map((o) => o.id as string);

  it("lists a customer's invoices newest first, filtered by status, a page at a time", async () => {
    const { fake, clock } = setup();
    const ada = await customer(fake);
    const bob = await customer(fake, "bob@example.com");
    const made: string[] = [];
    for (const n of [1, 2, 3]) {
      if (n > 1) clock.now += 1000;
      made.push((await draft(fake, ada, { "metadata[shopify_order_id]": `100${n}` })).json.id);
    }
    // Made in the same second as the third: the later id is the newer.
    const fourth = (await draft(fake, ada)).json.id as string;
    await call(fake, "POST", "/v1/invoiceitems", { customer: ada, invoice: made[0]!, amount: "500", currency: "usd" });
    await call(fake, "POST", `/v1/invoices/${made[0]}/finalize`);
    await draft(fake, bob);
    const before = JSON.stringify(fake.state.data);

    const all = await call(fake, "GET", `/v1/invoices?customer=${ada}`);
    expect(all.status).toBe(200);
    expect(all.json).toMatchObject({ object: "list", has_more: false, url: "/v1/invoices" });
    expect(ids(all.json)).toEqual([fourth, made[2], made[1], made[0]]);
    expect(all.json.data[3]).toMatchObject({ object: "invoice", status: "open", total: 500, metadata: { shopify_order_id: "1001" }, lines: { total_count: 1 } });

    const first = await call(fake, "GET", `/v1/invoices?customer=${ada}&limit=2`);
    expect([ids(first.json), first.json.has_more]).toEqual([[fourth, made[2]], true]);
    const next = await call(fake, "GET", `/v1/invoices?customer=${ada}&limit=2&starting_after=${made[2]}`);
    expect([ids(next.json), next.json.has_more]).toEqual([[made[1], made[0]], false]);
    const back = await call(fake, "GET", `/v1/invoices?customer=${ada}&limit=1&ending_before=${made[1]}`);
    expect([ids(back.json), back.json.has_more]).toEqual([[made[2]], true]);

    expect(ids((await call(fake, "GET", `/v1/invoices?customer=${ada}&status=open`)).json)).toEqual([made[0]]);
    expect(ids((await call(fake, "GET", `/v1/invoices?customer=${ada}&status=void`)).json)).toEqual([]);
    expect(ids((await call(fake, "GET", "/v1/invoices?limit=100")).json)).toHaveLength(5);
    // Reading changes nothing.
    expect(JSON.stringify(fake.state.data)).toBe(before);
  });

  it("lists customers by their exact email (case-sensitive), newest first, ten by default", async () => {
    const { fake } = setup();
    const first = await customer(fake);
    await customer(fake, "Ada@example.com");
    const second = await customer(fake);
    for (let i = 0; i < 11; i++) await customer(fake, `other${i}@example.com`);
    const ada = await call(fake, "GET", `/v1/customers?email=${encodeURIComponent("ada@example.com")}`);
    expect(ada.json).toMatchObject({ object: "list", has_more: false, url: "/v1/customers" });
    expect(ids(ada.json)).toEqual([second, first]);
    expect(ada.json.data[0]).toMatchObject({ object: "customer", email: "ada@example.com", metadata: { shopify_customer_id: SHOPIFY_ID } });
    expect(ids((await call(fake, "GET", "/v1/customers?email=nobody%40example.com")).json)).toEqual([]);
    const page = await call(fake, "GET", "/v1/customers");
    expect([page.json.data.length, page.json.has_more]).toEqual([10, true]);
  });

  it("refuses a limit outside 1..100, unknown parameters, unknown cursors and customers, and both cursors at once", async () => {
    const { fake } = setup();
    const cus = await customer(fake);
    for (const limit of ["0", "101", "ten"]) {
      const refused = await call(fake, "GET", `/v1/invoices?customer=${cus}&limit=${limit}`);
      expect([refused.status, refused.json.error.type, refused.json.error.param]).toEqual([400, "invalid_request_error", "limit"]);
    }
    expect((await call(fake, "GET", "/v1/customers?emial=a%40example.com")).json.error).toMatchObject({ code: "parameter_unknown", param: "emial" });
    expect((await call(fake, "GET", "/v1/invoices?customer=cus_nope")).json.error).toMatchObject({ code: "resource_missing", param: "customer", message: "No such customer: 'cus_nope'" });
    expect((await call(fake, "GET", `/v1/invoices?customer=${cus}&status=sent`)).json.error.param).toBe("status");
    expect((await call(fake, "GET", "/v1/invoices?starting_after=in_nope")).json.error).toMatchObject({ code: "resource_missing", param: "starting_after" });
    const both = await call(fake, "GET", `/v1/customers?starting_after=${cus}&ending_before=${cus}`);
    expect(both.status).toBe(400);
    expect((await call(fake, "GET", "/v1/customers", undefined, { auth: null })).status).toBe(401);
  });

  it("a list is a read: no execution fault is spent on it, and an Idempotency-Key on it is ignored", async () => {
    const { fake } = setup();
    await customer(fake);
    await control(fake, "execution-faults", { count: 1 });
    const listed = await call(fake, "GET", "/v1/customers", undefined, { idem: "list-1" });
    expect(listed.status).toBe(200);
    expect(fake.state.data.executionFaults).toEqual({ count: 1, status: 500, commit: true });
    expect(Object.keys(fake.state.data.idempotency).some((k) => k.endsWith(":list-1"))).toBe(false);
    expect((await call(fake, "POST", "/v1/customers", { email: "bob@example.com" }, { idem: "c" })).status).toBe(500);
  });
});

describe("faults", () => {
  it("an outage or failNext answers before the endpoint runs, so the same key executes on retry", async () => {
    const { fake, clock } = setup();
    await control(fake, "faults", { outageSeconds: 10 });
    const down = await call(fake, "POST", "/v1/customers", { email: "ada@example.com" }, { idem: "c" });
    expect(down.status).toBe(503);
    expect(down.json.error.type).toBe("api_error");
    clock.now += 10_000;
    await control(fake, "faults", { failNext: { count: 1, status: 500 } });
    expect((await call(fake, "POST", "/v1/customers", { email: "ada@example.com" }, { idem: "c" })).status).toBe(500);
    const up = await call(fake, "POST", "/v1/customers", { email: "ada@example.com" }, { idem: "c" });
    expect(up.status).toBe(200);
    expect(up.headers.get("Idempotent-Replayed")).toBeNull();
    expect(Object.keys(fake.state.data.customers)).toHaveLength(1);
  });

  it("a 500 after the endpoint ran is saved under the key and replayed, with or without its effect", async () => {
    const { fake } = setup();
    await control(fake, "execution-faults", { count: 1 });
    const failed = await call(fake, "POST", "/v1/customers", { email: "ada@example.com" }, { idem: "c1" });
    expect(failed.status).toBe(500);
    expect(Object.keys(fake.state.data.customers)).toHaveLength(1); // it happened nonetheless
    const again = await call(fake, "POST", "/v1/customers", { email: "ada@example.com" }, { idem: "c1" });
    expect([again.status, again.headers.get("Idempotent-Replayed")]).toEqual([500, "true"]);
    await control(fake, "execution-faults", { count: 1, commit: false });
    expect((await call(fake, "POST", "/v1/customers", { email: "bob@example.com" }, { idem: "c2" })).status).toBe(500);
    expect(Object.keys(fake.state.data.customers)).toHaveLength(1);
  });

  it("reset empties the account and its keys, and ids are never reused", async () => {
    const { fake } = setup();
    const before = await customer(fake);
    await control(fake, "reset", {});
    expect(fake.state.data.customers).toEqual({});
    expect(fake.state.data.idempotency).toEqual({});
    expect(await customer(fake)).not.toBe(before);
  });
});

describe("an invoice's lines (GET /v1/invoices/{id}/lines)", () => {
  it("lists them in the invoice's order, paged by line id, past the 10 an invoice embeds", async () => {
    const { fake } = setup();
    const cus = await customer(fake);
    const invoice = (await draft(fake, cus)).json.id as string;
    for (let i = 0; i < 12; i++) await call(fake, "POST", "/v1/invoiceitems", { customer: cus, invoice, amount: String(100 + i), currency: "usd" }, { idem: `line-${i}` });
    const embedded = (await call(fake, "GET", `/v1/invoices/${invoice}`)).json.lines;
    expect(embedded).toMatchObject({ has_more: true });
    expect(embedded.data).toHaveLength(10);
    const first = await call(fake, "GET", `/v1/invoices/${invoice}/lines?limit=5`);
    expect(first.json).toMatchObject({ object: "list", has_more: true, url: `/v1/invoices/${invoice}/lines` });
    expect(first.json.data.map((l: Json) => l.amount)).toEqual([100, 101, 102, 103, 104]);
    const rest = await call(fake, "GET", `/v1/invoices/${invoice}/lines?limit=100&starting_after=${first.json.data[4].id}`);
    expect(rest.json.has_more).toBe(false);
    expect(rest.json.data.map((l: Json) => l.amount)).toEqual([105, 106, 107, 108, 109, 110, 111]);
    const bad = await call(fake, "GET", `/v1/invoices/${invoice}/lines?starting_after=il_nope`);
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toMatch(/No such line_item/);
    expect((await call(fake, "GET", "/v1/invoices/in_nope/lines")).status).toBe(404);
  });
});
