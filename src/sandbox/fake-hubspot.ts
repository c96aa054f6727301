// Fake HubSpot CRM v3 contacts API. Shapes follow developers.hubspot.com/docs/api/crm/contacts and
// /docs/faq/api-error-responses ({status:"error", message, correlationId, category}). Webhooks
// (developers.hubspot.com/docs/api/webhooks) are sent through the injected dispatcher, see
// hubspot-webhooks.ts. The batch endpoints are in hubspot-batch.ts, the documented rate limits
// (on by default) in hubspot-limits.ts.
import { hubspotError, jsonResponse, parseIntParam, pathSegments, type FakeService, type JsonObject, type RequestBody } from "./fake-service";
import { readPropertiesInput, render, requestedList, type HubSpotContactRecord } from "./hubspot-contact";
import { hubspotFaultResponse, initSandboxState, type SandboxState } from "./faults";
import { batchRoute } from "./hubspot-batch";
import { bearerToken, createHubSpotLimiter, type HubSpotLimitOption, type HubSpotLimitState } from "./hubspot-limits";
import { badIdProperty, createRecord, emailConflict, ID_PROPERTIES, lookup, updateRecord, type Ctx, type FakeHubSpotData } from "./hubspot-records";
import {
  eventsFor,
  initWebhookData,
  publicSettings,
  SANDBOX_USER_ID,
  webhookControl,
  type ChangeSource,
  type HubSpotWebhookInput,
} from "./hubspot-webhooks";
import { handleSandboxRequest } from "./sandbox-request";
import { handOver, hubspotWebhookRequests, sandboxActor, type WebhookDispatcher } from "./webhooks";

export type { HubSpotContactRecord, PropertyVersion } from "./hubspot-contact";
export type { FakeHubSpotData } from "./hubspot-records";
export type { HubSpotLimitOption, HubSpotLimitSettings, HubSpotLimitState } from "./hubspot-limits";

export type FakeHubSpotState = SandboxState<FakeHubSpotData, HubSpotLimitState>;

export interface FakeHubSpotOptions {
  accessToken: string;
  now?: () => number;
  state?: FakeHubSpotState;
  /** Delivers the webhooks; without it, none are built. */
  dispatch?: WebhookDispatcher;
  /** The webhook settings of a fresh (or reset) fake; none when absent. */
  webhooks?: HubSpotWebhookInput;
  /**
   * The rate limits of a fresh (or reset) fake: HubSpot's Free/Starter private-app limits (100
   * per 10 s, 250,000 a day) when absent; `false` turns them off; an object changes some.
   * `POST /_sandbox/limits` changes them at run time.
   */
  limits?: HubSpotLimitOption;
}

const FIRST_ID = 101;
const CONTACTS = ["crm", "v3", "objects", "contacts"];

export function emptyHubSpotData(webhooks?: HubSpotWebhookInput): FakeHubSpotData {
  return initWebhookData({ nextId: FIRST_ID, contacts: {} as Record<string, HubSpotContactRecord>, customProperties: [] as string[] }, webhooks);
}

export function createFakeHubSpot(opts: FakeHubSpotOptions): FakeService<FakeHubSpotState> {
  const now = opts.now ?? Date.now;
  const emptyData = () => emptyHubSpotData(opts.webhooks);
  const state: FakeHubSpotState = initSandboxState(opts.state, emptyData);
  initWebhookData(state.data, opts.webhooks);
  const service: FakeService<FakeHubSpotState> = {
    name: "hubspot",
    state,
    handle: (request, path) => handleSandboxRequest(service.state, vendor, request, path, now),
  };
  const vendor = {
    emptyData,
    faultResponse: hubspotFaultResponse,
    handleControl: (request: Request, name: string) => webhookControl(service.state.data, request, name),
    publicData: (data: FakeHubSpotData) => ({ ...data, webhooks: publicSettings(data.webhooks) }),
    limiter: createHubSpotLimiter({ accessToken: opts.accessToken, option: opts.limits, holder: () => service.state }),
    handleVendor: async (request: Request, url: URL, body: RequestBody): Promise<Response> => {
      if (bearerToken(request) !== opts.accessToken) {
        // Same body whether the header is missing or the token is wrong.
        return hubspotError(401, "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview", "INVALID_AUTHENTICATION");
      }
      const source = changeSourceOf(request);
      if (source === null) return hubspotError(400, "X-Sandbox-Actor must be api or user", "VALIDATION_ERROR");
      const data = service.state.data;
      const ctx: Ctx = { data, url, body, iso: () => new Date(now()).toISOString(), source, changes: [] };
      const response = route(request.method, ctx);
      // After the answer is produced: one POST (per 100 events) for this request's changes. Only
      // the signing is awaited here (so a dispatcher's idle() knows of the delivery at once).
      const settings = data.webhooks;
      const events = opts.dispatch && settings ? eventsFor(data, ctx.changes, now(), source) : [];
      if (opts.dispatch && settings && events.length > 0) {
        const requests = await hubspotWebhookRequests(settings.targetUrl, settings.clientSecret, events, now()).catch(() => []);
        handOver(opts.dispatch, requests);
      }
      return response;
    },
  };
  return service;
}

/** A person in HubSpot's UI (`X-Sandbox-Actor: user`) or the app calling the API; null if neither. */
function changeSourceOf(request: Request): ChangeSource | null {
  const actor = sandboxActor(request);
  if (actor === "user") return { changeSource: "CRM_UI", sourceId: `userId:${SANDBOX_USER_ID}` };
  return actor === "api" ? { changeSource: "API" } : null;
}

function route(method: string, ctx: Ctx): Response {
  const segments = pathSegments(ctx.url.pathname);
  const isContacts = CONTACTS.every((s, i) => segments[i] === s);
  const operation = segments[5];
  if (isContacts && segments.length === 6 && segments[4] === "batch" && operation !== undefined) {
    return method === "POST" ? batchRoute(operation, ctx) : methodNotAllowed();
  }
  if (isContacts && segments.length === 4) {
    if (method === "GET") return listContacts(ctx);
    if (method === "POST") return createContact(ctx);
    return methodNotAllowed();
  }
  const id = segments[4];
  if (isContacts && segments.length === 5 && id !== undefined) {
    if (method === "GET") return readContact(ctx, id);
    if (method === "PATCH") return updateContact(ctx, id);
    if (method === "DELETE") return archiveContact(ctx, id);
    return methodNotAllowed();
  }
  return hubspotError(404, "resource not found", "OBJECT_NOT_FOUND");
}

// ---- handlers ------------------------------------------------------------------------------

function readContact(ctx: Ctx, rawId: string): Response {
  const found = findContact(ctx, rawId);
  if (found instanceof Response) return found;
  return jsonResponse(render(ctx.data, found, requestedList(ctx.url, "properties"), requestedList(ctx.url, "propertiesWithHistory")));
}

function listContacts(ctx: Ctx): Response {
  const params = ctx.url.searchParams;
  // HubSpot documents "maximum 100" for limit but not what a larger value does; it is clamped here.
  const limit = Math.min(parseIntParam(params.get("limit"), 10), 100);
  const after = parseIntParam(params.get("after"), 0);
  if (!(limit >= 1) || Number.isNaN(after)) {
    return hubspotError(400, "Invalid query: limit must be an integer between 1 and 100 and after a paging cursor", "VALIDATION_ERROR");
  }
  const archived = params.get("archived") === "true";
  const matching = Object.values(ctx.data.contacts)
    .filter((c) => c.archived === archived && Number(c.id) >= after)
    .sort((a, b) => Number(a.id) - Number(b.id));
  const page = matching.slice(0, limit);
  const requested = requestedList(ctx.url, "properties");
  const withHistory = requestedList(ctx.url, "propertiesWithHistory");
  const body: JsonObject = { results: page.map((c) => render(ctx.data, c, requested, withHistory)) };
  const next = matching[limit];
  if (next !== undefined) {
    // `after` is opaque to clients; here it is the first id of the next page.
    const linkParams = new URLSearchParams(params);
    linkParams.set("after", next.id);
    body.paging = { next: { after: next.id, link: `?${linkParams.toString()}` } };
  }
  return jsonResponse(body);
}

function createContact(ctx: Ctx): Response {
  const input = readPropertiesInput(ctx.body, "SimplePublicObjectInputForCreate");
  if (input instanceof Response) return input;
  const conflict = emailConflict(ctx.data, input.email, null);
  if (conflict) return conflict;
  const contact = createRecord(ctx, input);
  return jsonResponse(render(ctx.data, contact, Object.keys(contact.properties), []), 201);
}

function updateContact(ctx: Ctx, rawId: string): Response {
  const found = findContact(ctx, rawId);
  if (found instanceof Response) return found;
  const input = readPropertiesInput(ctx.body, "SimplePublicObjectInput");
  if (input instanceof Response) return input;
  const conflict = emailConflict(ctx.data, input.email, found.id);
  if (conflict) return conflict;
  updateRecord(ctx, found, input);
  return jsonResponse(render(ctx.data, found, Object.keys(found.properties), []));
}

function archiveContact(ctx: Ctx, rawId: string): Response {
  // HubSpot answers 204 for archive even when the id is unknown or already archived.
  const contact = ctx.data.contacts[rawId];
  if (contact !== undefined && !contact.archived) {
    contact.archived = true;
    contact.archivedAt = ctx.iso();
    ctx.changes.push({ kind: "contact.deletion", objectId: contact.id });
  }
  return new Response(null, { status: 204 });
}

// ---- helpers -------------------------------------------------------------------------------

/** Resolves the path id, honouring the documented `idProperty=email` lookup. */
function findContact(ctx: Ctx, rawId: string): HubSpotContactRecord | Response {
  const idProperty = ctx.url.searchParams.get("idProperty") ?? "hs_object_id";
  if (!ID_PROPERTIES.includes(idProperty)) return badIdProperty(idProperty);
  const contact = lookup(ctx.data, rawId, idProperty, ctx.url.searchParams.get("archived") === "true");
  return contact ?? hubspotError(404, "resource not found", "OBJECT_NOT_FOUND");
}

function methodNotAllowed(): Response {
  // HubSpot documents no body for 405; the generic error shape (without category) is used.
  return hubspotError(405, "HTTP 405 Method Not Allowed");
}
