/**
 * Node side, shared by the end-to-end tests: webhooks signed as HubSpot signs them (with
 * node:crypto, independent of the product's own verifier), the fake CRM's contacts, and polling.
 */
import { createHmac } from "node:crypto";

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
