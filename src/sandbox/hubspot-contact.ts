// The contact model of the fake HubSpot: records, reading `{properties}` inputs the way HubSpot
// validates them, and rendering a contact as the CRM v3 API does.
// Source: developers.hubspot.com/docs/api/crm/contacts
import { hubspotError, isEmail, isPlainObject, type JsonObject, type JsonValue, type RequestBody } from "./fake-service";
import type { ChangeSource } from "./hubspot-webhooks";

/** The custom property names a portal knows, next to HubSpot's built-in ones. */
export interface KnownProperties {
  customProperties: string[];
}

export interface PropertyVersion {
  value: string;
  /** ISO-8601, when the value was set. */
  timestamp: string;
  /** The same value as a webhook's changeSource for the change. */
  sourceType: ChangeSource["changeSource"];
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

export const READ_ONLY = new Set(["hs_object_id", "createdate", "lastmodifieddate"]);
/** What GET returns when no `properties` are asked for (HubSpot's documented default set). */
export const DEFAULT_READ = ["createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"];
export const BUILT_IN = new Set([...DEFAULT_READ, "phone", "mobilephone", "company", "website", "jobtitle",
  "lifecyclestage", "address", "city", "state", "zip", "country"]);

/** Why HubSpot rejects an input: a single call answers it as its error body, a batch lists it per input. */
export interface InputProblem {
  httpStatus: number;
  message: string;
  category: string;
  extra?: JsonObject;
}

export function isProblem(value: Record<string, string> | InputProblem): value is InputProblem {
  return typeof (value as { httpStatus?: unknown }).httpStatus === "number";
}

export function problemResponse(p: InputProblem): Response {
  return hubspotError(p.httpStatus, p.message, p.category, p.extra ?? {});
}

/** Validates `{properties: {...}}`; values become strings the way HubSpot stores them. */
export function readPropertiesInput(body: RequestBody, inputType: string): Record<string, string> | Response {
  if (body.kind === "invalid") return hubspotError(400, "Invalid input JSON on line 1, column 1: Unexpected character", "VALIDATION_ERROR");
  const parsed = parsePropertiesInput(body.kind === "json" ? body.value : null, inputType);
  return isProblem(parsed) ? problemResponse(parsed) : parsed;
}

/** The same check for one input value (a request body, or one of a batch's inputs). */
export function parsePropertiesInput(value: JsonValue | null, inputType: string): Record<string, string> | InputProblem {
  const raw = isPlainObject(value) ? value.properties : undefined;
  if (!isPlainObject(raw)) {
    return { httpStatus: 400, category: "VALIDATION_ERROR", message: `Invalid input JSON on line 1, column 1: Cannot build ${inputType}, some of required attributes are not set [properties]` };
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
    return {
      httpStatus: 400,
      category: "VALIDATION_ERROR",
      message: `Property values were not valid: ${JSON.stringify(problems)}`,
      extra: { errors: problems.map((p) => ({ message: p.message ?? "", code: p.error ?? "", context: { propertyName: [p.name ?? ""] } })) },
    };
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

/** `?properties=a,b&properties=c` (both forms are accepted by HubSpot); null when absent. */
export function requestedList(url: URL, param: string): string[] | null {
  const values = url.searchParams.getAll(param).flatMap((v) => v.split(",")).map((v) => v.trim()).filter((v) => v !== "");
  return values.length === 0 ? null : values;
}

export function render(data: KnownProperties, c: HubSpotContactRecord, requested: string[] | null, withHistory: string[] | null): JsonObject {
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

function isKnownProperty(data: KnownProperties, name: string): boolean {
  return BUILT_IN.has(name) || READ_ONLY.has(name) || data.customProperties.includes(name);
}
