// Fake Stripe API (v1): customers, invoices, invoice items, finalize, and the customer and invoice
// lists (GET /v1/customers?email=, GET /v1/invoices?customer=&status=). Written to docs.stripe.com/api:
// secret-key auth (`Authorization: Bearer sk_…`, or Basic with the key as user name), form-encoded
// bodies (stripe-form.ts), `{error: {type, code, message, param}}` errors, the `Stripe-Version`
// header (the account's default version when absent; recorded in the request log), and idempotent
// requests (stripe-idempotency.ts). The objects and their rules: stripe-billing.ts (customers and
// the data), stripe-invoices.ts, stripe-invoice-items.ts.
//
// Faults: the shared ones (`/_sandbox/faults`: outage, failNext, errorRate, latency) answer before
// the endpoint runs, so, as at Stripe, no result is saved under the request's Idempotency-Key and
// a retry with the same key executes. `POST /_sandbox/execution-faults {count, status?, commit?}`
// makes the next `count` successful writes answer `status` (500) after they ran (their effect kept
// unless `commit: false`); that answer is saved under the key like any executed one, so a retry
// with the same key gets the same 500 again, as Stripe documents.
import { isPlainObject, jsonResponse, md5Hex, parsePath, pathSegments, readBody, type FakeService, type RequestBody, type RequestLogEntry } from "./fake-service";
import { initSandboxState, type SandboxState } from "./faults";
import { handleSandboxRequest } from "./sandbox-request";
import { billingSnapshot, createCustomer, listCustomers, renderCustomer, type BillingCtx, type BillingData, type Outcome } from "./stripe-billing";
import { decide, fingerprintOf, keyScope, pruneExpired, replayResponse, saveResult, type IdempotencyData } from "./stripe-idempotency";
import { createInvoiceItem, listInvoiceLines, renderInvoiceItem } from "./stripe-invoice-items";
import { createInvoice, finalizeInvoice, getInvoice, listInvoices, renderInvoice } from "./stripe-invoices";
import { apiKeyOf, checkAuth, noSuch, parseStripeForm, StripeFailure, stripeErrorJson, stripeErrorResponse, stripeFaultResponse, type FormParams } from "./stripe-form";

export type { CustomerRecord, InvoiceItemRecord, InvoiceRecord } from "./stripe-billing";

export interface ExecutionFaults {
  count: number;
  status: number;
  commit: boolean;
}

export interface FakeStripeData extends BillingData, IdempotencyData {
  executionFaults: ExecutionFaults | null;
}

export type FakeStripeState = SandboxState<FakeStripeData>;

/** A Stripe call in the request log: its form parameters as `body`, plus the headers that matter here. */
export interface StripeRequestLogEntry extends RequestLogEntry {
  stripeVersion: string | null;
  idempotencyKey: string | null;
}

export interface FakeStripeOptions {
  /** The secret key(s) the fake accepts; each has its own idempotency keys. */
  secretKey: string | readonly string[];
  now?: () => number;
  state?: FakeStripeState;
  /** What a request without Stripe-Version gets (an account's pinned version); default 2024-06-20. */
  accountApiVersion?: string;
  /** The account's default currency; default usd. */
  defaultCurrency?: string;
  /**
   * Saved answers kept at most, oldest dropped first (Stripe keeps them 24 hours, and so does the
   * fake within this bound). The sandbox host stores the whole state as one Durable Object value,
   * which may not exceed 2 MB with its key; default 1,000 (a saved answer is ~1-3 KB).
   */
  maxSavedKeys?: number;
}

export const DEFAULT_ACCOUNT_API_VERSION = "2024-06-20";

/** What the wrapper learnt of a request before the shared pipeline read it. */
interface RequestMeta {
  stripeVersion: string | null;
  idempotencyKey: string | null;
  apiKey: string | null;
  form: FormParams | null;
  formError: string | null;
  /** Another request with the same API key and Idempotency-Key was running when this one arrived. */
  inUse: boolean;
}

export function emptyStripeData(): FakeStripeData {
  return { nextId: 1, customers: {}, invoices: {}, invoiceItems: {}, pendingItems: {}, idempotency: {}, idempotencyOrder: [], executionFaults: null };
}

export function createFakeStripe(opts: FakeStripeOptions): FakeService<FakeStripeState> {
  const now = opts.now ?? Date.now;
  const keys = typeof opts.secretKey === "string" ? [opts.secretKey] : [...opts.secretKey];
  const accountVersion = opts.accountApiVersion ?? DEFAULT_ACCOUNT_API_VERSION;
  const state: FakeStripeState = initSandboxState(opts.state, emptyStripeData);
  const metaOf = new WeakMap<Request, RequestMeta>();
  // In memory on purpose: a request in flight does not outlive the process that runs it.
  const running = new Map<string, number>();

  const service: FakeService<FakeStripeState> = {
    name: "stripe",
    state,
    handle: async (request, path) => {
      if (parsePath(path).pathname.startsWith("/_sandbox/")) return handleSandboxRequest(service.state, vendor, request, path, now);
      const { prepared, meta } = await prepare(request);
      metaOf.set(prepared, meta);
      const scope = request.method === "POST" && meta.apiKey && meta.idempotencyKey ? keyScope(meta.apiKey, meta.idempotencyKey) : null;
      if (scope !== null) {
        meta.inUse = (running.get(scope) ?? 0) > 0;
        running.set(scope, (running.get(scope) ?? 0) + 1);
      }
      try {
        const response = await handleSandboxRequest(service.state, vendor, prepared, path, now);
        annotateLog(service.state.requests, request.method, path, response.status, meta);
        return response;
      } finally {
        if (scope !== null) {
          const left = (running.get(scope) ?? 1) - 1;
          if (left > 0) running.set(scope, left);
          else running.delete(scope);
        }
      }
    },
  };

  const vendor = {
    emptyData: emptyStripeData,
    faultResponse: stripeFaultResponse,
    handleControl: async (request: Request, name: string) => (name === "execution-faults" ? executionFaultsControl(service.state.data, request) : null),
    handleVendor: async (request: Request, url: URL, body: RequestBody): Promise<Response> => {
      const meta = metaOf.get(request)!;
      const data = service.state.data;
      const apiVersion = meta.stripeVersion ?? accountVersion;
      const headers: Record<string, string> = { "Request-Id": requestId(), "Stripe-Version": apiVersion };
      if (!/^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$/.test(apiVersion)) {
        return stripeErrorResponse(400, { type: "invalid_request_error", message: `Invalid Stripe API version: ${apiVersion}` }, headers);
      }
      const authError = checkAuth(meta.apiKey, keys);
      if (authError !== null) return stripeErrorResponse(401, { type: "invalid_request_error", message: authError }, headers);

      const isPost = request.method === "POST";
      if (isPost && meta.formError !== null) return stripeErrorResponse(400, { type: "invalid_request_error", message: meta.formError }, headers);
      if (isPost && meta.form === null && body.kind !== "empty") {
        const type = request.headers.get("content-type") ?? "(none)";
        return stripeErrorResponse(400, { type: "invalid_request_error", message: `Invalid request: unsupported Content-Type ${type}. Stripe takes application/x-www-form-urlencoded bodies.` }, headers);
      }
      // A GET's parameters are its query string, in the same bracketed encoding as a form body.
      const query = isPost ? null : parseStripeForm(url.search.slice(1));
      if (typeof query === "string") return stripeErrorResponse(400, { type: "invalid_request_error", message: query }, headers);
      const params = isPost ? (meta.form ?? {}) : (query ?? {});
      const endpoint = route(request.method, pathSegments(url.pathname));
      if (endpoint === null) {
        const message = `Unrecognized request URL (${request.method}: ${url.pathname}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.`;
        return stripeErrorResponse(404, { type: "invalid_request_error", message }, headers);
      }

      const key = isPost ? meta.idempotencyKey : null;
      const scope = key !== null ? keyScope(meta.apiKey!, key) : null;
      const fingerprint = fingerprintOf(request.method, url.pathname, params);
      if (key !== null && scope !== null) {
        const at = now();
        pruneExpired(data, at);
        const decision = decide(data.idempotency, scope, key, fingerprint, meta.inUse, at);
        if (decision.kind === "refuse") return decision.response;
        if (decision.kind === "replay") return replayResponse(decision.saved, key, apiVersion);
        headers["Idempotency-Key"] = key;
      }

      const ctx: BillingCtx = { data, now: Math.floor(now() / 1000), apiVersion, defaultCurrency: opts.defaultCurrency ?? "usd" };
      const fault = isPost ? data.executionFaults : null;
      const before = fault?.commit === false ? billingSnapshot(data) : null;
      let outcome: Outcome;
      let executed: boolean;
      try {
        outcome = endpoint(ctx, params);
        executed = true;
      } catch (error) {
        if (!(error instanceof StripeFailure)) throw error;
        outcome = { status: error.status, body: stripeErrorJson(error.error) };
        executed = error.executed;
      }
      if (fault !== null && outcome.status === 200) {
        fault.count -= 1;
        if (fault.count <= 0) data.executionFaults = null;
        if (before !== null) Object.assign(data, before);
        outcome = { status: fault.status, body: stripeErrorJson({ type: "api_error", message: "An unknown error occurred (sandbox execution fault)." }) };
      }
      const text = JSON.stringify(outcome.body);
      if (scope !== null && executed) {
        saveResult(data, scope, { fingerprint, status: outcome.status, body: text, requestId: headers["Request-Id"]!, at: now() }, opts.maxSavedKeys ?? 1_000);
      }
      return new Response(text, { status: outcome.status, headers: { "Content-Type": "application/json", ...headers } });
    },
  };
  return service;
}

type Endpoint = (ctx: BillingCtx, params: FormParams) => Outcome;

function route(method: string, segments: string[]): Endpoint | null {
  const [version, collection, id, action, ...rest] = segments;
  if (version !== "v1" || collection === undefined || rest.length > 0) return null;
  const get = (render: (ctx: BillingCtx, id: string) => Outcome): Endpoint | null => (method === "GET" && action === undefined && id !== undefined ? (ctx) => render(ctx, id) : null);
  switch (collection) {
    case "customers":
      if (method === "POST" && id === undefined) return createCustomer;
      if (method === "GET" && id === undefined) return listCustomers;
      return get((ctx, cid) => {
        const customer = ctx.data.customers[cid];
        if (customer === undefined) throw noSuch("customer", cid, "id", 404);
        return { status: 200, body: renderCustomer(customer) };
      });
    case "invoices":
      if (method === "POST" && id === undefined) return createInvoice;
      if (method === "GET" && id === undefined) return listInvoices;
      if (method === "POST" && id !== undefined && action === "finalize") return (ctx, params) => finalizeInvoice(ctx, id, params);
      if (method === "GET" && id !== undefined && action === "lines") return (ctx, params) => listInvoiceLines(ctx, getInvoice(ctx.data, id), params);
      return get((ctx, iid) => ({ status: 200, body: renderInvoice(ctx.data, getInvoice(ctx.data, iid)) }));
    case "invoiceitems":
      if (method === "POST" && id === undefined) return createInvoiceItem;
      return get((ctx, iid) => {
        const item = ctx.data.invoiceItems[iid];
        if (item === undefined) throw noSuch("invoiceitem", iid, "id", 404);
        return { status: 200, body: renderInvoiceItem(item) };
      });
    default:
      return null;
  }
}

/** Reads a form body into params (the shared pipeline then logs and sees them as JSON). */
async function prepare(request: Request): Promise<{ prepared: Request; meta: RequestMeta }> {
  const meta: RequestMeta = {
    stripeVersion: request.headers.get("Stripe-Version"),
    idempotencyKey: request.headers.get("Idempotency-Key"),
    apiKey: apiKeyOf(request),
    form: null,
    formError: null,
    inUse: false,
  };
  const isForm = /application\/x-www-form-urlencoded/i.test(request.headers.get("content-type") ?? "");
  if (request.method === "GET" || request.method === "HEAD" || !isForm) return { prepared: request, meta };
  // Read as bytes: workerd warns when text() is called on a form body.
  const text = new TextDecoder().decode(await request.arrayBuffer());
  const parsed = parseStripeForm(text);
  const headers = new Headers(request.headers);
  headers.delete("content-length");
  // What the shared pipeline reads from here on (and logs) is the parsed form as JSON.
  headers.set("content-type", typeof parsed === "string" ? "text/plain; charset=utf-8" : "application/json");
  if (typeof parsed === "string") meta.formError = parsed;
  else meta.form = parsed;
  const body = typeof parsed === "string" ? text : Object.keys(parsed).length > 0 ? JSON.stringify(parsed) : null;
  return { prepared: new Request(request.url, { method: request.method, headers, body }), meta };
}

function requestId(): string {
  return `req_${md5Hex(crypto.randomUUID()).slice(0, 14)}`;
}

/** Adds Stripe-Version and Idempotency-Key to this call's log entry (the newest unannotated one like it). */
function annotateLog(requests: RequestLogEntry[], method: string, path: string, status: number, meta: RequestMeta): void {
  const url = parsePath(path);
  const logged = url.pathname + url.search;
  for (let i = requests.length - 1; i >= Math.max(0, requests.length - 100); i--) {
    const entry = requests[i] as Partial<StripeRequestLogEntry> & RequestLogEntry;
    if (entry.stripeVersion !== undefined || entry.method !== method || entry.path !== logged || entry.status !== status) continue;
    entry.stripeVersion = meta.stripeVersion;
    entry.idempotencyKey = meta.idempotencyKey;
    return;
  }
}

async function executionFaultsControl(data: FakeStripeData, request: Request): Promise<Response> {
  if (request.method === "GET") return jsonResponse({ executionFaults: data.executionFaults });
  if (request.method !== "POST") return jsonResponse({ error: `method ${request.method} not allowed` }, 405);
  const body = await readBody(request);
  const input = body.kind === "json" ? body.value : null;
  if (!isPlainObject(input)) return jsonResponse({ error: "body must be a JSON object {count, status?, commit?}" }, 400);
  const { count, status = 500, commit = true } = input;
  if (!(typeof count === "number" && Number.isInteger(count) && count >= 0)) return jsonResponse({ error: "count must be an integer >= 0" }, 400);
  if (!(typeof status === "number" && Number.isInteger(status) && status >= 500 && status <= 599)) return jsonResponse({ error: "status must be 500..599" }, 400);
  if (typeof commit !== "boolean") return jsonResponse({ error: "commit must be true or false" }, 400);
  data.executionFaults = count === 0 ? null : { count, status, commit };
  return jsonResponse({ executionFaults: data.executionFaults });
}
