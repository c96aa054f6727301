/**
 * Phase (b) of an end-to-end run (end-to-end.ts), email -> CRM, once phase (a) has synced and
 * settled: one Mailchimp `profile` webhook per contact (form-encoded, one event per request, as
 * Mailchimp sends them) giving it a new last name, timed from the first webhook sent to the last
 * successful CRM write (a PATCH, or a batch/update whose results hold the contact); every contact
 * is checked to have been written exactly once, with its new name. Apart from phase (a) because
 * it sends the other vendor's webhooks and checks the other side's writes, in the same worker.
 */
import { performance } from "node:perf_hooks";
import type { LocalWorker } from "../test/support/local-worker";
import { WRITE_SKEW_MS } from "../src/entities/sync-state";
import { subscriberHash } from "../src/sandbox/fake-mailchimp";
import { startCpuWindow, type CpuShare } from "./cpu";
import type { EndToEndResult, EndToEndSettings } from "./end-to-end";
import { CREDENTIALS, SENDER_HEADERS, sendAll, shuffled, sleep, waitFor, workerVars } from "./harness";
import type { BindingMeter } from "./metered-worker";
import { startPhase, vendorFigures, type VendorFigures } from "./vendor-figures";
import { setFaults, type Contact, type VendorFakes } from "./vendor-fakes";
import { meterDelta, minus, waitSettled, type LedgerCounts } from "./worker-readings";

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

/**
 * Phase (b): every contact, now synced, gets a new last name in Mailchimp. Started at least
 * WRITE_SKEW_MS after (a) settled: Mailchimp's `fired_at` has whole seconds, and the sync takes a
 * change reported within that skew of its own write to the member as possibly older than the
 * write (sync-state.ts `hold`), so it would also write the name back to Mailchimp. A person's
 * edit seconds after the sync is the case measured here.
 */
export async function runEmailToCrm(
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
