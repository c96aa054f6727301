/**
 * End-to-end, both ways of the contact sync, in one worker:
 * (a) CRM -> email: N contacts seeded in the fake HubSpot, their `contact.creation` webhooks sent
 *     in batches of 100 events per request (HubSpot's maximum), timed from the first webhook sent
 *     to the last successful member write (a PUT, or a batch subscribe that wrote the member);
 *     every member is checked to have been written exactly once, alone or in a batch.
 * (b) email -> CRM, once (a) has synced and settled, in email-to-crm.ts: one Mailchimp `profile`
 *     webhook per contact giving it a new last name, every contact checked to have been written
 *     exactly once, with its new name.
 * The fakes enforce the vendors' documented limits (vendor-fakes.ts); each phase reports the vendor
 * calls it made by kind, per event, the 429s the fakes answered and the peak of simultaneous
 * Mailchimp connections, from the fakes' own counters (`/_sandbox/limits`, vendor-figures.ts).
 * BULK_CALLS=false (`bulkCalls: false`) measures the one-call-per-event path under the same limits.
 * The billable operations of each phase are read from the metered worker (the difference of its
 * counters across the phase) and from D1 (worker-readings.ts). Its lines of the bench's output
 * and its goals are in end-to-end-report.ts.
 */
import { performance } from "node:perf_hooks";
import { hubspotSignature } from "../src/ingest/hubspot";
import { startLocalWorker, type LocalWorker } from "../test/support/local-worker";
import { subscriberHash } from "../src/sandbox/fake-mailchimp";
import { startCpuWindow, type CpuShare } from "./cpu";
import { runEmailToCrm, type EmailToCrmResult } from "./email-to-crm";
import { CREDENTIALS, prng, SENDER_HEADERS, sendAll, shuffled, track, waitFor, workerVars } from "./harness";
import type { BindingMeter } from "./metered-worker";
import { startPhase, vendorFigures, type VendorFigures } from "./vendor-figures";
import { setFaults, startVendorFakes } from "./vendor-fakes";
import { waitSettled } from "./worker-readings";

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
  /** BULK_CALLS: true sends the vendors' bulk calls (the default); false one call per contact. */
  bulkCalls: boolean;
  /** How long a phase may take (first webhook -> last write); past it, the phase is reported timed out. */
  timeoutMs: number;
  seed: number;
  /**
   * Phase (b), email -> CRM: the fake HubSpot (whose PATCH is the write) answers after this many
   * ms (in (a) it answers the contact reads at once, as before); null: phase (b) is not run.
   */
  hubspotLatencyMs: number | null;
  /** Mailchimp webhook requests (one event each) in flight at once in phase (b). */
  profileSenderConcurrency: number;
}

export interface EndToEndResult {
  settings: EndToEndSettings;
  webhookRequests: number;
  /** First webhook sent -> last webhook answered 202. */
  sendMs: number;
  /** First webhook sent -> last successful member write (PUT or batch subscribe). */
  elapsedMs: number;
  eventsPerSecond: number;
  delivery: {
    membersDelivered: number;
    membersExactlyOnce: number;
    membersMissing: number;
    membersMoreThanOnce: number;
    /** Member writes beyond the first, per member. */
    extraWrites: number;
    /** Member writes refused (see MailchimpTally.writesFailed). */
    failedWrites: number;
    exactlyOnce: boolean;
  };
  vendor: VendorFigures;
  ledger: {
    eventsByStatus: Record<string, number>;
    actionAttempts: number;
    auditRows: number;
    deadLetters: number;
    settledMs: number;
  };
  /** What phase (a) cost at the bindings (counted from the worker's start to (a) settled). */
  meter: BindingMeter;
  cpu: CpuShare;
  timedOut: boolean;
  /** Phase (b); null when not run. */
  emailToCrm: EmailToCrmResult | null;
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

async function sendWebhook(worker: LocalWorker, events: HubSpotEvent[]): Promise<void> {
  const url = `${worker.url}/webhooks/hubspot`;
  const body = JSON.stringify(events);
  const timestamp = String(Date.now());
  const signature = await hubspotSignature(CREDENTIALS.hubspotSecret, "POST", url, body, timestamp);
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", "x-hubspot-signature-v3": signature, "x-hubspot-request-timestamp": timestamp, ...SENDER_HEADERS },
    body,
  });
  const answer = (await response.json()) as { eventIds?: string[] };
  if (response.status !== 202 || answer.eventIds?.length !== events.length) {
    throw new Error(`webhook answered ${response.status}: ${JSON.stringify(answer).slice(0, 300)}`);
  }
}

export async function runEndToEnd(meteredScriptPath: string, settings: EndToEndSettings): Promise<EndToEndResult> {
  const random = prng(settings.seed);
  const fakes = await startVendorFakes(settings.contacts, random);
  const vars = {
    ...workerVars(fakes.hubspot.url, fakes.mailchimp.url),
    OUTBOUND_CONCURRENCY: String(settings.outboundConcurrency),
    BULK_CALLS: String(settings.bulkCalls),
  };
  const worker = await startLocalWorker({ vars, scriptPath: meteredScriptPath, assets: false });
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
    const phaseStart = await startPhase(fakes);
    const endCpu = startCpuWindow();
    const started = performance.now();
    const deadline = started + settings.timeoutMs;
    await sendAll(batches, settings.senderConcurrency, (batch) => sendWebhook(worker, batch));
    const sendMs = performance.now() - started;
    const arrived = await waitFor(() => tally.writesByMember.size >= settings.contacts, deadline);
    const elapsedMs = (arrived ? tally.lastWriteOkAt : performance.now()) - started;
    const cpu = endCpu();

    // Billing figures are read once the consumer has settled every event and acked every message.
    const settledA = await waitSettled(worker, settings.contacts);
    const ledger = settledA.ledger;
    const meter = settledA.meter;
    const settledMs = settledA.settledMs;
    const vendor = await vendorFigures(fakes, phaseStart, settings.contacts);

    const expected = new Set(fakes.contacts.map((c) => subscriberHash(c.email)));
    let exactlyOnce = 0;
    let moreThanOnce = 0;
    let extraWrites = 0;
    for (const [member, writes] of tally.writesByMember) {
      if (!expected.has(member)) continue;
      if (writes === 1) exactlyOnce++;
      else moreThanOnce++;
      extraWrites += writes - 1;
    }
    const delivered = [...expected].filter((m) => tally.writesByMember.has(m)).length;
    const emailToCrm = settings.hubspotLatencyMs === null ? null : await runEmailToCrm(worker, fakes, settings, settings.hubspotLatencyMs, random, { ledger, meter });
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
        extraWrites,
        failedWrites: tally.writesFailed,
        exactlyOnce: exactlyOnce === settings.contacts && tally.writesByMember.size === settings.contacts,
      },
      vendor,
      ledger: { ...ledger, settledMs },
      meter,
      cpu,
      timedOut: !arrived,
      emailToCrm,
    };
  } finally {
    await closeWorker();
    await fakes.close();
  }
}
