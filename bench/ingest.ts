/**
 * Ingest: signed single-event HubSpot webhooks driven by autocannon (as a library) against the
 * real worker and against two baselines, the bare 202 worker and the minimal enqueue worker,
 * with the same request set, connections and duration: first flat out (throughput), then at one
 * fixed rate all three can sustain (latency).
 */
import autocannon from "autocannon";
import { createHmac } from "node:crypto";
import { performance } from "node:perf_hooks";
import { hubspotSignature, hubspotSignedUri } from "../src/ingest/hubspot";
import { startLocalWorker, type LocalWorker } from "../test/support/local-worker";
import { startCpuWindow, type CpuShare } from "./cpu";
import { startBareWorker, startEnqueueWorker } from "./baseline-workers";
import { CREDENTIALS, track, workerVars } from "./harness";
import { startVendorFakes } from "./vendor-fakes";

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

export interface IngestSettings {
  /** Concurrent connections of the flat-out run. */
  connections: number;
  /** Connections of the fixed-rate run (enough to hold the rate, few enough not to queue). */
  fixedRateConnections: number;
  /** The fixed rate, as a share of the worker's flat-out throughput. */
  fixedRateShare: number;
  /** Measured seconds per pass, split into this many rounds (see measure()). */
  durationSeconds: number;
  rounds: number;
  warmupSeconds: number;
  /** Distinct pre-signed requests per run; more than a run sends, so no event is sent twice. */
  distinctRequests: number;
}

export interface IngestFigures {
  requests: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  /** Answers by HTTP status, so a failure shows what it was. */
  statusCodes: Record<string, number>;
  durationSeconds: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  /** Requests that reused a pre-signed webhook because the set ran out. */
  reusedRequests: number;
  /** 2xx answers during the discarded warm-up (they are on the queue too). */
  warmupRequests: number;
  /** Events the target's consumer recorded (or acked) while the measured rounds ran (null for the bare worker). */
  consumedDuringRounds: number | null;
  cpu: CpuShare;
}

export interface IngestResult {
  settings: IngestSettings;
  subscriptionType: string;
  propertyName: string;
  bare: IngestFigures;
  enqueue: IngestFigures;
  worker: IngestFigures;
  /** What the worker's consumer recorded for all ingested events, by status. */
  consumerRecorded: Record<string, number>;
  vendorCalls: number;
  /** Worker / bare: information, the share of the local queue included. */
  ratioRequestsPerSecond: number;
  ratioP99: number;
  /** Worker / minimal enqueue: the headline, Syncwire's own cost. */
  ratioRequestsPerSecondVsEnqueue: number;
  ratioP99VsEnqueue: number;
  fixedRate: {
    requestsPerSecond: number;
    bare: IngestFigures;
    enqueue: IngestFigures;
    worker: IngestFigures;
    ratioP50: number;
    ratioP99: number;
    ratioP50VsEnqueue: number;
    ratioP99VsEnqueue: number;
  };
}

interface SignedWebhook {
  body: string;
  headers: Record<string, string>;
}

/**
 * Bodies depend only on the event id range; signatures on the URL and the (fresh) timestamp.
 * Signed with node:crypto's synchronous HMAC (tens of thousands in well under a second) and
 * checked once against the worker's own hubspotSignature, so the two cannot drift apart.
 */
async function signWebhooks(url: string, count: number, firstEventId: number): Promise<SignedWebhook[]> {
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

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

interface Load {
  connections: number;
  seconds: number;
  /** Requests per second over all connections; flat out when absent. */
  rate?: number;
}

interface Round {
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
async function drive(baseUrl: string, pool: SignedWebhook[], load: Load, cursor: { next: number }): Promise<Round> {
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

/** Rounds added up: counts summed, latencies pooled, CPU shares weighted by duration. */
function combine(rounds: Round[]): Omit<IngestFigures, "reusedRequests" | "warmupRequests" | "consumedDuringRounds"> {
  const seconds = rounds.reduce((a, r) => a + r.seconds, 0);
  const total = (pick: (r: Round) => number) => rounds.reduce((a, r) => a + pick(r), 0);
  const share = (key: keyof CpuShare) =>
    rounds.some((r) => r.cpu[key] === null) ? null : Math.round((total((r) => (r.cpu[key] ?? 0) * r.seconds) / seconds) * 100) / 100;
  const statusCodes: Record<string, number> = {};
  for (const r of rounds) for (const [code, n] of Object.entries(r.statusCodes)) statusCodes[code] = (statusCodes[code] ?? 0) + n;
  const sorted = Float64Array.from(rounds.flatMap((r) => r.latencies)).sort();
  const requests = total((r) => r.requests);
  return {
    requests,
    non2xx: total((r) => r.non2xx),
    errors: total((r) => r.errors),
    timeouts: total((r) => r.timeouts),
    statusCodes,
    durationSeconds: seconds,
    requestsPerSecond: requests / seconds,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    meanMs: sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length),
    cpu: {
      benchNode: share("benchNode"),
      workerd: share("workerd"),
      otherProcesses: share("otherProcesses"),
      // The three targets run side by side, so a peak here would not be any one's: the
      // worker's own peak memory is reported by the end-to-end runs, one worker each.
      workerdPeakMb: null,
    },
  };
}

interface Target {
  url: string;
  /** Lets the target's queue catch up; called after the warm-up and between rounds. */
  settle(accepted: number): Promise<void>;
  /** Events consumed so far, when the target has a consumer. */
  consumed?(): Promise<number>;
}

/**
 * A fresh signed set (timestamps must be under 5 minutes old), a discarded warm-up, then the
 * measured seconds in rounds with a pause between them. The pause is for Miniflare's local
 * queue, not the worker: its broker keeps one timer per message until the message reaches the
 * backlog, workerd allows an isolate 10,000 active timers, and a flood starves those timers,
 * so after ~10,000 messages without a pause sendBatch fails ("QuotaExceededError") and the
 * worker answers 503. Each round stays well under that.
 */
async function measure(target: Target, firstEventId: number, load: Load, rounds: number, settings: IngestSettings): Promise<IngestFigures> {
  const pool = await signWebhooks(`${target.url}/webhooks/hubspot`, settings.distinctRequests, firstEventId);
  const cursor = { next: 0 };
  const warmup = await drive(target.url, pool, { ...load, seconds: settings.warmupSeconds }, cursor);
  let accepted = warmup.requests;
  let consumedDuringRounds: number | null = target.consumed ? 0 : null;
  const measured: Round[] = [];
  for (let i = 0; i < rounds; i++) {
    await target.settle(accepted);
    const before = (await target.consumed?.()) ?? 0;
    const round = await drive(target.url, pool, { ...load, seconds: load.seconds / rounds }, cursor);
    if (consumedDuringRounds !== null) consumedDuringRounds += ((await target.consumed?.()) ?? 0) - before;
    accepted += round.requests;
    measured.push(round);
  }
  await target.settle(accepted);
  return { ...combine(measured), reusedRequests: Math.max(0, cursor.next - pool.length), warmupRequests: warmup.requests, consumedDuringRounds };
}

async function countByStatus(worker: LocalWorker): Promise<Record<string, number>> {
  const rows = await worker.query<{ status: string; n: number }>("SELECT status, count(*) AS n FROM events GROUP BY status");
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

async function eventCount(worker: LocalWorker): Promise<number> {
  const [row] = await worker.query<{ n: number }>("SELECT count(*) AS n FROM events");
  return row?.n ?? 0;
}

/** Messages the enqueue worker's consumer has acked, which it counts and answers on a GET. */
async function ackedCount(url: string): Promise<number> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`the enqueue worker's count failed: ${response.status} ${await response.text()}`);
  return ((await response.json()) as { consumed: number }).consumed;
}

/** Polls `count` until it reaches `expected`, or gives up after maxMs and lets the run go on. */
async function reached(count: () => Promise<number>, expected: number, maxMs = 30_000): Promise<void> {
  const deadline = performance.now() + maxMs;
  while (performance.now() < deadline && (await count()) < expected) {
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/**
 * A target with a consumer: `count` is what it has consumed since it started, and every accepted
 * request is one message, so earlier passes are subtracted to count this pass alone.
 */
function queued(url: string, count: () => Promise<number>): Target & { passDone(figures: IngestFigures): void } {
  let earlierPasses = 0;
  return {
    url,
    settle: (accepted) => reached(count, earlierPasses + accepted),
    consumed: async () => (await count()) - earlierPasses,
    passDone: (figures) => {
      earlierPasses += figures.warmupRequests + figures.requests;
    },
  };
}

/**
 * The three targets stay up for the whole phase (an idle workerd costs nothing); each run has
 * the cores to itself, because a target's consumer backlog is drained before anything else runs.
 */
export async function runIngest(scriptPath: string, settings: IngestSettings, firstEventId: number): Promise<IngestResult> {
  const bareServer = await startBareWorker();
  const enqueueServer = await startEnqueueWorker();
  // Fakes are served so an unexpected outbound call is answered and counted, not hung.
  const fakes = await startVendorFakes(0, () => 0);
  const worker = await startLocalWorker({ vars: workerVars(fakes.hubspot.url, fakes.mailchimp.url), scriptPath, assets: false });
  const closeWorker = track(() => worker.close());
  try {
    const bare: Target = { url: bareServer.url, settle: async () => undefined };
    const enqueue = queued(enqueueServer.url, () => ackedCount(enqueueServer.url));
    // Event ids never repeat, so the worker's event count is what the consumer has recorded.
    const target = queued(worker.url, () => eventCount(worker));
    const flatOut: Load = { connections: settings.connections, seconds: settings.durationSeconds };
    const bareFigures = await measure(bare, firstEventId, flatOut, settings.rounds, settings);
    const enqueueFigures = await measure(enqueue, firstEventId + 1e7, flatOut, settings.rounds, settings);
    enqueue.passDone(enqueueFigures);
    const workerFigures = await measure(target, firstEventId + 2e7, flatOut, settings.rounds, settings);
    target.passDone(workerFigures);

    const rate = Math.max(50, Math.round((workerFigures.requestsPerSecond * settings.fixedRateShare) / 50) * 50);
    const fixed: Load = { connections: settings.fixedRateConnections, seconds: settings.durationSeconds, rate };
    const workerFixed = await measure(target, firstEventId + 3e7, fixed, 1, settings);
    const enqueueFixed = await measure(enqueue, firstEventId + 4e7, fixed, 1, settings);
    const bareFixed = await measure(bare, firstEventId + 5e7, fixed, 1, settings);

    return {
      settings,
      subscriptionType: INGEST_SUBSCRIPTION_TYPE,
      propertyName: INGEST_PROPERTY,
      bare: bareFigures,
      enqueue: enqueueFigures,
      worker: workerFigures,
      consumerRecorded: await countByStatus(worker),
      vendorCalls: fakes.hubspot.tally.requests + fakes.mailchimp.tally.requests,
      ratioRequestsPerSecond: workerFigures.requestsPerSecond / bareFigures.requestsPerSecond,
      ratioP99: workerFigures.p99Ms / bareFigures.p99Ms,
      ratioRequestsPerSecondVsEnqueue: workerFigures.requestsPerSecond / enqueueFigures.requestsPerSecond,
      ratioP99VsEnqueue: workerFigures.p99Ms / enqueueFigures.p99Ms,
      fixedRate: {
        requestsPerSecond: rate,
        bare: bareFixed,
        enqueue: enqueueFixed,
        worker: workerFixed,
        ratioP50: workerFixed.p50Ms / bareFixed.p50Ms,
        ratioP99: workerFixed.p99Ms / bareFixed.p99Ms,
        ratioP50VsEnqueue: workerFixed.p50Ms / enqueueFixed.p50Ms,
        ratioP99VsEnqueue: workerFixed.p99Ms / enqueueFixed.p99Ms,
      },
    };
  } finally {
    await closeWorker();
    await fakes.close();
    await enqueueServer.close();
    await bareServer.close();
  }
}
