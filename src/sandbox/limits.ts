/**
 * The vendors' documented rate limits in the fakes: what the request pipeline (sandbox-request.ts)
 * asks of a vendor's limiter, and the `/_sandbox/limits` control endpoint every fake shares.
 * The rules themselves: hubspot-limits.ts (a rolling window and a daily count per access token),
 * mailchimp-limits.ts (simultaneous connections per API key).
 *
 * Settings and counters live in the fake's persisted state (`state.limits`), so they survive a
 * Durable Object restart like the faults do; a reset puts the settings back to the fake's options
 * and zeroes the counters.
 */
import { isPlainObject, jsonResponse, md5Hex, readBody, type JsonObject } from "./fake-service";

/** One vendor call, admitted or turned away. */
export interface Admission {
  /** The vendor's own 429 when the call is over a limit; null to let it through. */
  rejection: Response | null;
  /** Headers the vendor puts on the answer, whatever it is (HubSpot's X-HubSpot-RateLimit-*). */
  headers: Record<string, string>;
  /** The call is over (a Mailchimp connection closes); called once, after the answer is made. */
  release(): void;
}

export interface Limiter {
  /**
   * Called when a vendor call arrives, before faults and latency. null when the call is not
   * subject to a limit because it does not authenticate (the vendor answers it with its 401).
   */
  admit(request: Request, now: number): Admission | null;
  /** What `GET /_sandbox/limits` shows: the settings and the counters. */
  view(now: number): JsonObject;
  /** `POST /_sandbox/limits`: merges the given settings; an error message when one is invalid. */
  configure(input: JsonObject, now: number): string | null;
  /** `POST /_sandbox/reset`: settings back to the fake's options, counters to zero. */
  reset(): void;
}

/**
 * The key counters are kept under for a credential: a short hash, so neither the state nor
 * `GET /_sandbox/limits` ever shows the token or API key itself.
 */
export function credentialKey(secret: string): string {
  return md5Hex(`sandbox-limit:${secret}`).slice(0, 12);
}

/** `GET|POST /_sandbox/limits`; null when `name` is another control endpoint. */
export async function limitsControl(limiter: Limiter | undefined, request: Request, name: string, now: number): Promise<Response | null> {
  if (name !== "limits") return null;
  if (limiter === undefined) return jsonResponse({ error: "this fake has no limits" }, 404);
  if (request.method === "GET") return jsonResponse(limiter.view(now));
  if (request.method !== "POST") return jsonResponse({ error: `method ${request.method} not allowed` }, 405);
  const body = await readBody(request);
  const input = body.kind === "json" ? body.value : body.kind === "empty" ? {} : null;
  if (!isPlainObject(input)) return jsonResponse({ error: "body must be a JSON object" }, 400);
  const problem = limiter.configure(input, now);
  return problem === null ? jsonResponse(limiter.view(now)) : jsonResponse({ error: problem }, 400);
}

/** The answer with extra headers (a new Response: a handler's headers may be immutable). */
export function withHeaders(response: Response, headers: Record<string, string>): Response {
  if (Object.keys(headers).length === 0) return response;
  const merged = new Headers(response.headers);
  for (const [name, value] of Object.entries(headers)) merged.set(name, value);
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers: merged });
}

// ---- reading settings -----------------------------------------------------------------------

/** Checks `input` has only `allowed` keys; the offending key's message otherwise. */
export function unknownField(input: JsonObject, allowed: readonly string[]): string | null {
  const unknown = Object.keys(input).find((key) => !allowed.includes(key));
  return unknown === undefined ? null : `unknown field "${unknown}"`;
}

/** A positive integer setting: the value, undefined when absent, or an error message. */
export function positiveInt(input: JsonObject, key: string): number | undefined | string {
  const value = input[key];
  if (value === undefined) return undefined;
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 1 ? value : `${key} must be an integer >= 1`;
}

/** A boolean setting: the value, undefined when absent, or an error message. */
export function flag(input: JsonObject, key: string): boolean | undefined | string {
  const value = input[key];
  if (value === undefined) return undefined;
  return typeof value === "boolean" ? value : `${key} must be true or false`;
}
