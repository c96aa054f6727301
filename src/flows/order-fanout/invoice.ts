/**
 * The order's invoice in Stripe (CONTRACT 6): its customer (one per Shopify customer), a draft
 * invoice, one invoice item per line attached to it (so it cannot stay pending), then finalize.
 *
 * Every call carries an Idempotency-Key made of the Shopify ids and the step, so a retry after a
 * lost answer gets the first answer back. Stripe forgets keys after a day; the customer and the
 * invoice are also linked in D1 (pipeline/effects.ts), so a replay days later finishes the same
 * invoice and never makes a second customer or invoice. A retry reads the invoice it has: an open
 * one is done; on a draft, only the lines it lacks are added before it is finalized.
 */
import type { StripeConnector, StripeInvoice } from "../../connectors/stripe";
import type { Links } from "../../pipeline/effects";
import { invoiceOf, type Order } from "./order";

/** A Stripe Idempotency-Key: what it is for, and the Shopify ids that make it unique. */
const key = (...parts: string[]) => `syncwire:${parts.join(":")}`;

export async function invoiceOrder(order: Order, stripe: StripeConnector, links: Links): Promise<string> {
  // First: an amount the currency cannot carry makes this action invalid before any call.
  const { lines } = invoiceOf(order);
  const customer = await customerOf(order, stripe, links);
  const linked = await links.get("stripe-invoice", order.id);
  let invoice: StripeInvoice;
  if (linked) {
    invoice = await stripe.getInvoice(linked);
  } else {
    const made = await stripe.createInvoice(
      { customer, currency: order.currency.toLowerCase(), description: `Shopify order ${order.name}`, metadata: { shopify_order_id: order.id } },
      key("invoice", order.id),
    );
    // An attempt that linked first keeps its invoice (the same one, by the same key, within a day).
    const kept = await links.put("stripe-invoice", order.id, made.id);
    invoice = kept === made.id ? made : await stripe.getInvoice(kept);
  }
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

/** The Stripe customer of the order's Shopify customer (a guest's order: of the order), made once. */
async function customerOf(order: Order, stripe: StripeConnector, links: Links): Promise<string> {
  const who = order.customerId ?? `order-${order.id}`;
  const known = await links.get("stripe-customer", who);
  if (known) return known;
  const name = [order.firstName, order.lastName].filter(Boolean).join(" ");
  const made = await stripe.createCustomer(
    {
      email: order.email ?? "",
      ...(name ? { name } : {}),
      metadata: order.customerId ? { shopify_customer_id: order.customerId } : { shopify_order_id: order.id },
    },
    key("customer", who),
  );
  return links.put("stripe-customer", who, made.id);
}
