/**
 * Fixed signature vectors computed outside the product, with openssl, so that the product's
 * verifiers (and the independent test signers in test/support/webhooks.ts) are checked against
 * something neither of them produced. Each vector's comment holds the exact shell command that
 * produced it (bash, UTF-8 locale); rerun it to recompute the value.
 *
 * HubSpot v3, per https://developers.hubspot.com/docs/apps/legacy-apps/authentication/validating-requests:
 * base64(HMAC-SHA256(clientSecret, method + URI + body + timestamp)), where in the URI the
 * encodings %3A %2F %3F %40 %21 %24 %27 %28 %29 %2A %2C %3B are decoded and no others.
 * Shopify: base64(HMAC-SHA256(secret, raw body bytes)).
 */
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { verifyHubSpotSignature, type HubSpotSignatureInput } from "../../src/ingest/hubspot";
import { verifyShopifySignature } from "../../src/ingest/shopify";
import {
  HUBSPOT_SECRET,
  hubspotV3Signature,
  MAILCHIMP_SECRET,
  mailchimpForm,
  mailchimpRequest,
  ORIGIN,
  SHOPIFY_SECRET,
  shopifyHmac,
  signedHubSpot,
} from "../support/webhooks";

const send = (request: Request) => exports.default.fetch(request);
const errorCode = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;
const utf8Length = (text: string) => new TextEncoder().encode(text).byteLength;

const FIVE_MINUTES = 5 * 60 * 1000;
// 2026-01-01T00:00:00Z, in milliseconds as HubSpot sends it.
const TIMESTAMP = "1767225600000";
const T = Number(TIMESTAMP);

// ---------------------------------------------------------------------------------------------
// HubSpot vector 1: a plain URL and a body with non-ASCII text (270 bytes of UTF-8).
//
// printf '%s%s%s%s' 'POST' 'https://syncwire.example.com/webhooks/hubspot' '[{"eventId":4182736455,"subscriptionId":2456,"portalId":62515,"appId":54321,"occurredAt":1767225599000,"subscriptionType":"contact.propertyChange","attemptNumber":0,"objectId":123,"propertyName":"firstname","propertyValue":"Zoë Ångström 東京","changeSource":"CRM"}]' '1767225600000' | openssl dgst -sha256 -hmac 'test-hubspot-client-secret' -binary | base64
// -> uJ/nAPYrKuvAdl/EkV8jQCSRmEeMWFbIyZ18oVmszCU=
const H1_URL = "https://syncwire.example.com/webhooks/hubspot";
const H1_BODY =
  '[{"eventId":4182736455,"subscriptionId":2456,"portalId":62515,"appId":54321,"occurredAt":1767225599000,"subscriptionType":"contact.propertyChange","attemptNumber":0,"objectId":123,"propertyName":"firstname","propertyValue":"Zoë Ångström 東京","changeSource":"CRM"}]';
const H1_SIGNATURE = "uJ/nAPYrKuvAdl/EkV8jQCSRmEeMWFbIyZ18oVmszCU=";

// ---------------------------------------------------------------------------------------------
// HubSpot vector 2: a URL with percent-encodings. The request carries H2_URL (still encoded);
// HubSpot signs the URI with its documented encodings decoded and %20 %25 %2B kept:
//   https://syncwire.example.com/webhooks/hubspot?a=:/?@!$'()*,;&b=%20%25&c=x%2By
// ('\'' below is the shell's way of writing the apostrophe inside single quotes.)
//
// printf '%s%s%s%s' 'POST' 'https://syncwire.example.com/webhooks/hubspot?a=:/?@!$'\''()*,;&b=%20%25&c=x%2By' '[{"eventId":4182736456,"subscriptionId":2456,"portalId":62515,"appId":54321,"occurredAt":1767225599000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":124,"changeSource":"CRM","changeFlag":"NEW"}]' '1767225600000' | openssl dgst -sha256 -hmac 'test-hubspot-client-secret' -binary | base64
// -> 8VHPksW9cFHV6PvHp3i0QFeP+GxF2NJdJPVFeIvNmGs=
const H2_URL = "https://syncwire.example.com/webhooks/hubspot?a=%3A%2F%3F%40%21%24%27%28%29%2A%2C%3B&b=%20%25&c=x%2By";
const H2_BODY =
  '[{"eventId":4182736456,"subscriptionId":2456,"portalId":62515,"appId":54321,"occurredAt":1767225599000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":124,"changeSource":"CRM","changeFlag":"NEW"}]';
const H2_SIGNATURE = "8VHPksW9cFHV6PvHp3i0QFeP+GxF2NJdJPVFeIvNmGs=";

// Wrong decodings of the same request, which the verifier must refuse:
// H3, over the URI left fully encoded (no decoding at all):
// printf '%s%s%s%s' 'POST' 'https://syncwire.example.com/webhooks/hubspot?a=%3A%2F%3F%40%21%24%27%28%29%2A%2C%3B&b=%20%25&c=x%2By' '[{"eventId":4182736456,"subscriptionId":2456,"portalId":62515,"appId":54321,"occurredAt":1767225599000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":124,"changeSource":"CRM","changeFlag":"NEW"}]' '1767225600000' | openssl dgst -sha256 -hmac 'test-hubspot-client-secret' -binary | base64
// -> MftYHuL69n+mFFkCbqCIboRaJiLnPEZDic1DbzhzxD8=
const H3_UNDECODED_SIGNATURE = "MftYHuL69n+mFFkCbqCIboRaJiLnPEZDic1DbzhzxD8=";
// H4, over the URI with %20 %25 %2B decoded as well (decoding more than HubSpot documents):
// printf '%s%s%s%s' 'POST' 'https://syncwire.example.com/webhooks/hubspot?a=:/?@!$'\''()*,;&b= %&c=x+y' '[{"eventId":4182736456,"subscriptionId":2456,"portalId":62515,"appId":54321,"occurredAt":1767225599000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":124,"changeSource":"CRM","changeFlag":"NEW"}]' '1767225600000' | openssl dgst -sha256 -hmac 'test-hubspot-client-secret' -binary | base64
// -> tOdxsZnztKCQG2+S29b9JcaVvewNEoOsZoCDee2JF8s=
const H4_OVERDECODED_SIGNATURE = "tOdxsZnztKCQG2+S29b9JcaVvewNEoOsZoCDee2JF8s=";

// ---------------------------------------------------------------------------------------------
// Shopify vector 1: an orders/create body with non-ASCII text and 18-digit ids (259 bytes).
//
// printf '%s' '{"id":820982911946154508,"email":"zoë@example.com","note":"Grüße aus Köln — 東京 🎉","total_price":"199.65","currency":"EUR","customer":{"id":115310627314723954,"email":"zoe@example.com","first_name":"Zoë","last_name":"Ångström"},"line_items":[]}' | openssl dgst -sha256 -hmac 'test-shopify-secret' -binary | base64
// -> mfWY+HehjiuPISO9rH5vAZlC6+HPOdXSFo3uepHgI/g=
const S1_BODY =
  '{"id":820982911946154508,"email":"zoë@example.com","note":"Grüße aus Köln — 東京 🎉","total_price":"199.65","currency":"EUR","customer":{"id":115310627314723954,"email":"zoe@example.com","first_name":"Zoë","last_name":"Ångström"},"line_items":[]}';
const S1_HMAC = "mfWY+HehjiuPISO9rH5vAZlC6+HPOdXSFo3uepHgI/g=";
// Shopify vector 2: the same body with "total_price":"0.01".
// printf '%s' '{"id":820982911946154508,"email":"zoë@example.com","note":"Grüße aus Köln — 東京 🎉","total_price":"0.01","currency":"EUR","customer":{"id":115310627314723954,"email":"zoe@example.com","first_name":"Zoë","last_name":"Ångström"},"line_items":[]}' | openssl dgst -sha256 -hmac 'test-shopify-secret' -binary | base64
// -> Rt+8Y03yW+7zqztTXxyv0rKiuTcjwebEvN692JGqSho=
const S2_HMAC = "Rt+8Y03yW+7zqztTXxyv0rKiuTcjwebEvN692JGqSho=";

describe("the vectors themselves", () => {
  it("are the bytes openssl hashed (UTF-8 lengths from `printf '%s' '<body>' | wc -c`)", () => {
    expect(utf8Length(H1_BODY)).toBe(270);
    expect(utf8Length(S1_BODY)).toBe(259);
  });

  it("are reproduced by the independent test signers in test/support/webhooks.ts", () => {
    expect(hubspotV3Signature(HUBSPOT_SECRET, "POST", H1_URL, H1_BODY, TIMESTAMP)).toBe(H1_SIGNATURE);
    expect(hubspotV3Signature(HUBSPOT_SECRET, "POST", H2_URL, H2_BODY, TIMESTAMP)).toBe(H2_SIGNATURE);
    expect(shopifyHmac(SHOPIFY_SECRET, S1_BODY)).toBe(S1_HMAC);
    expect(shopifyHmac(SHOPIFY_SECRET, new TextEncoder().encode(S1_BODY))).toBe(S1_HMAC);
  });

  it("use the secrets the worker is configured with in vitest.config.ts", () => {
    expect(HUBSPOT_SECRET).toBe("test-hubspot-client-secret");
    expect(SHOPIFY_SECRET).toBe("test-shopify-secret");
  });
});

describe("HubSpot v3 verifier against openssl vectors", () => {
  const h1: HubSpotSignatureInput = {
    method: "POST",
    url: H1_URL,
    body: H1_BODY,
    signature: H1_SIGNATURE,
    timestamp: TIMESTAMP,
    clientSecret: HUBSPOT_SECRET,
    now: T,
  };

  it("accepts the vector", async () => {
    expect(await verifyHubSpotSignature(h1)).toEqual({ ok: true });
  });

  it.each([
    ["one byte of the body changed (objectId 123 -> 124)", { body: H1_BODY.replace('"objectId":123', '"objectId":124') }],
    ["one byte of the non-ASCII text changed (ë -> e)", { body: H1_BODY.replace("Zoë", "Zoe") }],
    ["the method (PUT)", { method: "PUT" }],
    ["the method's case (post)", { method: "post" }],
    ["the timestamp (+1 ms, still inside the window)", { timestamp: String(T + 1) }],
    ["the URL's path", { url: `${H1_URL}s` }],
    ["the URL's scheme", { url: H1_URL.replace("https:", "http:") }],
    ["the URL's host", { url: H1_URL.replace("syncwire.example.com", "syncwire.example.org") }],
    ["a query string added to the URL", { url: `${H1_URL}?x=1` }],
    ["the client secret", { clientSecret: "not-the-secret" }],
  ] as const)("rejects it when %s", async (_, change) => {
    const result = await verifyHubSpotSignature({ ...h1, ...change });
    expect(result).toMatchObject({ ok: false, code: "invalid_signature" });
  });

  it("still accepts it at the edges of the 5-minute window", async () => {
    expect(await verifyHubSpotSignature({ ...h1, now: T + FIVE_MINUTES })).toEqual({ ok: true });
    expect(await verifyHubSpotSignature({ ...h1, now: T - FIVE_MINUTES })).toEqual({ ok: true });
  });

  it("answers stale_timestamp for the correct vector received more than 5 minutes later", async () => {
    expect(await verifyHubSpotSignature({ ...h1, now: T + FIVE_MINUTES + 1 })).toMatchObject({ ok: false, code: "stale_timestamp" });
    expect(await verifyHubSpotSignature({ ...h1, now: T + 60 * 60 * 1000 })).toMatchObject({ ok: false, code: "stale_timestamp" });
  });

  it("refuses a timestamp more than 5 minutes in the future", async () => {
    expect(await verifyHubSpotSignature({ ...h1, now: T - FIVE_MINUTES - 1 })).toMatchObject({ ok: false, code: "stale_timestamp" });
  });

  it("reports a bad signature, not staleness, for a tampered request that is also stale", async () => {
    const result = await verifyHubSpotSignature({ ...h1, body: H1_BODY.replace("123", "124"), now: T + FIVE_MINUTES + 1 });
    expect(result).toMatchObject({ ok: false, code: "invalid_signature" });
  });

  describe("percent-encoded request URL", () => {
    const h2: HubSpotSignatureInput = {
      method: "POST",
      url: H2_URL,
      body: H2_BODY,
      signature: H2_SIGNATURE,
      timestamp: TIMESTAMP,
      clientSecret: HUBSPOT_SECRET,
      now: T,
    };

    it("is what the worker sees as request.url (the runtime keeps the encodings as sent)", () => {
      expect(new Request(H2_URL, { method: "POST", body: H2_BODY }).url).toBe(H2_URL);
    });

    it("accepts the vector signed over the decoded URI while the request carries the encoded URL", async () => {
      expect(await verifyHubSpotSignature(h2)).toEqual({ ok: true });
    });

    it("rejects a signature over the URI left fully encoded", async () => {
      expect(await verifyHubSpotSignature({ ...h2, signature: H3_UNDECODED_SIGNATURE })).toMatchObject({ ok: false, code: "invalid_signature" });
    });

    it("rejects a signature over the URI with %20 %25 %2B decoded too", async () => {
      expect(await verifyHubSpotSignature({ ...h2, signature: H4_OVERDECODED_SIGNATURE })).toMatchObject({ ok: false, code: "invalid_signature" });
    });

    it("rejects the vector when a kept encoding in the URL changes (%20 -> +)", async () => {
      expect(await verifyHubSpotSignature({ ...h2, url: H2_URL.replace("%20", "+") })).toMatchObject({ ok: false, code: "invalid_signature" });
    });
  });
});

describe("Shopify verifier against openssl vectors", () => {
  it("accepts the vector over the raw body bytes", async () => {
    expect(await verifyShopifySignature(new TextEncoder().encode(S1_BODY), S1_HMAC, SHOPIFY_SECRET)).toEqual({ ok: true });
  });

  it("rejects another body's vector", async () => {
    expect(await verifyShopifySignature(new TextEncoder().encode(S1_BODY), S2_HMAC, SHOPIFY_SECRET)).toMatchObject({ ok: false, code: "invalid_signature" });
  });
});

describe("Shopify route with openssl vectors", () => {
  const request = (hmac: string) =>
    new Request(`${ORIGIN}/webhooks/shopify`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-shopify-hmac-sha256": hmac,
        "x-shopify-topic": "orders/create",
        "x-shopify-webhook-id": crypto.randomUUID(),
        "x-shopify-shop-domain": "example.myshopify.com",
        "x-shopify-triggered-at": new Date().toISOString(),
      },
      body: S1_BODY,
    });

  it("answers 202 for the body with its openssl-computed X-Shopify-Hmac-Sha256", async () => {
    const res = await send(request(S1_HMAC));
    expect(res.status).toBe(202);
    expect(((await res.json()) as { eventIds: string[] }).eventIds).toHaveLength(1);
  });

  it("answers 401 invalid_signature for the same body carrying another vector's header", async () => {
    const res = await send(request(S2_HMAC));
    expect(res.status).toBe(401);
    expect(await errorCode(res)).toBe("invalid_signature");
  });
});

describe("Mailchimp URL secret through the route", () => {
  const body = mailchimpForm({
    type: "subscribe",
    fired_at: "2026-01-01 00:00:00",
    "data[id]": "8a25ff1d98",
    "data[list_id]": "list0001",
    "data[email]": "vectors@example.com",
    "data[email_type]": "html",
    "data[merges][EMAIL]": "vectors@example.com",
    "data[merges][FNAME]": "Zoë",
  });

  it("answers 202 for a valid form body with the right secret", async () => {
    const res = await send(mailchimpRequest(body, "test-mailchimp-url-secret"));
    expect(res.status).toBe(202);
  });

  it("answers 401 invalid_signature for a wrong secret", async () => {
    const res = await send(mailchimpRequest(body, `${MAILCHIMP_SECRET}x`));
    expect(res.status).toBe(401);
    expect(await errorCode(res)).toBe("invalid_signature");
  });

  it("answers 200 to a GET on the webhook URL", async () => {
    const res = await send(new Request(`${ORIGIN}/webhooks/mailchimp/test-mailchimp-url-secret`));
    expect(res.status).toBe(200);
  });
});

describe("HubSpot route, signed by the independent signer", () => {
  it("answers 202 for a body with non-ASCII text", async () => {
    const body = JSON.stringify([
      {
        eventId: Math.floor(Math.random() * 1e9),
        subscriptionId: 2456,
        portalId: 62515,
        appId: 54321,
        occurredAt: Date.now(),
        subscriptionType: "contact.propertyChange",
        attemptNumber: 0,
        objectId: 987654321,
        propertyName: "firstname",
        propertyValue: "Zoë Ångström — 東京 🎉",
        changeSource: "CRM",
      },
    ]);
    expect(utf8Length(body)).toBeGreaterThan(body.length);
    const request = await signedHubSpot(body);
    // The header is node:crypto's HMAC over the UTF-8 bytes, not the product's signer.
    expect(request.headers.get("x-hubspot-signature-v3")).toBe(
      hubspotV3Signature(HUBSPOT_SECRET, "POST", `${ORIGIN}/webhooks/hubspot`, body, request.headers.get("x-hubspot-request-timestamp")!),
    );
    const res = await send(request);
    expect(res.status).toBe(202);
    expect(((await res.json()) as { eventIds: string[] }).eventIds).toHaveLength(1);
  });
});
