// Fake HubSpot CRM v3 contacts API. Shapes follow developers.hubspot.com/docs/api/crm/contacts and
// /docs/faq/api-error-responses ({status:"error", message, correlationId, category}).
import {
  hubspotError,
  isEmail,
  isPlainObject,
  jsonResponse,
  parseIntParam,
  pathSegments,
  type FakeService,
  type JsonObject,
  type JsonValue,
  type RequestBody,
} from "./fake-service";
import { handleSandboxRequest, hubspotFaultResponse, initSandboxState, type SandboxState } from "./faults";

export interface PropertyVersion {
  value: string;
  /** ISO-8601, when the value was set. */
  timestamp: string;
  sourceType: "API";
}

export interface HubSpotContactRecord {
  id: string;
  /** All values are strings, as HubSpot stores them; includes hs_object_id/createdate/lastmodifieddate. */
  properties: Record<string, string>;
  /** Per-property versions, newest first (capped): the last-modified timestamp of each property. */
  history: Record<string, PropertyVersion[]>;
  createdAt: string;
  updatedAt: string;
  archived: boolean;
  archivedAt?: string;
}

export interface FakeHubSpotData {
  nextId: number;
  contacts: Record<string, HubSpotContactRecord>;
  /** Custom property names ever written, so reads can tell "unset" (null) from "no such property". */
  customProperties: string[];
}

export type FakeHubSpotState = SandboxState<FakeHubSpotData>;

export interface FakeHubSpotOptions {
  accessToken: string;
  now?: () => number;
  state?: FakeHubSpotState;
}

const FIRST_ID = 101;
const HISTORY_LIMIT = 20;
const READ_ONLY = new Set(["hs_object_id", "createdate", "lastmodifieddate"]);
/** What GET returns when no `properties` are asked for (HubSpot's documented default set). */
const DEFAULT_READ = ["createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"];
const BUILT_IN = new Set([...DEFAULT_READ, "phone", "mobilephone", "company", "website", "jobtitle",
  "lifecyclestage", "address", "city", "state", "zip", "country"]);
const CONTACTS = ["crm", "v3", "objects", "contacts"];

export function emptyHubSpotData(): FakeHubSpotData {
  return { nextId: FIRST_ID, contacts: {}, customProperties: [] };
}

export function createFakeHubSpot(opts: FakeHubSpotOptions): FakeService<FakeHubSpotState> {
  const now = opts.now ?? Date.now;
  const service: FakeService<FakeHubSpotState> = {
    name: "hubspot",
    state: initSandboxState(opts.state, emptyHubSpotData),
    handle: (request, path) => handleSandboxRequest(service.state, vendor, request, path, now),
  };
  const vendor = {
    emptyData: emptyHubSpotData,
    faultResponse: hubspotFaultResponse,
    handleVendor: async (request: Request, url: URL, body: RequestBody): Promise<Response> => {
      if (!isAuthorized(request, opts.accessToken)) {
        // Same body whether the header is missing or the token is wrong.
        return hubspotError(401, "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview", "INVALID_AUTHENTICATION");
      }
      const ctx: Ctx = { data: service.state.data, url, body, iso: () => new Date(now()).toISOString() };
      return route(request.method, ctx);
    },
  };
  return service;
}

interface Ctx {
  data: FakeHubSpotData;
  url: URL;
  body: RequestBody;
  iso: () => string;
}

function isAuthorized(request: Request, accessToken: string): boolean {
  const match = /^Bearer\s+(.+)$/i.exec(request.headers.get("Authorization") ?? "");
  return match?.[1]?.trim() === accessToken;
}

function route(method: string, ctx: Ctx): Response {
  const segments = pathSegments(ctx.url.pathname);
  const isContacts = CONTACTS.every((s, i) => segments[i] === s);
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
  const at = ctx.iso();
  const id = String(ctx.data.nextId++);
  const contact: HubSpotContactRecord = { id, properties: {}, history: {}, createdAt: at, updatedAt: at, archived: false };
  applyProperties(ctx.data, contact, { ...input, hs_object_id: id, createdate: at, lastmodifieddate: at }, at);
  ctx.data.contacts[id] = contact;
  return jsonResponse(render(ctx.data, contact, Object.keys(contact.properties), []), 201);
}

function updateContact(ctx: Ctx, rawId: string): Response {
  const found = findContact(ctx, rawId);
  if (found instanceof Response) return found;
  const input = readPropertiesInput(ctx.body, "SimplePublicObjectInput");
  if (input instanceof Response) return input;
  const conflict = emailConflict(ctx.data, input.email, found.id);
  if (conflict) return conflict;
  const at = ctx.iso();
  // A PATCH that changes nothing records no versions and leaves lastmodifieddate alone.
  if (applyProperties(ctx.data, found, input, at)) {
    applyProperties(ctx.data, found, { lastmodifieddate: at }, at);
    found.updatedAt = at;
  }
  return jsonResponse(render(ctx.data, found, Object.keys(found.properties), []));
}

function archiveContact(ctx: Ctx, rawId: string): Response {
  // HubSpot answers 204 for archive even when the id is unknown or already archived.
  const contact = ctx.data.contacts[rawId];
  if (contact !== undefined && !contact.archived) {
    contact.archived = true;
    contact.archivedAt = ctx.iso();
  }
  return new Response(null, { status: 204 });
}

// ---- helpers -------------------------------------------------------------------------------

/** Resolves the path id, honouring the documented `idProperty=email` lookup. */
function findContact(ctx: Ctx, rawId: string): HubSpotContactRecord | Response {
  const idProperty = ctx.url.searchParams.get("idProperty") ?? "hs_object_id";
  const archived = ctx.url.searchParams.get("archived") === "true";
  if (idProperty !== "hs_object_id" && idProperty !== "email") {
    return hubspotError(400, `Property ${idProperty} is not a unique identifier property`, "VALIDATION_ERROR");
  }
  const contact = idProperty === "email"
    ? Object.values(ctx.data.contacts).find((c) => c.archived === archived && c.properties.email === rawId.toLowerCase())
    : ctx.data.contacts[rawId];
  if (contact === undefined || contact.archived !== archived) return hubspotError(404, "resource not found", "OBJECT_NOT_FOUND");
  return contact;
}

/** Validates `{properties: {...}}`; values become strings the way HubSpot stores them. */
function readPropertiesInput(body: RequestBody, inputType: string): Record<string, string> | Response {
  if (body.kind === "invalid") return hubspotError(400, "Invalid input JSON on line 1, column 1: Unexpected character", "VALIDATION_ERROR");
  const value = body.kind === "json" ? body.value : null;
  const raw = isPlainObject(value) ? value.properties : undefined;
  if (!isPlainObject(raw)) {
    return hubspotError(400, `Invalid input JSON on line 1, column 1: Cannot build ${inputType}, some of required attributes are not set [properties]`, "VALIDATION_ERROR");
  }
  const out: Record<string, string> = {};
  const problems: JsonObject[] = [];
  for (const [name, v] of Object.entries(raw)) {
    const text = toPropertyString(v);
    if (READ_ONLY.has(name)) problems.push(invalid(name, `"${name}" is a read only property; its value cannot be set.`, "READ_ONLY_VALUE"));
    else if (text === null) problems.push(invalid(name, `${JSON.stringify(v)} is not a valid value for ${name}`, "INVALID_OPTION"));
    else if (name === "email" && text !== "" && !isEmail(text)) problems.push(invalid(name, `Email address ${text} is invalid`, "INVALID_EMAIL"));
    // HubSpot keeps email addresses lower-cased; lookups and conflicts are case-insensitive.
    else out[name] = name === "email" ? text.toLowerCase() : text;
  }
  if (problems.length > 0) {
    return hubspotError(400, `Property values were not valid: ${JSON.stringify(problems)}`, "VALIDATION_ERROR", {
      errors: problems.map((p) => ({ message: p.message ?? "", code: p.error ?? "", context: { propertyName: [p.name ?? ""] } })),
    });
  }
  return out;
}

function invalid(name: string, message: string, error: string): JsonObject {
  return { isValid: false, message, error, name };
}

function toPropertyString(v: JsonValue): string | null {
  if (v === null) return ""; // clears the property
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return null;
}

function emailConflict(data: FakeHubSpotData, email: string | undefined, selfId: string | null): Response | null {
  if (email === undefined || email === "") return null;
  const existing = Object.values(data.contacts).find((c) => !c.archived && c.id !== selfId && c.properties.email === email);
  return existing === undefined ? null : hubspotError(409, `Contact already exists. Existing ID: ${existing.id}`, "CONFLICT");
}

/** Writes changed values with a version entry each; returns whether anything changed. */
function applyProperties(data: FakeHubSpotData, contact: HubSpotContactRecord, props: Record<string, string>, at: string): boolean {
  let changed = false;
  for (const [name, value] of Object.entries(props)) {
    if (contact.properties[name] === value) continue;
    changed = true;
    contact.properties[name] = value;
    const versions = [{ value, timestamp: at, sourceType: "API" as const }, ...(contact.history[name] ?? [])];
    contact.history[name] = versions.slice(0, HISTORY_LIMIT);
    if (!BUILT_IN.has(name) && !data.customProperties.includes(name)) data.customProperties.push(name);
  }
  return changed;
}

/** `?properties=a,b&properties=c` (both forms are accepted by HubSpot); null when absent. */
function requestedList(url: URL, param: string): string[] | null {
  const values = url.searchParams.getAll(param).flatMap((v) => v.split(",")).map((v) => v.trim()).filter((v) => v !== "");
  return values.length === 0 ? null : values;
}

function render(data: FakeHubSpotData, c: HubSpotContactRecord, requested: string[] | null, withHistory: string[] | null): JsonObject {
  const names = requested === null ? DEFAULT_READ : [...new Set([...requested, ...READ_ONLY])];
  const properties: JsonObject = {};
  for (const name of names) {
    // Requested-but-unset properties come back as null; unknown property names are left out.
    if (isKnownProperty(data, name)) properties[name] = c.properties[name] ?? null;
  }
  const out: JsonObject = { id: c.id, properties, createdAt: c.createdAt, updatedAt: c.updatedAt, archived: c.archived };
  if (c.archivedAt !== undefined) out.archivedAt = c.archivedAt;
  if (withHistory !== null) {
    const history: JsonObject = {};
    for (const name of withHistory) {
      if (isKnownProperty(data, name)) history[name] = (c.history[name] ?? []).map((v) => ({ ...v }));
    }
    out.propertiesWithHistory = history;
  }
  return out;
}

function isKnownProperty(data: FakeHubSpotData, name: string): boolean {
  return BUILT_IN.has(name) || READ_ONLY.has(name) || data.customProperties.includes(name);
}

function methodNotAllowed(): Response {
  // HubSpot documents no body for 405; the generic error shape (without category) is used.
  return hubspotError(405, "HTTP 405 Method Not Allowed");
}
