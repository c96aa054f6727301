/**
 * Webhooks of the fake Mailchimp: the list-webhooks API and the form posts a member change
 * produces.
 *
 * API: https://mailchimp.com/developer/marketing/api/list-webhooks/ (POST/GET
 * /lists/{list_id}/webhooks, GET/DELETE /lists/{list_id}/webhooks/{webhook_id}; a webhook is
 * `{id, url, events: {subscribe, unsubscribe, profile, cleaned, upemail, campaign},
 * sources: {user, admin, api}, list_id, _links}`). The reference gives no default for an
 * omitted flag; here it is false, so a test states what it wants.
 * Payloads: https://mailchimp.com/developer/marketing/guides/sync-audience-data-webhooks/ — the
 * fields of each type are those of Mailchimp's samples, in their order:
 *   subscribe:   data[id], data[list_id], data[email], data[email_type], data[merges][...], data[ip_opt], data[ip_signup]
 *   unsubscribe: data[action]=unsub, data[reason]=manual, then as subscribe without ip_signup (+ data[campaign_id])
 *   profile:     data[id], data[list_id], data[email], data[email_type], data[merges][...], data[ip_opt]
 *   upemail:     data[list_id], data[new_id], data[new_email], data[old_email]
 *   cleaned:     data[list_id] (+ data[campaign_id]), data[reason]=hard, data[email]
 * `data[id]`/`data[new_id]` are the 10-character unique_email_id. `data[campaign_id]` names the
 * campaign a change came from; the fake sends no campaigns, so it is left out.
 */
import { isPlainObject, jsonResponse, mailchimpProblem, md5Hex, type JsonObject, type JsonValue, type RequestBody } from "./fake-service";
import {
  mailchimpWebhookBody,
  mailchimpWebhookRequest,
  type MailchimpEventType,
  type MailchimpSource,
  type WebhookFormData,
} from "./webhooks";

export const EVENT_TYPES: readonly MailchimpEventType[] = ["subscribe", "unsubscribe", "profile", "cleaned", "upemail", "campaign"];
export const SOURCES: readonly MailchimpSource[] = ["user", "admin", "api"];

export interface MailchimpWebhook {
  id: string;
  url: string;
  events: Record<MailchimpEventType, boolean>;
  sources: Record<MailchimpSource, boolean>;
}

export interface MailchimpWebhookInput {
  url: string;
  events?: Partial<Record<MailchimpEventType, boolean>>;
  sources?: Partial<Record<MailchimpSource, boolean>>;
}

/** A member change, as the webhooks (and the fake's onChange hook) see it. */
export interface MailchimpChange {
  type: "subscribe" | "unsubscribe" | "profile" | "upemail" | "cleaned";
  /** The member as the API renders it after the change. */
  member: JsonObject;
  /** For "upemail": the address before the change. */
  oldEmail?: string;
  /** Who made the change: the webhook's `sources` filter on it. */
  source: MailchimpSource;
}

const VALIDATION_DETAIL = "The resource submitted could not be validated. For field-specific details, see the 'errors' array.";

export function newWebhook(listId: string, seq: number, input: MailchimpWebhookInput): MailchimpWebhook {
  const flags = <K extends string>(keys: readonly K[], given: Partial<Record<K, boolean>> | undefined) =>
    Object.fromEntries(keys.map((k) => [k, given?.[k] === true])) as Record<K, boolean>;
  // Webhook ids look like "f4c8b5d2e3"; derived from a counter so runs are repeatable.
  return { id: md5Hex(`webhook:${listId}:${seq}`).slice(0, 10), url: input.url, events: flags(EVENT_TYPES, input.events), sources: flags(SOURCES, input.sources) };
}

function renderWebhook(listId: string, w: MailchimpWebhook): JsonObject {
  return { id: w.id, url: w.url, events: { ...w.events }, sources: { ...w.sources }, list_id: listId, _links: [] };
}

/** `/lists/{list_id}/webhooks[/{webhook_id}]`; `nextSeq` numbers new webhooks. */
export function webhooksRoute(
  method: string,
  listId: string,
  webhooks: MailchimpWebhook[],
  webhookId: string | undefined,
  body: RequestBody,
  nextSeq: () => number,
): Response {
  if (webhookId === undefined) {
    if (method === "GET") {
      return jsonResponse({ webhooks: webhooks.map((w) => renderWebhook(listId, w)), list_id: listId, total_items: webhooks.length, _links: [] });
    }
    if (method !== "POST") return methodNotAllowed(["GET", "POST"]);
    if (body.kind === "invalid") return mailchimpProblem(400, "JSON Parse Error", "We encountered an unspecified JSON parsing error.");
    const input = parseWebhookInput(body.kind === "json" ? body.value : null);
    if (!("url" in input)) return mailchimpProblem(400, "Invalid Resource", VALIDATION_DETAIL, { errors: input.errors });
    const webhook = newWebhook(listId, nextSeq(), input);
    webhooks.push(webhook);
    return jsonResponse(renderWebhook(listId, webhook));
  }
  const index = webhooks.findIndex((w) => w.id === webhookId);
  if (index < 0) return mailchimpProblem(404, "Resource Not Found", "The requested resource could not be found.");
  if (method === "GET") return jsonResponse(renderWebhook(listId, webhooks[index]!));
  if (method !== "DELETE") return methodNotAllowed(["GET", "DELETE"]);
  webhooks.splice(index, 1);
  return new Response(null, { status: 204 });
}

function parseWebhookInput(value: JsonValue | null): MailchimpWebhookInput | { errors: { field: string; message: string }[] } {
  if (!isPlainObject(value)) return { errors: [{ field: "", message: "The request body must be a JSON object." }] };
  const errors: { field: string; message: string }[] = [];
  const { url, events, sources } = value;
  if (typeof url !== "string" || !/^https?:\/\//i.test(url) || !URL.canParse(url)) errors.push({ field: "url", message: "Please enter a valid URL." });
  for (const [field, flags, keys] of [["events", events, EVENT_TYPES], ["sources", sources, SOURCES]] as const) {
    if (flags === undefined) continue;
    const ok = isPlainObject(flags) && (keys as readonly string[]).every((k) => flags[k] === undefined || typeof flags[k] === "boolean");
    if (!ok) errors.push({ field, message: `Expected an object of booleans: ${keys.join(", ")}.` });
  }
  if (errors.length > 0 || typeof url !== "string") return { errors };
  return {
    url,
    ...(isPlainObject(events) ? { events: events as MailchimpWebhookInput["events"] } : {}),
    ...(isPlainObject(sources) ? { sources: sources as MailchimpWebhookInput["sources"] } : {}),
  };
}

/**
 * Sandbox view of every list's webhooks: `GET /_sandbox/webhooks` lists them (URLs masked, as
 * the product's carries its secret), `DELETE` removes them all, e.g. for tests that feed the
 * product events by hand and want a quiet audience.
 */
export function webhookControl(lists: Record<string, { webhooks: MailchimpWebhook[] }>, request: Request, name: string): Response | null {
  if (name !== "webhooks") return null;
  if (request.method === "DELETE") for (const list of Object.values(lists)) list.webhooks = [];
  else if (request.method !== "GET") return jsonResponse({ error: `method ${request.method} not allowed` }, 405);
  return jsonResponse(Object.fromEntries(Object.entries(lists).map(([id, list]) => [id, list.webhooks.map(maskedWebhook)])));
}

export function maskedWebhook(w: MailchimpWebhook): MailchimpWebhook {
  return { ...w, url: maskLastSegment(w.url) };
}

/** `https://host/webhooks/mailchimp/<secret>` -> `https://host/webhooks/mailchimp/***`. */
function maskLastSegment(url: string): string {
  const parsed = new URL(url);
  parsed.pathname = parsed.pathname.replace(/[^/]+(\/?)$/, "***$1");
  parsed.search = parsed.search === "" ? "" : "?***";
  return parsed.toString();
}

function methodNotAllowed(allowed: string[]): Response {
  const detail = "The requested method and resource are not compatible. See the Allow header for this resource's available methods.";
  return mailchimpProblem(405, "Method Not Allowed", detail, {}, { Allow: allowed.join(", ") });
}

// ---- deliveries ----------------------------------------------------------------------------

/** One POST per webhook of the list configured for this change's type and source. */
export function deliveriesFor(webhooks: MailchimpWebhook[], change: MailchimpChange, firedAtMs: number): Request[] {
  const targets = webhooks.filter((w) => w.events[change.type] && w.sources[change.source]);
  if (targets.length === 0) return [];
  const body = mailchimpWebhookBody(change.type, firedAtMs, webhookData(change));
  return targets.map((w) => mailchimpWebhookRequest(w.url, body));
}

function webhookData(change: MailchimpChange): WebhookFormData {
  const m = change.member;
  const text = (v: JsonValue | undefined) => (v === undefined || v === null ? "" : typeof v === "object" ? JSON.stringify(v) : String(v));
  const listId = text(m.list_id);
  const email = text(m.email_address);
  const profile = { id: text(m.unique_email_id), list_id: listId, email, email_type: text(m.email_type), merges: merges(m) };
  switch (change.type) {
    case "subscribe":
      return { ...profile, ip_opt: text(m.ip_opt), ip_signup: text(m.ip_signup) };
    case "unsubscribe":
      // "manual": the person (or an admin, or the API) unsubscribed; no campaign link involved.
      return { action: "unsub", reason: "manual", ...profile, ip_opt: text(m.ip_opt) };
    case "profile":
      return { ...profile, ip_opt: text(m.ip_opt) };
    case "upemail":
      return { list_id: listId, new_id: text(m.unique_email_id), new_email: email, old_email: change.oldEmail ?? "" };
    case "cleaned":
      return { list_id: listId, reason: "hard", email };
  }
}

/** `data[merges][EMAIL]` first, then every merge field; an address becomes `[ADDRESS][addr1]`… */
function merges(member: JsonObject): WebhookFormData {
  const out: WebhookFormData = { EMAIL: String(member.email_address ?? "") };
  const fields = isPlainObject(member.merge_fields) ? member.merge_fields : {};
  for (const [tag, value] of Object.entries(fields)) {
    if (isPlainObject(value)) out[tag] = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, v === null ? "" : String(v)]));
    else out[tag] = value === null ? "" : String(value);
  }
  return out;
}
