/**
 * The vendor side of an end-to-end phase: the HubSpot and Mailchimp calls it made by kind, per
 * event, and the fakes' own limit counters (429s, Mailchimp's peak of connections) over it, read
 * from the fakes at its start and its end. Apart from the phases that run (end-to-end.ts,
 * email-to-crm.ts) because both measure the same way, and the report reads the same shape.
 */
import type { HubSpotLimitCounters, HubSpotTally, MailchimpTally, VendorFakes } from "./vendor-fakes";

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

type VendorCounts = ReturnType<typeof vendorCounts>;

function vendorCounts(h: HubSpotTally, m: MailchimpTally) {
  return {
    hubspot: { calls: h.requests, gets: h.gets, batchReads: h.batchReads, batchReadInputs: h.batchReadInputs, patches: h.patches, batchUpdates: h.batchUpdates, batchUpdateInputs: h.batchUpdateInputs, posts: h.posts },
    mailchimp: { calls: m.requests, puts: m.puts, batchCalls: m.batchCalls, batchMembers: m.batchMembers },
  };
}

export interface PhaseStart {
  counts: VendorCounts;
  hubspotLimits: HubSpotLimitCounters;
}

/**
 * The vendor side of a phase starts here: the calls counted so far, the fake HubSpot's counters
 * (never reset during a run: that would also empty its window), and the fake Mailchimp's counters
 * reset (it has no window; its peak starts again from the connections open now).
 */
export async function startPhase(fakes: VendorFakes): Promise<PhaseStart> {
  await fakes.mailchimp.resetLimitCounters();
  return { counts: vendorCounts(fakes.hubspot.tally, fakes.mailchimp.tally), hubspotLimits: await fakes.hubspot.limits() };
}

function difference<T extends Record<string, number>>(after: T, before: T): T {
  return Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)])) as T;
}

/** What the phase begun at `start` asked of the vendors, per event of its `events`. */
export async function vendorFigures(fakes: VendorFakes, start: PhaseStart, events: number): Promise<VendorFigures> {
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
