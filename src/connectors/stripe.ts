/**
 * Stripe API v1 customers, invoices and invoice items, with the secret key as `Authorization:
 * Bearer`, form-encoded bodies, one pinned `Stripe-Version`, and an `Idempotency-Key` on every
 * POST (the caller derives it from the Shopify ids and the step, CONTRACT 4.3).
 * https://docs.stripe.com/api, https://docs.stripe.com/api/idempotent_requests
 */
import { z } from "zod";
import type { StripeConfig } from "../config";
import { ActionFailure } from "./errors";
import type { HttpClient } from "./http-client";

/**
 * Every call asks for this version, so the account's default version (set in its dashboard)
 * never changes what Syncwire gets. 2024-06-20 is the last dated version before the named
 * releases (acacia, basil) that reshaped invoices and their lines; since 2022-08-01 a new invoice
 * leaves pending invoice items off, which is what the flow relies on (items are attached with
 * `invoice=`). Changing it is a deliberate upgrade: https://docs.stripe.com/upgrades.
 */
export const STRIPE_API_VERSION = "2024-06-20";

/**
 * Currencies without a minor unit: amounts are whole units (¥1000 is 1000).
 * https://docs.stripe.com/currencies#zero-decimal
 */
export const ZERO_DECIMAL_CURRENCIES: readonly string[] = [
  "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf",
];

/**
 * Amounts in thousandths. Stripe's payment flows further need the last digit to be 0; an invoice
 * item keeps the exact amount, so the invoice total stays the order's.
 * https://docs.stripe.com/currencies#three-decimal
 */
export const THREE_DECIMAL_CURRENCIES: readonly string[] = ["bhd", "jod", "kwd", "omr", "tnd"];

/**
 * Two-decimal in the API but charged in whole krónur only: Stripe refuses amounts not divisible
 * by 100 (`invalid_charge_amount_no_decimal_compatible`). https://docs.stripe.com/currencies#special-cases,
 * https://support.stripe.com/questions/deprecation-of-fractional-isk-charges-and-refunds
 */
export const WHOLE_UNIT_TWO_DECIMAL_CURRENCIES: readonly string[] = ["isk"];

/** Digits after the decimal point in Stripe amounts for `currency` (0, 2 or 3). */
export function minorUnitDigits(currency: string): 0 | 2 | 3 {
  const code = currency.toLowerCase();
  if (ZERO_DECIMAL_CURRENCIES.includes(code)) return 0;
  return THREE_DECIMAL_CURRENCIES.includes(code) ? 3 : 2;
}

/**
 * A decimal string (Shopify's "19.99") as an integer amount in `currency`'s smallest unit, exactly:
 * the digits are shifted as text, never through a float. Trailing zeros beyond the currency's
 * digits are fine ("1000.00" JPY is 1000); any other digit there cannot be represented and is a
 * RangeError, as is anything that is not a plain decimal or that exceeds 2^53.
 *
 * @example toMinorUnits("19.99", "usd") === 1999; toMinorUnits("1000", "JPY") === 1000; toMinorUnits("-5", "eur") === -500
 */
export function toMinorUnits(amount: string, currency: string): number {
  if (!/^[a-z]{3}$/i.test(currency)) throw new RangeError(`not a currency code: ${JSON.stringify(currency)}`);
  const match = /^(-?)(\d+)(?:\.(\d+))?$/.exec(amount);
  if (match === null) throw new RangeError(`not a decimal amount: ${JSON.stringify(amount)}`);
  const sign = match[1];
  const whole = match[2]!;
  const fraction = match[3] ?? "";
  const digits = minorUnitDigits(currency);
  const kept = fraction.slice(0, digits).padEnd(digits, "0");
  if (/[^0]/.test(fraction.slice(digits))) {
    throw new RangeError(`${amount} ${currency.toUpperCase()} has more decimals than the currency's ${digits}`);
  }
  if (WHOLE_UNIT_TWO_DECIMAL_CURRENCIES.includes(currency.toLowerCase()) && /[^0]/.test(kept)) {
    throw new RangeError(`${amount} ${currency.toUpperCase()}: Stripe takes whole units only in this currency`);
  }
  const minor = BigInt(`${whole}${kept}`) * (sign === "-" ? -1n : 1n);
  if (minor > BigInt(Number.MAX_SAFE_INTEGER) || minor < -BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`${amount} is too large`);
  return Number(minor); // BigInt(-0) is 0: "-0.00" gives 0, never -0
}

const Metadata = z.record(z.string(), z.string());

export const StripeCustomer = z.looseObject({ id: z.string(), object: z.literal("customer"), email: z.string().nullable(), name: z.string().nullable(), metadata: Metadata });
export type StripeCustomer = z.infer<typeof StripeCustomer>;

export const StripeInvoiceItem = z.looseObject({ id: z.string(), object: z.literal("invoiceitem"), amount: z.number().int(), currency: z.string(), invoice: z.string().nullable() });
export type StripeInvoiceItem = z.infer<typeof StripeInvoiceItem>;

export const InvoiceLine = z.looseObject({ id: z.string(), amount: z.number().int(), currency: z.string(), invoice_item: z.string().nullable().optional(), metadata: Metadata.optional() });
export type InvoiceLine = z.infer<typeof InvoiceLine>;

export const StripeInvoice = z.looseObject({
  id: z.string(),
  object: z.literal("invoice"),
  customer: z.string(),
  currency: z.string(),
  status: z.enum(["draft", "open", "paid", "uncollectible", "void"]),
  total: z.number().int(),
  amount_due: z.number().int(),
  number: z.string().nullable(),
  metadata: Metadata,
  /** The first lines only (Stripe embeds 10); `total_count` counts them all. */
  lines: z.looseObject({ data: z.array(InvoiceLine), has_more: z.boolean(), total_count: z.number().int().optional() }),
});
export type StripeInvoice = z.infer<typeof StripeInvoice>;

/**
 * A page of a Stripe list endpoint: newest first, `has_more` when older objects follow; the next
 * page starts after the last object's id (`starting_after`). https://docs.stripe.com/api/pagination
 */
export interface StripeList<T> {
  object: "list";
  data: T[];
  has_more: boolean;
  url: string;
}

const stripeList = <T>(item: z.ZodType<T>) => z.looseObject({ object: z.literal("list"), data: z.array(item), has_more: z.boolean(), url: z.string() });

/** Stripe's page sizes: 1 to 100 (its default, when none is asked, is 10). */
export const MAX_LIST_LIMIT = 100;

export type InvoiceStatus = StripeInvoice["status"];

/** GET /v1/invoices: the customer's invoices (https://docs.stripe.com/api/invoices/list). */
export interface ListInvoicesInput {
  customer: string;
  status?: InvoiceStatus;
  /** 1 to 100. */
  limit: number;
  /** The last id of the previous page, for the next one. */
  startingAfter?: string;
}

/** GET /v1/customers: customers by email, which Stripe compares case-sensitively (https://docs.stripe.com/api/customers/list). */
export interface ListCustomersInput {
  email: string;
  /** 1 to 100. */
  limit: number;
  startingAfter?: string;
}

export interface CustomerInput {
  email: string;
  name?: string;
  metadata?: Record<string, string>;
}

export interface InvoiceInput {
  customer: string;
  currency: string;
  description?: string;
  metadata?: Record<string, string>;
  /** Days the customer has to pay once finalized (send_invoice); default 30. */
  daysUntilDue?: number;
}

export interface InvoiceItemInput {
  customer: string;
  /** The draft invoice the item goes on: an item without one would be left pending (CONTRACT 6). */
  invoice: string;
  /** In the currency's smallest unit (toMinorUnits); negative for a credit such as a discount. */
  amount: number;
  currency: string;
  description?: string;
  metadata?: Record<string, string>;
}

export const DEFAULT_DAYS_UNTIL_DUE = 30;

type Params = Record<string, string | number | boolean | Record<string, string> | undefined>;

/** Stripe's form encoding: nested hashes as `name[key]=value`; undefined values are left out. */
export function stripeForm(params: Params): URLSearchParams {
  const form = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined) continue;
    if (typeof value === "object") for (const [key, v] of Object.entries(value)) form.append(`${name}[${key}]`, v);
    else form.append(name, String(value));
  }
  return form;
}

export class StripeConnector {
  constructor(
    private readonly http: HttpClient,
    private readonly config: StripeConfig,
  ) {}

  /** POST /v1/customers. */
  async createCustomer(input: CustomerInput, idempotencyKey: string): Promise<StripeCustomer> {
    return this.post("/v1/customers", { email: input.email, name: input.name, metadata: input.metadata }, idempotencyKey, StripeCustomer);
  }

  /**
   * POST /v1/invoices: a draft for the customer, with nothing on it.
   * - `collection_method=send_invoice`: the Shopify order is already paid, and the Stripe customer
   *   has no payment method; `charge_automatically` would have Stripe try to charge one. With
   *   send_invoice and `auto_advance=false` Stripe neither charges nor emails on its own: the
   *   invoice is a record of the sale (send_invoice needs `days_until_due`).
   * - `pending_invoice_items_behavior=exclude`: the default since 2022-08-01, sent anyway so no
   *   stray pending item of the customer ever lands on this order's invoice; its items are
   *   attached one by one with `invoice=`.
   */
  async createInvoice(input: InvoiceInput, idempotencyKey: string): Promise<StripeInvoice> {
    const params: Params = {
      customer: input.customer,
      currency: input.currency.toLowerCase(),
      collection_method: "send_invoice",
      days_until_due: input.daysUntilDue ?? DEFAULT_DAYS_UNTIL_DUE,
      auto_advance: false,
      pending_invoice_items_behavior: "exclude",
      description: input.description,
      metadata: input.metadata,
    };
    return this.post("/v1/invoices", params, idempotencyKey, StripeInvoice);
  }

  /** POST /v1/invoiceitems, on the given draft invoice. */
  async createInvoiceItem(input: InvoiceItemInput, idempotencyKey: string): Promise<StripeInvoiceItem> {
    if (!Number.isSafeInteger(input.amount)) {
      throw new ActionFailure("permanent", `stripe: invoice item amount ${input.amount} is not an integer of minor units`, { connector: "stripe" });
    }
    const params: Params = {
      customer: input.customer,
      invoice: input.invoice,
      amount: input.amount,
      currency: input.currency.toLowerCase(),
      description: input.description,
      metadata: input.metadata,
    };
    return this.post("/v1/invoiceitems", params, idempotencyKey, StripeInvoiceItem);
  }

  /**
   * POST /v1/invoices/{id}/finalize. With the key of an earlier finalize Stripe replays its answer.
   * With a new key (the first one's answer was lost and its key expired, or a replay with a new
   * key) Stripe refuses an invoice that is no longer a draft; that invoice is then read and
   * returned, since it is finalized, which is what was asked.
   */
  async finalizeInvoice(id: string, idempotencyKey: string): Promise<StripeInvoice> {
    try {
      return await this.post(`/v1/invoices/${encodeURIComponent(id)}/finalize`, {}, idempotencyKey, StripeInvoice);
    } catch (error) {
      if (!(error instanceof ActionFailure && error.details.status === 400)) throw error;
      const invoice = await this.getInvoice(id);
      if (invoice.status === "draft") throw error;
      return invoice;
    }
  }

  /** GET /v1/invoices/{id}. */
  async getInvoice(id: string): Promise<StripeInvoice> {
    return this.get(`/v1/invoices/${encodeURIComponent(id)}`, {}, StripeInvoice);
  }

  /** GET /v1/invoices/{id}/lines?limit=&starting_after=: one page of its lines, in the invoice's order (an invoice embeds only its first 10). */
  async listInvoiceLines(id: string, input: { limit: number; startingAfter?: string }): Promise<StripeList<InvoiceLine>> {
    const params = { limit: checkLimit(input.limit), starting_after: input.startingAfter };
    return this.get(`/v1/invoices/${encodeURIComponent(id)}/lines`, params, stripeList(InvoiceLine));
  }

  /** GET /v1/invoices?customer=&status=&limit=&starting_after=: one page, newest first. */
  async listInvoices(input: ListInvoicesInput): Promise<StripeList<StripeInvoice>> {
    const params = { customer: input.customer, status: input.status, limit: checkLimit(input.limit), starting_after: input.startingAfter };
    return this.get("/v1/invoices", params, stripeList(StripeInvoice));
  }

  /** GET /v1/customers?email=&limit=&starting_after=: one page, newest first. */
  async listCustomers(input: ListCustomersInput): Promise<StripeList<StripeCustomer>> {
    const params = { email: input.email, limit: checkLimit(input.limit), starting_after: input.startingAfter };
    return this.get("/v1/customers", params, stripeList(StripeCustomer));
  }

  private url(path: string): string {
    return `${this.config.baseUrl}${path}`;
  }

  private headers(): Record<string, string> {
    return { authorization: `Bearer ${this.config.secretKey}`, "stripe-version": STRIPE_API_VERSION };
  }

  private async get<T>(path: string, params: Params, schema: z.ZodType<T>): Promise<T> {
    const query = stripeForm(params).toString();
    const { data } = await this.http.call({ connector: "stripe", method: "GET", url: this.url(query === "" ? path : `${path}?${query}`), headers: this.headers(), schema });
    return data;
  }

  private async post<T>(path: string, params: Params, idempotencyKey: string, schema: z.ZodType<T>): Promise<T> {
    // Stripe keys are at most 255 characters; without one a retry could repeat the effect.
    if (idempotencyKey === "" || idempotencyKey.length > 255) {
      throw new ActionFailure("permanent", `stripe: an Idempotency-Key of 1 to 255 characters is required (got ${idempotencyKey.length})`, { connector: "stripe" });
    }
    const form = stripeForm(params);
    try {
      const { data } = await this.http.call({
        connector: "stripe",
        method: "POST",
        url: this.url(path),
        headers: { ...this.headers(), "idempotency-key": idempotencyKey },
        // finalize sends no parameters: no body at all, as Stripe's own libraries send it.
        ...(form.toString() === "" ? {} : { form }),
        schema,
      });
      return data;
    } catch (error) {
      // 409: another request with this key is still running (idempotency_key_in_use) or the object
      // is locked (lock_timeout); both end by themselves, so they are retried like a 5xx.
      if (error instanceof ActionFailure && error.kind === "permanent" && error.details.status === 409) {
        throw new ActionFailure("transient", error.message, error.details);
      }
      throw error;
    }
  }
}

function checkLimit(limit: number): number {
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
    throw new ActionFailure("permanent", `stripe: a list limit is 1 to ${MAX_LIST_LIMIT} (got ${limit})`, { connector: "stripe" });
  }
  return limit;
}
