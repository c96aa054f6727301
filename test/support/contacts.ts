/**
 * Queue messages for the contact sync, built the way ingest builds them (the product's own
 * parsers), with the source times a test chooses: HubSpot `contact.*` events and Mailchimp
 * list webhooks.
 */
import { parseHubSpotBatch } from "../../src/ingest/hubspot";
import { parseMailchimpForm } from "../../src/ingest/mailchimp";
import { newDelivery, type EventMessage } from "../../src/pipeline/message";
import { hubspotEvent, mailchimpForm } from "./webhooks";

async function hubspot(event: Record<string, unknown>): Promise<EventMessage> {
  const parsed = await parseHubSpotBatch(JSON.stringify([event]), Date.now());
  if (!parsed.ok) throw new Error(parsed.message);
  return newDelivery(parsed.events[0]!, Date.now());
}

export const crmCreated = (id: string, at = Date.now()) => hubspot(hubspotEvent(id, { occurredAt: at }));

export const crmChanged = (id: string, propertyName: string, propertyValue: string, at = Date.now()) =>
  hubspot(hubspotEvent(id, { subscriptionType: "contact.propertyChange", propertyName, propertyValue, occurredAt: at, changeFlag: undefined }));

export const crmDeleted = (id: string, at = Date.now()) => hubspot(hubspotEvent(id, { subscriptionType: "contact.deletion", occurredAt: at, changeFlag: "DELETED" }));

/** "2026-11-30 08:00:00", as Mailchimp writes `fired_at` (UTC, whole seconds). */
export function firedAt(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace("T", " ");
}

export async function mailchimpEvent(type: string, data: Record<string, string>, at = Date.now()): Promise<EventMessage> {
  const fields: Record<string, string> = { type, fired_at: firedAt(at) };
  for (const [k, v] of Object.entries(data)) fields[`data[${k.replace(".", "][")}]`] = v;
  const parsed = await parseMailchimpForm(mailchimpForm(fields), Date.now());
  if (!parsed.ok) throw new Error(parsed.message);
  return newDelivery(parsed.events[0]!, Date.now());
}

export const emailSubscribed = (email: string, first: string, last: string, at?: number) =>
  mailchimpEvent("subscribe", { email, "merges.FNAME": first, "merges.LNAME": last, list_id: "list0001" }, at);
export const emailUnsubscribed = (email: string, at?: number) => mailchimpEvent("unsubscribe", { email, action: "unsub", reason: "manual", list_id: "list0001" }, at);
export const emailCleaned = (email: string, at?: number) => mailchimpEvent("cleaned", { email, reason: "hard", list_id: "list0001" }, at);
export const emailChanged = (oldEmail: string, newEmail: string, at?: number) => mailchimpEvent("upemail", { old_email: oldEmail, new_email: newEmail, list_id: "list0001" }, at);
export const emailProfile = (email: string, first: string, last: string, at?: number) =>
  mailchimpEvent("profile", { email, "merges.FNAME": first, "merges.LNAME": last, list_id: "list0001" }, at);
