// The fake Stripe's objects (customers, invoices, invoice items) and its endpoints for them, as the
// API reference describes them at the version Syncwire pins (docs.stripe.com/api/customers,
// /api/invoices, /api/invoiceitems?api-version=2024-06-20). Amounts are integers in the currency's
// smallest unit and are stored as sent (docs.stripe.com/currencies#minor-units). Lists are
// Stripe's: newest first, pages by cursor (docs.stripe.com/api/pagination).
import type { JsonObject } from "./fake-service";
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
  requiredString,
  type FormParams,
} from "./stripe-form";

export interface CustomerRecord {
  id: string;
  created: number;
  email: string | null;
  name: string | null;
  description: string | null;
  metadata: Record<string, string>;
  invoice_prefix: string;
  next_invoice_sequence: number;
}

export type InvoiceStatus = "draft" | "open" | "paid";

export interface InvoiceRecord {
  id: string;
  created: number;
  customer: string;
  currency: string;
  status: InvoiceStatus;
  collection_method: "charge_automatically" | "send_invoice";
  days_until_due: number | null;
  due_date: number | null;
  auto_advance: boolean;
  description: string | null;
  metadata: Record<string, string>;
  number: string | null;
  finalized_at: number | null;
  paid_at: number | null;
}

export interface InvoiceItemRecord {
  id: string;
  created: number;
  customer: string;
  /** null while pending: not on any invoice yet. */
  invoice: string | null;
  amount: number;
  currency: string;
  description: string | null;
  metadata: Record<string, string>;
}

export interface BillingData {
  /** One counter for every object id (never reset, see sandbox-request.ts). */
  nextId: number;
  customers: Record<string, CustomerRecord>;
  invoices: Record<string, InvoiceRecord>;
  invoiceItems: Record<string, InvoiceItemRecord>;
}

/** One executed endpoint's answer. */
export interface Outcome {
  status: number;
  body: JsonObject;
}

export interface BillingCtx {
  data: BillingData;
  /** Unix seconds, as Stripe's timestamps are. */
  now: number;
  /** The request's Stripe-Version, else the account's default. */
  apiVersion: string;
  /** The account's default currency, for an invoice created without one. */
  defaultCurrency: string;
}

/**
 * docs.stripe.com/changelog/2022-08-01/removes-include-require-value-invoices: from 2022-08-01 an
 * invoice created without `pending_invoice_items_behavior` leaves the customer's pending invoice
 * items off (`exclude`); before it, the default was `include_and_require`.
 */
export const PENDING_ITEMS_EXCLUDED_SINCE = "2022-08-01";

/** `cus_Sbx00000000012`: Stripe's prefix_ and 14 letters and digits, from a counter (deterministic). */
function newId(data: BillingData, prefix: string): string {
  return `${prefix}_Sbx${(data.nextId++).toString(36).padStart(11, "0")}`;
}

// ---- lists --------------------------------------------------------------------------------------

/** Stripe's page sizes: `limit` 1 to 100, 10 when absent. */
export const DEFAULT_LIST_LIMIT = 10;
export const MAX_LIST_LIMIT = 100;

/** Newest first, as every Stripe list: by creation time, then by id (ids come from one counter). */
function newestFirst(a: { id: string; created: number }, b: { id: string; created: number }): number {
  return b.created - a.created || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

/**
 * One page of `records` (already filtered), `{object: "list", data, has_more, url}`. The cursors
 * name an object of the same kind, which must exist (`No such …`, 400); `starting_after` gives
 * the older objects after it, `ending_before` the newer ones just before it, still newest first.
 */
function listPage<T extends { id: string; created: number }>(
  params: FormParams,
  kind: string,
  all: Record<string, T>,
  records: T[],
  url: string,
  render: (record: T) => JsonObject,
): Outcome {
  const limit = optionalInteger(params, "limit") ?? DEFAULT_LIST_LIMIT;
  if (limit < 1 || limit > MAX_LIST_LIMIT) {
    throw invalidRequest(`Invalid limit: must be between 1 and ${MAX_LIST_LIMIT}`, "limit", "parameter_invalid_integer");
  }
  const after = optionalString(params, "starting_after");
  const before = optionalString(params, "ending_before");
  if (after !== undefined && before !== undefined) {
    throw invalidRequest("You may only specify one of these parameters: ending_before, starting_after.", "ending_before");
  }
  const sorted = [...records].sort(newestFirst);
  const cursorName = after !== undefined ? "starting_after" : "ending_before";
  const cursorId = after ?? before;
  let page: T[];
  let hasMore: boolean;
  if (cursorId === undefined) {
    page = sorted.slice(0, limit);
    hasMore = sorted.length > limit;
  } else {
    const cursor = all[cursorId];
    if (cursor === undefined) throw noSuch(kind, cursorId, cursorName, 400);
    if (after !== undefined) {
      const older = sorted.filter((r) => newestFirst(cursor, r) < 0);
      page = older.slice(0, limit);
      hasMore = older.length > limit;
    } else {
      const newer = sorted.filter((r) => newestFirst(cursor, r) > 0);
      page = newer.slice(Math.max(0, newer.length - limit));
      hasMore = newer.length > limit;
    }
  }
  return { status: 200, body: { object: "list", data: page.map(render), has_more: hasMore, url } };
}

// ---- customers --------------------------------------------------------------------------------

export function createCustomer(ctx: BillingCtx, params: FormParams): Outcome {
  rejectUnknown(params, ["email", "name", "description", "metadata"]);
  const email = optionalString(params, "email", 512) ?? null;
  // Stripe checks the form of an address (email_invalid); this is a loose local@domain check.
  if (email !== null && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) throw invalidRequest(`Invalid email address: ${email}`, "email", "email_invalid");
  const customer: CustomerRecord = {
    id: newId(ctx.data, "cus"),
    created: ctx.now,
    email,
    name: optionalString(params, "name", 256) ?? null,
    description: optionalString(params, "description") ?? null,
    metadata: readMetadata(params),
    invoice_prefix: (ctx.data.nextId * 2654435761 >>> 0).toString(16).toUpperCase().padStart(8, "0"),
    next_invoice_sequence: 1,
  };
  ctx.data.customers[customer.id] = customer;
  return { status: 200, body: renderCustomer(customer) };
}

export function renderCustomer(c: CustomerRecord): JsonObject {
  return {
    id: c.id, object: "customer", balance: 0, created: c.created, currency: null, delinquent: false,
    description: c.description, email: c.email, invoice_prefix: c.invoice_prefix, livemode: false,
    metadata: { ...c.metadata }, name: c.name, next_invoice_sequence: c.next_invoice_sequence, preferred_locales: [], tax_exempt: "none",
  };
}

/** GET /v1/customers: `email` is matched exactly (Stripe's filter is case-sensitive). */
export function listCustomers(ctx: BillingCtx, params: FormParams): Outcome {
  rejectUnknown(params, ["email", "limit", "starting_after", "ending_before"]);
  const email = optionalString(params, "email", 512);
  const customers = Object.values(ctx.data.customers).filter((c) => email === undefined || c.email === email);
  return listPage(params, "customer", ctx.data.customers, customers, "/v1/customers", renderCustomer);
}

function customerParam(ctx: BillingCtx, params: FormParams): CustomerRecord {
  const id = requiredString(params, "customer");
  const customer = ctx.data.customers[id];
  if (customer === undefined) throw noSuch("customer", id, "customer", 400);
  return customer;
}

// ---- invoices ---------------------------------------------------------------------------------

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
  };
  const pending = Object.values(ctx.data.invoiceItems).filter((i) => i.customer === customer.id && i.invoice === null && i.currency === invoice.currency);
  if (behavior === "include_and_require" && pending.length === 0) {
    // Executed, so an idempotency key keeps this answer (docs.stripe.com/error-codes#invoice-no-customer-line-items).
    throw executedRefusal("invoice_no_customer_line_items", `Nothing to invoice for customer ${customer.id}.`);
  }
  if (behavior !== "exclude") for (const item of pending) item.invoice = invoice.id;
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

function linesOf(data: BillingData, invoiceId: string): InvoiceItemRecord[] {
  return Object.values(data.invoiceItems).filter((i) => i.invoice === invoiceId);
}

/** No taxes or discounts are modelled: the total is the sum of the lines; a negative total leaves nothing due. */
function totals(data: BillingData, invoice: InvoiceRecord): { total: number; amountDue: number } {
  const total = linesOf(data, invoice.id).reduce((sum, item) => sum + item.amount, 0);
  return { total, amountDue: Math.max(total, 0) };
}

/** Embedded lines are the first 10 of the list (`has_more` says when there are more), as Stripe embeds them. */
const EMBEDDED_LINES = 10;

export function renderInvoice(data: BillingData, inv: InvoiceRecord): JsonObject {
  const lines = linesOf(data, inv.id);
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

function renderLine(item: InvoiceItemRecord): JsonObject {
  return {
    id: `il_${item.id.slice(3)}`, object: "line_item", amount: item.amount, currency: item.currency, description: item.description,
    discountable: true, invoice_item: item.id, livemode: false, metadata: { ...item.metadata },
    period: { start: item.created, end: item.created }, proration: false, quantity: 1, type: "invoiceitem",
  };
}

// ---- invoice items ----------------------------------------------------------------------------

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
  return { status: 200, body: renderInvoiceItem(item) };
}

export function renderInvoiceItem(i: InvoiceItemRecord): JsonObject {
  return {
    id: i.id, object: "invoiceitem", amount: i.amount, currency: i.currency, customer: i.customer, date: i.created,
    description: i.description, discountable: true, invoice: i.invoice, livemode: false, metadata: { ...i.metadata },
    period: { start: i.created, end: i.created }, proration: false, quantity: 1, unit_amount: i.amount, unit_amount_decimal: String(i.amount),
  };
}
