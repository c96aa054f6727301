/**
 * What every bench phase shares: credentials, the worker's vars, a seeded PRNG, the concurrent
 * sender, polling until something holds, and a registry of everything started so one
 * `closeAll()` stops it whatever happened.
 * The servers the phases start live next to it: the baseline workers in baseline-workers.ts, the
 * HubSpot and Mailchimp fakes in vendor-fakes.ts (the Shopify fan-out's in order-fakes.ts); they
 * register with `track` here, so `closeAll()` reaches them too.
 */
import { resolve } from "node:path";
import { performance } from "node:perf_hooks";

export const ROOT = resolve(import.meta.dirname, "..");
export const SEED = 0x5e1c_4e11;

export const CREDENTIALS = {
  hubspotToken: "pat-bench-hubspot-token",
  hubspotSecret: "bench-hubspot-client-secret",
  mailchimpKey: "0123456789abcdef0123456789abcdef-us21",
  listId: "benchlist01",
};

/** Non-sandbox vars with both connectors pointed at the local fakes. */
export function workerVars(hubspotUrl: string, mailchimpUrl: string): Record<string, string> {
  return {
    SANDBOX: "false",
    ADMIN_TOKEN: "bench-admin-token-0123456789",
    HUBSPOT_BASE_URL: hubspotUrl,
    HUBSPOT_ACCESS_TOKEN: CREDENTIALS.hubspotToken,
    HUBSPOT_CLIENT_SECRET: CREDENTIALS.hubspotSecret,
    MAILCHIMP_API_KEY: CREDENTIALS.mailchimpKey,
    MAILCHIMP_BASE_URL: mailchimpUrl,
    MAILCHIMP_LIST_ID: CREDENTIALS.listId,
    MAILCHIMP_WEBHOOK_SECRET: "bench-mailchimp-url-secret",
  };
}

/**
 * Headers every webhook the bench sends carries. Miniflare's entry worker gzips JSON answers for
 * clients that accept it, as Cloudflare's edge does in production, outside the worker: here it
 * would cost workerd's only thread (and this process) a zlib stream per 202. autocannon (the
 * ingest phase) asks for no encoding either.
 */
export const SENDER_HEADERS = { "accept-encoding": "identity" } as const;

/** The Shopify fan-out's credentials (bench/orders.ts): shared by the worker and the fakes. */
export const ORDER_CREDENTIALS = {
  shopifySecret: "bench-shopify-webhook-secret-0123",
  salesforceClientId: "bench-salesforce-client-id",
  salesforceClientSecret: "bench-salesforce-client-secret",
  postmarkToken: "bench-postmark-server-token",
  postmarkFrom: "Syncwire Shop <orders@shop.example.com>",
  welcomeTemplate: "welcome",
  stripeKey: "sk_test_bench_syncwire_0123456789",
};

/** Non-sandbox vars with Shopify on and Salesforce, Postmark and Stripe pointed at the local fakes (order-fakes.ts). */
export function orderWorkerVars(urls: { salesforce: string; postmark: string; stripe: string }): Record<string, string> {
  const c = ORDER_CREDENTIALS;
  return {
    SANDBOX: "false",
    ADMIN_TOKEN: "bench-admin-token-0123456789",
    SHOPIFY_WEBHOOK_SECRET: c.shopifySecret,
    SALESFORCE_LOGIN_URL: urls.salesforce,
    SALESFORCE_CLIENT_ID: c.salesforceClientId,
    SALESFORCE_CLIENT_SECRET: c.salesforceClientSecret,
    POSTMARK_SERVER_TOKEN: c.postmarkToken,
    POSTMARK_BASE_URL: urls.postmark,
    POSTMARK_FROM: c.postmarkFrom,
    POSTMARK_WELCOME_TEMPLATE: c.welcomeTemplate,
    STRIPE_SECRET_KEY: c.stripeKey,
    STRIPE_BASE_URL: urls.stripe,
  };
}

// ---- cleanup ----------------------------------------------------------------------------

const open = new Set<() => Promise<void>>();

/** Registers a close function; the returned one closes once and unregisters. */
export function track(close: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | null = null;
  const once = () => {
    open.delete(once);
    done ??= close();
    return done;
  };
  open.add(once);
  return once;
}

/** Closes whatever is still open (newest first), never throwing. */
export async function closeAll(): Promise<void> {
  for (const close of [...open].reverse()) await close().catch(() => undefined);
}

/** Sends every item with `concurrency` senders at once, in order; resolves when all were sent. */
export async function sendAll<T>(items: readonly T[], concurrency: number, send: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await send(items[next++]!);
    }),
  );
}

export function sleep(ms: number): Promise<void> {
  return new Promise((wake) => setTimeout(wake, ms));
}

/** Polls until `done()` or the deadline; returns whether it got there. */
export async function waitFor(done: () => boolean | Promise<boolean>, deadline: number, everyMs = 10): Promise<boolean> {
  while (performance.now() < deadline) {
    if (await done()) return true;
    await sleep(everyMs);
  }
  return done();
}

// ---- PRNG -------------------------------------------------------------------------------

/** mulberry32, the same generator the fakes use: a fixed seed gives the same run every time. */
export function prng(seed: number): () => number {
  let state = seed | 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

// ---- served things ----------------------------------------------------------------------

/** A local HTTP server the bench started (a baseline worker or a vendor fake), closed through `track`. */
export interface Served {
  url: string;
  close(): Promise<void>;
}
