/**
 * What every bench phase shares: credentials, the worker's vars, the two baseline workers,
 * the vendor fakes served as local HTTP servers with call counters, a seeded PRNG, and a
 * registry of everything started so one `closeAll()` stops it whatever happened.
 */
import { Miniflare } from "miniflare";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { createFakeHubSpot, type FakeHubSpotState } from "../src/sandbox/fake-hubspot";
import { createFakeMailchimp, subscriberHash } from "../src/sandbox/fake-mailchimp";
import type { FakeService } from "../src/sandbox/fake-service";
import { mountFake, serveFetch } from "../test/support/serve-fetch";

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

/** The Shopify fan-out's credentials (bench/orders.ts): shared by the worker and the fakes. */
/**
 * Headers every webhook the bench sends carries. Miniflare's entry worker gzips JSON answers for
 * clients that accept it, as Cloudflare's edge does in production, outside the worker: here it
 * would cost workerd's only thread (and this process) a zlib stream per 202. autocannon (the
 * ingest phase) asks for no encoding either.
 */
export const SENDER_HEADERS = { "accept-encoding": "identity" } as const;

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

// ---- the baselines ----------------------------------------------------------------------

export interface Served {
  url: string;
  close(): Promise<void>;
}

interface BaselineQueues {
  queueProducers?: Record<string, { queueName: string }>;
  queueConsumers?: Record<string, { maxBatchSize?: number; maxBatchTimeout?: number }>;
}

/**
 * A baseline worker through the same Miniflare API, host and compatibility settings as the
 * real one (startLocalWorker), so every target pays the same workerd and Miniflare entry costs.
 */
async function startBaseline(name: string, script: string, queues: BaselineQueues = {}): Promise<Served> {
  const { workerOptions } = unstable_getMiniflareWorkerOptions(join(ROOT, "wrangler.toml"));
  const mf = new Miniflare({
    name,
    modules: true,
    scriptPath: join(ROOT, "bench", script),
    compatibilityDate: workerOptions.compatibilityDate,
    compatibilityFlags: workerOptions.compatibilityFlags,
    ...queues,
    host: "127.0.0.1",
    port: 0,
    // No request.cf lookup at start (Miniflare would fetch it from workers.cloudflare.com).
    cf: false,
    verbose: false,
    handleRuntimeStdio: (stdout: NodeJS.ReadableStream, stderr: NodeJS.ReadableStream) => {
      stdout.resume();
      stderr.resume();
    },
  });
  const close = track(() => mf.dispose());
  const url = (await mf.ready).toString().replace(/\/$/, "");
  return { url, close };
}

/** The bare 202 worker (bench/bare-worker.js). */
export function startBareWorker(): Promise<Served> {
  return startBaseline("bare", "bare-worker.js");
}

/** The real worker's events queue in wrangler.toml. */
const EVENTS_QUEUE = "syncwire-events";

/**
 * The minimal enqueue worker (bench/enqueue-worker.js), with an EVENTS producer and a consumer
 * batching as wrangler.toml has the real events queue batch, so its broker flushes alike.
 */
export function startEnqueueWorker(): Promise<Served> {
  const { workerOptions } = unstable_getMiniflareWorkerOptions(join(ROOT, "wrangler.toml"));
  const consumers = workerOptions.queueConsumers;
  const events = consumers !== undefined && !Array.isArray(consumers) ? consumers[EVENTS_QUEUE] : undefined;
  if (events === undefined) throw new Error(`wrangler.toml has no consumer for ${EVENTS_QUEUE}`);
  return startBaseline("enqueue", "enqueue-worker.js", {
    queueProducers: { EVENTS: { queueName: EVENTS_QUEUE } },
    queueConsumers: { [EVENTS_QUEUE]: { maxBatchSize: events.maxBatchSize, maxBatchTimeout: events.maxBatchTimeout } },
  });
}

// ---- the vendor fakes -------------------------------------------------------------------

export interface MailchimpTally {
  /**
   * Successful member writes per subscriber hash: a 2xx PUT of the member, or the member's entry in
   * a batch subscribe's `new_members` / `updated_members`. Exactly-once means every value is 1.
   */
  writesByMember: Map<string, number>;
  /** performance.now() of the last successful member write (PUT or batch), when the fake had its answer ready. */
  lastWriteOkAt: number;
  /** Member writes refused: a non-2xx PUT, every member of a non-2xx batch, every entry of a batch's `errors`. */
  writesFailed: number;
  /** Single member PUTs sent (answered or not). */
  puts: number;
  /** Batch subscribe calls (POST /3.0/lists/{list_id}) and the members they carried. */
  batchCalls: number;
  batchMembers: number;
  /** Every vendor call (not `/_sandbox/`), 429s included. */
  requests: number;
  /** Vendor calls answered 429 (as the wrapper saw them; the fake's own counters are read from /_sandbox/limits). */
  status429: number;
}

export interface HubSpotTally {
  /**
   * Successful CRM writes per contact id, with the `lastname` each one set (undefined: none): a 2xx
   * PATCH of the contact, or the contact's entry in the `results` of a batch/update.
   */
  patchesByContact: Map<string, (string | undefined)[]>;
  /** performance.now() of the last successful CRM write (PATCH or batch/update), when the fake had its answer ready. */
  lastPatchOkAt: number;
  /** CRM writes refused: a non-2xx PATCH, every input of a batch/update not among its results. */
  patchesFailed: number;
  /** Single contact reads (GET). */
  gets: number;
  /** batch/read calls and the inputs they carried. */
  batchReads: number;
  batchReadInputs: number;
  /** Single PATCHes sent (answered or not). */
  patches: number;
  /** batch/update calls and the inputs they carried. */
  batchUpdates: number;
  batchUpdateInputs: number;
  /** Other POSTs: searches, creations (an email-platform event whose address the index did not know), batch/create. */
  posts: number;
  /** Every vendor call (not `/_sandbox/`), 429s included. */
  requests: number;
  status429: number;
}

/** `GET /_sandbox/limits` of the fake HubSpot (hubspot-limits.ts `view`). */
export interface HubSpotLimitCounters {
  max: number;
  intervalMs: number;
  daily: number;
  window: number;
  dailyCount: number;
  accepted: number;
  rejected: number;
  rejectedByPolicy: { TEN_SECONDLY_ROLLING: number; DAILY: number };
}

/** `GET /_sandbox/limits` of the fake Mailchimp (mailchimp-limits.ts `view`). */
export interface MailchimpLimitCounters {
  maxConnections: number;
  inFlight: number;
  peak: number;
  accepted: number;
  rejected: number;
}

export interface VendorFakes {
  hubspot: Served & { service: FakeService<FakeHubSpotState>; tally: HubSpotTally; limits(): Promise<HubSpotLimitCounters> };
  mailchimp: Served & { tally: MailchimpTally; limits(): Promise<MailchimpLimitCounters>; resetLimitCounters(): Promise<void> };
  close(): Promise<void>;
}

export interface Contact {
  id: string;
  email: string;
  firstname: string;
  lastname: string;
}

type Json = Record<string, unknown>;
const jsonOf = (r: Request | Response): Promise<Json | null> => r.clone().json().then((v: unknown) => (v !== null && typeof v === "object" ? (v as Json) : null)).catch(() => null);
const listOf = (v: unknown): Json[] => (Array.isArray(v) ? v.filter((x): x is Json => x !== null && typeof x === "object") : []);

/** A fake's limits control endpoint, called in-process (never limited, no auth). */
async function limitsControl(service: FakeService<unknown>, body?: Json): Promise<Json> {
  const request = body === undefined
    ? new Request("http://fake/_sandbox/limits")
    : new Request("http://fake/_sandbox/limits", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const response = await service.handle(request, "/_sandbox/limits");
  if (!response.ok) throw new Error(`/_sandbox/limits answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as Json;
}

/**
 * Serves fresh fakes with their documented limits on (HubSpot 100 per 10 s and 250,000 a day,
 * Mailchimp 10 simultaneous connections: the fakes' defaults). Contacts are created through the
 * fake's own API in-process (so they have exactly the shape it renders) with the limits switched
 * off, then the limits go back on with every counter zeroed (window, day, 429s) and the request
 * log is emptied: seeding costs the product none of its rate. Calls are counted by wrapping the
 * handlers rather than reading `/_sandbox/requests`, which keeps only 5000 entries.
 */
export async function startVendorFakes(contactCount: number, random: () => number): Promise<VendorFakes & { contacts: Contact[] }> {
  const hubspotService = createFakeHubSpot({ accessToken: CREDENTIALS.hubspotToken });
  await limitsControl(hubspotService, { enabled: false });
  const contacts: Contact[] = [];
  for (let i = 0; i < contactCount; i++) {
    const email = `bench.${i}.${Math.floor(random() * 1e9).toString(36)}@example.com`;
    const firstname = `First${i}`;
    const lastname = `Last${i}`;
    const response = await hubspotService.handle(
      new Request("http://fake/crm/v3/objects/contacts", {
        method: "POST",
        headers: { authorization: `Bearer ${CREDENTIALS.hubspotToken}`, "content-type": "application/json" },
        body: JSON.stringify({ properties: { email, firstname, lastname } }),
      }),
      "/crm/v3/objects/contacts",
    );
    if (response.status !== 201) throw new Error(`seeding contact ${i} failed: ${response.status} ${await response.text()}`);
    const { id } = (await response.json()) as { id: string };
    contacts.push({ id, email, firstname, lastname });
  }
  const hubspotLimits = await limitsControl(hubspotService, { enabled: true, resetCounters: true });
  if (hubspotLimits.accepted !== 0 || hubspotLimits.dailyCount !== 0 || hubspotLimits.enabled !== true) {
    throw new Error(`the fake HubSpot's limits were not reset after seeding: ${JSON.stringify(hubspotLimits)}`);
  }
  hubspotService.state.requests = [];

  const hubspotTally: HubSpotTally = {
    patchesByContact: new Map(),
    lastPatchOkAt: 0,
    patchesFailed: 0,
    gets: 0,
    batchReads: 0,
    batchReadInputs: 0,
    patches: 0,
    batchUpdates: 0,
    batchUpdateInputs: 0,
    posts: 0,
    requests: 0,
    status429: 0,
  };
  const wrote = (contactId: string, lastname: string | undefined) => {
    hubspotTally.patchesByContact.set(contactId, [...(hubspotTally.patchesByContact.get(contactId) ?? []), lastname]);
    hubspotTally.lastPatchOkAt = performance.now();
  };
  const hubspotHandler = mountFake(hubspotService);
  const hubspot = await serveFetch(async (req) => {
    const path = new URL(req.url).pathname;
    if (path.startsWith("/_sandbox/")) return hubspotHandler(req);
    const t = hubspotTally;
    t.requests++;
    const contactId = /^\/crm\/v3\/objects\/contacts\/([^/?]+)$/.exec(path)?.[1];
    const batch = /^\/crm\/v3\/objects\/contacts\/batch\/([a-z]+)$/.exec(path)?.[1];
    const sent = req.method === "PATCH" || batch === "update" || batch === "read" ? await jsonOf(req) : null;
    const inputs = listOf(sent?.inputs);
    if (req.method === "GET" && contactId !== undefined) t.gets++;
    else if (req.method === "PATCH" && contactId !== undefined) t.patches++;
    else if (req.method === "POST" && batch === "read") {
      t.batchReads++;
      t.batchReadInputs += inputs.length;
    } else if (req.method === "POST" && batch === "update") {
      t.batchUpdates++;
      t.batchUpdateInputs += inputs.length;
    } else if (req.method === "POST") t.posts++;
    const response = await hubspotHandler(req);
    if (response.status === 429) t.status429++;
    if (req.method === "PATCH" && contactId !== undefined) {
      if (response.ok) wrote(contactId, (sent?.properties as Record<string, string> | undefined)?.lastname);
      else t.patchesFailed++;
    } else if (req.method === "POST" && batch === "update") {
      // 200 or 207: each contact among the results was written; every other input was not.
      const answer = response.ok ? await jsonOf(response) : null;
      const lastnameOf = new Map(inputs.map((input) => [String(input.id), (input.properties as Record<string, string> | undefined)?.lastname]));
      const written = listOf(answer?.results).map((r) => String(r.id)).filter((id) => lastnameOf.has(id));
      for (const id of written) wrote(id, lastnameOf.get(id));
      t.patchesFailed += inputs.length - written.length;
    }
    return response;
  });
  const closeHubspot = track(() => hubspot.close());

  const tally: MailchimpTally = { writesByMember: new Map(), lastWriteOkAt: 0, writesFailed: 0, puts: 0, batchCalls: 0, batchMembers: 0, requests: 0, status429: 0 };
  const memberWritten = (hash: string) => {
    tally.writesByMember.set(hash, (tally.writesByMember.get(hash) ?? 0) + 1);
    tally.lastWriteOkAt = performance.now();
  };
  const mailchimpService = createFakeMailchimp({ apiKey: CREDENTIALS.mailchimpKey, listIds: [CREDENTIALS.listId] });
  const mailchimpHandler = mountFake(mailchimpService);
  const mailchimp = await serveFetch(async (req) => {
    const path = new URL(req.url).pathname;
    if (path.startsWith("/_sandbox/")) return mailchimpHandler(req);
    tally.requests++;
    const member = /\/members\/([0-9a-f]{32})$/.exec(path)?.[1];
    const isBatch = req.method === "POST" && /^\/3\.0\/lists\/[^/]+$/.test(path);
    const members = isBatch ? listOf((await jsonOf(req))?.members) : [];
    if (req.method === "PUT" && member !== undefined) tally.puts++;
    if (isBatch) {
      tally.batchCalls++;
      tally.batchMembers += members.length;
    }
    const response = await mailchimpHandler(req);
    if (response.status === 429) tally.status429++;
    if (req.method === "PUT" && member !== undefined) {
      if (response.ok) memberWritten(member);
      else tally.writesFailed++;
    } else if (isBatch) {
      // 200 even when members were refused: each one in new_members or updated_members was written.
      const answer = response.ok ? await jsonOf(response) : null;
      const written = [...listOf(answer?.new_members), ...listOf(answer?.updated_members)].filter((m) => typeof m.email_address === "string");
      for (const m of written) memberWritten(subscriberHash(m.email_address as string));
      tally.writesFailed += response.ok ? listOf(answer?.errors).length : members.length;
    }
    return response;
  });
  const closeMailchimp = track(() => mailchimp.close());

  return {
    contacts,
    hubspot: {
      url: hubspot.url,
      close: closeHubspot,
      service: hubspotService,
      tally: hubspotTally,
      limits: async () => (await limitsControl(hubspotService)) as unknown as HubSpotLimitCounters,
    },
    mailchimp: {
      url: mailchimp.url,
      close: closeMailchimp,
      tally,
      limits: async () => (await limitsControl(mailchimpService)) as unknown as MailchimpLimitCounters,
      resetLimitCounters: async () => void (await limitsControl(mailchimpService, { resetCounters: true })),
    },
    close: async () => {
      await closeHubspot();
      await closeMailchimp();
    },
  };
}

/** Sets faults on a served fake through its documented control endpoint. */
export async function setFaults(fakeUrl: string, faults: Record<string, unknown>): Promise<void> {
  const response = await fetch(`${fakeUrl}/_sandbox/faults`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(faults),
  });
  if (!response.ok) throw new Error(`setting faults failed: ${response.status} ${await response.text()}`);
}
