/**
 * The Shopify fan-out's vendors for the bench (bench/orders.ts): the sandbox fakes of Salesforce
 * (token + Contact upsert), Postmark (email with template) and Stripe (customers, invoices,
 * invoice items, finalize) served as local HTTP servers, like the HubSpot and Mailchimp ones in
 * vendor-fakes.ts, each wrapped with call counters. Calls are counted by wrapping the handlers, not
 * from `/_sandbox/requests` (which keeps 5000 entries); the fakes' own state (contacts,
 * outbox, invoices) is read in-process at the end.
 *
 * The fakes enforce no rate: Stripe's documented limits (100 requests/s in live mode, 25/s per
 * endpoint by default) are applied to the measured calls per order in the report instead.
 */
import { performance } from "node:perf_hooks";
import { createFakePostmark, type FakePostmarkState } from "../src/sandbox/fake-postmark";
import { createFakeSalesforce, type FakeSalesforceState } from "../src/sandbox/fake-salesforce";
import type { FakeService } from "../src/sandbox/fake-service";
import { createFakeStripe, type FakeStripeState } from "../src/sandbox/fake-stripe";
import { mountFake, serveFetch } from "../test/support/serve-fetch";
import { ORDER_CREDENTIALS, track } from "./harness";

export interface OrderVendorTally {
  salesforce: {
    /** Every call, token calls included. */
    requests: number;
    /** POST /services/oauth2/token. */
    tokenCalls: number;
    /** PATCH of a Contact by external id (sent), and those answered 2xx, per external id (the Shopify customer id). */
    upserts: number;
    upsertsOkByCustomer: Map<string, number>;
    status401: number;
    /** Other non-2xx answers. */
    failed: number;
  };
  postmark: {
    requests: number;
    /** POST /email/withTemplate answered 2xx, per recipient address, with the order name in the model. */
    sentByRecipient: Map<string, string[]>;
    failed: number;
  };
  stripe: {
    requests: number;
    /** By endpoint as Stripe counts them ("POST /v1/invoices/:id/finalize"), answered or not. */
    byEndpoint: Record<string, number>;
    /** Answers replayed from a saved Idempotency-Key (Idempotent-Replayed: true). */
    replayed: number;
    /** Non-2xx answers by status (429 among them, if any). */
    failedByStatus: Record<string, number>;
    /** Invoices finalized (first 2xx finalize per invoice), and when the last one was. */
    finalized: Set<string>;
    lastFinalizeOkAt: number;
  };
}

export interface OrderFakes {
  salesforce: { url: string; service: FakeService<FakeSalesforceState> };
  postmark: { url: string; service: FakeService<FakePostmarkState> };
  stripe: { url: string; service: FakeService<FakeStripeState> };
  tally: OrderVendorTally;
  close(): Promise<void>;
}

/** `/v1/invoices/in_123/finalize` -> `/v1/invoices/:id/finalize`. */
export function stripeEndpoint(method: string, path: string): string {
  const segments = path.split("?")[0]!.split("/").filter(Boolean);
  return `${method} /${segments.map((s, i) => (i === 2 ? ":id" : s)).join("/")}`;
}

const jsonOf = (r: Request): Promise<Record<string, unknown> | null> => r.clone().json().then((v: unknown) => (v !== null && typeof v === "object" ? (v as Record<string, unknown>) : null)).catch(() => null);

/**
 * Fresh fakes, served. `maxSavedIdempotencyKeys`: the fake Stripe keeps 1000 saved answers by
 * default (its state must fit one Durable Object value in sandbox mode); Stripe keeps them 24
 * hours, so the bench keeps every one of the run's, and a retry is answered as Stripe would.
 */
export async function startOrderFakes(maxSavedIdempotencyKeys: number): Promise<OrderFakes> {
  const c = ORDER_CREDENTIALS;
  const tally: OrderVendorTally = {
    salesforce: { requests: 0, tokenCalls: 0, upserts: 0, upsertsOkByCustomer: new Map(), status401: 0, failed: 0 },
    postmark: { requests: 0, sentByRecipient: new Map(), failed: 0 },
    stripe: { requests: 0, byEndpoint: {}, replayed: 0, failedByStatus: {}, finalized: new Set(), lastFinalizeOkAt: 0 },
  };
  const closers: (() => Promise<void>)[] = [];
  const serve = async (handler: (req: Request) => Promise<Response>): Promise<string> => {
    const served = await serveFetch(handler);
    closers.push(track(() => served.close()));
    return served.url;
  };

  const salesforceService = createFakeSalesforce({ clientId: c.salesforceClientId, clientSecret: c.salesforceClientSecret });
  const salesforceHandler = mountFake(salesforceService as FakeService<unknown>);
  const salesforceUrl = await serve(async (req) => {
    const path = new URL(req.url).pathname;
    if (path.startsWith("/_sandbox/")) return salesforceHandler(req);
    const t = tally.salesforce;
    t.requests++;
    const externalId = req.method === "PATCH" ? /\/sobjects\/Contact\/[^/]+\/([^/]+)$/.exec(path)?.[1] : undefined;
    if (path === "/services/oauth2/token") t.tokenCalls++;
    if (externalId !== undefined) t.upserts++;
    const response = await salesforceHandler(req);
    if (response.ok && externalId !== undefined) {
      const id = decodeURIComponent(externalId);
      t.upsertsOkByCustomer.set(id, (t.upsertsOkByCustomer.get(id) ?? 0) + 1);
    } else if (response.status === 401) t.status401++;
    else if (!response.ok) t.failed++;
    return response;
  });

  const postmarkService = createFakePostmark({ serverToken: c.postmarkToken, templates: [c.welcomeTemplate] });
  const postmarkHandler = mountFake(postmarkService as FakeService<unknown>);
  const postmarkUrl = await serve(async (req) => {
    const path = new URL(req.url).pathname;
    if (path.startsWith("/_sandbox/")) return postmarkHandler(req);
    const t = tally.postmark;
    t.requests++;
    const sent = req.method === "POST" ? await jsonOf(req) : null;
    const response = await postmarkHandler(req);
    if (response.ok && typeof sent?.To === "string") {
      const to = sent.To.toLowerCase();
      const model = sent.TemplateModel as Record<string, unknown> | undefined;
      t.sentByRecipient.set(to, [...(t.sentByRecipient.get(to) ?? []), String(model?.order_name ?? "")]);
    } else if (!response.ok) t.failed++;
    return response;
  });

  const stripeService = createFakeStripe({ secretKey: c.stripeKey, maxSavedKeys: maxSavedIdempotencyKeys });
  const stripeHandler = mountFake(stripeService as FakeService<unknown>);
  const stripeUrl = await serve(async (req) => {
    const path = new URL(req.url).pathname;
    if (path.startsWith("/_sandbox/")) return stripeHandler(req);
    const t = tally.stripe;
    t.requests++;
    const endpoint = stripeEndpoint(req.method, path);
    t.byEndpoint[endpoint] = (t.byEndpoint[endpoint] ?? 0) + 1;
    const response = await stripeHandler(req);
    if (response.headers.get("idempotent-replayed") === "true") t.replayed++;
    if (!response.ok) t.failedByStatus[response.status] = (t.failedByStatus[response.status] ?? 0) + 1;
    else if (endpoint === "POST /v1/invoices/:id/finalize") {
      const id = decodeURIComponent(path.split("/")[3]!);
      if (!t.finalized.has(id)) {
        t.finalized.add(id);
        t.lastFinalizeOkAt = performance.now();
      }
    }
    return response;
  });

  return {
    salesforce: { url: salesforceUrl, service: salesforceService },
    postmark: { url: postmarkUrl, service: postmarkService },
    stripe: { url: stripeUrl, service: stripeService },
    tally,
    close: async () => {
      for (const close of closers) await close();
    },
  };
}
