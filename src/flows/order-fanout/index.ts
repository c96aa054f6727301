/**
 * The Shopify fan-out (CONTRACT 4.4): an `orders/create` becomes three actions, each with its
 * own ledger row, retried on its own, so one target being down never blocks or repeats the
 * others:
 * - `salesforce.contact`: the order's customer upserted as a Contact by external id (the
 *   Shopify customer id): created the first time, updated after;
 * - `postmark.welcome`: the welcome email, once per customer ever (scope `entity-ever`: a later
 *   order of the same customer sends nothing);
 * - `stripe.invoice`: the order's invoice, finalized, its total the order's (invoice.ts).
 * The entity is the order's customer (`customer:<shopify id>`; a guest's order: `order:<id>`).
 */
import { ActionFailure } from "../../connectors/errors";
import type { ActionContext, Flow } from "../types";
import { invoiceOrder } from "./invoice";
import { parseOrder, type Order } from "./order";

export const orderFanout: Flow = {
  name: "order-fanout",
  triggers: [{ source: "shopify", types: ["orders/create"] }],
  actions: [
    { name: "salesforce.contact", scope: "event", run: upsertContact },
    { name: "postmark.welcome", scope: "entity-ever", run: sendWelcome },
    { name: "stripe.invoice", scope: "event", run: ({ event, connectors, links }) => invoiceOrder(parseOrder(event.payload), connectors.stripe(), links) },
  ],
};

async function upsertContact({ event, connectors }: ActionContext): Promise<string> {
  const order = parseOrder(event.payload);
  if (order.customerId === null) return "a guest's order: no customer to keep in Salesforce";
  const email = requireEmail(order);
  // Salesforce requires LastName: the email stands in when the order has no name (CONTRACT 6).
  const fields = { ...(order.firstName ? { FirstName: order.firstName } : {}), LastName: order.lastName ?? email, Email: email };
  const outcome = await connectors.salesforce().upsertContact(order.customerId, fields);
  const verb = outcome.created ? "created" : "updated";
  return outcome.id ? `Contact ${outcome.id} ${verb}` : `Contact ${verb}`;
}

async function sendWelcome({ event, connectors }: ActionContext): Promise<string> {
  const order = parseOrder(event.payload);
  const email = requireEmail(order);
  const name = [order.firstName, order.lastName].filter(Boolean).join(" ") || email;
  const sent = await connectors.postmark().sendWelcome(email, { name, email, order_name: order.name }, { shopify_order_id: order.id, ...(order.customerId ? { shopify_customer_id: order.customerId } : {}) });
  return `welcome email ${sent.messageId} sent to ${email}`;
}

/** An order without an email address gives Salesforce and Postmark nothing to go on (CONTRACT 8: invalid). */
function requireEmail(order: Order): string {
  if (!order.email) throw new ActionFailure("invalid", `order ${order.name} has no email address`);
  return order.email;
}
