// The fake Stripe's account data: its objects (customers, invoices, invoice items) as the API
// reference describes them at the version Syncwire pins (docs.stripe.com/api/customers,
// /api/invoices, /api/invoiceitems?api-version=2024-06-20), the indexes kept beside them so that no
// request scans every object ever made, the list paging every Stripe list shares (newest first,
// pages by cursor: docs.stripe.com/api/pagination), and the customer endpoints. Amounts are
// integers in the currency's smallest unit and are stored as sent (docs.stripe.com/currencies#minor-units).
// The invoice endpoints are in stripe-invoices.ts, the invoice items and invoice lines in
// stripe-invoice-items.ts: split by object so that no file holds all of Stripe billing.
import { cloneJson, type JsonObject } from "./fake-service";
import {
  invalidRequest,
  noSuch,
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
  /**
   * Ids of the invoice items on this invoice, in creation order (the order of its lines), so an
   * invoice's lines are found without looking at every item. The fake's own bookkeeping: never
   * rendered. Kept in step with each item's `invoice` by stripe-invoice-items.ts.
   */
  items: string[];
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
  /**
   * Per customer id, the ids of its pending invoice items (`invoice: null`) in creation order; a
   * customer with none has no entry. What an invoice created with pending items included pulls in,
   * without looking at every item. Absent in state saved before these indexes existed (and with it
   * every invoice's `items`): indexItems derives both then, once.
   */
  pendingItems?: Record<string, string[]>;
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

/** `cus_Sbx00000000012`: Stripe's prefix_ and 14 letters and digits, from a counter (deterministic). */
export function newId(data: BillingData, prefix: string): string {
  return `${prefix}_Sbx${(data.nextId++).toString(36).padStart(11, "0")}`;
}

// ---- indexes ----------------------------------------------------------------------------------

/**
 * The pending items by customer, after deriving the indexes (every invoice's `items` too) when the
 * state predates them. Derived from the items in their record order, which is their creation
 * order (insertion order: ids are never integer-like), so lines keep the order they always had.
 */
export function indexItems(data: BillingData): Record<string, string[]> {
  if (data.pendingItems !== undefined) return data.pendingItems;
  const pending: Record<string, string[]> = {};
  for (const invoice of Object.values(data.invoices)) invoice.items = [];
  for (const item of Object.values(data.invoiceItems)) {
    if (item.invoice === null) (pending[item.customer] ??= []).push(item.id);
    else data.invoices[item.invoice]?.items.push(item.id);
  }
  data.pendingItems = pending;
  return pending;
}

/**
 * A copy of everything an endpoint may change but the id counter (ids are never reused), for an
 * execution fault with `commit: false` to put back. The indexes are derived first, so that the
 * copy and whatever the endpoint leaves agree on having them.
 */
export function billingSnapshot(data: BillingData): Pick<BillingData, "customers" | "invoices" | "invoiceItems" | "pendingItems"> {
  indexItems(data);
  return cloneJson({ customers: data.customers, invoices: data.invoices, invoiceItems: data.invoiceItems, pendingItems: data.pendingItems });
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
export function listPage<T extends { id: string; created: number }>(
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

export function customerParam(ctx: BillingCtx, params: FormParams): CustomerRecord {
  const id = requiredString(params, "customer");
  const customer = ctx.data.customers[id];
  if (customer === undefined) throw noSuch("customer", id, "customer", 400);
  return customer;
}
