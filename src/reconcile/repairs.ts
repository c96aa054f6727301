/**
 * What the nightly check repairs, and how: every entity with a mismatch becomes one change
 * event (source `syncwire`, type `reconcile.repair`) on the events queue, so a repair gets
 * retries, audit, idempotency, per-entity order and the conflict policy like any change
 * (CONTRACT 4.9). The contact sync (flows/contact-sync) reads the CRM afresh, with its property
 * timestamps, takes the member as the check read it (each value at its `last_changed`), and the
 * contact's object decides field by field which side changed last (an unsubscribe always wins);
 * what it decides is written to both systems, a record missing on one side included.
 *
 * The event id depends only on the run and the entity, so a compare step done twice (a crash,
 * a redelivery) queues the same events, which the consumer recognizes as duplicates.
 */
import { REPAIR_EVENT } from "../flows/contact-sync/observe";
import { eventIdFor, type InboundEvent } from "../ingest/event";
import type { MismatchKind, SideRecord } from "./records";

export interface Repair {
  entityKey: string;
  kinds: MismatchKind[];
  /** The member as the check read it; null when the list has none. */
  member: SideRecord | null;
}

export async function repairEvent(runId: string, repair: Repair, now: number): Promise<InboundEvent> {
  const dedupeKey = `${runId}:${repair.entityKey}`;
  const m = repair.member;
  return {
    id: await eventIdFor("syncwire", dedupeKey),
    source: "syncwire",
    type: REPAIR_EVENT,
    dedupeKey,
    entityKey: repair.entityKey,
    receivedAt: now,
    occurredAt: now,
    payload: {
      runId,
      kinds: repair.kinds,
      member: m ? { email: m.email, firstname: m.firstname, lastname: m.lastname, subscription: m.subscription, at: m.at.subscription ?? m.at.email ?? null } : null,
    },
  };
}
