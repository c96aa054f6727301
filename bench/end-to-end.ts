/**
 * End-to-end, both ways of the contact sync, in one worker:
 * (a) CRM -> email: N contacts seeded in the fake HubSpot, their `contact.creation` webhooks sent
 *     in batches of 100 events per request (HubSpot's maximum), timed from the first webhook sent
 *     to the last successful member write (a PUT, or a batch subscribe that wrote the member);
 *     every member is checked to have been written exactly once, alone or in a batch.
 * (b) email -> CRM, once (a) has synced and settled: one Mailchimp `profile` webhook per contact
 *     (form-encoded, one event per request, as Mailchimp sends them) giving it a new last name,
 *     timed from the first webhook sent to the last successful CRM write (a PATCH, or a
 *     batch/update whose results hold the contact); every contact is checked to have been written
 *     exactly once, with its new name.
 * The fakes enforce the vendors' documented limits (vendor-fakes.ts); each phase reports the vendor
 * calls it made by kind, per event, the 429s the fakes answered and the peak of simultaneous
 * Mailchimp connections, from the fakes' own counters (`/_sandbox/limits`). BULK_CALLS=false
 * (`bulkCalls: false`) measures the one-call-per-event path under the same limits.
 * The billable operations of each phase are read from the metered worker (the difference of its
 * counters across the phase) and from D1.
 */
import { performance } from "node:perf_hooks";
import { hubspotSignature } from "../src/ingest/hubspot";
import { startLocalWorker, type LocalWorker } from "../test/support/local-worker";
import { startCpuWindow, type CpuShare } from "./cpu";
import { CREDENTIALS, prng, SENDER_HEADERS, sendAll, shuffled, track, workerVars } from "./harness";
import { setFaults, startVendorFakes, type Contact, type HubSpotLimitCounters, type HubSpotTally, type MailchimpTally, type VendorFakes } from "./vendor-fakes";
import type { BindingMeter } from "./metered-worker";
import { WRITE_SKEW_MS } from "../src/entities/sync-state";
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

/**
 * The vendor calls of one phase (from its first webhook until it settled), as the fakes saw them,
 * and the fakes' own limit counters over the phase.
 */
export interface VendorFigures {
  hubspot: {
    /** Every call, 429s included. */
    calls: number;
    gets: number;
    batchReads: number;
    batchReadInputs: number;
    patches: number;
    batchUpdates: number;
    batchUpdateInputs: number;
    /** Searches and creations. */
    posts: number;
    /** The fake's counters: calls it counted against the window, 429s it answered (by policy). */
    accepted: number;
    rejected429: number;
    rejectedByPolicy: { TEN_SECONDLY_ROLLING: number; DAILY: number };
    /** Its limits, as text, and its window: at most `windowMax` calls per `windowMs`. */
    limit: string;
    windowMax: number;
    windowMs: number;
  };
  mailchimp: {
    calls: number;
    puts: number;
    batchCalls: number;
    batchMembers: number;
    accepted: number;
    rejected429: number;
    /** The most connections open at once (the fake's counter), against `maxConnections`. */
    peakConnections: number;
    maxConnections: number;
  };
  callsPerEvent: { hubspot: number; mailchimp: number; total: number };
  /**
   * The events/s HubSpot's window allows at this phase's HubSpot calls per event (windowMax per
   * windowMs over callsPerEvent.hubspot): what the flow can sustain past one window, whatever
   * the run's own rate (a run of fewer events than a window's worth is a burst). null without calls.
   */
  hubspotWindowCeiling: number | null;
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

export interface EmailToCrmResult {
  hubspotLatencyMs: number;
  webhookRequests: number;
  /** First webhook sent -> last webhook answered 202. */
  sendMs: number;
  /** First webhook sent -> last successful CRM write (PATCH or batch/update). */
  elapsedMs: number;
  eventsPerSecond: number;
  delivery: {
    contactsPatched: number;
    /** One successful PATCH, and it set the new last name. */
    contactsExactlyOnce: number;
    contactsMissing: number;
    contactsMoreThanOnce: number;
    extraPatches: number;
    /** Contacts whose PATCHes never carried the new last name. */
    wrongValue: number;
    /** Contacts whose last name in the fake HubSpot is the new one at the end. */
    crmHoldsNewName: number;
    failedPatches: number;
    exactlyOnce: boolean;
  };
  /** A known contact needs no read, and Mailchimp has the name already: only CRM writes are expected. */
  vendor: VendorFigures;
  ledger: EndToEndResult["ledger"];
  /** What phase (b) cost at the bindings (the counters' difference across it). */
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
export async function waitFor(done: () => boolean | Promise<boolean>, deadline: number, everyMs = 10): Promise<boolean> {
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
    headers: { "content-type": "application/json", "x-hubspot-signature-v3": signature, "x-hubspot-request-timestamp": timestamp, ...SENDER_HEADERS },
    body,
  });
  const answer = (await response.json()) as { eventIds?: string[] };
  if (response.status !== 202 || answer.eventIds?.length !== events.length) {
    throw new Error(`webhook answered ${response.status}: ${JSON.stringify(answer).slice(0, 300)}`);
  }
}

/** Mailchimp's `fired_at`: UTC, whole seconds, "YYYY-MM-DD HH:MM:SS". */
function firedAt(now = Date.now()): string {
  return new Date(now).toISOString().slice(0, 19).replace("T", " ");
}

/** A Mailchimp `profile` webhook as Mailchimp posts it (form fields as in its documentation). */
function profileWebhook(contact: Contact, lastname: string): string {
  const hash = subscriberHash(contact.email);
  return new URLSearchParams([
    ["type", "profile"],
    ["fired_at", firedAt()],
    ["data[id]", hash.slice(0, 10)],
    ["data[list_id]", CREDENTIALS.listId],
    ["data[email]", contact.email],
    ["data[email_type]", "html"],
    ["data[merges][EMAIL]", contact.email],
    ["data[merges][FNAME]", contact.firstname],
    ["data[merges][LNAME]", lastname],
    ["data[ip_opt]", "198.51.100.7"],
  ]).toString();
}

async function sendMailchimpWebhook(worker: LocalWorker, secret: string, body: string): Promise<void> {
  const response = await fetch(`${worker.url}/webhooks/mailchimp/${secret}`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...SENDER_HEADERS },
    body,
  });
  const answer = (await response.json()) as { eventIds?: string[] };
  if (response.status !== 202 || answer.eventIds?.length !== 1) {
    throw new Error(`Mailchimp webhook answered ${response.status}: ${JSON.stringify(answer).slice(0, 300)}`);
  }
}

type LedgerCounts = Awaited<ReturnType<typeof ledgerCounts>>;

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

export async function readMeter(worker: LocalWorker): Promise<BindingMeter> {
  const response = await fetch(`${worker.url}/__bench/meter`);
  return (await response.json()) as BindingMeter;
}

function minus(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) if (v - (before[k] ?? 0) !== 0) out[k] = v - (before[k] ?? 0);
  return out;
}

/** What the worker did between two readings of its meter. */
export function meterDelta(after: BindingMeter, before: BindingMeter): BindingMeter {
  const byStatement: BindingMeter["d1ByStatement"] = {};
  for (const [kind, s] of Object.entries(after.d1ByStatement)) {
    const b = before.d1ByStatement[kind] ?? { count: 0, rowsRead: 0, rowsWritten: 0 };
    if (s.count > b.count) byStatement[kind] = { count: s.count - b.count, rowsRead: s.rowsRead - b.rowsRead, rowsWritten: s.rowsWritten - b.rowsWritten };
  }
  const t = after.timing;
  const u = before.timing;
  return {
    queueWrites: minus(after.queueWrites, before.queueWrites),
    queueDeliveries: minus(after.queueDeliveries, before.queueDeliveries),
    queueAcks: minus(after.queueAcks, before.queueAcks),
    queueRetries: minus(after.queueRetries, before.queueRetries),
    d1RoundTrips: after.d1RoundTrips - before.d1RoundTrips,
    d1Statements: after.d1Statements - before.d1Statements,
    d1RowsRead: after.d1RowsRead - before.d1RowsRead,
    d1RowsWritten: after.d1RowsWritten - before.d1RowsWritten,
    d1ByStatement: byStatement,
    d1UnmeteredStatements: after.d1UnmeteredStatements - before.d1UnmeteredStatements,
    durableObjectRequests: after.durableObjectRequests - before.durableObjectRequests,
    durableObjectRequestsByNamespace: minus(after.durableObjectRequestsByNamespace, before.durableObjectRequestsByNamespace),
    batches: after.batches.slice(before.batches.length),
    r2ClassA: after.r2ClassA - before.r2ClassA,
    r2ClassB: after.r2ClassB - before.r2ClassB,
    timing: {
      queueBatches: t.queueBatches - u.queueBatches,
      queueBatchMs: t.queueBatchMs - u.queueBatchMs,
      d1Ms: t.d1Ms - u.d1Ms,
      outboundFetches: t.outboundFetches - u.outboundFetches,
      outboundFetchMs: t.outboundFetchMs - u.outboundFetchMs,
      durableObjectMs: t.durableObjectMs - u.durableObjectMs,
    },
  };
}

const QUEUE = "syncwire-events";

type VendorCounts = ReturnType<typeof vendorCounts>;

function vendorCounts(h: HubSpotTally, m: MailchimpTally) {
  return {
    hubspot: { calls: h.requests, gets: h.gets, batchReads: h.batchReads, batchReadInputs: h.batchReadInputs, patches: h.patches, batchUpdates: h.batchUpdates, batchUpdateInputs: h.batchUpdateInputs, posts: h.posts },
    mailchimp: { calls: m.requests, puts: m.puts, batchCalls: m.batchCalls, batchMembers: m.batchMembers },
  };
}

interface PhaseStart {
  counts: VendorCounts;
  hubspotLimits: HubSpotLimitCounters;
}

/**
 * The vendor side of a phase starts here: the calls counted so far, the fake HubSpot's counters
 * (never reset during a run: that would also empty its window), and the fake Mailchimp's counters
 * reset (it has no window; its peak starts again from the connections open now).
 */
async function startPhase(fakes: VendorFakes): Promise<PhaseStart> {
  await fakes.mailchimp.resetLimitCounters();
  return { counts: vendorCounts(fakes.hubspot.tally, fakes.mailchimp.tally), hubspotLimits: await fakes.hubspot.limits() };
}

function difference<T extends Record<string, number>>(after: T, before: T): T {
  return Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)])) as T;
}

/** What the phase begun at `start` asked of the vendors, per event of its `events`. */
async function vendorFigures(fakes: VendorFakes, start: PhaseStart, events: number): Promise<VendorFigures> {
  const now = vendorCounts(fakes.hubspot.tally, fakes.mailchimp.tally);
  const hubspot = difference(now.hubspot, start.counts.hubspot);
  const mailchimp = difference(now.mailchimp, start.counts.mailchimp);
  const hl = await fakes.hubspot.limits();
  const ml = await fakes.mailchimp.limits();
  const before = start.hubspotLimits;
  const byPolicy = {
    TEN_SECONDLY_ROLLING: hl.rejectedByPolicy.TEN_SECONDLY_ROLLING - before.rejectedByPolicy.TEN_SECONDLY_ROLLING,
    DAILY: hl.rejectedByPolicy.DAILY - before.rejectedByPolicy.DAILY,
  };
  const per = (n: number) => Math.round((n / events) * 10_000) / 10_000;
  return {
    hubspot: { ...hubspot, accepted: hl.accepted - before.accepted, rejected429: hl.rejected - before.rejected, rejectedByPolicy: byPolicy, limit: `${hl.max}/${hl.intervalMs / 1000}s,${hl.daily}/day`, windowMax: hl.max, windowMs: hl.intervalMs },
    mailchimp: { ...mailchimp, accepted: ml.accepted, rejected429: ml.rejected, peakConnections: ml.peak, maxConnections: ml.maxConnections },
    callsPerEvent: { hubspot: per(hubspot.calls), mailchimp: per(mailchimp.calls), total: per(hubspot.calls + mailchimp.calls) },
    hubspotWindowCeiling: hubspot.calls > 0 ? Math.round(((hl.max * 1000) / hl.intervalMs) * (events / hubspot.calls) * 10) / 10 : null,
  };
}

/** Waits (up to 15 s) until `events` events are settled in the ledger and every message written is acked. */
export async function waitSettled(worker: LocalWorker, events: number): Promise<{ ledger: LedgerCounts; meter: BindingMeter; settledMs: number }> {
  const started = performance.now();
  let ledger = await ledgerCounts(worker);
  let meter = await readMeter(worker);
  await waitFor(
    async () => {
      ledger = await ledgerCounts(worker);
      meter = await readMeter(worker);
      const settled = (ledger.eventsByStatus.done ?? 0) + (ledger.eventsByStatus.dead ?? 0) + (ledger.eventsByStatus.invalid ?? 0);
      const acked = (meter.queueAcks[QUEUE] ?? 0) >= (meter.queueWrites[QUEUE] ?? 0);
      return settled >= events && acked;
    },
    performance.now() + 15_000,
    50,
  );
  return { ledger, meter, settledMs: performance.now() - started };
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

/**
 * Phase (b): every contact, now synced, gets a new last name in Mailchimp. Started at least
 * WRITE_SKEW_MS after (a) settled: Mailchimp's `fired_at` has whole seconds, and the sync takes a
 * change reported within that skew of its own write to the member as possibly older than the
 * write (sync-state.ts `hold`), so it would also write the name back to Mailchimp. A person's
 * edit seconds after the sync is the case measured here.
 */
async function runEmailToCrm(
  worker: LocalWorker,
  fakes: VendorFakes & { contacts: Contact[] },
  settings: EndToEndSettings,
  hubspotLatencyMs: number,
  random: () => number,
  before: { ledger: LedgerCounts; meter: BindingMeter },
): Promise<EmailToCrmResult> {
  await sleep(WRITE_SKEW_MS + 100);
  if (hubspotLatencyMs > 0) await setFaults(fakes.hubspot.url, { latencyMs: hubspotLatencyMs });
  const secret = workerVars("", "").MAILCHIMP_WEBHOOK_SECRET!;
  const newName = new Map(fakes.contacts.map((c) => [c.id, `${c.lastname}-renamed-${Math.floor(random() * 1e6).toString(36)}`]));
  // Mailchimp sends one webhook per change, as the person makes them: the contacts in any order.
  const order = shuffled(fakes.contacts, random);

  const hubspot = fakes.hubspot.tally;
  const phaseStart = await startPhase(fakes);
  const endCpu = startCpuWindow();
  const started = performance.now();
  const deadline = started + settings.timeoutMs;
  // fired_at is taken as the request is built, as Mailchimp stamps it when the change happens.
  await sendAll(order, settings.profileSenderConcurrency, (contact) => sendMailchimpWebhook(worker, secret, profileWebhook(contact, newName.get(contact.id)!)));
  const sendMs = performance.now() - started;
  const arrived = await waitFor(() => hubspot.patchesByContact.size >= settings.contacts, deadline);
  const elapsedMs = (arrived ? hubspot.lastPatchOkAt : performance.now()) - started;
  const cpu = endCpu();

  const after = await waitSettled(worker, 2 * settings.contacts);
  const vendor = await vendorFigures(fakes, phaseStart, settings.contacts);
  const statusDelta = minus(after.ledger.eventsByStatus, before.ledger.eventsByStatus);

  let exactlyOnce = 0;
  let moreThanOnce = 0;
  let extraPatches = 0;
  let wrongValue = 0;
  let holds = 0;
  for (const contact of fakes.contacts) {
    const wanted = newName.get(contact.id)!;
    const patches = hubspot.patchesByContact.get(contact.id) ?? [];
    if (patches.length === 1 && patches[0] === wanted) exactlyOnce++;
    if (patches.length > 1) moreThanOnce++;
    if (patches.length > 0 && !patches.includes(wanted)) wrongValue++;
    extraPatches += Math.max(0, patches.length - 1);
    if (fakes.hubspot.service.state.data.contacts[contact.id]?.properties.lastname === wanted) holds++;
  }
  const patched = fakes.contacts.filter((c) => hubspot.patchesByContact.has(c.id)).length;
  const strangers = [...hubspot.patchesByContact.keys()].filter((id) => !newName.has(id)).length;
  return {
    hubspotLatencyMs,
    webhookRequests: order.length,
    sendMs,
    elapsedMs,
    eventsPerSecond: (arrived ? settings.contacts : patched) / (elapsedMs / 1000),
    delivery: {
      contactsPatched: patched,
      contactsExactlyOnce: exactlyOnce,
      contactsMissing: settings.contacts - patched,
      contactsMoreThanOnce: moreThanOnce,
      extraPatches,
      wrongValue,
      crmHoldsNewName: holds,
      failedPatches: hubspot.patchesFailed,
      exactlyOnce: exactlyOnce === settings.contacts && holds === settings.contacts && strangers === 0,
    },
    vendor,
    ledger: {
      eventsByStatus: statusDelta,
      actionAttempts: after.ledger.actionAttempts - before.ledger.actionAttempts,
      auditRows: after.ledger.auditRows - before.ledger.auditRows,
      deadLetters: after.ledger.deadLetters - before.ledger.deadLetters,
      settledMs: after.settledMs,
    },
    meter: meterDelta(after.meter, before.meter),
    cpu,
    timedOut: !arrived,
  };
}
