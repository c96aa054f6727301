/**
 * The order's invoice in Stripe (CONTRACT 6): its customer (one per Shopify customer), a draft
 * invoice, one invoice item per line attached to it (so it cannot stay pending), then finalize.
 *
 * Every call carries an Idempotency-Key made of the Shopify ids and the step, so a retry after a
 * lost answer gets the first answer back. Stripe forgets keys after a day; the customer and the
 * invoice are also linked in D1 (pipeline/effects.ts), so a replay days later finishes the same
 * invoice and never makes a second customer or invoice. A retry reads the invoice it has: an open
 * one is done; on a draft, only the lines it lacks are added before it is finalized.
 *
 * A create whose outcome is unknown (a 5xx, or no answer) is the exception. Stripe saves the
 * first answer under the key once the endpoint began executing, a 500 included, and replays it
 * to every retry with that key for a day (https://docs.stripe.com/api/idempotent_requests): a
 * customer or invoice made by a create that answered 500 would never be linked, every retry
 * would get the same 500, and once the key expired a retry would make a second one. So such a
 * failure is noted in D1 (`unsettled`, see `madeOnce`), and the next run looks in Stripe first:
 * the order's invoice among its customer's invoices (`metadata.shopify_order_id`), the customer
 * among those with the order's email (`metadata.shopify_customer_id`, or `shopify_order_id` for
 * a guest). What it finds is linked and finished; if there is nothing, it is created under the
 * key's next generation (`syncwire:invoice:<order id>:2`), which no saved answer can shadow.
 * A first attempt makes exactly the calls it made before: the notes cost nothing until a create
 * fails that way.
 */
import { ActionFailure } from "../../connectors/errors";
import { MAX_LIST_LIMIT, type StripeConnector, type StripeCustomer, type StripeList } from "../../connectors/stripe";
import type { Links } from "../../pipeline/effects";
import { invoiceOf, type Order } from "./order";

/** A Stripe Idempotency-Key: what it is for, and the Shopify ids that make it unique. */
const key = (...parts: string[]) => `syncwire:${parts.join(":")}`;

export async function invoiceOrder(order: Order, stripe: StripeConnector, links: Links): Promise<string> {
  // First: an amount the currency cannot carry makes this action invalid before any call.
  const { lines } = invoiceOf(order);
  // Both links in one round trip: the customer's and (on a retry) the invoice's.
  const [customerLink, invoiceLink] = await links.getMany([
    ["stripe-customer", customerKey(order)],
    ["stripe-invoice", order.id],
  ]);
  const customer = await customerOf(order, stripe, links, customerLink ?? null);
  const linked = await madeOnce(links, "stripe-invoice", order.id, invoiceLink ?? null, {
    key: (generation) => key("invoice", order.id, ...generationSuffix(generation)),
    create: (idempotencyKey) =>
      stripe.createInvoice(
        { customer, currency: order.currency.toLowerCase(), description: `Shopify order ${order.name}`, metadata: { shopify_order_id: order.id } },
        idempotencyKey,
      ),
    find: () => findListed((startingAfter) => stripe.listInvoices({ customer, limit: MAX_LIST_LIMIT, ...(startingAfter ? { startingAfter } : {}) }), (i) => i.metadata.shopify_order_id === order.id),
  });
  // An attempt that linked first keeps its invoice (the same one, by the same key, within a day).
  const invoice = linked.object ?? (await stripe.getInvoice(linked.id));
  if (invoice.status !== "draft") return `invoice ${invoice.id} ${invoice.status}, total ${invoice.total} ${invoice.currency}`;

  // Lines already on the draft (an earlier attempt's): by the line number in their metadata.
  const present = new Set(invoice.lines.data.map((l) => (l as { metadata?: Record<string, string> }).metadata?.syncwire_line).filter((n): n is string => n !== undefined));
  for (const [i, line] of lines.entries()) {
    if (present.has(String(i))) continue;
    await stripe.createInvoiceItem(
      { customer, invoice: invoice.id, amount: line.amount, currency: order.currency.toLowerCase(), description: line.description, metadata: { shopify_order_id: order.id, syncwire_line: String(i) } },
      key("item", order.id, String(i)),
    );
  }
  const final = await stripe.finalizeInvoice(invoice.id, key("finalize", order.id));
  return `invoice ${final.id} ${final.status}, total ${final.total} ${final.currency}`;
}

/** Whose Stripe customer an order's is: its Shopify customer's, or a guest order's own. */
const customerKey = (order: Order) => order.customerId ?? `order-${order.id}`;

/** The Stripe customer of the order's Shopify customer (a guest's order: of the order), made once; `linked`: its first link, read already. */
async function customerOf(order: Order, stripe: StripeConnector, links: Links, linked: string | null): Promise<string> {
  const who = customerKey(order);
  const name = [order.firstName, order.lastName].filter(Boolean).join(" ");
  const metadata: Record<string, string> = order.customerId ? { shopify_customer_id: order.customerId } : { shopify_order_id: order.id };
  const isTheCustomer = (c: StripeCustomer) => (order.customerId ? c.metadata.shopify_customer_id === order.customerId : c.metadata.shopify_order_id === order.id);
  const email = order.email ?? "";
  const made = await madeOnce(links, "stripe-customer", who, linked, {
    key: (generation) => key("customer", who, ...generationSuffix(generation)),
    create: (idempotencyKey) => stripe.createCustomer({ email, ...(name ? { name } : {}), metadata }, idempotencyKey),
    // Stripe lists customers by email only (search by metadata lags behind writes): without an
    // email, a customer an unsettled create may have made cannot be found, and a new one is made.
    find: async () =>
      email === ""
        ? null
        : findListed((startingAfter) => stripe.listCustomers({ email, limit: MAX_LIST_LIMIT, ...(startingAfter ? { startingAfter } : {}) }), isTheCustomer),
  });
  return made.id;
}

// ---- made once, linked by generation ------------------------------------------------------------

/**
 * The D1 link value of a generation whose create may or may not have made the object: its
 * answer was a 5xx (Stripe may have saved it under the key, and replays it to every retry with
 * that key) or never came.
 */
const UNSETTLED = "unsettled";

/** Generation 1 is the plain key and link (as before generations existed); generation n adds `:n`. */
const generationSuffix = (generation: number): string[] => (generation === 1 ? [] : [String(generation)]);
const linkKey = (id: string, generation: number) => [id, ...generationSuffix(generation)].join(":");

interface Made<T> {
  id: string;
  /** The object as this run got it (made or found), or null when it was linked before. */
  object: T | null;
}

/**
 * The object made once for `id`, linked in D1 under `kind`. Links are written once, so each
 * generation has its own: `id` (generation 1), `id:2`, `id:3`, … A generation's link holds the
 * object's id, or UNSETTLED when its create failed in a way that may have made the object; the
 * run after one then looks for the object (`find`) before creating, and creates under the next
 * generation's key, so a 500 Stripe saved under an earlier key is never asked for again. A run
 * whose create fails that way writes UNSETTLED and fails as the create did.
 */
async function madeOnce<T extends { id: string }>(
  links: Links,
  kind: string,
  id: string,
  /** The link of generation 1, read already. */
  first: string | null,
  how: { key: (generation: number) => string; create: (idempotencyKey: string) => Promise<T>; find: () => Promise<T | null> },
): Promise<Made<T>> {
  let generation = 1;
  let value = first;
  while (value === UNSETTLED) value = await links.get(kind, linkKey(id, ++generation));
  if (value !== null) return { id: value, object: null };

  if (generation > 1) {
    const found = await how.find();
    if (found !== null) return settle(links, kind, id, generation, found);
  }
  let made: T;
  try {
    made = await how.create(how.key(generation));
  } catch (error) {
    if (mayHaveMade(error)) await links.put(kind, linkKey(id, generation), UNSETTLED);
    throw error;
  }
  return settle(links, kind, id, generation, made);
}

/** Links `object` at `generation`, or at a later one if another run marked that one unsettled meanwhile; answers what is kept. */
async function settle<T extends { id: string }>(links: Links, kind: string, id: string, generation: number, object: T): Promise<Made<T>> {
  for (let n = generation; ; n++) {
    const kept = await links.put(kind, linkKey(id, n), object.id);
    if (kept !== UNSETTLED) return { id: kept, object: kept === object.id ? object : null };
  }
}

/**
 * Whether a failed create may still have made its object: Stripe answered a 5xx (which it saves
 * under the key when the endpoint had begun), no answer came (status null), or it answered 2xx
 * with a body this code could not read. A 4xx made nothing, and a failure without a status was
 * never sent.
 */
function mayHaveMade(error: unknown): boolean {
  if (!(error instanceof ActionFailure) || error.details.capacity === true) return false;
  const { status } = error.details;
  if (status === undefined) return false;
  return status === null || status >= 500 || (status >= 200 && status < 300);
}

/** The first object of a Stripe list that `matches`, page by page (newest first); null when none does. */
async function findListed<T extends { id: string }>(page: (startingAfter?: string) => Promise<StripeList<T>>, matches: (item: T) => boolean): Promise<T | null> {
  let startingAfter: string | undefined;
  for (;;) {
    const { data, has_more } = await page(startingAfter);
    const found = data.find(matches);
    if (found !== undefined) return found;
    if (!has_more || data.length === 0) return null;
    startingAfter = data[data.length - 1]!.id;
  }
}
