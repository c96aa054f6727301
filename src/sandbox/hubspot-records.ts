// The fake HubSpot's stored contacts and the writes every endpoint shares (one contact or a batch
// of them): lookups, HubSpot's email uniqueness, property versions and the changes the webhooks
// report. Source: https://developers.hubspot.com/docs/api/crm/contacts
import { hubspotError, type RequestBody } from "./fake-service";
import { BUILT_IN, type HubSpotContactRecord } from "./hubspot-contact";
import type { ChangeSource, ContactChange, HubSpotWebhookData } from "./hubspot-webhooks";

export interface FakeHubSpotData extends HubSpotWebhookData {
  nextId: number;
  contacts: Record<string, HubSpotContactRecord>;
  /** Custom property names ever written, so reads can tell "unset" (null) from "no such property". */
  customProperties: string[];
}

/** One vendor call being answered. */
export interface Ctx {
  data: FakeHubSpotData;
  url: URL;
  body: RequestBody;
  iso: () => string;
  source: ChangeSource;
  /** What this request changed, for the webhooks. */
  changes: ContactChange[];
}

const HISTORY_LIMIT = 20;

/** The id properties a contact can be looked up by (HubSpot's record id, or its unique email). */
export const ID_PROPERTIES = ["hs_object_id", "email"];

/** A contact by record id or email, archived or not as asked; undefined when there is none. */
export function lookup(data: FakeHubSpotData, rawId: string, idProperty: string, archived: boolean): HubSpotContactRecord | undefined {
  const contact = idProperty === "email"
    ? Object.values(data.contacts).find((c) => c.archived === archived && c.properties.email === rawId.toLowerCase())
    : data.contacts[rawId];
  return contact !== undefined && contact.archived === archived ? contact : undefined;
}

export function badIdProperty(idProperty: string): Response {
  return hubspotError(400, `Property ${idProperty} is not a unique identifier property`, "VALIDATION_ERROR");
}

/** The active contact other than `selfId` that already has `email`, if any. */
export function emailOwner(data: FakeHubSpotData, email: string | undefined, selfId: string | null): HubSpotContactRecord | undefined {
  if (email === undefined || email === "") return undefined;
  return Object.values(data.contacts).find((c) => !c.archived && c.id !== selfId && c.properties.email === email);
}

export function conflictResponse(existingId: string): Response {
  return hubspotError(409, `Contact already exists. Existing ID: ${existingId}`, "CONFLICT");
}

export function emailConflict(data: FakeHubSpotData, email: string | undefined, selfId: string | null): Response | null {
  const existing = emailOwner(data, email, selfId);
  return existing === undefined ? null : conflictResponse(existing.id);
}

/** Creates a contact from validated properties and records its creation and property changes. */
export function createRecord(ctx: Ctx, input: Record<string, string>): HubSpotContactRecord {
  const at = ctx.iso();
  const id = String(ctx.data.nextId++);
  const contact: HubSpotContactRecord = { id, properties: {}, history: {}, createdAt: at, updatedAt: at, archived: false };
  const set = applyProperties(ctx, contact, { ...input, hs_object_id: id, createdate: at, lastmodifieddate: at }, at);
  ctx.data.contacts[id] = contact;
  ctx.changes.push({ kind: "contact.creation", objectId: id });
  // A property set at creation changes from nothing to its value; one created empty does not.
  recordChanges(ctx, contact, set.filter((name) => contact.properties[name] !== ""));
  return contact;
}

/** Applies validated properties; an update that changes nothing records no versions, leaves lastmodifieddate alone and fires nothing. */
export function updateRecord(ctx: Ctx, contact: HubSpotContactRecord, input: Record<string, string>): void {
  const at = ctx.iso();
  const changed = applyProperties(ctx, contact, input, at);
  if (changed.length === 0) return;
  changed.push(...applyProperties(ctx, contact, { lastmodifieddate: at }, at));
  contact.updatedAt = at;
  recordChanges(ctx, contact, changed);
}

/** Writes changed values with a version entry each; returns the names that changed. */
function applyProperties(ctx: Ctx, contact: HubSpotContactRecord, props: Record<string, string>, at: string): string[] {
  const changed: string[] = [];
  for (const [name, value] of Object.entries(props)) {
    if (contact.properties[name] === value) continue;
    changed.push(name);
    contact.properties[name] = value;
    const versions = [{ value, timestamp: at, sourceType: ctx.source.changeSource }, ...(contact.history[name] ?? [])];
    contact.history[name] = versions.slice(0, HISTORY_LIMIT);
    if (!BUILT_IN.has(name) && !ctx.data.customProperties.includes(name)) ctx.data.customProperties.push(name);
  }
  return changed;
}

function recordChanges(ctx: Ctx, contact: HubSpotContactRecord, names: string[]): void {
  for (const propertyName of names) {
    ctx.changes.push({ kind: "contact.propertyChange", objectId: contact.id, propertyName, propertyValue: contact.properties[propertyName] ?? "" });
  }
}
