/**
 * Node side, shared by the end-to-end tests: webhooks signed as HubSpot signs them (with
 * node:crypto, independent of the product's own verifier), the fake CRM's contacts, and polling.
 */
import { createHmac } from "node:crypto";
import { retryingDispatcher, type TrackedDispatcher } from "../../src/sandbox/webhooks";

/** Signature v3: base64 HMAC-SHA256 of method + URL + body + timestamp (the URL as sent, nothing encoded to decode). */
export function hubspotV3(secret: string, url: string, body: string, timestamp: string): string {
  return createHmac("sha256", secret).update(`POST${url}${body}${timestamp}`, "utf8").digest("base64");
}

/** POSTs `events` to `<base>/webhooks/hubspot`, signed with `secret` and a fresh timestamp. */
export function postHubSpot(base: string, secret: string, events: unknown[]): Promise<Response> {
  const url = `${base}/webhooks/hubspot`;
  const body = JSON.stringify(events);
  const timestamp = String(Date.now());
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", "x-hubspot-request-timestamp": timestamp, "x-hubspot-signature-v3": hubspotV3(secret, url, body, timestamp) },
    body,
  });
}

/** Creates a contact in the fake HubSpot served at `hubspotUrl`; its id. */
export async function createContact(hubspotUrl: string, token: string, properties: Record<string, string>): Promise<string> {
  const res = await fetch(`${hubspotUrl}/crm/v3/objects/contacts`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ properties }),
  });
  if (res.status !== 201) throw new Error(`create contact: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
}

export type Member = { email_address: string; status: string; merge_fields: Record<string, string> };

/** The audience as the fake Mailchimp at `mailchimpUrl` holds it (its control endpoint answers even during an outage). */
export async function members(mailchimpUrl: string, listId: string): Promise<Member[]> {
  const state = (await (await fetch(`${mailchimpUrl}/_sandbox/state`)).json()) as { lists: Record<string, { members: Record<string, Member> }> };
  return Object.values(state.lists[listId]?.members ?? {});
}

/** Polls `check` until it returns something other than undefined or false. */
export async function until<T>(check: () => Promise<T | undefined | false>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export interface Credentials {
  adminToken: string;
  hubspotToken: string;
  hubspotClientSecret: string;
  mailchimpKey: string;
  mailchimpListId: string;
  mailchimpUrlSecret: string;
}

/** The worker's vars outside sandbox mode, its HubSpot and Mailchimp connectors pointed at local fakes. */
export function connectedVars(hubspotUrl: string, mailchimpUrl: string, c: Credentials): Record<string, string> {
  return {
    SANDBOX: "false",
    ADMIN_TOKEN: c.adminToken,
    HUBSPOT_BASE_URL: hubspotUrl,
    HUBSPOT_ACCESS_TOKEN: c.hubspotToken,
    HUBSPOT_CLIENT_SECRET: c.hubspotClientSecret,
    MAILCHIMP_API_KEY: c.mailchimpKey,
    MAILCHIMP_BASE_URL: mailchimpUrl,
    MAILCHIMP_LIST_ID: c.mailchimpListId,
    MAILCHIMP_WEBHOOK_SECRET: c.mailchimpUrlSecret,
  };
}

// ---- two-way sync: vendors that send their webhooks back, and waiting for quiet -----------

/** One vendor call as a fake's `/_sandbox/requests` log records it. */
export interface LoggedCall { at: number; method: string; path: string; status: number; body: unknown }

/** `PUT /3.0/lists/l/members/abc`: method and path without the query. */
export const callName = (c: LoggedCall): string => `${c.method} ${c.path.split("?")[0]}`;

/**
 * A fake's request log, read through its control endpoint, and the changes a person makes in
 * that vendor (`X-Sandbox-Actor: user`, with the vendor's credentials). The test's own calls are
 * remembered by their place in the log, so `since` shows only what Syncwire called.
 */
export class VendorLog {
  private readonly own = new Set<number>();
  constructor(readonly url: string, private readonly authorization: string) {}

  async all(): Promise<LoggedCall[]> {
    return ((await (await fetch(`${this.url}/_sandbox/requests`)).json()) as { requests: LoggedCall[] }).requests;
  }

  /** Where the log ends now: the mark of a step. */
  async mark(): Promise<number> {
    return (await this.all()).length;
  }

  /** Syncwire's calls logged from `mark` on (the test's own left out). */
  async since(mark: number): Promise<LoggedCall[]> {
    return (await this.all()).filter((_, i) => i >= mark && !this.own.has(i));
  }

  /** A person's change; fails unless the vendor answers 2xx. Call only while the system is quiet. */
  async user(method: string, path: string, body?: unknown): Promise<unknown> {
    const before = await this.mark();
    const headers: Record<string, string> = { authorization: this.authorization, "x-sandbox-actor": "user" };
    if (body !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(`${this.url}${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path} as user: ${res.status} ${text}`);
    const log = await this.all();
    const index = log.findIndex((c, i) => i >= before && !this.own.has(i) && c.method === method && c.path === path);
    if (index < 0) throw new Error(`${method} ${path} is not in the log`);
    this.own.add(index);
    return text === "" ? null : JSON.parse(text);
  }
}

/**
 * Delivers a fake's webhooks over HTTP like `fetchDispatcher`, and remembers the event ids the
 * worker accepted (its 202 answers), so a test can wait until every one is processed.
 */
export interface WebhookTracker extends TrackedDispatcher {
  accepted: Set<string>;
  /** Deliveries answered other than 202, as "<status> <url origin>". */
  refused: string[];
  inFlight(): number;
}

export function trackingDispatcher(): WebhookTracker {
  let pending = 0;
  const accepted = new Set<string>();
  const refused: string[] = [];
  const inner = retryingDispatcher(async (request) => {
    const response = await fetch(request);
    if (response.status === 202) for (const id of ((await response.clone().json()) as { eventIds: string[] }).eventIds) accepted.add(id);
    else refused.push(`${response.status} ${new URL(request.url).origin}`);
    return response;
  });
  // Counted from the hand-over to the last attempt, retries and their back-off included.
  const dispatcher = ((request: Request) => {
    pending++;
    return inner(request).finally(() => pending--);
  }) as WebhookTracker;
  return Object.assign(dispatcher, { idle: inner.idle, accepted, refused, inFlight: () => pending });
}

export interface QuietOptions {
  logs: VendorLog[];
  dispatchers: WebhookTracker[];
  /** Counts the given event ids that are finished (done, ignored, invalid or dead). */
  finished: (ids: string[]) => Promise<number>;
  quietMs?: number;
  capMs?: number;
}

/**
 * Waits until the system is quiet: no webhook in flight, every accepted event finished, and no
 * new vendor call in any log for `quietMs`. Fails after `capMs` (an echo loop never gets quiet).
 * Answers how long it took.
 */
export async function waitQuiet({ logs, dispatchers, finished, quietMs = 1_500, capMs = 20_000 }: QuietOptions): Promise<number> {
  const start = Date.now();
  let last = "";
  let stableSince = Date.now();
  for (;;) {
    const lengths = await Promise.all(logs.map((l) => l.mark()));
    const ids = dispatchers.flatMap((d) => [...d.accepted]);
    const busy = dispatchers.some((d) => d.inFlight() > 0) || (await finished(ids)) < ids.length;
    const snapshot = `${lengths.join(",")}|${ids.length}`;
    if (busy || snapshot !== last) {
      last = snapshot;
      stableSince = Date.now();
    } else if (Date.now() - stableSince >= quietMs) {
      return Date.now() - start;
    }
    if (Date.now() - start > capMs) throw new Error(`never quiet within ${capMs} ms (logs at ${snapshot}, busy: ${busy})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export type CrmContact = { id: string; archived: boolean; properties: Record<string, string | null> };

/** The contacts as the fake HubSpot at `hubspotUrl` holds them (its control endpoint: not in the request log). */
export async function crmContacts(hubspotUrl: string): Promise<CrmContact[]> {
  const state = (await (await fetch(`${hubspotUrl}/_sandbox/state`)).json()) as { contacts: Record<string, CrmContact> };
  return Object.values(state.contacts);
}
