/**
 * Mailchimp list webhooks: form-encoded, authenticated only by a secret in the URL
 * (Mailchimp signs nothing), e.g.
 * `type=unsubscribe&fired_at=2009-03-26 21:40:57&data[email]=a@b.c&data[merges][FNAME]=Ann`.
 * https://mailchimp.com/developer/marketing/guides/sync-audience-data-webhooks/
 */
import { fail, type Failure } from "../errors";
import { constantTimeEqual, sha256Hex } from "./crypto";
import { eventIdFor, type InboundEvent } from "./event";

export function verifyMailchimpSecret(given: string | undefined, expected: string): { ok: true } | Failure {
  if (!given) return fail("missing_signature", "the webhook URL has no secret segment");
  if (!constantTimeEqual(given, expected)) return fail("invalid_signature", "the webhook URL secret does not match");
  return { ok: true };
}

type Nested = { [key: string]: string | Nested };

/** `data[merges][FNAME]=Ann` -> `{ data: { merges: { FNAME: "Ann" } } }`. */
export function parseBracketForm(params: URLSearchParams): Nested {
  const root: Nested = {};
  for (const [name, value] of params) {
    const path = name.replace(/\]/g, "").split("[");
    // A field named `__proto__[x]` must not reach Object.prototype.
    if (path.some((segment) => UNSAFE_KEYS.has(segment))) continue;
    let node = root;
    for (let i = 0; i < path.length - 1; i++) {
      const segment = path[i]!;
      const next = Object.hasOwn(node, segment) ? node[segment] : undefined;
      if (typeof next === "object") node = next;
      else node = node[segment] = {};
    }
    node[path[path.length - 1]!] = value;
  }
  return root;
}

const UNSAFE_KEYS = new Set(["__proto__", "constructor", "prototype"]);
const MAX_TYPE_LENGTH = 64;
// RFC 5321 limits a forward path to 256 octets; 320 leaves room for what providers let through.
const MAX_EMAIL_LENGTH = 320;

/** "2009-03-26 21:35:57", which Mailchimp sends in UTC, to epoch ms. */
function firedAtMs(firedAt: string): number | null {
  const ms = Date.parse(`${firedAt.trim().replace(" ", "T")}Z`);
  return Number.isFinite(ms) ? ms : null;
}

/**
 * What the dedupe key hashes: type, fired_at and the data fields, sorted (Mailchimp does not
 * promise their order across redeliveries) and JSON-encoded, so no field name or value can
 * imitate a separator (`a=b\nc` vs two fields) and two different deliveries never collide.
 */
function mailchimpDedupeInput(type: string, firedAt: string, params: URLSearchParams): string {
  const fields = [...params].filter(([k]) => k.startsWith("data[")).sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0));
  return JSON.stringify([type, firedAt, fields]);
}

export async function parseMailchimpForm(text: string, receivedAt: number): Promise<{ ok: true; events: InboundEvent[] } | Failure> {
  let params: URLSearchParams;
  try {
    params = new URLSearchParams(text);
  } catch {
    return fail("malformed_body", "body is not form data");
  }
  const form = parseBracketForm(params);
  const type = form.type;
  const firedAt = form.fired_at;
  const data = form.data;
  if (typeof type !== "string" || type === "") return fail("invalid_payload", "type: required");
  // The type and the address travel outside the payload (event type, entity key): bounded, so
  // an event always fits a queue message once its payload is stored aside.
  if (type.length > MAX_TYPE_LENGTH) return fail("invalid_payload", `type: at most ${MAX_TYPE_LENGTH} characters`);
  if (typeof firedAt !== "string" || firedAt === "") return fail("invalid_payload", "fired_at: required");
  if (typeof data !== "object") return fail("invalid_payload", "data: required");
  // An email change is keyed by the address the contact had; every other type carries data[email].
  const email = type === "upemail" ? data.old_email : data.email;
  const field = type === "upemail" ? "data[old_email]" : "data[email]";
  if (typeof email !== "string" || email === "") return fail("invalid_payload", `${field}: required`);
  if (email.length > MAX_EMAIL_LENGTH) return fail("invalid_payload", `${field}: longer than an email address can be (${MAX_EMAIL_LENGTH})`);
  const dedupeKey = await sha256Hex(mailchimpDedupeInput(type, firedAt, params));
  const event: InboundEvent = {
    id: await eventIdFor("mailchimp", dedupeKey),
    source: "mailchimp",
    type,
    dedupeKey,
    entityKey: `email:${email.trim().toLowerCase()}`,
    receivedAt,
    occurredAt: firedAtMs(firedAt),
    payload: form,
  };
  return { ok: true, events: [event] };
}
