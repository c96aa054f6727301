/**
 * HubSpot webhooks: signature v3 and the contact-subscription batch.
 * https://developers.hubspot.com/docs/apps/legacy-apps/authentication/validating-requests
 */
import { z } from "zod";
import { describeIssues, fail, type Failure } from "../errors";
import { constantTimeEqual, hmacSha256, toBase64 } from "./crypto";
import { eventIdFor, type InboundEvent } from "./event";
import { idString, integerId, parseJsonLossless } from "./json";

export const HUBSPOT_MAX_AGE_MS = 5 * 60 * 1000;

// HubSpot signs the URI with these percent-encodings decoded, and no others.
const DECODED: Record<string, string> = {
  "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
  "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
};

export function hubspotSignedUri(url: string): string {
  return url.replace(/%(3A|2F|3F|40|21|24|27|28|29|2A|2C|3B)/gi, (m) => DECODED[m.toUpperCase()] ?? m);
}

export interface HubSpotSignatureInput {
  method: string;
  url: string;
  /** The raw body; a string is signed as its UTF-8 encoding. */
  body: string | Uint8Array;
  signature: string | null;
  timestamp: string | null;
  clientSecret: string;
  now: number;
}

/**
 * Signs method + URI + body + timestamp. The body is signed as the bytes received: decoding it
 * first would drop a BOM or replace invalid UTF-8, and check bytes HubSpot did not send.
 */
export async function hubspotSignature(secret: string, method: string, url: string, body: string | Uint8Array, timestamp: string): Promise<string> {
  if (typeof body === "string") return toBase64(await hmacSha256(secret, `${method}${hubspotSignedUri(url)}${body}${timestamp}`));
  const head = encoder.encode(`${method}${hubspotSignedUri(url)}`);
  const tail = encoder.encode(timestamp);
  const signed = new Uint8Array(head.byteLength + body.byteLength + tail.byteLength);
  signed.set(head, 0);
  signed.set(body, head.byteLength);
  signed.set(tail, head.byteLength + body.byteLength);
  return toBase64(await hmacSha256(secret, signed));
}

const encoder = new TextEncoder();

/** Signature first, then age: a stale timestamp is only reported for a correctly signed request. */
export async function verifyHubSpotSignature(input: HubSpotSignatureInput): Promise<{ ok: true } | Failure> {
  if (!input.signature || !input.timestamp) {
    return fail("missing_signature", "X-HubSpot-Signature-v3 and X-HubSpot-Request-Timestamp are required");
  }
  const expected = await hubspotSignature(input.clientSecret, input.method, input.url, input.body, input.timestamp);
  if (!constantTimeEqual(expected, input.signature.trim())) return fail("invalid_signature", "signature does not match");
  const sentAt = Number(input.timestamp);
  // Future timestamps beyond the same window are as suspicious as old ones (clock skew allowance).
  if (!Number.isFinite(sentAt) || Math.abs(input.now - sentAt) > HUBSPOT_MAX_AGE_MS) {
    return fail("stale_timestamp", "X-HubSpot-Request-Timestamp is more than 5 minutes from now");
  }
  return { ok: true };
}


const HubSpotEvent = z.looseObject({
  eventId: integerId,
  // Bounded like the ids: it travels outside the payload as the event's type.
  subscriptionType: z.string().min(1).max(100),
  objectId: integerId,
  occurredAt: z.number().optional(),
  portalId: integerId.optional(),
  subscriptionId: integerId.optional(),
  propertyName: z.string().optional(),
  propertyValue: z.unknown().optional(),
  changeSource: z.string().optional(),
});
const HubSpotBatch = z.array(HubSpotEvent).min(1).max(100);

export async function parseHubSpotBatch(text: string, receivedAt: number): Promise<{ ok: true; events: InboundEvent[] } | Failure> {
  const json = parseJsonLossless(text);
  if (!json.ok) return fail("malformed_body", `body is not valid JSON: ${json.message}`);
  const batch = HubSpotBatch.safeParse(json.value);
  if (!batch.success) return fail("invalid_payload", describeIssues(batch.error));
  const events = await Promise.all(
    batch.data.map(async (raw) => {
      const eventId = idString(raw.eventId)!;
      const objectId = idString(raw.objectId)!;
      // HubSpot documents eventId as unique only within a subscription of a portal (app).
      const dedupeKey = `${idString(raw.portalId ?? null) ?? ""}:${idString(raw.subscriptionId ?? null) ?? ""}:${eventId}`;
      const payload = { ...raw, eventId, objectId };
      return {
        id: await eventIdFor("hubspot", dedupeKey),
        source: "hubspot" as const,
        type: raw.subscriptionType,
        dedupeKey,
        entityKey: `contact:${objectId}`,
        receivedAt,
        occurredAt: raw.occurredAt ?? null,
        payload,
      };
    }),
  );
  return { ok: true, events };
}
