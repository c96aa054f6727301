// node:crypto is available in workerd through the `nodejs_compat` flag and natively in Node.
import { createHash } from "node:crypto";

/**
 * A stateful fake of a vendor API, written once as a fetch-style handler so it can run inside the
 * Worker (hosted by a Durable Object that persists `state`) and as a plain Node HTTP server in
 * end-to-end tests and benchmarks.
 */
export interface FakeService<S> {
  readonly name: string; // "hubspot" | "mailchimp"
  /** Plain JSON-serialisable; the host persists it after each request. */
  state: S;
  /**
   * path = the vendor path + query, e.g. "/crm/v3/objects/contacts/123?properties=email"
   * (mount prefix already stripped).
   */
  handle(request: Request, path: string): Promise<Response>;
}

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** One vendor call as recorded by the sandbox (auth headers are never stored). */
export interface RequestLogEntry {
  /** Epoch milliseconds, from the fake's clock. */
  at: number;
  method: string;
  /** Vendor path + query as received. */
  path: string;
  status: number;
  /** Parsed JSON request body, or null when there was none or it was not JSON. */
  body: JsonValue | null;
}

/** The request body, read once so the sandbox log and the vendor handler see the same thing. */
export type RequestBody =
  | { kind: "empty" }
  | { kind: "json"; value: JsonValue }
  | { kind: "invalid"; text: string };

export async function readBody(request: Request): Promise<RequestBody> {
  if (request.method === "GET" || request.method === "HEAD") return { kind: "empty" };
  // Decoded by hand: workerd warns on .text() of a form body it does not take for text.
  const text = new TextDecoder().decode(await request.arrayBuffer());
  if (text.trim() === "") return { kind: "empty" };
  try {
    return { kind: "json", value: JSON.parse(text) as JsonValue };
  } catch {
    return { kind: "invalid", text };
  }
}

export function jsonResponse(
  body: unknown,
  status = 200,
  contentType = "application/json; charset=utf-8",
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": contentType, ...headers },
  });
}

/** HubSpot's error shape: developers.hubspot.com/docs/faq/api-error-responses. */
export function hubspotError(status: number, message: string, category?: string, extra: JsonObject = {}): Response {
  const body: JsonObject = { status: "error", message, correlationId: crypto.randomUUID() };
  if (category !== undefined) body.category = category;
  return jsonResponse({ ...body, ...extra }, status, "application/json;charset=utf-8");
}

/** Mailchimp's RFC 7807 problem details: mailchimp.com/developer/marketing/docs/errors/. */
export function mailchimpProblem(
  status: number,
  title: string,
  detail: string,
  extra: JsonObject = {},
  headers: Record<string, string> = {},
): Response {
  const body = { type: "https://mailchimp.com/developer/marketing/docs/errors/", title, status, detail, instance: crypto.randomUUID(), ...extra };
  return jsonResponse(body, status, "application/problem+json; charset=utf-8", headers);
}

const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** A deliberately loose syntax check (local@domain.tld); both vendors reject worse input. */
export function isEmail(value: string): boolean {
  return EMAIL_RE.test(value);
}

export function isPlainObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Parses the mount-stripped path; the origin is irrelevant and only makes URL parsing possible. */
export function parsePath(path: string): URL {
  return new URL(path.startsWith("/") ? path : `/${path}`, "http://sandbox.invalid");
}

/** Splits a pathname into decoded segments ("/a/b%40c" -> ["a", "b@c"]). */
export function pathSegments(pathname: string): string[] {
  return pathname
    .split("/")
    .filter((s) => s !== "")
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    });
}

export function md5Hex(input: string): string {
  return createHash("md5").update(input).digest("hex");
}

/**
 * mulberry32: a tiny seeded PRNG. The whole generator state is one 32-bit integer, so it can live
 * in the persisted state and the fault sequence survives Durable Object restarts deterministically.
 */
export function nextRandom(seed: number): { value: number; seed: number } {
  const next = (seed + 0x6d2b79f5) | 0;
  let t = next;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return { value: ((t ^ (t >>> 14)) >>> 0) / 4294967296, seed: next };
}

/** A non-negative integer query parameter: absent/empty gives the fallback, anything malformed NaN. */
export function parseIntParam(raw: string | null, fallback: number): number {
  if (raw === null || raw === "") return fallback;
  return /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
}

/** Deep copy of JSON state, so a fake never aliases the object it was created from. */
export function cloneJson<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
