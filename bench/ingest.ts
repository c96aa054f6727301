/**
 * Ingest: signed single-event HubSpot webhooks driven by autocannon (as a library) against the
 * real worker and against the bare 202 worker, same request set, connections and duration.
 */
import autocannon from "autocannon";
import { performance } from "node:perf_hooks";
import { hubspotSignature } from "../src/ingest/hubspot";
import { CREDENTIALS, startBareWorker, startVendorFakes, track, workerVars } from "./harness";
import { startLocalWorker, type LocalWorker } from "../test/support/local-worker";

/**
 * No flow consumes `contact.propertyChange`, so the consumer (which runs in the same workerd
 * process, on the same 2 cores, while the load runs) only records each event as `ignored`:
 * one D1 batch, no vendor calls. Using `contact.creation` would make the ingest figure carry
 * the whole pipeline's CPU, and events for unknown contacts would end as dead letters.
 */
export const INGEST_SUBSCRIPTION_TYPE = "contact.propertyChange";

export interface IngestSettings {
  connections: number;
  durationSeconds: number;
  warmupSeconds: number;
  /** Distinct pre-signed requests; more than a run sends, so no event is sent twice. */
  distinctRequests: number;
}

export interface IngestFigures {
  requests: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  durationSeconds: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  /** autocannon's own HDR p99 (whole milliseconds), as a cross-check of ours. */
  autocannonP99Ms: number;
  /** Pre-signed requests that were sent a second time because the set ran out. */
  reusedRequests: number;
}

export interface IngestResult {
  settings: IngestSettings;
  subscriptionType: string;
  bare: IngestFigures;
  worker: IngestFigures & { consumerRecorded: Record<string, number>; vendorCalls: number };
  ratioRequestsPerSecond: number;
  ratioP99: number;
}

interface SignedWebhook {
  body: string;
  headers: Record<string, string>;
}

/** Bodies depend only on the seed; signatures on the URL and the (fresh) timestamp. */
async function signWebhooks(url: string, count: number, firstEventId: number): Promise<SignedWebhook[]> {
  const timestamp = String(Date.now());
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
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
          propertyName: "firstname",
          propertyValue: `Name${i}`,
          changeSource: "CRM",
        },
      ]);
      const signature = await hubspotSignature(CREDENTIALS.hubspotSecret, "POST", url, body, timestamp);
      return {
        body,
        headers: {
          "content-type": "application/json",
          "x-hubspot-signature-v3": signature,
          "x-hubspot-request-timestamp": timestamp,
        },
      };
    }),
  );
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** One autocannon run; every request takes the next pre-signed webhook from a shared cursor. */
async function drive(baseUrl: string, pool: SignedWebhook[], connections: number, durationSeconds: number, cursor: { next: number }) {
  const latencies: number[] = [];
  const instance = autocannon({
    url: baseUrl,
    connections,
    duration: durationSeconds,
    timeout: 10,
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
  // Exact per-request latencies (autocannon's histogram rounds to whole milliseconds).
  instance.on("response", (_client: unknown, status: number, _bytes: number, responseTime: number) => {
    if (status >= 200 && status < 300) latencies.push(responseTime);
  });
  const started = performance.now();
  const result = await instance;
  const seconds = (performance.now() - started) / 1000;
  const sorted = Float64Array.from(latencies).sort();
  return {
    requests: result["2xx"],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    durationSeconds: seconds,
    requestsPerSecond: result["2xx"] / seconds,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    meanMs: sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length),
    autocannonP99Ms: result.latency.p99,
  };
}

/** Warm-up (discarded), then the measured run, against one target. */
async function measureTarget(url: string, firstEventId: number, settings: IngestSettings): Promise<IngestFigures> {
  const pool = await signWebhooks(`${url}/webhooks/hubspot`, settings.distinctRequests, firstEventId);
  const cursor = { next: 0 };
  await drive(url, pool, settings.connections, settings.warmupSeconds, cursor);
  const figures = await drive(url, pool, settings.connections, settings.durationSeconds, cursor);
  return { ...figures, reusedRequests: Math.max(0, cursor.next - pool.length) };
}

async function countByStatus(worker: LocalWorker): Promise<Record<string, number>> {
  const rows = await worker.query<{ status: string; n: number }>("SELECT status, count(*) AS n FROM events GROUP BY status");
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

/** Bare first, closed before the worker starts, so neither run shares the cores with the other. */
export async function runIngest(scriptPath: string, settings: IngestSettings, firstEventId: number): Promise<IngestResult> {
  const bareServer = await startBareWorker();
  let bare: IngestFigures;
  try {
    bare = await measureTarget(bareServer.url, firstEventId, settings);
  } finally {
    await bareServer.close();
  }

  // Fakes are served so an unexpected outbound call is answered and counted, not hung.
  const fakes = await startVendorFakes(0, () => 0);
  const worker = await startLocalWorker({ vars: workerVars(fakes.hubspot.url, fakes.mailchimp.url), scriptPath });
  const closeWorker = track(() => worker.close());
  try {
    const figures = await measureTarget(worker.url, firstEventId, settings);
    const consumerRecorded = await countByStatus(worker);
    const vendorCalls = fakes.hubspot.gets() + fakes.mailchimp.tally.requests;
    return {
      settings,
      subscriptionType: INGEST_SUBSCRIPTION_TYPE,
      bare,
      worker: { ...figures, consumerRecorded, vendorCalls },
      ratioRequestsPerSecond: figures.requestsPerSecond / bare.requestsPerSecond,
      ratioP99: figures.p99Ms / bare.p99Ms,
    };
  } finally {
    await closeWorker();
    await fakes.close();
  }
}
