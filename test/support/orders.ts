/**
 * Shared by the fan-out tests (workerd side): Shopify orders built as the REST Admin API sends
 * them (18-digit ids as raw JSON integers), their queue messages made by the product's own
 * ingest, and reading the Salesforce, Postmark and Stripe fakes.
 */
import { env } from "cloudflare:workers";
import { AuditBuffer } from "../../src/audit/sink";
import { getConfig } from "../../src/config";
import { redactorFor } from "../../src/connectors";
import { HttpClient } from "../../src/connectors/http-client";
import { SalesforceConnector } from "../../src/connectors/salesforce";
import { createTransport } from "../../src/connectors/transport";
import { parseShopifyWebhook } from "../../src/ingest/shopify";
import { newDelivery, type EventMessage } from "../../src/pipeline/message";
import { SANDBOX_CREDENTIALS } from "../../src/sandbox/credentials";
import { sandboxFetch } from "./sandbox";
export type Vendor = "salesforce" | "postmark" | "stripe";
export const VENDORS: Vendor[] = ["salesforce", "postmark", "stripe"];
export interface Logged { method: string; path: string; status: number; body: Record<string, unknown> | null; idempotencyKey?: string | null; stripeVersion?: string | null }
export interface Line { title: string; price: string; quantity: number; discounts?: string[] }
export interface OrderSpec { customerId?: string | null; email?: string; first?: string; last?: string; name?: string; currency?: string; lines: Line[]; shipping?: string[]; totalTax?: string; taxesIncluded?: boolean; totalPrice: string }

let seq = 0;
/** An 18-digit Shopify id: over 2^53, so a trip through a JS number would change its last digits. */
export const id18 = (prefix: string) => `${prefix}${String(Math.floor(Math.random() * 1e9)).padStart(9, "0")}${String(++seq % 1000).padStart(3, "0")}`;
export const EXT = "Shopify_Customer_Id__c";
export const STRIPE_AUTH = { authorization: `Bearer ${SANDBOX_CREDENTIALS.STRIPE_SECRET_KEY}` };

/** The orders/create body as Shopify sends it: ids as bare integers in the raw JSON. */
export function shopifyOrder(spec: OrderSpec) {
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
export async function orderMessage(raw: string, webhookId: string = crypto.randomUUID()): Promise<EventMessage> {
  const parsed = await parseShopifyWebhook(raw, { topic: "orders/create", webhookId, triggeredAt: new Date().toISOString() }, Date.now());
  if (!parsed.ok) throw new Error(parsed.message);
  return newDelivery(parsed.events[0]!, Date.now());
}

export const control = async (path: string, body?: unknown) => {
  const res = await sandboxFetch(path, body === undefined ? { method: "POST" } : { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return res.json();
};

/**
 * Empties the three fakes, and first makes this isolate's Salesforce connector drop any token it
 * cached in an earlier test (the cache is per isolate, by design): a 401 on its next call makes it
 * forget the token, and a 401 on the token call leaves nothing cached.
 */
export async function resetFanoutFakes(): Promise<void> {
  await control("/salesforce/_sandbox/faults", { failNext: { count: 2, status: 401 } });
  const config = getConfig(env);
  if (!config.salesforce.enabled) throw new Error("salesforce must be enabled in sandbox mode");
  const http = new HttpClient({ transport: createTransport(env, config), audit: new AuditBuffer(), redactor: redactorFor(config), context: { eventId: null, entityKey: null, action: null, attempt: 1 } });
  await new SalesforceConnector(http, config.salesforce, redactorFor(config)).upsertContact("0", { LastName: "flush" }).catch(() => undefined);
  for (const v of VENDORS) await control(`/${v}/_sandbox/reset`);
}

export const requests = async (v: Vendor) => ((await (await sandboxFetch(`/${v}/_sandbox/requests`)).json()) as { requests: Logged[] }).requests;
export const call = (r: Logged) => `${r.method} ${r.path.split("?")[0]} ${r.status}`;

/** Each fake's calls made while `run` ran. */
export async function callsDuring(run: () => Promise<unknown>): Promise<Record<Vendor, Logged[]>> {
  const before = await Promise.all(VENDORS.map(async (v) => (await requests(v)).length));
  await run();
  const after = await Promise.all(VENDORS.map(async (v, i) => (await requests(v)).slice(before[i])));
  return { salesforce: after[0]!, postmark: after[1]!, stripe: after[2]! };
}

export async function outbox(to?: string) {
  const res = await sandboxFetch(`/postmark/_sandbox/outbox${to ? `?to=${encodeURIComponent(to)}` : ""}`);
  return ((await res.json()) as { messages: { To: string; TemplateAlias: string; TemplateModel: Record<string, unknown>; Tag: string | null; Metadata: Record<string, string>; From: string }[] }).messages;
}

export interface StripeData { customers: Record<string, { id: string; metadata: Record<string, string> }>; invoices: Record<string, { id: string; customer: string; status: string; metadata: Record<string, string> }>; invoiceItems: Record<string, { id: string; invoice: string | null; amount: number; description: string | null }> }
export const stripeData = async () => (await (await sandboxFetch("/stripe/_sandbox/state")).json()) as StripeData;

/** The order's invoices as Stripe renders them (GET /v1/invoices/:id), found by their metadata. */
export async function invoicesOf(orderId: string) {
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

export async function actionsOf(eventId: string) {
  const { results } = await env.DB.prepare("SELECT action, state, attempts, note, last_error FROM actions WHERE event_id = ? ORDER BY action").bind(eventId).all<{ action: string; state: string; attempts: number; note: string | null; last_error: string | null }>();
  return Object.fromEntries(results.map((r) => [r.action, r]));
}

// ---- tests -------------------------------------------------------------------------------------

