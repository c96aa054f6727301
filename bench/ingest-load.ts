/**
 * The ingest phase's load (ingest.ts): the pre-signed single-event HubSpot webhooks and one
 * autocannon run that sends them and times every answer. This is what is sent and how, the same
 * for every target and pass; apart from ingest-measure.ts, which decides how long a target is
 * driven, in which rounds, and what the rounds add up to.
 */
import autocannon from "autocannon";
import { createHmac } from "node:crypto";
import { performance } from "node:perf_hooks";
import { hubspotSignature, hubspotSignedUri } from "../src/ingest/hubspot";
import { startCpuWindow, type CpuShare } from "./cpu";
import { CREDENTIALS } from "./harness";

/**
 * No flow consumes a `contact.propertyChange` of a property the sync does not hold (the contact
 * sync takes email, firstname, lastname and the configured subscription properties only), so the
 * consumer (which shares workerd's one thread with ingest here, unlike in production) only
 * records each event as `ignored`: one D1 batch, no vendor calls, no Durable Object. With a synced
 * property or `contact.creation` the ingest figure would carry the whole pipeline's work (a
 * Durable Object per contact: 5000 of them exhausted SQLite's memory in workerd in trial runs),
 * and events for contacts the fake does not know would be dead-lettered.
 */
export const INGEST_SUBSCRIPTION_TYPE = "contact.propertyChange";
/** A HubSpot property the sync does not hold (observe.ts crmField); one byte shorter than "firstname", used before. */
export const INGEST_PROPERTY = "jobtitle";

interface SignedWebhook {
  body: string;
  headers: Record<string, string>;
}

/**
 * Bodies depend only on the event id range; signatures on the URL and the (fresh) timestamp.
 * Signed with node:crypto's synchronous HMAC (tens of thousands in well under a second) and
 * checked once against the worker's own hubspotSignature, so the two cannot drift apart.
 */
export async function signWebhooks(url: string, count: number, firstEventId: number): Promise<SignedWebhook[]> {
  const timestamp = String(Date.now());
  const signedUri = hubspotSignedUri(url);
  const sign = (body: string) => createHmac("sha256", CREDENTIALS.hubspotSecret).update(`POST${signedUri}${body}${timestamp}`).digest("base64");
  const webhooks = Array.from({ length: count }, (_, i): SignedWebhook => {
    const body = JSON.stringify([
      {
        eventId: firstEventId + i,
        subscriptionId: 2456,
        portalId: 62515,
        appId: 54321,
        occurredAt: Number(timestamp),
        subscriptionType: INGEST_SUBSCRIPTION_TYPE,
        attemptNumber: 0,
        objectId: 1000 + (i % 5000),
        propertyName: INGEST_PROPERTY,
        propertyValue: `Name${i}`,
        changeSource: "CRM",
      },
    ]);
    return { body, headers: { "content-type": "application/json", "x-hubspot-signature-v3": sign(body), "x-hubspot-request-timestamp": timestamp } };
  });
  const first = webhooks[0]!;
  if ((await hubspotSignature(CREDENTIALS.hubspotSecret, "POST", url, first.body, timestamp)) !== first.headers["x-hubspot-signature-v3"]) {
    throw new Error("the bench's signature differs from the worker's hubspotSignature");
  }
  return webhooks;
}

export interface Load {
  connections: number;
  seconds: number;
  /** Requests per second over all connections; flat out when absent. */
  rate?: number;
}

export interface Round {
  latencies: number[];
  requests: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  seconds: number;
  cpu: CpuShare;
}

/** One autocannon run; every request takes the next pre-signed webhook from a shared cursor. */
export async function drive(baseUrl: string, pool: SignedWebhook[], load: Load, cursor: { next: number }): Promise<Round> {
  const latencies: number[] = [];
  const instance = autocannon({
    url: baseUrl,
    connections: load.connections,
    duration: load.seconds,
    timeout: 10,
    ...(load.rate === undefined ? {} : { overallRate: load.rate }),
    requests: [
      {
        method: "POST",
        path: "/webhooks/hubspot",
        setupRequest: (request) => {
          const signed = pool[cursor.next++ % pool.length]!;
          return { ...request, method: "POST", path: "/webhooks/hubspot", headers: signed.headers, body: signed.body };
        },
      },
    ],
  });
  // Exact per-request latencies: autocannon's histogram keeps whole milliseconds only.
  instance.on("response", (_client: unknown, status: number, _bytes: number, responseTime: number) => {
    if (status >= 200 && status < 300) latencies.push(responseTime);
  });
  const started = performance.now();
  const endCpu = startCpuWindow();
  const result = await instance;
  return {
    latencies,
    requests: result["2xx"],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes: Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, st]) => [code, st.count])),
    seconds: (performance.now() - started) / 1000,
    cpu: endCpu(),
  };
}
