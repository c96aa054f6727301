/**
 * What a webhook says about a contact, as observations of the sync's fields (sync-state.ts).
 *
 * - HubSpot `contact.propertyChange` carries the property and its new value; `contact.creation`
 *   carries nothing but the id, so the contact is read (observe.fromContact). `occurredAt` is ms.
 * - Mailchimp carries the member's data; `fired_at` is whole seconds, UTC.
 * - The CRM's subscription is derived: "lost" (CRM_LOST_PROPERTY = CRM_LOST_VALUE) or
 *   CRM_SUBSCRIPTION_PROPERTY = `unsubscribed` is `unsubscribed`. Leaving "lost" says nothing:
 *   an unsubscribe is never reversed by the sync.
 */
import type { Config } from "../../config";
import type { HubSpotContact } from "../../connectors/hubspot";
import type { EntityInput } from "../../entities/plan";
import { FIELDS, type Field, type Observation } from "../../entities/sync-state";
import type { InboundEvent } from "../../ingest/event";

export type CrmSettings = Config["crm"];

export const normalizeEmail = (email: string): string => email.trim().toLowerCase();

/** The CRM properties a contact read asks for. */
export function crmProperties(crm: CrmSettings): string[] {
  return [...new Set(["email", "firstname", "lastname", crm.lostProperty, crm.subscriptionProperty].filter((p): p is string => !!p))];
}

/**
 * The source time of an event: the provider's, else when it arrived. Mailchimp's `fired_at`
 * has whole seconds; its change happened somewhere in that second, and is taken to be at its
 * end, so a person's change in the email platform is not lost as "older" than a CRM change
 * made earlier in the same second. (An exact tie still goes to the CRM: sync-state.ts.)
 */
export function sourceTime(event: InboundEvent): number {
  if (event.occurredAt === null) return event.receivedAt;
  const at = event.source === "mailchimp" ? event.occurredAt + 999 : event.occurredAt;
  // A vendor clock far ahead (or a forged time) must not make one change win for ever.
  return Math.min(at, event.receivedAt + MAX_FUTURE_MS);
}

/** How far a source time may lie after the event's arrival (clock skew). */
const MAX_FUTURE_MS = 60_000;

/** The events the contact sync handles (others of these sources are recorded as ignored). */
export function isContactEvent(event: InboundEvent, crm: CrmSettings): boolean {
  if (event.source === "hubspot") {
    if (event.type === "contact.creation" || event.type === "contact.deletion") return true;
    return event.type === "contact.propertyChange" && crmField(String(event.payload.propertyName ?? ""), crm) !== null;
  }
  if (event.source === "mailchimp") return ["subscribe", "unsubscribe", "profile", "upemail", "cleaned"].includes(event.type);
  return event.source === "syncwire" && (event.type === "conflict.resolve" || event.type === REPAIR_EVENT);
}

function crmField(property: string, crm: CrmSettings): Field | "lost" | null {
  if (property === "email" || property === "firstname" || property === "lastname") return property;
  if (crm.subscriptionProperty && property === crm.subscriptionProperty) return "subscription";
  if (crm.lostProperty && property === crm.lostProperty) return "lost";
  return null;
}

/** The event as an input of its contact's Durable Object (a creation's values come from a read). */
export function inputOf(event: InboundEvent, crm: CrmSettings): EntityInput {
  const at = sourceTime(event);
  const p = event.payload;
  if (event.source === "hubspot") {
    if (event.type === "contact.deletion") return { eventId: event.id, kind: "delete", at };
    const observations: Observation[] = [];
    if (event.type === "contact.propertyChange") {
      // HubSpot sends property values as strings; anything else (an object, a list) is not a value to copy.
      const raw = p.propertyValue;
      const value = raw === null || raw === undefined ? "" : typeof raw === "string" || typeof raw === "number" || typeof raw === "boolean" ? String(raw) : null;
      if (value === null) return { eventId: event.id, kind: "observe", observations: [] };
      const field = crmField(String(p.propertyName ?? ""), crm);
      if (field === "lost") {
        if (value === crm.lostValue) observations.push({ system: "crm", field: "subscription", value: "unsubscribed", at });
      } else if (field === "subscription") {
        if (value === "subscribed" || value === "unsubscribed") observations.push({ system: "crm", field, value, at });
      } else if (field === "email") {
        // A cleared address cannot be given to the email platform; the member keeps its own.
        if (value.trim() !== "") observations.push({ system: "crm", field, value: normalizeEmail(value), at });
      } else if (field !== null) {
        observations.push({ system: "crm", field, value, at });
      }
    }
    return { eventId: event.id, kind: "observe", observations };
  }
  if (event.source === "syncwire" && event.type === REPAIR_EVENT) return repairInput(event);
  if (event.source === "syncwire") {
    // Written by our own API, but read defensively: a field the sync does not know resolves nothing.
    if (!(FIELDS as readonly unknown[]).includes(p.field)) return { eventId: event.id, kind: "observe", observations: [] };
    return { eventId: event.id, kind: "resolve", field: p.field as Field, conflictId: String(p.conflictId), choose: p.choose === "crm" ? "crm" : "email" };
  }
  // Under the address the event came with (upemail: the old one): it must be this contact's.
  const address = event.entityKey?.startsWith("email:") ? event.entityKey.slice("email:".length) : undefined;
  return { eventId: event.id, kind: "observe", observations: mailchimpObservations(event.type, p, at), ...(address ? { address } : {}) };
}

/** A nightly check's repair (reconcile/repairs.ts) of one contact: the type its events carry. */
export const REPAIR_EVENT = "reconcile.repair";

/**
 * A repair as an input: the member as the check read it, each value at the member's
 * `last_changed` (the CRM side is read afresh by the flow, with its property timestamps), so the
 * contact's object decides field by field who changed last, as for any change; a repair
 * reasserts what it decides to both systems, a record missing on one side included.
 */
function repairInput(event: InboundEvent): EntityInput {
  const member = event.payload.member as { email?: unknown; firstname?: unknown; lastname?: unknown; subscription?: unknown; at?: unknown } | null | undefined;
  const observations: Observation[] = [];
  const at = typeof member?.at === "number" ? member.at : null;
  if (member && at !== null) {
    for (const field of FIELDS) {
      const value = member[field];
      if (typeof value !== "string") continue;
      if (field === "subscription" && value !== "subscribed" && value !== "unsubscribed") continue;
      observations.push({ system: "email", field, value: field === "email" ? normalizeEmail(value) : value, at });
    }
  }
  const address = event.entityKey?.startsWith("email:") ? event.entityKey.slice("email:".length) : undefined;
  return { eventId: event.id, kind: "observe", observations, ...(address ? { address } : {}) };
}

function mailchimpObservations(type: string, payload: Record<string, unknown>, at: number): Observation[] {
  const data = (payload.data ?? {}) as Record<string, unknown>;
  const merges = (data.merges ?? {}) as Record<string, unknown>;
  const out: Observation[] = [];
  const add = (field: Field, value: unknown) => {
    if (typeof value === "string") out.push({ system: "email", field, value: field === "email" ? normalizeEmail(value) : value, at });
  };
  switch (type) {
    case "subscribe":
    case "profile":
      add("email", data.email);
      add("firstname", merges.FNAME);
      add("lastname", merges.LNAME);
      if (type === "subscribe") add("subscription", "subscribed");
      break;
    case "upemail":
      add("email", data.new_email);
      break;
    // A cleaned address bounces: for the CRM it is as good as unsubscribed.
    case "unsubscribe":
    case "cleaned":
      add("subscription", "unsubscribed");
      break;
  }
  return out;
}

/**
 * A contact as read from the CRM (with `propertiesWithHistory`), as observations: each value at
 * the time its newest version was set, so a read does not make old values look new. Without
 * history, every value counts from `fallback`, unless the contact is unchanged since its creation.
 */
export function fromContact(contact: HubSpotContact, crm: CrmSettings, fallback: number): Observation[] {
  const props = contact.properties;
  const created = contact.createdAt ? Date.parse(contact.createdAt) : Number.NaN;
  const since = (property: string | null): number | null => {
    const newest = property ? contact.propertiesWithHistory?.[property]?.[0] : undefined;
    const at = newest ? Date.parse(newest.timestamp) : Number.NaN;
    return Number.isFinite(at) ? at : null;
  };
  // Unchanged since its creation (updatedAt = createdAt), every value dates from it, history or not.
  const unchanged = contact.createdAt !== undefined && contact.createdAt === contact.updatedAt;
  const at = (property: string | null) => since(property) ?? (Number.isFinite(created) && (contact.propertiesWithHistory || unchanged) ? created : fallback);
  const out: Observation[] = [];
  if (props.email) out.push({ system: "crm", field: "email", value: normalizeEmail(props.email), at: at("email") });
  for (const field of ["firstname", "lastname"] as const) out.push({ system: "crm", field, value: props[field] ?? "", at: at(field) });
  const lost = crm.lostProperty !== null && props[crm.lostProperty] === crm.lostValue;
  const unsubscribed = crm.subscriptionProperty !== null && props[crm.subscriptionProperty] === "unsubscribed";
  // "subscribed" is mostly implied (never lost, never unsubscribed): it dates from the newer of the two properties, or the contact's creation.
  const subscriptionAt = Math.max(since(crm.lostProperty) ?? -Infinity, since(crm.subscriptionProperty) ?? -Infinity);
  out.push({ system: "crm", field: "subscription", value: lost || unsubscribed ? "unsubscribed" : "subscribed", at: Number.isFinite(subscriptionAt) ? subscriptionAt : at(null) });
  return out;
}
