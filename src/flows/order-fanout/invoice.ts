/**
 * The order's invoice in Stripe (CONTRACT 6): its customer (one per Shopify customer), a draft
 * invoice, one invoice item per line attached to it (so it cannot stay pending), then finalize.
 *
 * Every call carries an Idempotency-Key made of the Shopify ids and the step, so a retry after a
 * lost answer gets the first answer back. Stripe forgets keys after a day; the customer and the
 * invoice are also linked in D1 (pipeline/effects.ts), so a replay days later finishes the same
 * invoice and never makes a second customer or invoice. A retry reads the invoice it has: an open
 * one is done; on a draft, only the lines it lacks are added (all its lines are read, past the
 * 10 an invoice embeds) before it is finalized.
 *
 * A call that answered 5xx is the exception. Stripe saves the first answer under the key once
 * the endpoint began executing, a 500 included, and replays it to every retry with that key for
 * a day (https://docs.stripe.com/api/idempotent_requests): a customer or invoice made by a create
 * that answered 500 would never be linked, every retry would get the same 500 (an item or a
 * finalize too), and once the key expired a retry would make a second one. So such a failure is
 * noted in D1 (`unsettled`), and the next run checks Stripe first, then asks under the key's next
 * generation (`syncwire:invoice:<order id>:2`), which no saved answer can shadow:
 * - a create (`madeOnce`) looks for what it may have made: the order's invoice among its
 *   customer's invoices (`metadata.shopify_order_id`), the customer among those with the order's
 *   email (`metadata.shopify_customer_id`, or `shopify_order_id` for a guest), and links it;
 * - an item or the finalize (`keyedStep`) is checked anyway: the lines on the draft, its status.
 * A call that got no answer keeps its key (see `mayHaveMade`). A first attempt makes exactly the
 * calls it made before, and reads the notes in the round trip that reads its links: they cost
 * nothing until a call fails that way.
 */
import { ActionFailure } from "../../connectors/errors";
import { MAX_LIST_LIMIT, type InvoiceLine, type StripeConnector, type StripeCustomer, type StripeList } from "../../connectors/stripe";
import type { Links } from "../../pipeline/effects";
import { invoiceOf, type Order } from "./order";

/** A Stripe Idempotency-Key: what it is for, and the Shopify ids that make it unique. */
const key = (...parts: string[]) => `syncwire:${parts.join(":")}`;

export async function invoiceOrder(order: Order, stripe: StripeConnector, links: Links): Promise<string> {
  // First: an amount the currency cannot carry makes this action invalid before any call.
  const { lines } = invoiceOf(order);
  // Every link and note this order may need, in one round trip: the customer's and (on a retry)
  // the invoice's links, and the notes of its items' and its finalize's keys.
  const stepKeys = [...lines.map((_, i) => `item:${order.id}:${i}`), `finalize:${order.id}`];
  const [customerLink, invoiceLink, ...stepNotes] = await links.getMany([
    ["stripe-customer", customerKey(order)],
    ["stripe-invoice", order.id],
    ...stepKeys.map((k) => [STEP_KEYS, k] as const),
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

  // Lines already on the draft (an earlier attempt's): by the line number in their metadata. An
  // invoice embeds its first 10 lines; the others are listed.
  const onInvoice = invoice.lines.has_more ? await allLines(stripe, invoice.id) : invoice.lines.data;
  const present = new Set(onInvoice.map((l) => l.metadata?.syncwire_line).filter((n): n is string => n !== undefined));
  for (const [i, line] of lines.entries()) {
    if (present.has(String(i))) continue;
    await keyedStep(links, stepKeys[i]!, stepNotes[i] ?? null, (generation) =>
      stripe.createInvoiceItem(
        { customer, invoice: invoice.id, amount: line.amount, currency: order.currency.toLowerCase(), description: line.description, metadata: { shopify_order_id: order.id, syncwire_line: String(i) } },
        key("item", order.id, String(i), ...generationSuffix(generation)),
      ),
    );
  }
  const final = await keyedStep(links, stepKeys[lines.length]!, stepNotes[lines.length] ?? null, (generation) =>
    stripe.finalizeInvoice(invoice.id, key("finalize", order.id, ...generationSuffix(generation))),
  );
  return `invoice ${final.id} ${final.status}, total ${final.total} ${final.currency}`;
}

/** Every line of an invoice, page by page. */
async function allLines(stripe: StripeConnector, invoiceId: string): Promise<InvoiceLine[]> {
  const out: InvoiceLine[] = [];
  for (let startingAfter: string | undefined; ; ) {
    const page = await stripe.listInvoiceLines(invoiceId, { limit: MAX_LIST_LIMIT, ...(startingAfter ? { startingAfter } : {}) });
    out.push(...page.data);
    if (!page.has_more || page.data.length === 0) return out;
    startingAfter = page.data[page.data.length - 1]!.id;
  }
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

/** The D1 link kind of the notes on item and finalize keys (`item:<order id>:<line>`, `finalize:<order id>`). */
const STEP_KEYS = "stripe-step-key";

/**
 * A step that is not made once but checked before it is run (an invoice item, by the lines on
 * the draft; finalize, by the invoice's status): it runs under its key's generation, the first
 * whose note is not UNSETTLED (`first`: generation 1's note, read already). When it fails in a way
 * that Stripe may have saved under the key (a 5xx, no answer), the generation is noted
 * UNSETTLED, so the next attempt, having checked what was made, asks under a new key instead of
 * getting the saved failure back for a day.
 */
async function keyedStep<T>(links: Links, id: string, first: string | null, run: (generation: number) => Promise<T>): Promise<T> {
  let generation = 1;
  for (let note = first; note === UNSETTLED; ) note = await links.get(STEP_KEYS, linkKey(id, ++generation));
  try {
    return await run(generation);
  } catch (error) {
    if (mayHaveMade(error)) await links.put(STEP_KEYS, linkKey(id, generation), UNSETTLED);
    throw error;
  }
}

/** Links `object` at `generation`, or at a later one if another run marked that one unsettled meanwhile; answers what is kept. */
async function settle<T extends { id: string }>(links: Links, kind: string, id: string, generation: number, object: T): Promise<Made<T>> {
  for (let n = generation; ; n++) {
    const kept = await links.put(kind, linkKey(id, n), object.id);
    if (kept !== UNSETTLED) return { id: kept, object: kept === object.id ? object : null };
  }
}

/**
 * Whether a failed call may have left an answer under its key that every retry with that key
 * would get back for a day: Stripe answered a 5xx (which it saves when the endpoint had begun),
 * or a 2xx whose body this code could not read. The next attempt checks what was made, then
 * uses the key's next generation. Not when no answer came: the same key is asked again, and
 * Stripe replays what it saved, answers 409 while the first call is still running, or runs it
 * if it never arrived; a new key could make a second object next to one still being made. A
 * 4xx made nothing, and a failure without a status was never sent.
 */
function mayHaveMade(error: unknown): boolean {
  if (!(error instanceof ActionFailure) || error.details.capacity === true) return false;
  const { status } = error.details;
  if (status === undefined || status === null) return false;
  return status >= 500 || (status >= 200 && status < 300);
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
