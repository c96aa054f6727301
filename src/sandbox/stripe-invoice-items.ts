// The fake Stripe's invoice items (docs.stripe.com/api/invoiceitems?api-version=2024-06-20) and the
// invoice lines they become (docs.stripe.com/api/invoice-line-item). An item is either pending
// (`invoice: null`, listed under its customer in BillingData.pendingItems) or on one invoice (listed
// in that invoice's `items`). Every change of an item's `invoice` goes through this file, so those
// two indexes stay in step with the items; invoices read their lines here (stripe-invoices.ts).
import type { JsonObject } from "./fake-service";
import {
  customerParam,
  DEFAULT_LIST_LIMIT,
  indexItems,
  MAX_LIST_LIMIT,
  newId,
  type BillingCtx,
  type BillingData,
  type InvoiceItemRecord,
  type InvoiceRecord,
  type Outcome,
} from "./stripe-billing";
import {
  executedRefusal,
  invalidRequest,
  noSuch,
  optionalCurrency,
  optionalInteger,
  optionalString,
  readMetadata,
  rejectUnknown,
  type FormParams,
} from "./stripe-form";

/** An invoice's items, in creation order: its lines. */
export function linesOf(data: BillingData, invoice: InvoiceRecord): InvoiceItemRecord[] {
  indexItems(data);
  return invoice.items.map((id) => data.invoiceItems[id]!);
}

/** The customer's pending items in `currency`, oldest first: what a new invoice in that currency may pull in. */
export function pendingItemsOf(data: BillingData, customerId: string, currency: string): InvoiceItemRecord[] {
  const pending = indexItems(data)[customerId] ?? [];
  return pending.map((id) => data.invoiceItems[id]!).filter((item) => item.currency === currency);
}

/** Puts pending `items` (oldest first, all the invoice's customer's) on the draft `invoice`, after its current lines. */
export function moveToInvoice(data: BillingData, invoice: InvoiceRecord, items: InvoiceItemRecord[]): void {
  if (items.length === 0) return;
  const pendingByCustomer = indexItems(data);
  const moved = new Set<string>();
  for (const item of items) {
    item.invoice = invoice.id;
    invoice.items.push(item.id);
    moved.add(item.id);
  }
  const left = (pendingByCustomer[invoice.customer] ?? []).filter((id) => !moved.has(id));
  if (left.length > 0) pendingByCustomer[invoice.customer] = left;
  else delete pendingByCustomer[invoice.customer];
}

/**
 * POST /v1/invoiceitems. With `invoice=in_…` the item goes on that draft invoice; without it the
 * item is pending, for whichever invoice pulls it in later. A finalized invoice takes no more
 * items (docs.stripe.com/error-codes#invoice-not-editable). Amounts may be negative (a credit).
 */
export function createInvoiceItem(ctx: BillingCtx, params: FormParams): Outcome {
  rejectUnknown(params, ["customer", "amount", "currency", "description", "invoice", "metadata"]);
  const customer = customerParam(ctx, params);
  const amount = optionalInteger(params, "amount");
  if (amount === undefined) throw invalidRequest("Missing required param: amount.", "amount", "parameter_missing");
  const invoiceId = optionalString(params, "invoice");
  const invoice = invoiceId === undefined ? undefined : ctx.data.invoices[invoiceId];
  if (invoiceId !== undefined && invoice === undefined) throw noSuch("invoice", invoiceId, "invoice", 400);
  const currency = optionalCurrency(params) ?? invoice?.currency;
  if (currency === undefined) throw invalidRequest("Missing required param: currency.", "currency", "parameter_missing");
  if (invoice !== undefined) {
    if (invoice.customer !== customer.id) {
      throw invalidRequest(`Invoice ${invoice.id} belongs to customer ${invoice.customer}, not ${customer.id}.`, "invoice");
    }
    if (invoice.currency !== currency) {
      throw invalidRequest(`The currency of the invoice item (${currency}) must match the currency of the invoice (${invoice.currency}).`, "currency");
    }
    if (invoice.status !== "draft") {
      throw executedRefusal("invoice_not_editable", `You can only add invoice items to draft invoices; ${invoice.id} is ${invoice.status}.`);
    }
  }
  const pendingByCustomer = indexItems(ctx.data);
  const item: InvoiceItemRecord = {
    id: newId(ctx.data, "ii"),
    created: ctx.now,
    customer: customer.id,
    invoice: invoice?.id ?? null,
    amount,
    currency,
    description: optionalString(params, "description") ?? null,
    metadata: readMetadata(params),
  };
  ctx.data.invoiceItems[item.id] = item;
  if (invoice !== undefined) invoice.items.push(item.id);
  else (pendingByCustomer[customer.id] ??= []).push(item.id);
  return { status: 200, body: renderInvoiceItem(item) };
}

export function renderInvoiceItem(i: InvoiceItemRecord): JsonObject {
  return {
    id: i.id, object: "invoiceitem", amount: i.amount, currency: i.currency, customer: i.customer, date: i.created,
    description: i.description, discountable: true, invoice: i.invoice, livemode: false, metadata: { ...i.metadata },
    period: { start: i.created, end: i.created }, proration: false, quantity: 1, unit_amount: i.amount, unit_amount_decimal: String(i.amount),
  };
}

/** An invoice item as one of its invoice's `lines`. */
export function renderLine(item: InvoiceItemRecord): JsonObject {
  return {
    id: `il_${item.id.slice(3)}`, object: "line_item", amount: item.amount, currency: item.currency, description: item.description,
    discountable: true, invoice_item: item.id, livemode: false, metadata: { ...item.metadata },
    period: { start: item.created, end: item.created }, proration: false, quantity: 1, type: "invoiceitem",
  };
}

/**
 * GET /v1/invoices/{id}/lines: the invoice's lines in the invoice's order (not newest first, as
 * other lists are), paged by line id (`starting_after`, `ending_before`; a cursor that is not
 * one of its lines is `No such line_item`, 400). https://docs.stripe.com/api/invoice-line-item/retrieve
 */
export function listInvoiceLines(ctx: BillingCtx, invoice: InvoiceRecord, params: FormParams): Outcome {
  rejectUnknown(params, ["limit", "starting_after", "ending_before"]);
  const limit = optionalInteger(params, "limit") ?? DEFAULT_LIST_LIMIT;
  if (limit < 1 || limit > MAX_LIST_LIMIT) throw invalidRequest(`Invalid limit: must be between 1 and ${MAX_LIST_LIMIT}`, "limit", "parameter_invalid_integer");
  const after = optionalString(params, "starting_after");
  const before = optionalString(params, "ending_before");
  if (after !== undefined && before !== undefined) throw invalidRequest("You may only specify one of these parameters: ending_before, starting_after.", "ending_before");
  const lines = linesOf(ctx.data, invoice).map(renderLine);
  const at = (cursor: string, name: string) => {
    const index = lines.findIndex((l) => l.id === cursor);
    if (index < 0) throw noSuch("line_item", cursor, name, 400);
    return index;
  };
  const [from, to] = after !== undefined ? [at(after, "starting_after") + 1, Infinity] : before !== undefined ? [0, at(before, "ending_before")] : [0, Infinity];
  const candidates = lines.slice(from, to === Infinity ? undefined : to);
  const page = before !== undefined ? candidates.slice(Math.max(0, candidates.length - limit)) : candidates.slice(0, limit);
  return { status: 200, body: { object: "list", data: page, has_more: candidates.length > limit, url: `/v1/invoices/${invoice.id}/lines` } };
}
