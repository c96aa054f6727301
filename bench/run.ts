/**
 * `npm run bench` (CONTRACT section 9): ingest next to a bare 202 worker and a minimal enqueue
 * worker, end-to-end events/s both ways of the contact sync (CRM -> email at 0 and 100 ms of
 * Mailchimp latency, email -> CRM at 0 and 100 ms of HubSpot latency), and billable operations
 * per event (Durable Object requests per batch among them), in one run on this machine. Prints a table, writes bench/results.json, and stops by
 * itself: every server and Miniflare instance is closed on success, failure, Ctrl-C or the watchdog.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { bundleWorker } from "../test/support/local-worker";
import { billingPerEvent, crmToEmailPhase, emailToCrmPhase } from "./billing";
import { runEndToEnd, type EndToEndResult, type EndToEndSettings } from "./end-to-end";
import { closeAll, prng, ROOT, SEED } from "./harness";
import { runIngest, type IngestSettings } from "./ingest";
import { checkGoals, renderTable, writeResults, type Results } from "./report";

/**
 * workerd runs every isolate of a Miniflare instance (worker, queue broker, D1) on one thread,
 * so either target saturates one core from about 10 connections on; more connections only add
 * queueing. 25 is where the bare worker's throughput stops rising on this 2-core machine, so
 * neither target is short of concurrency and autocannon (~0.2 core) keeps the other core.
 */
const INGEST: IngestSettings = {
  connections: 25,
  fixedRateConnections: 10,
  // At 30% the consumer keeps up with the events as they arrive and workerd still has headroom,
  // so the latencies are service times, not queueing.
  fixedRateShare: 0.3,
  durationSeconds: 10,
  rounds: 2, // 5 s each: under the local queue's ~10,000-message limit per flood (see ingest.ts)
  warmupSeconds: 2,
  distinctRequests: 60_000,
};

const END_TO_END: Omit<EndToEndSettings, "mailchimpLatencyMs" | "outboundConcurrency" | "hubspotLatencyMs"> = {
  contacts: 2000,
  eventsPerWebhook: 100, // HubSpot's maximum per webhook request
  senderConcurrency: 4,
  // Mailchimp posts one event per request.
  profileSenderConcurrency: 8,
  timeoutMs: 60_000,
  seed: SEED,
};

/**
 * [latency ms, calls in flight per invocation, email -> CRM phase]: the platform's 6 connections
 * per invocation at both latencies, then +100 ms without that bound, as the bench measured before
 * the consumer honoured it (Miniflare does not). Each run is CRM -> email (Mailchimp at that
 * latency), then email -> CRM (HubSpot at that latency) in the same worker where marked.
 */
const END_TO_END_RUNS: readonly (readonly [number, number, boolean])[] = [
  [0, 6, true],
  [100, 6, true],
  [100, 50, true],
];

// A hung phase must not hang the command: past this, everything is closed and the run fails.
const WATCHDOG_MS = 280_000;

/** The version that is actually loaded: workerd is resolved from miniflare, which may pin its own. */
function version(pkg: string, from = join(ROOT, "package.json")): string {
  try {
    return (createRequire(from)(`${pkg}/package.json`) as { version: string }).version;
  } catch {
    return "unknown";
  }
}

/**
 * Miniflare keeps D1 in SQLite files under os.tmpdir(). On a disk, every commit's fsync blocks
 * workerd's only thread (production D1 runs elsewhere), which cut ingest throughput by about a
 * third in trial runs; so the state goes to tmpfs when there is one. BENCH_STATE_ON_DISK=1 keeps it on disk.
 */
function stateDirectory(): string {
  const base = process.env.BENCH_STATE_ON_DISK !== "1" && existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
  const dir = mkdtempSync(join(base, "syncwire-bench-"));
  process.env.TMPDIR = dir;
  return dir;
}

async function main(): Promise<number> {
  const stateDir = stateDirectory();
  const cleanup = async () => {
    await closeAll();
    rmSync(stateDir, { recursive: true, force: true });
  };
  const watchdog = setTimeout(() => {
    console.error(`bench: still running after ${WATCHDOG_MS / 1000} s; closing everything`);
    void cleanup().finally(() => process.exit(2));
  }, WATCHDOG_MS);
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => void cleanup().finally(() => process.exit(130)));
  }

  try {
    const log = (message: string) => console.error(`bench: ${message}`);
    log("bundling the worker and the metered worker");
    const workerScript = await bundleWorker(join(ROOT, "src/index.ts"), join(ROOT, ".build/bench-worker.mjs"));
    const meteredScript = await bundleWorker(join(ROOT, "bench/metered-worker.ts"), join(ROOT, ".build/bench-metered-worker.mjs"));

    log(`ingest: bare, minimal enqueue and worker, ${INGEST.connections} connections, ${INGEST.warmupSeconds} + ${INGEST.durationSeconds} s each, then a fixed-rate pass`);
    const firstEventId = 1_000_000 + Math.floor(prng(SEED)() * 1_000_000);
    const ingest = await runIngest(workerScript, INGEST, firstEventId);

    const endToEnd: EndToEndResult[] = [];
    for (const [latencyMs, outboundConcurrency, emailToCrm] of END_TO_END_RUNS) {
      const then = emailToCrm ? `, then email -> CRM with HubSpot +${latencyMs} ms` : "";
      log(`end-to-end: ${END_TO_END.contacts} contacts, CRM -> email with Mailchimp +${latencyMs} ms${then}, ${outboundConcurrency} calls in flight per invocation`);
      endToEnd.push(await runEndToEnd(meteredScript, { ...END_TO_END, mailchimpLatencyMs: latencyMs, outboundConcurrency, hubspotLatencyMs: emailToCrm ? latencyMs : null }));
    }

    const notes: string[] = [];
    const fr = ingest.fixedRate;
    const windows = [ingest.bare, ingest.enqueue, ingest.worker, fr.bare, fr.enqueue, fr.worker, ...endToEnd, ...endToEnd.flatMap((e) => (e.emailToCrm ? [e.emailToCrm] : []))].map((w) => w.cpu);
    const noisy = windows.some((c) => (c.otherProcesses ?? 0) > 0.25);
    if (noisy) notes.push("other processes used more than a quarter of a core during a measured window: the machine was not quiet, figures are pessimistic");
    const refused = ingest.worker.statusCodes["503"] ?? 0;
    if (refused > 0) notes.push(`${refused} ingest requests were answered 503: Miniflare's local queue refused the sendBatch ("Unknown Internal Error (15000)") under the flood, and the worker answered as designed (HubSpot retries a 5xx)`);
    const enqueueFailed = ingest.enqueue.non2xx + ingest.enqueue.errors + ingest.enqueue.timeouts;
    if (enqueueFailed > 0) notes.push(`${enqueueFailed} requests to the minimal enqueue worker failed (its sendBatch throws when the local queue refuses a message): its figures count only the 202s`);
    if (ingest.worker.reusedRequests > 0) notes.push(`${ingest.worker.reusedRequests} ingest requests reused a pre-signed webhook (the consumer counted them as duplicates)`);

    const emailToCrm = emailToCrmPhase(endToEnd[0]!);
    const results: Results = {
      date: new Date().toISOString(),
      machine: { node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model.trim() ?? "unknown", platform: `${process.platform} ${process.arch}`, miniflare: version("miniflare"), workerd: version("workerd", createRequire(join(ROOT, "package.json")).resolve("miniflare")) },
      seed: SEED,
      stateDirectory: stateDir.startsWith("/dev/shm") ? "tmpfs (/dev/shm)" : "disk (os.tmpdir())",
      ingest,
      endToEnd,
      billingPerEvent: { crmToEmail: billingPerEvent(crmToEmailPhase(endToEnd[0]!)), emailToCrm: emailToCrm && billingPerEvent(emailToCrm) },
      goals: checkGoals(ingest, endToEnd),
      notes,
    };
    const path = await writeResults(results);
    console.log(renderTable(results));
    console.log(`\nwrote ${path}`);
    // Performance goals are reported, not enforced; a lost or repeated delivery (either way) fails the command.
    return results.goals.filter((g) => g.name.startsWith("every contact")).every((g) => g.pass) ? 0 : 1;
  } finally {
    clearTimeout(watchdog);
    await cleanup();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error("bench failed:", error instanceof Error ? (error.stack ?? error.message) : error);
    process.exit(1);
  },
);
