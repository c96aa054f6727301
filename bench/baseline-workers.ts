/**
 * The two baseline workers the ingest phase (bench/ingest.ts) measures the real worker against:
 * the bare 202 worker and the minimal enqueue worker. Kept apart from harness.ts because only
 * ingest starts them, and they are the only part of the bench that builds Miniflare by hand
 * (the real worker goes through test/support/local-worker.ts).
 */
import { Miniflare } from "miniflare";
import { join } from "node:path";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { ROOT, track, type Served } from "./harness";

interface BaselineQueues {
  queueProducers?: Record<string, { queueName: string }>;
  queueConsumers?: Record<string, { maxBatchSize?: number; maxBatchTimeout?: number }>;
}

/**
 * A baseline worker through the same Miniflare API, host and compatibility settings as the
 * real one (startLocalWorker), so every target pays the same workerd and Miniflare entry costs.
 */
async function startBaseline(name: string, script: string, queues: BaselineQueues = {}): Promise<Served> {
  const { workerOptions } = unstable_getMiniflareWorkerOptions(join(ROOT, "wrangler.toml"));
  const mf = new Miniflare({
    name,
    modules: true,
    scriptPath: join(ROOT, "bench", script),
    compatibilityDate: workerOptions.compatibilityDate,
    compatibilityFlags: workerOptions.compatibilityFlags,
    ...queues,
    host: "127.0.0.1",
    port: 0,
    // No request.cf lookup at start (Miniflare would fetch it from workers.cloudflare.com).
    cf: false,
    verbose: false,
    handleRuntimeStdio: (stdout: NodeJS.ReadableStream, stderr: NodeJS.ReadableStream) => {
      stdout.resume();
      stderr.resume();
    },
  });
  const close = track(() => mf.dispose());
  const url = (await mf.ready).toString().replace(/\/$/, "");
  return { url, close };
}

/** The bare 202 worker (bench/bare-worker.js). */
export function startBareWorker(): Promise<Served> {
  return startBaseline("bare", "bare-worker.js");
}

/** The real worker's events queue in wrangler.toml. */
const EVENTS_QUEUE = "syncwire-events";

/**
 * The minimal enqueue worker (bench/enqueue-worker.js), with an EVENTS producer and a consumer
 * batching as wrangler.toml has the real events queue batch, so its broker flushes alike.
 */
export function startEnqueueWorker(): Promise<Served> {
  const { workerOptions } = unstable_getMiniflareWorkerOptions(join(ROOT, "wrangler.toml"));
  const consumers = workerOptions.queueConsumers;
  const events = consumers !== undefined && !Array.isArray(consumers) ? consumers[EVENTS_QUEUE] : undefined;
  if (events === undefined) throw new Error(`wrangler.toml has no consumer for ${EVENTS_QUEUE}`);
  return startBaseline("enqueue", "enqueue-worker.js", {
    queueProducers: { EVENTS: { queueName: EVENTS_QUEUE } },
    queueConsumers: { [EVENTS_QUEUE]: { maxBatchSize: events.maxBatchSize, maxBatchTimeout: events.maxBatchTimeout } },
  });
}
