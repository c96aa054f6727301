// Stripe's request encoding, authentication and error shape, for the fake Stripe (fake-stripe.ts).
// - Bodies are `application/x-www-form-urlencoded`; nested parameters use brackets
//   (`metadata[shopify_customer_id]=123`, `expand[]=lines`): docs.stripe.com/api (request format)
//   and docs.stripe.com/metadata.
// - Errors are `{error: {type, code, message, param, doc_url}}`, `type` one of api_error, card_error,
//   idempotency_error, invalid_request_error: docs.stripe.com/api/errors; codes: docs.stripe.com/error-codes.
// - Parameter checks throw a StripeFailure marked "not executed": Stripe saves an idempotent result
//   only once an endpoint began executing, and a request whose parameters fail validation did not
//   (docs.stripe.com/api/idempotent_requests).
import { jsonResponse, type JsonObject, type JsonValue } from "./fake-service";
import type { InjectedFault } from "./faults";

export type FormValue = string | FormValue[] | { [key: string]: FormValue };
export type FormParams = { [key: string]: FormValue };

export type StripeErrorType = "api_error" | "card_error" | "idempotency_error" | "invalid_request_error";

export interface StripeErrorBody {
  type: StripeErrorType;
  message: string;
  code?: string;
  param?: string;
}

/** A Stripe error answer; `executed` says whether the endpoint ran (whether an idempotency key keeps it). */
export class StripeFailure extends Error {
  constructor(
    readonly status: number,
    readonly error: StripeErrorBody,
    readonly executed = false,
  ) {
    super(error.message);
  }
}

/** The error body Stripe sends; a code links to its page, as Stripe's own answers do. */
export function stripeErrorJson(error: StripeErrorBody): JsonObject {
  const body: JsonObject = { type: error.type, message: error.message };
  if (error.code !== undefined) {
    body.code = error.code;
    body.doc_url = `https://stripe.com/docs/error-codes/${error.code.replace(/_/g, "-")}`;
  }
  if (error.param !== undefined) body.param = error.param;
  return { error: body };
}

export function stripeErrorResponse(status: number, error: StripeErrorBody, headers: Record<string, string> = {}): Response {
  return jsonResponse(stripeErrorJson(error), status, "application/json", headers);
}

export function invalidRequest(message: string, param?: string, code?: string, status = 400): StripeFailure {
  return new StripeFailure(status, { type: "invalid_request_error", message, ...(code ? { code } : {}), ...(param ? { param } : {}) });
}

/** A refusal by the endpoint itself (it ran): an idempotency key keeps it like a success. */
export function executedRefusal(code: string, message: string): StripeFailure {
  return new StripeFailure(400, { type: "invalid_request_error", code, message }, true);
}

/** `No such customer: 'cus_x'` (resource_missing): 404 for the object in the path, 400 for one named by a parameter. */
export function noSuch(kind: string, id: string, param: string, status: number): StripeFailure {
  return invalidRequest(`No such ${kind}: '${id}'`, param, "resource_missing", status);
}

/**
 * Parses a form body into nested params: `a[b][c]=v` nests, `a[]=v` appends. Returns an error
 * message for a body that mixes a value and an object under one name.
 */
export function parseStripeForm(text: string): FormParams | string {
  const params: FormParams = {};
  for (const [rawKey, value] of new URLSearchParams(text)) {
    const match = /^([^[\]]+)((?:\[[^[\]]*\])*)$/.exec(rawKey);
    if (match === null) return `Invalid parameter name: ${rawKey}`;
    const path = [match[1]!, ...[...match[2]!.matchAll(/\[([^[\]]*)\]/g)].map((m) => m[1]!)];
    const problem = assign(params, path, value, rawKey);
    if (problem !== null) return problem;
  }
  return params;
}

function assign(target: FormParams | FormValue[], path: string[], value: string, rawKey: string): string | null {
  const [head, ...rest] = path as [string, ...string[]];
  if (Array.isArray(target)) {
    // Only `a[]=v` builds arrays; a deeper path under `[]` is not something Stripe's endpoints here take.
    if (head !== "" || rest.length > 0) return `Invalid array parameter: ${rawKey}`;
    target.push(value);
    return null;
  }
  if (rest.length === 0) {
    if (typeof target[head] === "object") return `Invalid parameter: ${rawKey} is also used as a hash`;
    target[head] = value; // a repeated scalar keeps the last value
    return null;
  }
  const existing = target[head];
  if (typeof existing === "string") return `Invalid parameter: ${rawKey} is also used as a string`;
  const child = existing ?? (rest[0] === "" ? [] : {});
  if (Array.isArray(child) !== (rest[0] === "")) return `Invalid parameter: ${rawKey} mixes a list and a hash`;
  target[head] = child;
  return assign(child, rest, value, rawKey);
}

/** Key-order independent JSON: Stripe compares parameters, not the order they were sent in. */
export function canonicalJson(value: FormValue | JsonValue | undefined): string {
  if (value === undefined) return "null";
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, FormValue>)[k])}`);
    return `{${entries.join(",")}}`;
  }
  return JSON.stringify(value);
}

// ---- authentication and injected faults ---------------------------------------------------

/** The secret key of a request: `Authorization: Bearer sk_…`, or Basic with the key as the user name (`curl -u sk_…:`). */
export function apiKeyOf(request: Request): string | null {
  const header = request.headers.get("Authorization");
  if (header === null) return null;
  const bearer = /^Bearer\s+(\S+)$/i.exec(header);
  if (bearer) return bearer[1]!;
  const basic = /^Basic\s+(\S+)$/i.exec(header);
  try {
    return basic ? atob(basic[1]!).split(":")[0]! : "";
  } catch {
    return "";
  }
}

/** Stripe's two 401 messages; a wrong key is shown masked, as Stripe shows it. */
export function checkAuth(apiKey: string | null, keys: readonly string[]): string | null {
  if (apiKey === null || apiKey === "") {
    return "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.";
  }
  if (keys.includes(apiKey)) return null;
  const masked = apiKey.length > 12 ? `${apiKey.slice(0, 8)}${"*".repeat(apiKey.length - 12)}${apiKey.slice(-4)}` : "****";
  return `Invalid API Key provided: ${masked}`;
}

/** Injected faults in Stripe's shapes (docs.stripe.com/api/errors, /rate-limits). */
export function stripeFaultResponse(fault: InjectedFault): Response {
  const { status } = fault;
  if (status === 429) {
    return stripeErrorResponse(429, { type: "invalid_request_error", code: "rate_limit", message: "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests." });
  }
  if (status >= 500) return stripeErrorResponse(status, { type: "api_error", message: "An unknown error occurred (injected by the sandbox)." });
  if (status === 402) return stripeErrorResponse(402, { type: "card_error", code: "card_declined", message: "Your card was declined." });
  if (status === 409) return stripeErrorResponse(409, { type: "invalid_request_error", code: "lock_timeout", message: "This object cannot be accessed right now because another API request or Stripe process is currently accessing it." });
  return stripeErrorResponse(status, { type: "invalid_request_error", message: "Injected sandbox error." });
}

// ---- reading parameters --------------------------------------------------------------------

/** "Received unknown parameter: x" (parameter_unknown) for the first name outside `allowed`. */
export function rejectUnknown(params: FormParams, allowed: readonly string[]): void {
  const unknown = Object.keys(params).find((k) => !allowed.includes(k));
  if (unknown !== undefined) throw invalidRequest(`Received unknown parameter: ${unknown}`, unknown, "parameter_unknown");
}

/** A string parameter; undefined when absent or empty (Stripe reads "" as "unset"). */
export function optionalString(params: FormParams, name: string, maxLength = 5000): string | undefined {
  const value = params[name];
  if (value === undefined || value === "") return undefined;
  if (typeof value !== "string") throw invalidRequest(`Invalid string: ${name} must be a string`, name);
  if (value.length > maxLength) throw invalidRequest(`Invalid string: ${name} must be at most ${maxLength} characters`, name);
  return value;
}

export function requiredString(params: FormParams, name: string, maxLength = 5000): string {
  if (params[name] === "") {
    throw invalidRequest(
      `You passed an empty string for '${name}'. We assume empty values are an attempt to unset a parameter; however '${name}' cannot be unset. You should remove '${name}' from your request or supply a non-empty value.`,
      name,
      "parameter_invalid_empty",
    );
  }
  const value = optionalString(params, name, maxLength);
  if (value === undefined) throw invalidRequest(`Missing required param: ${name}.`, name, "parameter_missing");
  return value;
}

/** An integer in its decimal form only: "10.99" is Stripe's `Invalid integer: 10.99`. */
export function optionalInteger(params: FormParams, name: string): number | undefined {
  const raw = optionalString(params, name);
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!/^-?\d+$/.test(raw) || !Number.isSafeInteger(value)) throw invalidRequest(`Invalid integer: ${raw}`, name, "parameter_invalid_integer");
  return value;
}

export function optionalBoolean(params: FormParams, name: string): boolean | undefined {
  const raw = optionalString(params, name);
  if (raw === undefined) return undefined;
  if (raw !== "true" && raw !== "false") throw invalidRequest(`Invalid boolean: ${raw}`, name);
  return raw === "true";
}

export function optionalEnum<T extends string>(params: FormParams, name: string, values: readonly T[]): T | undefined {
  const raw = optionalString(params, name);
  if (raw === undefined) return undefined;
  if (!(values as readonly string[]).includes(raw)) throw invalidRequest(`Invalid ${name}: must be one of ${values.join(", ")}`, name);
  return raw as T;
}

/** Three letters; Stripe documents lowercase codes and the fake stores them so. */
export function optionalCurrency(params: FormParams, name = "currency"): string | undefined {
  const raw = optionalString(params, name);
  if (raw === undefined) return undefined;
  if (!/^[a-zA-Z]{3}$/.test(raw)) throw invalidRequest(`Invalid currency: ${raw}`, name);
  return raw.toLowerCase();
}

/**
 * Metadata limits of docs.stripe.com/metadata: up to 50 keys, names up to 40 characters without
 * square brackets, values up to 500 characters. An empty value unsets (on a create: leaves out) the key.
 */
export function readMetadata(params: FormParams): Record<string, string> {
  const raw = params.metadata;
  if (raw === undefined || raw === "") return {};
  if (typeof raw !== "object" || Array.isArray(raw)) throw invalidRequest("Invalid hash", "metadata");
  const entries = Object.entries(raw);
  if (entries.length > 50) throw invalidRequest(`Invalid metadata: metadata can have up to 50 keys, but you passed in ${entries.length} keys.`, "metadata");
  const metadata: Record<string, string> = {};
  for (const [key, value] of entries) {
    if (typeof value !== "string") throw invalidRequest(`Invalid metadata: the value of ${key} must be a string`, `metadata[${key}]`);
    if (key.length > 40) throw invalidRequest(`Invalid metadata: keys can be at most 40 characters long (${key})`, `metadata[${key}]`);
    if (value.length > 500) throw invalidRequest(`Invalid metadata: values can be at most 500 characters long (${key})`, `metadata[${key}]`);
    if (value !== "") metadata[key] = value;
  }
  return metadata;
}
