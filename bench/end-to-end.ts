/**
 * End-to-end: N contacts seeded in the fake HubSpot, their `contact.creation` webhooks sent in
 * batches of 100 events per request (HubSpot's maximum), timed from the first webhook sent to
 * the last successful Mailchimp PUT; then every member is checked to have arrived exactly once
 * and the billable operations are read from the metered worker and from D1.
 */
import { performance } from "node:perf_hooks";
import { hubspotSignature } from "../src/ingest/hubspot";
import { startLocalWorker, type LocalWorker } from "../test/support/local-worker";
import { startCpuWindow, type CpuShare } from "./cpu";
import { CREDENTIALS, prng, setFaults, shuffled, startVendorFakes, track, workerVars } from "./harness";
import type { BindingMeter } from "./metered-worker";
import { subscriberHash } from "../src/sandbox/fake-mailchimp";

export interface EndToEndSettings {
  contacts: number;
  eventsPerWebhook: number;
  /** Webhook requests in flight at once while sending. */
  senderConcurrency: number;
  mailchimpLatencyMs: number;
  /**
   * OUTBOUND_CONCURRENCY: calls one consumer invocation has in flight. 6 is the platform's
   * limit of simultaneous connections per invocation, which Miniflare does not enforce; a
   * larger value shows what the bench measured before the consumer honoured it.
   */
  outboundConcurrency: number;
  timeoutMs: number;
  seed: number;
}

export interface EndToEndResult {
  settings: EndToEndSettings;
  webhookRequests: number;
  /** First webhook sent -> last webhook answered 202. */
  sendMs: number;
  /** First webhook sent -> last successful Mailchimp PUT. */
  elapsedMs: number;
  eventsPerSecond: number;
  delivery: {
    membersDelivered: number;
    membersExactlyOnce: number;
    membersMissing: number;
    membersMoreThanOnce: number;
    extraPuts: number;
    failedPuts: number;
    hubspotGets: number;
    exactlyOnce: boolean;
  };
  ledger: {
    eventsByStatus: Record<string, number>;
    actionAttempts: number;
    auditRows: number;
    deadLetters: number;
    settledMs: number;
  };
  meter: BindingMeter;
  cpu: CpuShare;
  timedOut: boolean;
}

interface HubSpotEvent {
  eventId: number;
  subscriptionId: number;
  portalId: number;
  appId: number;
  occurredAt: number;
  subscriptionType: "contact.creation";
  attemptNumber: number;
  objectId: number;
  changeSource: string;
  changeFlag: string;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls until `done()` or the deadline; returns whether it got there. */
async function waitFor(done: () => boolean | Promise<boolean>, deadline: number, everyMs = 10): Promise<boolean> {
  while (performance.now() < deadline) {
    if (await done()) return true;
    await sleep(everyMs);
  }
  return done();
}

async function sendWebhook(worker: LocalWorker, events: HubSpotEvent[]): Promise<void> {
  const url = `${worker.url}/webhooks/hubspot`;
  const body = JSON.stringify(events);
  const timestamp = String(Date.now());
  const signature = await hubspotSignature(CREDENTIALS.hubspotSecret, "POST", url, body, timestamp);
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", "x-hubspot-signature-v3": signature, "x-hubspot-request-timestamp": timestamp },
    body,
  });
  const answer = (await response.json()) as { eventIds?: string[] };
  if (response.status !== 202 || answer.eventIds?.length !== events.length) {
    throw new Error(`webhook answered ${response.status}: ${JSON.stringify(answer).slice(0, 300)}`);
  }
}

async function ledgerCounts(worker: LocalWorker) {
  const statuses = await worker.query<{ status: string; n: number }>("SELECT status, count(*) AS n FROM events GROUP BY status");
  const [attempts] = await worker.query<{ n: number | null }>("SELECT sum(attempts) AS n FROM actions");
  const [audit] = await worker.query<{ n: number }>("SELECT count(*) AS n FROM audit_log");
  const [dead] = await worker.query<{ n: number }>("SELECT count(*) AS n FROM dead_letters");
  return {
    eventsByStatus: Object.fromEntries(statuses.map((r) => [r.status, r.n])),
    actionAttempts: attempts?.n ?? 0,
    auditRows: audit?.n ?? 0,
    deadLetters: dead?.n ?? 0,
  };
}

async function readMeter(worker: LocalWorker): Promise<BindingMeter> {
  const response = await fetch(`${worker.url}/__bench/meter`);
  return (await response.json()) as BindingMeter;
}

export async function runEndToEnd(meteredScriptPath: string, settings: EndToEndSettings): Promise<EndToEndResult> {
  const random = prng(settings.seed);
  const fakes = await startVendorFakes(settings.contacts, random);
  const vars = { ...workerVars(fakes.hubspot.url, fakes.mailchimp.url), OUTBOUND_CONCURRENCY: String(settings.outboundConcurrency) };
  const worker = await startLocalWorker({ vars, scriptPath: meteredScriptPath });
  const closeWorker = track(() => worker.close());
  try {
    if (settings.mailchimpLatencyMs > 0) await setFaults(fakes.mailchimp.url, { latencyMs: settings.mailchimpLatencyMs });
    // Compiles the worker's isolate before the clock starts; touches no binding.
    await (await fetch(`${worker.url}/health`)).arrayBuffer();

    // HubSpot batches by time, not by contact: the order of contacts across batches is shuffled.
    const firstEventId = 5_000_000 + Math.floor(random() * 1_000_000);
    const order = shuffled(fakes.contacts, random);
    const batches: HubSpotEvent[][] = [];
    for (let i = 0; i < order.length; i += settings.eventsPerWebhook) {
      batches.push(
        order.slice(i, i + settings.eventsPerWebhook).map((contact, j) => ({
          eventId: firstEventId + i + j,
          subscriptionId: 2456,
          portalId: 62515,
          appId: 54321,
          occurredAt: Date.now(),
          subscriptionType: "contact.creation" as const,
          attemptNumber: 0,
          objectId: Number(contact.id),
          changeSource: "CRM",
          changeFlag: "NEW",
        })),
      );
    }

    const tally = fakes.mailchimp.tally;
    const endCpu = startCpuWindow();
    const started = performance.now();
    const deadline = started + settings.timeoutMs;
    let next = 0;
    await Promise.all(
      Array.from({ length: settings.senderConcurrency }, async () => {
        while (next < batches.length) await sendWebhook(worker, batches[next++]!);
      }),
    );
    const sendMs = performance.now() - started;
    const arrived = await waitFor(() => tally.putsByMember.size >= settings.contacts, deadline);
    const elapsedMs = (arrived ? tally.lastPutOkAt : performance.now()) - started;
    const cpu = endCpu();

    // Billing figures are read once the consumer has settled every event and acked every message.
    const settleStarted = performance.now();
    let ledger = await ledgerCounts(worker);
    let meter = await readMeter(worker);
    const queue = "syncwire-events";
    await waitFor(
      async () => {
        ledger = await ledgerCounts(worker);
        meter = await readMeter(worker);
        const settled = (ledger.eventsByStatus.done ?? 0) + (ledger.eventsByStatus.dead ?? 0) + (ledger.eventsByStatus.invalid ?? 0);
        const acked = (meter.queueAcks[queue] ?? 0) >= (meter.queueWrites[queue] ?? 0);
        return settled >= settings.contacts && acked;
      },
      performance.now() + 15_000,
      50,
    );
    const settledMs = performance.now() - settleStarted;

    const expected = new Set(fakes.contacts.map((c) => subscriberHash(c.email)));
    let exactlyOnce = 0;
    let moreThanOnce = 0;
    let extraPuts = 0;
    for (const [member, puts] of tally.putsByMember) {
      if (!expected.has(member)) continue;
      if (puts === 1) exactlyOnce++;
      else moreThanOnce++;
      extraPuts += puts - 1;
    }
    const delivered = [...expected].filter((m) => tally.putsByMember.has(m)).length;
    return {
      settings,
      webhookRequests: batches.length,
      sendMs,
      elapsedMs,
      eventsPerSecond: arrived ? settings.contacts / (elapsedMs / 1000) : delivered / (elapsedMs / 1000),
      delivery: {
        membersDelivered: delivered,
        membersExactlyOnce: exactlyOnce,
        membersMissing: settings.contacts - delivered,
        membersMoreThanOnce: moreThanOnce,
        extraPuts,
        failedPuts: tally.putsFailed,
        hubspotGets: fakes.hubspot.gets(),
        exactlyOnce: exactlyOnce === settings.contacts && tally.putsByMember.size === settings.contacts,
      },
      ledger: { ...ledger, settledMs },
      meter,
      cpu,
      timedOut: !arrived,
    };
  } finally {
    await closeWorker();
    await fakes.close();
  }
}
