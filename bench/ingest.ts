/**
 * Ingest: signed single-event HubSpot webhooks driven by autocannon (as a library) against the
 * real worker and against two baselines, the bare 202 worker and the minimal enqueue worker,
 * with the same request set, connections and duration: first flat out (throughput), then at one
 * fixed rate all three can sustain (latency). This file runs the passes over the three targets
 * and holds the phase's figures; what is sent is in ingest-load.ts, how a pass is measured in
 * ingest-measure.ts, and its lines of the bench's output in ingest-report.ts.
 */
import { startLocalWorker, type LocalWorker } from "../test/support/local-worker";
import type { CpuShare } from "./cpu";
import { startBareWorker, startEnqueueWorker } from "./baseline-workers";
import { track, workerVars } from "./harness";
import { INGEST_PROPERTY, INGEST_SUBSCRIPTION_TYPE, type Load } from "./ingest-load";
import { measure, queued, type Target } from "./ingest-measure";
import { startVendorFakes } from "./vendor-fakes";

export interface IngestSettings {
  /** Concurrent connections of the flat-out run. */
  connections: number;
  /** Connections of the fixed-rate run (enough to hold the rate, few enough not to queue). */
  fixedRateConnections: number;
  /** The fixed rate, as a share of the worker's flat-out throughput. */
  fixedRateShare: number;
  /** Measured seconds per pass, split into this many rounds (see measure() in ingest-measure.ts). */
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
