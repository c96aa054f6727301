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
import { createFakeMailchimp } from "../src/sandbox/fake-mailchimp";
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
  /** Successful member PUTs per subscriber hash: exactly-once means every value is 1. */
  putsByMember: Map<string, number>;
  /** performance.now() of the last 2xx PUT, when the fake had its answer ready. */
  lastPutOkAt: number;
  putsFailed: number;
  requests: number;
}

export interface HubSpotTally {
  /** Successful contact PATCHes per contact id, with the `lastname` each one set (undefined: none). */
  patchesByContact: Map<string, (string | undefined)[]>;
  /** performance.now() of the last 2xx PATCH, when the fake had its answer ready. */
  lastPatchOkAt: number;
  patchesFailed: number;
  gets: number;
  /** Searches and creations (POST): an email-platform event whose address the index did not know. */
  posts: number;
}

export interface VendorFakes {
  hubspot: Served & { service: FakeService<FakeHubSpotState>; gets: () => number; tally: HubSpotTally };
  mailchimp: Served & { tally: MailchimpTally };
  close(): Promise<void>;
}

export interface Contact {
  id: string;
  email: string;
  firstname: string;
  lastname: string;
}

/**
 * Serves fresh fakes. Contacts are created through the fake's own API in-process (so they
 * have exactly the shape it renders), then the request log is emptied. Calls are counted by
 * wrapping the handlers rather than reading `/_sandbox/requests`, which keeps only 5000 entries.
 */
export async function startVendorFakes(contactCount: number, random: () => number): Promise<VendorFakes & { contacts: Contact[] }> {
  // The fakes' documented rate limits are off here until the product sends bulk calls under
  // its shared budgets (issue 7): one call per event at 100 per 10 s would only measure 429s.
  const hubspotService = createFakeHubSpot({ accessToken: CREDENTIALS.hubspotToken, limits: false });
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
  hubspotService.state.requests = [];

  const hubspotTally: HubSpotTally = { patchesByContact: new Map(), lastPatchOkAt: 0, patchesFailed: 0, gets: 0, posts: 0 };
  const hubspotHandler = mountFake(hubspotService);
  const hubspot = await serveFetch(async (req) => {
    const contactId = /\/crm\/v3\/objects\/contacts\/([^/?]+)$/.exec(new URL(req.url).pathname)?.[1];
    if (req.method === "GET") hubspotTally.gets++;
    if (req.method === "POST") hubspotTally.posts++;
    if (req.method !== "PATCH" || contactId === undefined) return hubspotHandler(req);
    const sent = (await req.clone().json().catch(() => null)) as { properties?: Record<string, string> } | null;
    const response = await hubspotHandler(req);
    if (response.ok) {
      hubspotTally.patchesByContact.set(contactId, [...(hubspotTally.patchesByContact.get(contactId) ?? []), sent?.properties?.lastname]);
      hubspotTally.lastPatchOkAt = performance.now();
    } else {
      hubspotTally.patchesFailed++;
    }
    return response;
  });
  const closeHubspot = track(() => hubspot.close());

  const tally: MailchimpTally = { putsByMember: new Map(), lastPutOkAt: 0, putsFailed: 0, requests: 0 };
  const mailchimpHandler = mountFake(createFakeMailchimp({ apiKey: CREDENTIALS.mailchimpKey, listIds: [CREDENTIALS.listId], limits: false }));
  const mailchimp = await serveFetch(async (req) => {
    const response = await mailchimpHandler(req);
    const member = /\/members\/([0-9a-f]{32})$/.exec(new URL(req.url).pathname)?.[1];
    if (req.method === "PUT" && member !== undefined) {
      if (response.ok) {
        tally.putsByMember.set(member, (tally.putsByMember.get(member) ?? 0) + 1);
        tally.lastPutOkAt = performance.now();
      } else {
        tally.putsFailed++;
      }
    }
    if (!new URL(req.url).pathname.startsWith("/_sandbox/")) tally.requests++;
    return response;
  });
  const closeMailchimp = track(() => mailchimp.close());

  return {
    contacts,
    hubspot: { url: hubspot.url, close: closeHubspot, service: hubspotService, gets: () => hubspotTally.gets, tally: hubspotTally },
    mailchimp: { url: mailchimp.url, close: closeMailchimp, tally },
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
