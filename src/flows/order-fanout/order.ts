/**
 * A Shopify order (`orders/create`, REST Admin API order resource) as the fan-out needs it, and
 * its invoice lines in the smallest unit of its currency.
 *
 * Money stays exact: Shopify sends decimal strings ("19.99"), turned into integers of minor
 * units by text, never through floating point. The invoice has one line per line item (its
 * price times quantity, less the discounts allocated to it), one for shipping (after its
 * discounts) and one for tax when it is not included in the prices, so its total is the
 * order's `total_price`; should Shopify's figures not add up (a discount allocated nowhere),
 * a last line says by how much, so the total is still the order's.
 * https://shopify.dev/docs/api/admin-rest/latest/resources/order
 */
import { z } from "zod";
import { ActionFailure } from "../../connectors/errors";
import { toMinorUnits } from "../../connectors/stripe";
import { describeIssues } from "../../errors";
import { idString, integerId } from "../../ingest/json";

const money = z.union([z.string(), z.number()]).transform((v) => String(v));

const LineItem = z.looseObject({
  id: integerId.optional(),
  title: z.string().nullish(),
  name: z.string().nullish(),
  quantity: z.number().int().nonnegative(),
  price: money,
  total_discount: money.nullish(),
  discount_allocations: z.array(z.looseObject({ amount: money })).nullish(),
});

const ShippingLine = z.looseObject({ title: z.string().nullish(), price: money, discounted_price: money.nullish() });

const Person = z.looseObject({ first_name: z.string().nullish(), last_name: z.string().nullish() });

const ShopifyOrder = z.looseObject({
  id: integerId,
  name: z.string().nullish(),
  email: z.string().nullish(),
  contact_email: z.string().nullish(),
  currency: z.string().regex(/^[A-Za-z]{3}$/),
  total_price: money,
  total_tax: money.nullish(),
  taxes_included: z.boolean().nullish(),
  line_items: z.array(LineItem),
  shipping_lines: z.array(ShippingLine).nullish(),
  customer: Person.extend({ id: integerId, email: z.string().nullish() }).nullish(),
  billing_address: Person.nullish(),
});

export interface Order {
  id: string;
  /** "#1001" */
  name: string;
  customerId: string | null;
  email: string | null;
  firstName: string | null;
  lastName: string | null;
  /** Upper case, as Stripe and Shopify both accept it. */
  currency: string;
  /** The order as Shopify sent it, for its invoice (invoiceOf). */
  raw: ShopifyOrder;
}

type ShopifyOrder = z.infer<typeof ShopifyOrder>;

/** The order's invoice, in the smallest unit of its currency. */
export interface Invoice {
  total: number;
  lines: InvoiceLine[];
}

export interface InvoiceLine {
  description: string;
  /** In the currency's smallest unit; negative only for an adjustment. */
  amount: number;
}

/** Each payload's order, parsed once for the three actions of its event (the payload is never changed). */
const orders = new WeakMap<object, Order>();

/** The order, or an `invalid` failure naming what it lacks (CONTRACT 8: kept, visible, never retried). */
export function parseOrder(payload: unknown): Order {
  const known = typeof payload === "object" && payload !== null ? orders.get(payload) : undefined;
  if (known) return known;
  const order = readOrder(payload);
  if (typeof payload === "object" && payload !== null) orders.set(payload, order);
  return order;
}

function readOrder(payload: unknown): Order {
  const parsed = ShopifyOrder.safeParse(payload);
  if (!parsed.success) throw new ActionFailure("invalid", `the order lacks what the fan-out needs: ${describeIssues(parsed.error)}`);
  const o = parsed.data;
  const name = (value: string | null | undefined) => (value && value.trim() !== "" ? value.trim() : null);
  return {
    id: idString(o.id)!,
    name: o.name ?? `#${idString(o.id)}`,
    customerId: o.customer ? idString(o.customer.id) : null,
    email: name(o.customer?.email) ?? name(o.email) ?? name(o.contact_email),
    firstName: name(o.customer?.first_name) ?? name(o.billing_address?.first_name),
    lastName: name(o.customer?.last_name) ?? name(o.billing_address?.last_name),
    currency: o.currency.toUpperCase(),
    raw: o,
  };
}

/**
 * The order's invoice lines. Only the invoice needs the amounts: one its currency cannot carry
 * makes the invoice invalid, not the order's other actions.
 */
export function invoiceOf(order: Order): Invoice {
  const { raw: o, currency } = order;
  const minor = (amount: string | null | undefined) => {
    if (!amount) return 0;
    try {
      return toMinorUnits(amount, currency);
    } catch (error) {
      // More decimals than the currency has ("10.5" yen), or not a number: the order cannot be invoiced.
      throw new ActionFailure("invalid", `the order's amount ${amount} ${currency} cannot be invoiced: ${error instanceof Error ? error.message : String(error)}`);
    }
  };

  const lines: InvoiceLine[] = o.line_items.map((item) => {
    const allocated = item.discount_allocations?.length ? item.discount_allocations.reduce((sum, d) => sum + minor(d.amount), 0) : minor(item.total_discount);
    const label = item.title ?? item.name ?? `line item ${item.id ?? ""}`.trim();
    return { description: item.quantity === 1 ? label : `${label} x ${item.quantity}`, amount: minor(item.price) * item.quantity - allocated };
  });
  const shipping = (o.shipping_lines ?? []).reduce((sum, s) => sum + minor(s.discounted_price ?? s.price), 0);
  if (shipping !== 0) lines.push({ description: "Shipping", amount: shipping });
  const tax = o.taxes_included ? 0 : minor(o.total_tax);
  if (tax !== 0) lines.push({ description: "Tax", amount: tax });
  const total = minor(o.total_price);
  const difference = total - lines.reduce((sum, l) => sum + l.amount, 0);
  if (difference !== 0) lines.push({ description: difference < 0 ? "Order discount" : "Order adjustment", amount: difference });
  return { total, lines };
}
