// Fake Salesforce: the OAuth 2.0 client-credentials token endpoint and the REST upsert of a
// Contact by external id. Sources:
// - help.salesforce.com "OAuth 2.0 Client Credentials Flow for Server-to-Server Integration"
//   (xcloud.remoteaccess_oauth_client_credentials_flow.htm): form-encoded POST of grant_type,
//   client_id, client_secret; the answer has access_token, signature, scope, instance_url, id,
//   token_type "Bearer", issued_at, and no refresh_token and no expires_in.
// - developer.salesforce.com REST API "How Does the OAuth Refresh Token Fit…": "Access tokens have a
//   limited lifetime specified by the session timeout"; an expired one gets "Session expired or
//   invalid" (401, errorCode INVALID_SESSION_ID). The session timeout defaults to two hours.
// - developer.salesforce.com/docs/platform/api-rest/guide/dome-upsert.html: PATCH
//   /services/data/vXX.X/sobjects/{sObject}/{externalIdField}/{value}; 201 with
//   {id, success, errors, created: true} when created, 200 with created: false when updated
//   (204 without a body before API version 46.0); an unknown external id field is 404 NOT_FOUND;
//   "Do not specify Id or an external ID field in the request body or an error is generated".
// - REST API "Status Codes and Error Responses": errors are a JSON array of {message, errorCode, fields?}.
//
// The fake knows one sObject, Contact, with one external id field (Shopify_Customer_Id__c unless
// configured). Its `/_sandbox/tokens` controls count the token calls, change the lifetime of new
// tokens and expire every token at once (to test the connector's refresh on a 401).
import { createHmac } from "node:crypto";
import { isEmail, isPlainObject, jsonResponse, pathSegments, readBody, type FakeService, type JsonObject, type RequestBody } from "./fake-service";
import { initSandboxState, type InjectedFault, type SandboxState } from "./faults";
import { handleSandboxRequest } from "./sandbox-request";

export interface SalesforceContactRecord {
  Id: string;
  /** The external id field's value. */
  externalId: string;
  fields: Record<string, string | null>;
  CreatedDate: string;
  LastModifiedDate: string;
}

export interface FakeSalesforceData {
  nextId: number;
  contacts: Record<string, SalesforceContactRecord>;
  /** External id value -> record Id. */
  byExternalId: Record<string, string>;
  /** Access token -> epoch ms at which it expires. Never shown by `/_sandbox/state`. */
  tokens: Record<string, number>;
  tokenLifetimeMs: number;
  /** Calls of the token endpoint, and the tokens it issued. */
  tokenRequests: number;
  tokensIssued: number;
}

export type FakeSalesforceState = SandboxState<FakeSalesforceData>;

export interface FakeSalesforceOptions {
  clientId: string;
  clientSecret: string;
  /**
   * The token response's instance_url, where the connector sends its API calls; by default
   * where the token request was sent (the fake's own mount, as a My Domain login URL is).
   */
  instanceUrl?: string;
  /** Default Shopify_Customer_Id__c (CONTRACT 2, SALESFORCE_EXTERNAL_ID_FIELD). */
  externalIdField?: string;
  /** Lifetime of new tokens: Salesforce's default session timeout, two hours, when absent. */
  tokenLifetimeMs?: number;
  now?: () => number;
  state?: FakeSalesforceState;
}

export const DEFAULT_TOKEN_LIFETIME_MS = 2 * 3_600_000;
const TOKEN_PATH = "/services/oauth2/token";
const ORG_ID = "00DSB0000000001";
const USER_ID = "005SB0000000001";
/** Standard Contact fields a request body may set (the external id field is in the URL only). */
const CONTACT_FIELDS = new Set([
  "FirstName", "LastName", "Email", "Phone", "MobilePhone", "Title", "Description", "LeadSource",
  "MailingStreet", "MailingCity", "MailingState", "MailingPostalCode", "MailingCountry",
]);

export function createFakeSalesforce(opts: FakeSalesforceOptions): FakeService<FakeSalesforceState> {
  const now = opts.now ?? Date.now;
  const externalIdField = opts.externalIdField ?? "Shopify_Customer_Id__c";
  const emptyData = (): FakeSalesforceData => ({
    nextId: 1, contacts: {}, byExternalId: {}, tokens: {}, tokenLifetimeMs: opts.tokenLifetimeMs ?? DEFAULT_TOKEN_LIFETIME_MS, tokenRequests: 0, tokensIssued: 0,
  });
  const service: FakeService<FakeSalesforceState> = {
    name: "salesforce",
    state: initSandboxState<FakeSalesforceData, unknown>(opts.state, emptyData),
    handle: (request, path) => handleSandboxRequest(service.state, vendor, request, path, now),
  };
  const vendor = {
    emptyData,
    faultResponse: salesforceFaultResponse,
    handleControl: (request: Request, name: string) => tokenControl(service.state.data, request, name, now()),
    publicData: (data: FakeSalesforceData) => ({ ...data, tokens: { active: activeTokens(data, now()) } }),
    handleVendor: async (request: Request, url: URL, body: RequestBody): Promise<Response> => {
      const data = service.state.data;
      if (url.pathname === TOKEN_PATH) return issueToken(data, request, body);
      const token = /^Bearer (.+)$/.exec(request.headers.get("authorization") ?? "")?.[1];
      const expiresAt = token === undefined ? undefined : data.tokens[token];
      if (expiresAt === undefined || now() >= expiresAt) return sfError(401, "INVALID_SESSION_ID", "Session expired or invalid");
      return route(data, request.method, url, body);
    },
  };

  function issueToken(data: FakeSalesforceData, request: Request, body: RequestBody): Response {
    data.tokenRequests += 1;
    if (request.method !== "POST") return oauthError("invalid_request", "must use HTTP POST");
    const form = new URLSearchParams(body.kind === "invalid" ? body.text : "");
    if (form.get("grant_type") !== "client_credentials") return oauthError("unsupported_grant_type", "grant type not supported");
    if (form.get("client_id") !== opts.clientId) return oauthError("invalid_client_id", "client identifier invalid");
    if (form.get("client_secret") !== opts.clientSecret) return oauthError("invalid_client", "invalid client credentials");
    const issuedAt = now();
    for (const [t, expires] of Object.entries(data.tokens)) if (expires <= issuedAt) delete data.tokens[t];
    const accessToken = `${ORG_ID}!${randomToken()}`;
    data.tokens[accessToken] = issuedAt + data.tokenLifetimeMs;
    data.tokensIssued += 1;
    const instanceUrl = opts.instanceUrl ?? mountOf(request.url);
    const id = `${instanceUrl}/id/${ORG_ID}/${USER_ID}`;
    // "Base64-encoded HMAC-SHA256 signature signed with the client_secret … of the concatenated ID and issued_at".
    const signature = createHmac("sha256", opts.clientSecret).update(`${id}${issuedAt}`).digest("base64");
    return sfJson({ access_token: accessToken, signature, scope: "api", instance_url: instanceUrl, id, token_type: "Bearer", issued_at: String(issuedAt) });
  }

  function route(data: FakeSalesforceData, method: string, url: URL, body: RequestBody): Response {
    const [services, dataSegment, version = "", sobjects, sobject, field, value, ...rest] = pathSegments(url.pathname);
    const versionNumber = /^v(\d+)\.\d$/.exec(version)?.[1];
    if (services !== "services" || dataSegment !== "data" || versionNumber === undefined || sobjects !== "sobjects" || rest.length > 0) return notFound();
    if (sobject !== "Contact" || field === undefined) return notFound(); // the fake knows Contact only
    if (value === undefined) {
      // GET /sobjects/Contact/{Id}
      if (method !== "GET") return methodNotAllowed(method, "GET,HEAD,PATCH,DELETE");
      const record = data.contacts[field];
      return record ? sfJson(render(record, version)) : notFound();
    }
    if (field !== externalIdField) return notFound();
    if (method === "GET") {
      const record = data.contacts[data.byExternalId[value] ?? ""];
      return record ? sfJson(render(record, version)) : notFound();
    }
    if (method === "PATCH") return upsert(data, value, body, Number(versionNumber) >= 46);
    return methodNotAllowed(method, "GET,HEAD,PATCH,DELETE,POST");
  }

  function upsert(data: FakeSalesforceData, value: string, body: RequestBody, reportsCreated: boolean): Response {
    if (body.kind !== "json" || !isPlainObject(body.value)) return sfError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object");
    const input = body.value;
    for (const [key, v] of Object.entries(input)) {
      if (key === "Id" || key === externalIdField) return sfError(400, "INVALID_FIELD", `${key} is addressed by the URL and cannot be set in the request body`, [key]);
      if (!CONTACT_FIELDS.has(key)) return sfError(400, "INVALID_FIELD", `No such column '${key}' on sobject of type Contact`);
      if (v !== null && typeof v !== "string") return sfError(400, "JSON_PARSER_ERROR", `Cannot deserialize instance of string from ${Array.isArray(v) ? "array" : typeof v} value for ${key}`);
    }
    const fields = input as Record<string, string | null>;
    if (fields.Email && !isEmail(fields.Email)) return sfError(400, "INVALID_EMAIL_ADDRESS", `Email: invalid email address: ${fields.Email}`, ["Email"]);
    const existing = data.contacts[data.byExternalId[value] ?? ""];
    const lastName = "LastName" in fields ? fields.LastName : existing?.fields.LastName;
    if (!lastName) return sfError(400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]", ["LastName"]);

    const stamp = salesforceTime(now());
    if (existing) {
      Object.assign(existing.fields, fields);
      existing.LastModifiedDate = stamp;
      if (!reportsCreated) return new Response(null, { status: 204 });
      return sfJson({ id: existing.Id, success: true, errors: [], created: false });
    }
    const Id = salesforceId("003", data.nextId++);
    data.contacts[Id] = { Id, externalId: value, fields: { ...fields }, CreatedDate: stamp, LastModifiedDate: stamp };
    data.byExternalId[value] = Id;
    return sfJson(reportsCreated ? { id: Id, success: true, errors: [], created: true } : { id: Id, success: true, errors: [] }, 201);
  }

  function render(record: SalesforceContactRecord, version: string): JsonObject {
    return {
      attributes: { type: "Contact", url: `/services/data/${version}/sobjects/Contact/${record.Id}` },
      Id: record.Id,
      ...Object.fromEntries([...CONTACT_FIELDS].map((f) => [f, record.fields[f] ?? null])),
      [externalIdField]: record.externalId,
      CreatedDate: record.CreatedDate,
      LastModifiedDate: record.LastModifiedDate,
      SystemModstamp: record.LastModifiedDate,
    };
  }

  return service;
}

/** `GET /_sandbox/tokens`, `POST /_sandbox/tokens {lifetimeMs}`, `POST /_sandbox/tokens/expire`. */
async function tokenControl(data: FakeSalesforceData, request: Request, name: string, now: number): Promise<Response | null> {
  const view = () => jsonResponse({ requests: data.tokenRequests, issued: data.tokensIssued, active: activeTokens(data, now), lifetimeMs: data.tokenLifetimeMs });
  switch (`${request.method} ${name}`) {
    case "GET tokens":
      return view();
    case "POST tokens/expire": {
      const expired = activeTokens(data, now);
      data.tokens = {};
      return jsonResponse({ expired });
    }
    case "POST tokens": {
      const body = await readBody(request);
      const lifetimeMs = body.kind === "json" && isPlainObject(body.value) ? body.value.lifetimeMs : undefined;
      if (typeof lifetimeMs !== "number" || !Number.isFinite(lifetimeMs) || lifetimeMs < 0) return jsonResponse({ error: "lifetimeMs must be a number >= 0" }, 400);
      data.tokenLifetimeMs = lifetimeMs; // for the tokens issued from now on
      return view();
    }
    default:
      return name === "tokens" || name === "tokens/expire" ? jsonResponse({ error: `method ${request.method} not allowed` }, 405) : null;
  }
}

function activeTokens(data: FakeSalesforceData, now: number): number {
  return Object.values(data.tokens).filter((expires) => expires > now).length;
}

/** Where the fake is mounted, from a request to its token endpoint. */
function mountOf(requestUrl: string): string {
  const url = new URL(requestUrl);
  const path = url.pathname.replace(/\/+$/, "");
  return `${url.origin}${path.endsWith(TOKEN_PATH) ? path.slice(0, -TOKEN_PATH.length) : ""}`;
}

function randomToken(): string {
  let binary = "";
  for (const byte of crypto.getRandomValues(new Uint8Array(72))) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, ".").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * An 18-character record id: 3-character key prefix (003 = Contact), 12 more, and the 3-character
 * suffix Salesforce derives from the case of the first 15 (what makes the id case-insensitive).
 */
export function salesforceId(prefix: string, n: number): string {
  const base = `${prefix}SB${String(n).padStart(10, "0")}`;
  let suffix = "";
  for (let chunk = 0; chunk < 3; chunk++) {
    let bits = 0;
    for (let i = 0; i < 5; i++) if (/[A-Z]/.test(base[chunk * 5 + i] ?? "")) bits |= 1 << i;
    suffix += "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"[bits];
  }
  return base + suffix;
}

/** Salesforce's dateTime format in JSON: 2026-01-01T00:00:00.000+0000. */
export function salesforceTime(ms: number): string {
  return new Date(ms).toISOString().replace("Z", "+0000");
}

function sfJson(body: unknown, status = 200): Response {
  return jsonResponse(body, status, "application/json;charset=UTF-8");
}

/** The REST API's error shape: an array of {message, errorCode, fields?}. */
function sfError(status: number, errorCode: string, message: string, fields?: string[]): Response {
  return sfJson([fields === undefined ? { message, errorCode } : { message, errorCode, fields }], status);
}

function notFound(): Response {
  return sfError(404, "NOT_FOUND", "The requested resource does not exist");
}

function methodNotAllowed(method: string, allowed: string): Response {
  return sfError(405, "METHOD_NOT_ALLOWED", `HTTP Method '${method}' not allowed. Allowed are ${allowed}`);
}

/** The token endpoint's error shape (400): {error, error_description}. */
function oauthError(error: string, description: string): Response {
  return sfJson({ error, error_description: description }, 400);
}

/** Injected faults in the REST API's error shape. */
export function salesforceFaultResponse(fault: InjectedFault): Response {
  const known: Record<number, [string, string]> = {
    400: ["INVALID_REQUEST", "Injected sandbox error"],
    401: ["INVALID_SESSION_ID", "Session expired or invalid"],
    403: ["REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."],
    404: ["NOT_FOUND", "The requested resource does not exist"],
    500: ["UNKNOWN_EXCEPTION", "An unexpected error occurred. Please include this ErrorId if you contact support: 0000000-0 (sandbox)"],
    503: ["SERVER_UNAVAILABLE", "The server is unavailable to handle the request."],
  };
  const [errorCode, message] = known[fault.status] ?? ["UNKNOWN_EXCEPTION", "Injected sandbox error"];
  return sfError(fault.status, errorCode, message);
}
