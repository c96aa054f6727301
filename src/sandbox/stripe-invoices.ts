// The fake Stripe's invoice endpoints (docs.stripe.com/api/invoices?api-version=2024-06-20): create
// (pulling in the customer's pending items as the API version's default says), list, retrieve and
// finalize, and the invoice as Stripe renders it, its first lines embedded. Its own file because
// the invoice's life (draft, open, paid; numbers, due dates, totals) is the largest part of the
// fake's billing; the records it works on: stripe-billing.ts; its items and lines: stripe-invoice-items.ts.
import type { JsonObject } from "./fake-service";
import { customerParam, listPage, newId, type BillingCtx, type BillingData, type InvoiceRecord, type Outcome } from "./stripe-billing";
import { linesOf, moveToInvoice, pendingItemsOf, renderLine } from "./stripe-invoice-items";
import {
  executedRefusal,
  invalidRequest,
  noSuch,
  optionalBoolean,
  optionalCurrency,
  optionalEnum,
  optionalInteger,
  optionalString,
  readMetadata,
  rejectUnknown,
  type FormParams,
} from "./stripe-form";

/**
 * docs.stripe.com/changelog/2022-08-01/removes-include-require-value-invoices: from 2022-08-01 an
 * invoice created without `pending_invoice_items_behavior` leaves the customer's pending invoice
 * items off (`exclude`); before it, the default was `include_and_require`.
 */
export const PENDING_ITEMS_EXCLUDED_SINCE = "2022-08-01";

export function createInvoice(ctx: BillingCtx, params: FormParams): Outcome {
  rejectUnknown(params, ["customer", "currency", "collection_method", "days_until_due", "auto_advance", "description", "metadata", "pending_invoice_items_behavior"]);
  const customer = customerParam(ctx, params);
  const collection = optionalEnum(params, "collection_method", ["charge_automatically", "send_invoice"] as const) ?? "charge_automatically";
  const days = optionalInteger(params, "days_until_due");
  if (days !== undefined && collection !== "send_invoice") {
    throw invalidRequest("You can only set `days_until_due` if `collection_method` is `send_invoice`.", "days_until_due");
  }
  // Stripe also takes `due_date` instead; the fake takes only days_until_due, so it requires it.
  if (collection === "send_invoice" && days === undefined) {
    throw invalidRequest("Invoices with `collection_method=send_invoice` need `days_until_due` or `due_date`.", "days_until_due");
  }
  if (days !== undefined && days < 0) throw invalidRequest("Invalid days_until_due: must be at least 0", "days_until_due");
  const excludedByDefault = ctx.apiVersion.slice(0, 10) >= PENDING_ITEMS_EXCLUDED_SINCE;
  const allowed = excludedByDefault ? (["include", "exclude"] as const) : (["include", "exclude", "include_and_require"] as const);
  const behavior = optionalEnum(params, "pending_invoice_items_behavior", allowed) ?? (excludedByDefault ? "exclude" : "include_and_require");
  const invoice: InvoiceRecord = {
    id: newId(ctx.data, "in"),
    created: ctx.now,
    customer: customer.id,
    currency: optionalCurrency(params) ?? ctx.defaultCurrency,
    status: "draft",
    collection_method: collection,
    days_until_due: days ?? null,
    due_date: null,
    // One-off invoices do not advance (finalize, collect) by themselves unless asked: changelog 2018-11-08.
    auto_advance: optionalBoolean(params, "auto_advance") ?? false,
    description: optionalString(params, "description") ?? null,
    metadata: readMetadata(params),
    number: null,
    finalized_at: null,
    paid_at: null,
    items: [],
  };
  const pending = pendingItemsOf(ctx.data, customer.id, invoice.currency);
  if (behavior === "include_and_require" && pending.length === 0) {
    // Executed, so an idempotency key keeps this answer (docs.stripe.com/error-codes#invoice-no-customer-line-items).
    throw executedRefusal("invoice_no_customer_line_items", `Nothing to invoice for customer ${customer.id}.`);
  }
  if (behavior !== "exclude") moveToInvoice(ctx.data, invoice, pending);
  ctx.data.invoices[invoice.id] = invoice;
  return { status: 200, body: renderInvoice(ctx.data, invoice) };
}

/** Every status Stripe's invoices have; the fake's own invoices are only ever draft, open or paid. */
export const INVOICE_STATUSES = ["draft", "open", "paid", "uncollectible", "void"] as const;

/** GET /v1/invoices: filtered by `customer` (which must exist) and `status`, with their first lines as a retrieve shows them. */
export function listInvoices(ctx: BillingCtx, params: FormParams): Outcome {
  rejectUnknown(params, ["customer", "status", "limit", "starting_after", "ending_before"]);
  const customerId = optionalString(params, "customer");
  if (customerId !== undefined && ctx.data.customers[customerId] === undefined) throw noSuch("customer", customerId, "customer", 400);
  const status = optionalEnum(params, "status", INVOICE_STATUSES);
  const invoices = Object.values(ctx.data.invoices).filter((i) => (customerId === undefined || i.customer === customerId) && (status === undefined || i.status === status));
  return listPage(params, "invoice", ctx.data.invoices, invoices, "/v1/invoices", (i) => renderInvoice(ctx.data, i));
}

export function getInvoice(data: BillingData, id: string): InvoiceRecord {
  const invoice = data.invoices[id];
  if (invoice === undefined) throw noSuch("invoice", id, "id", 404);
  return invoice;
}

/**
 * POST /v1/invoices/{id}/finalize: a draft becomes `open` (with its number and, for send_invoice,
 * its due date), or `paid` at once when nothing is due. Anything else was finalized before:
 * error code `invoice_already_finalized` (docs.stripe.com/changelog/2018-11-08/renames-invoice-
 * error-code-invoice-already-finalized), with the message Stripe sends. A repeat with the first
 * call's Idempotency-Key never gets here: it is answered with the saved first answer.
 */
export function finalizeInvoice(ctx: BillingCtx, id: string, params: FormParams): Outcome {
  const invoice = getInvoice(ctx.data, id);
  rejectUnknown(params, ["auto_advance"]);
  const autoAdvance = optionalBoolean(params, "auto_advance");
  if (invoice.status !== "draft") {
    throw executedRefusal("invoice_already_finalized", "This invoice is already finalized, you can't re-finalize a non-draft invoice.");
  }
  const customer = ctx.data.customers[invoice.customer]!;
  invoice.number = `${customer.invoice_prefix}-${String(customer.next_invoice_sequence++).padStart(4, "0")}`;
  invoice.finalized_at = ctx.now;
  if (autoAdvance !== undefined) invoice.auto_advance = autoAdvance;
  if (invoice.days_until_due !== null) invoice.due_date = ctx.now + invoice.days_until_due * 86_400;
  // An invoice with nothing due is marked paid when it is finalized.
  if (totals(ctx.data, invoice).amountDue === 0) {
    invoice.status = "paid";
    invoice.paid_at = ctx.now;
  } else {
    invoice.status = "open";
  }
  return { status: 200, body: renderInvoice(ctx.data, invoice) };
}

/** No taxes or discounts are modelled: the total is the sum of the lines; a negative total leaves nothing due. */
function totals(data: BillingData, invoice: InvoiceRecord): { total: number; amountDue: number } {
  const total = linesOf(data, invoice).reduce((sum, item) => sum + item.amount, 0);
  return { total, amountDue: Math.max(total, 0) };
}

/** Embedded lines are the first 10 of the list (`has_more` says when there are more), as Stripe embeds them. */
const EMBEDDED_LINES = 10;

export function renderInvoice(data: BillingData, inv: InvoiceRecord): JsonObject {
  const lines = linesOf(data, inv);
  const { total, amountDue } = totals(data, inv);
  const paid = inv.status === "paid" ? amountDue : 0;
  return {
    id: inv.id, object: "invoice", amount_due: amountDue, amount_paid: paid, amount_remaining: amountDue - paid,
    auto_advance: inv.auto_advance, collection_method: inv.collection_method, created: inv.created, currency: inv.currency,
    customer: inv.customer, days_until_due: inv.days_until_due, description: inv.description, due_date: inv.due_date,
    hosted_invoice_url: inv.finalized_at === null ? null : `https://invoice.stripe.com/i/acct_sandbox/test_${inv.id}`,
    lines: {
      object: "list",
      data: lines.slice(0, EMBEDDED_LINES).map(renderLine),
      has_more: lines.length > EMBEDDED_LINES,
      total_count: lines.length,
      url: `/v1/invoices/${inv.id}/lines`,
    },
    livemode: false, metadata: { ...inv.metadata }, number: inv.number, paid: inv.status === "paid", status: inv.status,
    status_transitions: { finalized_at: inv.finalized_at, marked_uncollectible_at: null, paid_at: inv.paid_at, voided_at: null },
    subtotal: total, total,
  };
}
