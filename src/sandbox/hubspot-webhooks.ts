/**
 * Webhooks of the fake HubSpot: the app's webhook settings (target URL, client secret,
 * subscriptions) and the events a contact change produces.
 *
 * https://developers.hubspot.com/docs/api/webhooks: one subscription per type, and one per
 * property for `contact.propertyChange`; events carry eventId, subscriptionId, portalId, appId,
 * occurredAt (ms), subscriptionType, attemptNumber, objectId, changeSource (and sourceId), plus
 * propertyName/propertyValue for property changes. `changeSource` is documented as any of the
 * change sources that appear in contact property histories, so it is the same value the fake
 * writes into the history for that change: "API" for a call with the app's token, "CRM_UI" with
 * sourceId "userId:<id>" for a person in HubSpot's UI (here: `X-Sandbox-Actor: user`).
 * The real HubSpot keeps these settings in the app's configuration, not behind an API; the
 * sandbox sets them through `/_sandbox/webhooks`.
 */
import { isPlainObject, jsonResponse, readBody, type JsonObject } from "./fake-service";
import type { HubSpotSubscriptionType, HubSpotWebhookEvent } from "./webhooks";

export const SUBSCRIPTION_TYPES: readonly HubSpotSubscriptionType[] = ["contact.creation", "contact.deletion", "contact.propertyChange"];

export interface HubSpotSubscription {
  id: number;
  subscriptionType: HubSpotSubscriptionType;
  propertyName?: string;
}

export interface HubSpotWebhookSettings {
  targetUrl: string;
  clientSecret: string;
  portalId: number;
  appId: number;
  subscriptions: HubSpotSubscription[];
}

/** What `POST /_sandbox/webhooks` takes (and the host passes as the default). */
export interface HubSpotWebhookInput {
  targetUrl: string;
  clientSecret: string;
  portalId?: number;
  appId?: number;
  subscriptions: { subscriptionType: HubSpotSubscriptionType; propertyName?: string }[];
}

/** The webhook part of the fake's persisted data. */
export interface HubSpotWebhookData {
  /** null: no webhooks are sent. */
  webhooks: HubSpotWebhookSettings | null;
  nextEventId: number;
  nextSubscriptionId: number;
}

/** Who changed the contact, as HubSpot reports it. */
export interface ChangeSource {
  changeSource: "API" | "CRM_UI";
  sourceId?: string;
}

/** What happened to one contact during a request, in order. */
export type ContactChange =
  | { kind: "contact.creation" | "contact.deletion"; objectId: string }
  | { kind: "contact.propertyChange"; objectId: string; propertyName: string; propertyValue: string };

// Sample ids of HubSpot's docs' shape; any positive integers do.
const DEFAULT_PORTAL_ID = 62515;
const DEFAULT_APP_ID = 1160452;
const FIRST_EVENT_ID = 1000;
export const SANDBOX_USER_ID = 1;

export function applyWebhookInput(data: HubSpotWebhookData, input: HubSpotWebhookInput): HubSpotWebhookSettings {
  const settings: HubSpotWebhookSettings = {
    targetUrl: input.targetUrl,
    clientSecret: input.clientSecret,
    portalId: input.portalId ?? DEFAULT_PORTAL_ID,
    appId: input.appId ?? DEFAULT_APP_ID,
    subscriptions: input.subscriptions.map((s) => ({ id: data.nextSubscriptionId++, ...s })),
  };
  data.webhooks = settings;
  return settings;
}

/**
 * Adds the webhook fields to fresh data, or to data stored before webhooks existed: with the
 * host's default settings, unless settings (or their explicit absence, null) are stored.
 */
export function initWebhookData<T extends object>(data: T, fallback: HubSpotWebhookInput | undefined): T & HubSpotWebhookData {
  const out = data as T & Partial<HubSpotWebhookData>;
  out.nextEventId ??= FIRST_EVENT_ID;
  out.nextSubscriptionId ??= 1;
  if (out.webhooks === undefined) {
    out.webhooks = null;
    if (fallback) applyWebhookInput(out as T & HubSpotWebhookData, fallback);
  }
  return out as T & HubSpotWebhookData;
}

export function publicSettings(settings: HubSpotWebhookSettings | null): JsonObject | null {
  if (settings === null) return null;
  const { clientSecret: _secret, ...rest } = settings;
  return { ...rest, subscriptions: rest.subscriptions.map((s) => ({ ...s })) };
}

/** One event per subscription a change matches; eventIds increase across requests. */
export function eventsFor(data: HubSpotWebhookData, changes: ContactChange[], occurredAt: number, source: ChangeSource): HubSpotWebhookEvent[] {
  const settings = data.webhooks;
  if (settings === null) return [];
  const events: HubSpotWebhookEvent[] = [];
  for (const change of changes) {
    const subscription = settings.subscriptions.find((s) =>
      s.subscriptionType === change.kind && (change.kind !== "contact.propertyChange" || s.propertyName === change.propertyName));
    if (subscription === undefined) continue;
    const event: HubSpotWebhookEvent = {
      eventId: data.nextEventId++,
      subscriptionId: subscription.id,
      portalId: settings.portalId,
      appId: settings.appId,
      occurredAt,
      subscriptionType: change.kind,
      attemptNumber: 0,
      objectId: Number(change.objectId),
      changeSource: source.changeSource,
      ...(source.sourceId === undefined ? {} : { sourceId: source.sourceId }),
    };
    if (change.kind === "contact.propertyChange") {
      event.propertyName = change.propertyName;
      event.propertyValue = change.propertyValue;
    }
    events.push(event);
  }
  return events;
}

/** `GET|POST|DELETE /_sandbox/webhooks`; GET and POST answer the settings without the secret. */
export async function webhookControl(data: HubSpotWebhookData, request: Request, name: string): Promise<Response | null> {
  if (name !== "webhooks") return null;
  if (request.method === "GET") return jsonResponse(publicSettings(data.webhooks));
  if (request.method === "DELETE") {
    data.webhooks = null;
    return jsonResponse(null);
  }
  if (request.method !== "POST") return jsonResponse({ error: `method ${request.method} not allowed` }, 405);
  const body = await readBody(request);
  const input = parseWebhookInput(body.kind === "json" ? body.value : null);
  if (typeof input === "string") return jsonResponse({ error: input }, 400);
  return jsonResponse(publicSettings(applyWebhookInput(data, input)));
}

function parseWebhookInput(value: unknown): HubSpotWebhookInput | string {
  if (!isPlainObject(value)) return "body must be a JSON object";
  const { targetUrl, clientSecret, portalId, appId, subscriptions } = value;
  if (typeof targetUrl !== "string" || !/^https?:\/\//i.test(targetUrl) || !URL.canParse(targetUrl)) return "targetUrl must be an http(s) URL";
  if (typeof clientSecret !== "string" || clientSecret === "") return "clientSecret must be a non-empty string";
  for (const [key, id] of [["portalId", portalId], ["appId", appId]] as const) {
    if (id !== undefined && !(typeof id === "number" && Number.isSafeInteger(id) && id > 0)) return `${key} must be a positive integer`;
  }
  if (!Array.isArray(subscriptions)) return "subscriptions must be an array";
  const parsed: HubSpotWebhookInput["subscriptions"] = [];
  for (const s of subscriptions) {
    if (!isPlainObject(s) || !(SUBSCRIPTION_TYPES as readonly unknown[]).includes(s.subscriptionType)) {
      return `subscriptionType must be one of ${SUBSCRIPTION_TYPES.join(", ")}`;
    }
    const subscriptionType = s.subscriptionType as HubSpotSubscriptionType;
    const isPropertyChange = subscriptionType === "contact.propertyChange";
    // HubSpot requires a property for property-change subscriptions and has none for the others.
    if (isPropertyChange !== (typeof s.propertyName === "string" && s.propertyName !== "")) {
      return isPropertyChange ? "contact.propertyChange needs a propertyName" : `${subscriptionType} takes no propertyName`;
    }
    parsed.push(isPropertyChange ? { subscriptionType, propertyName: s.propertyName as string } : { subscriptionType });
  }
  return {
    targetUrl,
    clientSecret,
    subscriptions: parsed,
    ...(typeof portalId === "number" ? { portalId } : {}),
    ...(typeof appId === "number" ? { appId } : {}),
  };
}
