/**
 * End to end: a Shopify order through the bundled worker in Miniflare (real local queue with its
 * real retry delays, D1, Durable Objects), with Salesforce, Postmark and Stripe answered by the
 * sandbox fakes served as local HTTP servers, and webhooks signed as Shopify signs them
 * (node:crypto, independent of the product's verifier).
 */
import { createHmac } from "node:crypto";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createFakePostmark } from "../../src/sandbox/fake-postmark";
import { createFakeSalesforce } from "../../src/sandbox/fake-salesforce";
import type { FakeService } from "../../src/sandbox/fake-service";
import { createFakeStripe } from "../../src/sandbox/fake-stripe";
import { until } from "../support/e2e";
import { startLocalWorker, type LocalWorker } from "../support/local-worker";
import { mountFake, serveFetch, type ServedFetch } from "../support/serve-fetch";

const SHOPIFY_SECRET = "e2e-shopify-webhook-secret-0123";
const SF_CLIENT = { clientId: "e2e-salesforce-client-id", clientSecret: "e2e-salesforce-client-secret" };
const POSTMARK_TOKEN = "e2e-postmark-server-token";
const STRIPE_KEY = "sk_test_e2e_syncwire_0123456789";

type Vendor = "salesforce" | "postmark" | "stripe";
let servers: Record<Vendor, ServedFetch>;
let worker: LocalWorker;

beforeAll(async () => {
  const fakes: Record<Vendor, FakeService<unknown>> = {
    // instance_url: where the token request was sent, i.e. this server.
    salesforce: createFakeSalesforce(SF_CLIENT) as FakeService<unknown>,
    postmark: createFakePostmark({ serverToken: POSTMARK_TOKEN, templates: ["welcome-e2e"] }) as FakeService<unknown>,
    stripe: createFakeStripe({ secretKey: STRIPE_KEY }) as FakeService<unknown>,
  };
  servers = {
    salesforce: await serveFetch(mountFake(fakes.salesforce)),
    postmark: await serveFetch(mountFake(fakes.postmark)),
    stripe: await serveFetch(mountFake(fakes.stripe)),
  };
  worker = await startLocalWorker({
    vars: {
      SANDBOX: "false",
      ADMIN_TOKEN: "e2e-admin-token-0123456789",
      SHOPIFY_WEBHOOK_SECRET: SHOPIFY_SECRET,
      SALESFORCE_LOGIN_URL: servers.salesforce.url,
      SALESFORCE_CLIENT_ID: SF_CLIENT.clientId,
      SALESFORCE_CLIENT_SECRET: SF_CLIENT.clientSecret,
      POSTMARK_SERVER_TOKEN: POSTMARK_TOKEN,
      POSTMARK_BASE_URL: servers.postmark.url,
      POSTMARK_FROM: "Syncwire Shop <orders@shop.example.com>",
      POSTMARK_WELCOME_TEMPLATE: "welcome-e2e",
      STRIPE_SECRET_KEY: STRIPE_KEY,
      STRIPE_BASE_URL: servers.stripe.url,
    },
  });
});

afterAll(async () => {
  await worker?.close();
  await Promise.all(Object.values(servers ?? {}).map((s) => s.close()));
});

beforeEach(async () => {
  for (const s of Object.values(servers)) await fetch(`${s.url}/_sandbox/reset`, { method: "POST" });
});

let n = 0;
/** An orders/create body with raw 18-digit ids; 2 x 45.00 - 5.00 + 6.50 shipping + 7.30 tax = 98.80 USD. */
function orderBody() {
  n++;
  const orderId = `82098291194615${String(4500 + n)}`;
  const customerId = `11531062731472${String(3900 + n)}`;
  const email = `e2e.buyer${n}@example.com`;
  const raw =
    `{"id":${orderId},"admin_graphql_api_id":"gid://shopify/Order/${orderId}","name":"#${2000 + n}","order_number":${2000 + n},"email":"${email}","contact_email":"${email}",` +
    `"currency":"USD","presentment_currency":"USD","financial_status":"paid","fulfillment_status":null,"created_at":"2026-05-01T10:00:00-04:00",` +
    `"subtotal_price":"85.00","total_discounts":"5.00","total_line_items_price":"90.00","total_tax":"7.30","taxes_included":false,"total_price":"98.80",` +
    `"line_items":[{"id":866550311766439${String(100 + n)},"product_id":632910392,"variant_id":808950810,"title":"Canvas Backpack","name":"Canvas Backpack","sku":"BP-1","quantity":2,"price":"45.00",` +
    `"total_discount":"0.00","discount_allocations":[{"amount":"5.00","discount_application_index":0,"amount_set":{"shop_money":{"amount":"5.00","currency_code":"USD"}}}],"tax_lines":[]}],` +
    `"shipping_lines":[{"id":271878346596884015,"title":"Standard","code":"Standard","price":"6.50","discounted_price":"6.50","source":"shopify","discount_allocations":[]}],` +
    `"customer":{"id":${customerId},"email":"${email}","first_name":"Grace","last_name":"Hopper","state":"enabled","verified_email":true,"currency":"USD"}}`;
  return { raw, orderId, customerId, email };
}

function postOrder(raw: string, webhookId: string, secret = SHOPIFY_SECRET): Promise<Response> {
  return fetch(`${worker.url}/webhooks/shopify`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-shopify-hmac-sha256": createHmac("sha256", secret).update(raw, "utf8").digest("base64"),
      "x-shopify-topic": "orders/create",
      "x-shopify-webhook-id": webhookId,
      "x-shopify-shop-domain": "syncwire-e2e.myshopify.com",
      "x-shopify-triggered-at": new Date().toISOString(),
    },
    body: raw,
  });
}

interface Logged { method: string; path: string; status: number; body: Record<string, unknown> | null; idempotencyKey?: string | null }
const log = async (v: Vendor) => ((await (await fetch(`${servers[v].url}/_sandbox/requests`)).json()) as { requests: Logged[] }).requests;
const outbox = async () => ((await (await fetch(`${servers.postmark.url}/_sandbox/outbox`)).json()) as { messages: { To: string; TemplateAlias: string; TemplateModel: Record<string, unknown> }[] }).messages;
async function invoices() {
  const state = (await (await fetch(`${servers.stripe.url}/_sandbox/state`)).json()) as { invoices: Record<string, { id: string; metadata: Record<string, string> }> };
  return Promise.all(
    Object.values(state.invoices).map(async (i) => (await (await fetch(`${servers.stripe.url}/v1/invoices/${i.id}`, { headers: { authorization: `Bearer ${STRIPE_KEY}` } })).json()) as { id: string; status: string; total: number; currency: string; metadata: Record<string, string> }),
  );
}
const eventStatus = async (id: string) => (await worker.query<{ status: string; duplicates: number }>("SELECT status, duplicates FROM events WHERE id = ?", id))[0];

describe("a Shopify order, end to end", () => {
  it("a signed orders/create answers 202 and ends with one Contact, one welcome email and one finalized invoice; the same webhook again changes nothing", async () => {
    const order = orderBody();
    const webhookId = crypto.randomUUID();
    const res = await postOrder(order.raw, webhookId);
    expect(res.status).toBe(202);
    const [eventId] = ((await res.json()) as { eventIds: string[] }).eventIds;
    await until(async () => (await eventStatus(eventId!))?.status === "done", 20_000, "the order event done");

    const salesforce = await log("salesforce");
    expect(salesforce.map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual([
      "POST /services/oauth2/token 200",
      `PATCH /services/data/v62.0/sobjects/Contact/Shopify_Customer_Id__c/${order.customerId} 201`,
    ]);
    expect(salesforce[1]!.body).toEqual({ FirstName: "Grace", LastName: "Hopper", Email: order.email });
    expect(await outbox()).toMatchObject([{ To: order.email, TemplateAlias: "welcome-e2e", TemplateModel: { order_name: `#${order.raw.match(/"name":"#(\d+)"/)![1]}` } }]);
    const all = await invoices();
    expect(all).toMatchObject([{ status: "open", total: 9880, currency: "usd", metadata: { shopify_order_id: order.orderId } }]);
    const stripe = await log("stripe");
    expect(stripe.filter((r) => r.method === "POST" && r.path === "/v1/customers")).toMatchObject([{ status: 200, body: { metadata: { shopify_customer_id: order.customerId } } }]);
    expect(stripe.filter((r) => r.path.endsWith("/finalize")).map((r) => r.status)).toEqual([200]);

    // Shopify retries the delivery: the same id answered, recorded as a duplicate, nothing sent.
    const before = { salesforce: salesforce.length, postmark: (await log("postmark")).length, stripe: stripe.length };
    const again = await postOrder(order.raw, webhookId);
    expect(again.status).toBe(202);
    expect(((await again.json()) as { eventIds: string[] }).eventIds).toEqual([eventId]);
    await until(async () => (await eventStatus(eventId!))?.duplicates === 1, 20_000, "the duplicate recorded");
    await new Promise((r) => setTimeout(r, 500));
    expect({ salesforce: (await log("salesforce")).length, postmark: (await log("postmark")).length, stripe: (await log("stripe")).length }).toEqual(before);
  });

  it("with Postmark down for 3 s the email arrives after it recovers, by the real queue's retries, and nothing else is repeated", async () => {
    const order = orderBody();
    await fetch(`${servers.postmark.url}/_sandbox/faults`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ outageSeconds: 3 }) });
    const res = await postOrder(order.raw, crypto.randomUUID());
    expect(res.status).toBe(202);
    const [eventId] = ((await res.json()) as { eventIds: string[] }).eventIds;
    await until(async () => (await eventStatus(eventId!))?.status === "done", 45_000, "the order event done");

    const postmark = await log("postmark");
    expect(postmark.some((r) => r.status === 503)).toBe(true);
    expect(postmark.filter((r) => r.status === 200)).toHaveLength(1);
    expect(await outbox()).toHaveLength(1);
    // (The fakes were reset, so the worker's cached Salesforce token may meet a 401 and be refreshed first.)
    expect((await log("salesforce")).filter((r) => r.method === "PATCH" && r.status < 300)).toHaveLength(1);
    expect((await log("stripe")).filter((r) => r.method === "POST" && r.path === "/v1/invoices")).toHaveLength(1);
    expect(await invoices()).toMatchObject([{ status: "open", total: 9880 }]);
    const [postmarkAction] = await worker.query<{ attempts: number; state: string }>("SELECT attempts, state FROM actions WHERE event_id = ? AND action = 'postmark.welcome'", eventId);
    expect(postmarkAction).toMatchObject({ state: "done" });
    expect(postmarkAction!.attempts).toBeGreaterThanOrEqual(2);
  });

  it("a webhook signed with another secret is refused (401) and reaches no vendor", async () => {
    const order = orderBody();
    const res = await postOrder(order.raw, crypto.randomUUID(), "not-the-shopify-secret-at-all");
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("invalid_signature");
    await new Promise((r) => setTimeout(r, 1_500));
    expect([...(await log("salesforce")), ...(await log("postmark")), ...(await log("stripe"))]).toEqual([]);
  });
});
