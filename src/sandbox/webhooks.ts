/**
 * The webhook requests the fake vendors send back, built the way the real vendors build them,
 * and the dispatchers that deliver them. Runs in workerd and in Node: HMAC is Web Crypto only.
 *
 * HubSpot (webhooks v3 and signature v3):
 *   https://developers.hubspot.com/docs/api/webhooks
 *   https://developers.hubspot.com/docs/apps/legacy-apps/authentication/validating-requests
 *   A POST of a JSON array of up to 100 events; `X-HubSpot-Signature-v3` is
 *   base64(HMAC-SHA256(client secret, method + URI + body + timestamp)), the URI with the
 *   documented percent-encodings decoded, and `X-HubSpot-Request-Timestamp` in epoch ms.
 * Mailchimp (list webhooks):
 *   https://mailchimp.com/developer/marketing/guides/sync-audience-data-webhooks/
 *   A form-encoded POST: `type`, `fired_at` ("YYYY-MM-DD HH:MM:SS", UTC) and `data[...]`.
 *   Mailchimp signs nothing; the secret is a segment of the URL.
 */

/** Injected by the host: hands one webhook request to its target. The fakes never call fetch. */
export type WebhookDispatcher = (request: Request) => Promise<void>;

/** A dispatcher that can also tell when everything handed to it has been delivered (or given up). */
export interface TrackedDispatcher extends WebhookDispatcher {
  idle(): Promise<void>;
}

// ---- HubSpot -------------------------------------------------------------------------------

export const HUBSPOT_MAX_BATCH = 100;

export type HubSpotSubscriptionType = "contact.creation" | "contact.deletion" | "contact.propertyChange";

/** One element of the array HubSpot posts, with the field names of its webhooks docs. */
export interface HubSpotWebhookEvent {
  eventId: number;
  subscriptionId: number;
  portalId: number;
  appId: number;
  occurredAt: number;
  subscriptionType: HubSpotSubscriptionType;
  attemptNumber: number;
  objectId: number;
  changeSource: string;
  sourceId?: string;
  propertyName?: string;
  propertyValue?: string;
}

const encoder = new TextEncoder();

// The encodings HubSpot decodes in the URI before signing (its validating-requests table).
const DECODED: Record<string, string> = {
  "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
  "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
};

async function hmacBase64(secret: string, message: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(message)));
  let binary = "";
  for (const byte of mac) binary += String.fromCharCode(byte);
  return btoa(binary);
}

export function hubspotSignatureV3(secret: string, method: string, url: string, body: string, timestamp: string): Promise<string> {
  const uri = url.replace(/%(3A|2F|3F|40|21|24|27|28|29|2A|2C|3B)/gi, (m) => DECODED[m.toUpperCase()] ?? m);
  return hmacBase64(secret, `${method}${uri}${body}${timestamp}`);
}

/** One signed POST per 100 events, as HubSpot batches them. */
export async function hubspotWebhookRequests(
  targetUrl: string,
  clientSecret: string,
  events: HubSpotWebhookEvent[],
  now: number,
): Promise<Request[]> {
  const requests: Request[] = [];
  for (let i = 0; i < events.length; i += HUBSPOT_MAX_BATCH) {
    const body = JSON.stringify(events.slice(i, i + HUBSPOT_MAX_BATCH));
    const timestamp = String(now);
    const signature = await hubspotSignatureV3(clientSecret, "POST", targetUrl, body, timestamp);
    requests.push(new Request(targetUrl, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        "X-HubSpot-Request-Timestamp": timestamp,
        "X-HubSpot-Signature-v3": signature,
        "X-HubSpot-Signature-Version": "v3",
      },
      body,
    }));
  }
  return requests;
}

// ---- Mailchimp -----------------------------------------------------------------------------

export type MailchimpEventType = "subscribe" | "unsubscribe" | "profile" | "upemail" | "cleaned" | "campaign";
export type MailchimpSource = "user" | "admin" | "api";

/** `data[...]` values: strings, or nested objects that become `data[a][b]` keys. */
export type WebhookFormData = { [key: string]: string | WebhookFormData };

/** "2009-03-26 21:35:57": Mailchimp's fired_at, in UTC. */
export function mailchimpFiredAt(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace("T", " ");
}

function flatten(prefix: string, value: string | WebhookFormData, out: [string, string][]): void {
  if (typeof value === "string") {
    out.push([prefix, value]);
    return;
  }
  for (const [key, inner] of Object.entries(value)) flatten(`${prefix}[${key}]`, inner, out);
}

/** The form body, fields in the order given (Mailchimp's samples list type, fired_at, then data). */
export function mailchimpWebhookBody(type: MailchimpEventType, firedAtMs: number, data: WebhookFormData): string {
  const fields: [string, string][] = [["type", type], ["fired_at", mailchimpFiredAt(firedAtMs)]];
  flatten("data", data, fields);
  return new URLSearchParams(fields).toString();
}

export function mailchimpWebhookRequest(url: string, body: string): Request {
  return new Request(url, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded", "User-Agent": "MailChimp" },
    body,
  });
}

// ---- who made a change --------------------------------------------------------------------

/**
 * Sandbox-only request header naming who made a change: `api` (the default, a program with the
 * API credentials), `user` (the person, e.g. in the vendor's UI or an email's unsubscribe link)
 * or `admin` (an account user in Mailchimp's app). The vendors tell these apart in webhooks.
 */
export const ACTOR_HEADER = "X-Sandbox-Actor";

export function sandboxActor(request: Request): string {
  return (request.headers.get(ACTOR_HEADER) ?? "api").trim().toLowerCase();
}

// ---- dispatchers ---------------------------------------------------------------------------

export interface RetryOptions {
  /** Further attempts after the first, on a network error or a 5xx (vendors retry). */
  retries?: number;
  /** Delay before the first retry; doubled for each next one. */
  backoffMs?: number;
  /** Where failures are reported; gets no URL path, header or body, so no secret can leak. */
  log?: (line: Record<string, unknown>) => void;
}

const defaultLog = (line: Record<string, unknown>) => console.warn(JSON.stringify(line));

/**
 * Wraps `send` with the vendors' habit of retrying, and tracks every delivery so a test can
 * wait for them all. It never rejects: a webhook that cannot be delivered is the receiver's
 * loss, as with the real vendors, and is reported through `log`. A retry resends the same
 * request: HubSpot would re-sign it with attemptNumber + 1, but within seconds the original
 * signature and timestamp still verify, and the event ids (the receiver's dedupe key) are the same.
 */
export function retryingDispatcher(send: (request: Request) => Promise<Response>, opts: RetryOptions = {}): TrackedDispatcher {
  const retries = opts.retries ?? 3;
  const backoffMs = opts.backoffMs ?? 100;
  const log = opts.log ?? defaultLog;
  const pending = new Set<Promise<void>>();

  const deliver = async (request: Request): Promise<void> => {
    // The target (origin only): a Mailchimp webhook URL carries its secret in the path.
    const target = new URL(request.url).origin;
    let outcome = "";
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, backoffMs * 2 ** (attempt - 1)));
      try {
        const response = await send(request.clone());
        await response.body?.cancel();
        if (response.status < 500) {
          if (!response.ok) log({ step: "sandbox_webhook_rejected", target, status: response.status, attempts: attempt + 1 });
          return;
        }
        outcome = `status ${response.status}`;
      } catch (error) {
        outcome = error instanceof Error ? error.name : "error";
      }
    }
    log({ step: "sandbox_webhook_failed", target, outcome, attempts: retries + 1 });
  };

  const dispatcher = ((request: Request) => {
    const delivery = deliver(request);
    pending.add(delivery);
    void delivery.finally(() => pending.delete(delivery));
    return delivery;
  }) as TrackedDispatcher;
  dispatcher.idle = async () => {
    while (pending.size > 0) await Promise.all([...pending]);
  };
  return dispatcher;
}

/** For Node and end-to-end tests: POSTs with the global fetch. */
export function fetchDispatcher(opts: RetryOptions = {}): TrackedDispatcher {
  return retryingDispatcher((request) => fetch(request), opts);
}

/**
 * How a fake hands its requests over: after the vendor answer is produced, without awaiting
 * the delivery, and without letting a failing dispatcher reach the vendor response.
 */
export function handOver(dispatch: WebhookDispatcher, requests: Request[]): void {
  for (const request of requests) {
    try {
      dispatch(request).catch(() => undefined);
    } catch {
      // A dispatcher that throws synchronously must not fail the vendor call either.
    }
  }
}
