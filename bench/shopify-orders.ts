/**
 * Shopify `orders/create` webhooks for the bench's orders phase, shaped as the REST Admin API's
 * order resource (https://shopify.dev/docs/api/admin-rest/latest/resources/order): 18-digit ids
 * as JSON integers (beyond 2^53, so the raw text is written by hand, never through a JS number),
 * money as decimal strings, one to four line items, shipping (free over a threshold), tax
 * (added in USD; included in the prices, VAT-style, in EUR and JPY, a currency without a minor
 * unit) and, on about a third of the orders, a percentage discount code allocated to the lines.
 * Every figure is computed in minor units first, so `total_price` is exact and known: the bench
 * checks each finalized Stripe invoice against it. Signed as Shopify signs (node:crypto,
 * independent of the product's verifier).
 */
import { createHmac } from "node:crypto";
import { shuffled } from "./harness";

export type Currency = "USD" | "EUR" | "JPY";

export interface BenchCustomer {
  id: string;
  email: string;
  firstName: string;
  lastName: string;
  currency: Currency;
}

export interface BenchOrder {
  id: string;
  name: string;
  customer: BenchCustomer;
  currency: Currency;
  /** total_price in the currency's smallest unit. */
  totalMinor: number;
  /** Invoice items the order needs: one per line item, shipping when charged, tax when not included. */
  expectedLines: number;
  discounted: boolean;
  webhookId: string;
  /** The body as sent, and its X-Shopify-Hmac-Sha256. */
  body: string;
  hmac: string;
}

const DIGITS: Record<Currency, number> = { USD: 2, EUR: 2, JPY: 0 };
const CUSTOMER_BASE = 115_310_627_314_723_954n;
const ORDER_BASE = 820_982_911_946_154_508n;
const LINE_BASE = 866_550_311_766_439_020n;
const SHIPPING_BASE = 271_878_346_596_884_015n;
const FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Radia", "Tim", "Hedy"];
const LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton", "Perlman", "Berners-Lee", "Lamarr"];
/** [title, sku, price in USD cents]; EUR and JPY prices are derived and rounded as a shop would. */
const PRODUCTS: readonly (readonly [string, string, number])[] = [
  ["Canvas Backpack", "BP-CANVAS", 4500], ["Merino Beanie", "HAT-MERINO", 2800], ["Trail Bottle 750 ml", "BTL-750", 1999],
  ["Wool Socks (3 pack)", "SOCK-3", 2400], ["Field Notebook", "NB-FIELD", 1250], ["Rain Shell", "JKT-RAIN", 12900],
  ["Camp Mug", "MUG-CAMP", 1600], ["Headlamp 300 lm", "LAMP-300", 3999], ["Dry Bag 20 l", "BAG-DRY20", 2950],
];
const DISCOUNTS = [["WELCOME10", 10], ["SPRING15", 15]] as const;

function priceIn(currency: Currency, usdCents: number): number {
  if (currency === "USD") return usdCents;
  if (currency === "EUR") return Math.round((usdCents * 0.92) / 10) * 10 - 1; // 41.40 -> 41.39
  return Math.round((usdCents * 1.55) / 10) * 10; // whole yen, to the ten
}

/** Minor units as Shopify writes the amount: "41.39", "-5.00", and whole yen "6980". */
function money(minor: number, currency: Currency): string {
  const digits = DIGITS[currency];
  if (digits === 0) return String(minor);
  const abs = Math.abs(minor);
  return `${minor < 0 ? "-" : ""}${Math.floor(abs / 10 ** digits)}.${String(abs % 10 ** digits).padStart(digits, "0")}`;
}

const set = (amount: string, currency: Currency) => ({ shop_money: { amount, currency_code: currency }, presentment_money: { amount, currency_code: currency } });

/** JSON with bigint values written as bare integers (JSON.stringify refuses bigint). */
function rawJson(value: unknown): string {
  return JSON.stringify(value, (_, v: unknown) => (typeof v === "bigint" ? `__int__${v}` : v)).replace(/"__int__(-?\d+)"/g, "$1");
}

function uuid(random: () => number): string {
  const hex = Array.from({ length: 32 }, () => Math.floor(random() * 16).toString(16)).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20)}`;
}

export function makeCustomers(count: number, random: () => number): BenchCustomer[] {
  return Array.from({ length: count }, (_, k) => {
    const firstName = FIRST[Math.floor(random() * FIRST.length)]!;
    const lastName = LAST[Math.floor(random() * LAST.length)]!;
    const r = random();
    const currency: Currency = r < 0.75 ? "USD" : r < 0.9 ? "EUR" : "JPY";
    const id = String(CUSTOMER_BASE + BigInt(k) * 7_919n);
    return { id, email: `${firstName}.${lastName}.${k}@example.com`.toLowerCase(), firstName, lastName, currency };
  });
}

/**
 * `count` orders over `customers` (each customer at least once while there are orders for it; the
 * rest to customers drawn at random, so some order twice or more), in a shuffled order, so a
 * customer's second order may arrive right after the first.
 */
export function makeOrders(count: number, customers: BenchCustomer[], random: () => number, secret: string, now = Date.now()): BenchOrder[] {
  const buyers = customers.slice(0, count);
  while (buyers.length < count) buyers.push(customers[Math.floor(random() * customers.length)]!);
  return shuffled(buyers, random).map((customer, i) => buildOrder(i, customer, random, secret, now));
}

function buildOrder(i: number, customer: BenchCustomer, random: () => number, secret: string, now: number): BenchOrder {
  const cur = customer.currency;
  const orderId = ORDER_BASE + BigInt(i) * 104_729n;
  const number = 1001 + i;
  const created = new Date(now - 60_000 + i * 37).toISOString();
  const picks = shuffled(PRODUCTS, random).slice(0, 1 + Math.floor(random() * 4));
  const discount = random() < 0.35 ? DISCOUNTS[Math.floor(random() * DISCOUNTS.length)]! : null;
  const lines = picks.map(([title, sku, usd], j) => {
    const quantity = random() < 0.7 ? 1 : 2 + Math.floor(random() * 2);
    const price = priceIn(cur, usd);
    const allocated = discount ? Math.round((price * quantity * discount[1]) / 100) : 0;
    return { id: LINE_BASE + BigInt(i) * 10n + BigInt(j), title, sku, quantity, price, allocated };
  });
  const itemsTotal = lines.reduce((s, l) => s + l.price * l.quantity, 0);
  const discounts = lines.reduce((s, l) => s + l.allocated, 0);
  const subtotal = itemsTotal - discounts;
  const [threshold, rate] = cur === "USD" ? [10_000, 650] : cur === "EUR" ? [5_000, 490] : [8_000, 600];
  const shipping = subtotal >= threshold ? 0 : rate;
  // USD: NY sales tax on the discounted items, added. EUR (19% VAT) and JPY (10%): included in the prices.
  const taxesIncluded = cur !== "USD";
  const tax = cur === "USD" ? Math.round(subtotal * 0.08875) : Math.round(((subtotal + shipping) * (cur === "EUR" ? 19 : 10)) / (cur === "EUR" ? 119 : 110));
  const taxRate = cur === "USD" ? 0.08875 : cur === "EUR" ? 0.19 : 0.1;
  const taxTitle = cur === "USD" ? "NY State Tax" : cur === "EUR" ? "DE MwSt" : "消費税";
  const total = subtotal + shipping + (taxesIncluded ? 0 : tax);
  const m = (minor: number) => money(minor, cur);
  const address = { first_name: customer.firstName, last_name: customer.lastName, address1: `${10 + (i % 90)} Main Street`, city: "Springfield", zip: "10001", country_code: cur === "USD" ? "US" : cur === "EUR" ? "DE" : "JP" };

  const order = {
    id: orderId,
    admin_graphql_api_id: `gid://shopify/Order/${orderId}`,
    app_id: 580111n,
    browser_ip: "198.51.100.23",
    buyer_accepts_marketing: random() < 0.4,
    confirmation_number: uuid(random).slice(0, 9).toUpperCase().replace("-", ""),
    confirmed: true,
    contact_email: customer.email,
    created_at: created,
    currency: cur,
    current_total_price: m(total),
    customer_locale: cur === "JPY" ? "ja" : cur === "EUR" ? "de" : "en",
    discount_codes: discount ? [{ code: discount[0], amount: m(discounts), type: "percentage" }] : [],
    discount_applications: discount ? [{ target_type: "line_item", type: "discount_code", value: `${discount[1]}.0`, value_type: "percentage", allocation_method: "across", target_selection: "all", code: discount[0] }] : [],
    email: customer.email,
    financial_status: "paid",
    fulfillment_status: null,
    name: `#${number}`,
    order_number: number,
    presentment_currency: cur,
    processed_at: created,
    source_name: "web",
    subtotal_price: m(subtotal),
    subtotal_price_set: set(m(subtotal), cur),
    tags: "",
    tax_lines: tax > 0 ? [{ price: m(tax), rate: taxRate, title: taxTitle, price_set: set(m(tax), cur) }] : [],
    taxes_included: taxesIncluded,
    test: false,
    token: uuid(random).replace(/-/g, ""),
    total_discounts: m(discounts),
    total_discounts_set: set(m(discounts), cur),
    total_line_items_price: m(itemsTotal),
    total_price: m(total),
    total_price_set: set(m(total), cur),
    total_shipping_price_set: set(m(shipping), cur),
    total_tax: m(tax),
    total_tax_set: set(m(tax), cur),
    total_weight: 1200,
    updated_at: created,
    billing_address: address,
    shipping_address: address,
    customer: {
      id: BigInt(customer.id),
      email: customer.email,
      created_at: created,
      updated_at: created,
      first_name: customer.firstName,
      last_name: customer.lastName,
      state: "enabled",
      verified_email: true,
      currency: cur,
      tags: "",
      admin_graphql_api_id: `gid://shopify/Customer/${customer.id}`,
      default_address: { ...address, id: BigInt(customer.id) + 1n, default: true },
    },
    line_items: lines.map((l) => ({
      id: l.id,
      admin_graphql_api_id: `gid://shopify/LineItem/${l.id}`,
      fulfillable_quantity: l.quantity,
      fulfillment_status: null,
      gift_card: false,
      grams: 400,
      name: l.title,
      price: m(l.price),
      price_set: set(m(l.price), cur),
      product_id: 7_513_594_962_047n + BigInt(l.sku.length),
      quantity: l.quantity,
      requires_shipping: true,
      sku: l.sku,
      taxable: true,
      title: l.title,
      total_discount: m(0),
      variant_id: 42_858_127_540_351n + BigInt(l.sku.length),
      vendor: "Syncwire Outfitters",
      discount_allocations: l.allocated > 0 ? [{ amount: m(l.allocated), amount_set: set(m(l.allocated), cur), discount_application_index: 0 }] : [],
      tax_lines: [],
    })),
    shipping_lines: [
      { id: SHIPPING_BASE + BigInt(i), code: "Standard", title: "Standard", source: "shopify", price: m(shipping), discounted_price: m(shipping), price_set: set(m(shipping), cur), discount_allocations: [], tax_lines: [] },
    ],
  };
  const body = rawJson(order);
  return {
    id: String(orderId),
    name: `#${number}`,
    customer,
    currency: cur,
    totalMinor: total,
    expectedLines: lines.length + (shipping > 0 ? 1 : 0) + (!taxesIncluded && tax > 0 ? 1 : 0),
    discounted: discount !== null,
    webhookId: uuid(random),
    body,
    hmac: createHmac("sha256", secret).update(body, "utf8").digest("base64"),
  };
}
