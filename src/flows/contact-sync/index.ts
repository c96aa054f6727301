/**
 * The two-way contact sync (CRM <-> email platform), one entity group at a time:
 *
 *   find the contact -> plan (its Durable Object) -> write both systems -> settle (its Durable Object)
 *
 * Finding the contact: an email-platform event whose address the index does not know is looked
 * up in the CRM by email; a `subscribe` of an address the CRM does not have creates the contact
 * there. A contact the index does not know yet (or a `contact.creation`, which carries no
 * values) is read from the CRM first, so the plan knows its address.
 * Two Durable Object requests per group, whatever its size. Reads and writes go through the
 * batch's bulk lanes (lanes.ts): decided per contact, sent in bulk with the batch's other contacts.
 */
import { ActionFailure } from "../../connectors/errors";
import { log } from "../../observability/log";
import type { HubSpotContact } from "../../connectors/hubspot";
import { contactKey, type EntityRecord } from "../../entities/directory";
import { FRESH_READ, type EntityInput, type Values } from "../../entities/plan";
import type { Observation } from "../../entities/sync-state";
import type { InboundEvent } from "../../ingest/event";
import type { Flow, GroupContext, GroupOutcome } from "../types";
import { crmPropertiesOf, executeWrites } from "./execute";
import { asFailure, CREATE_CONTACT, READ_CONTACT, READ_CONTACT_BY_EMAIL } from "./lanes";
import { crmProperties, fromContact, inputOf, isContactEvent, normalizeEmail, REPAIR_EVENT } from "./observe";

export const CONTACT_SYNC_ACTION = "contact-sync.apply";

export const contactSync: Flow = {
  name: "contact-sync",
  triggers: [
    { source: "hubspot", types: ["contact.creation", "contact.deletion", "contact.propertyChange"], when: (event, config) => isContactEvent(event, config.crm) },
    { source: "mailchimp", types: ["subscribe", "unsubscribe", "profile", "upemail", "cleaned"] },
    { source: "syncwire", types: ["conflict.resolve", REPAIR_EVENT] },
  ],
  actions: [{ name: CONTACT_SYNC_ACTION, scope: "entity", runGroup }],
};

/** The contact a group belongs to, with what the CRM was read or made to hold. */
interface Found {
  crmId: string;
  observed: Observation[];
  /** The CRM was read and has no such contact (any more). */
  missing?: boolean;
  note?: string;
}

async function runGroup(ctx: GroupContext): Promise<GroupOutcome> {
  const crm = ctx.config.crm;
  let found: Found | null;
  let inputs: EntityInput[];
  const again: string[] = [];
  try {
    found = await findContact(ctx);
    // An item waiting for something (a conflict's row) is not shown to the object yet: it is judged once, when it can be.
    inputs = (await Promise.all(ctx.items.map((i) => inputFor(ctx, i.event, again)))).filter((i): i is EntityInput => i !== null);
  } catch (error) {
    return { kind: "failed", failure: asFailure(error), record: null };
  }
  if (found === null) {
    const note = "no CRM contact has this address, and the event creates none";
    return { kind: "done", notes: new Map(ctx.items.map((i) => [i.event.id, note])), record: null, again };
  }
  const key = contactKey(found.crmId);
  if (found.observed.length > 0) inputs.unshift({ eventId: FRESH_READ, kind: "observe", observations: found.observed });

  const options = {
    policy: ctx.config.conflictPolicy,
    crmTakesSubscription: crm.subscriptionProperty !== null,
    now: ctx.now(),
    // A replay, or a nightly repair: what is decided is written to both systems, whatever they are believed to hold.
    reassert: ctx.items.some((i) => i.replay || i.event.type === REPAIR_EVENT),
  };
  const plan = await ctx.coordinators.plan(key, { token: ctx.token, leaseMs: ctx.leaseMs, inputs, options });
  if (plan.kind === "busy") return { kind: "busy", retryInMs: plan.retryInMs };

  if (plan.verdicts.some((v) => v.verdicts.includes("conflict"))) {
    log("conflict_opened", { entity: key, conflicts: plan.conflicts.map((c) => ({ id: c.id, field: c.field })) }, "warn");
  }
  const results = await executeWrites(plan.writes, found.crmId, ctx, crm);
  const settled = await ctx.coordinators.settle(key, { token: ctx.token, now: ctx.now(), results: results.map(({ failure: _, ...report }) => report), options });

  // An event under an address this contact no longer has: its index row goes, and the event
  // is looked up again (it belongs to whoever has the address now).
  const foreign = plan.verdicts.filter((v) => v.verdicts.includes("foreign")).map((v) => v.eventId);
  const unindex = ctx.items.filter((i) => foreign.includes(i.event.id)).map((i) => i.event.entityKey?.slice("email:".length) ?? "");
  const record: EntityRecord = { contactKey: key, emails: plan.emails, prune: plan.emailsDropped, unindex, deleted: plan.deleted, conflicts: plan.conflicts };
  // A write that may yet succeed decides first: the group is retried, and a refused value is not offered again.
  const failed = results.find((r) => r.outcome === "failed") ?? results.find((r) => r.failure);
  if (failed?.failure) return { kind: "failed", failure: failed.failure, record };
  // A contact without an address cannot be in the email platform (CONTRACT 8: invalid, kept
  // and visible); one the CRM no longer has was deleted, and its deletion event says so.
  if (plan.emails.length === 0 && !plan.deleted && !found.missing && ctx.items.some((i) => i.event.type === "contact.creation")) {
    return { kind: "failed", failure: new ActionFailure("invalid", `HubSpot contact ${found.crmId} has no email`), record };
  }
  // The answers revealed more to write (an upsert found the member unsubscribed): the first event plans again shortly.
  if (settled.more && ctx.items[0]) again.push(ctx.items[0].event.id);
  again.push(...foreign);
  const written = results.map((r) => `${r.write.system}:${r.write.op}`).join(" ");
  const notes = new Map(
    plan.verdicts.filter((v) => v.eventId !== FRESH_READ).map((v) => [v.eventId, [summarize(v.verdicts), found.note, written && `wrote ${written}`].filter(Boolean).join("; ")]),
  );
  return { kind: "done", notes, record, again };
}

/**
 * The event as an input. A person's choice on a conflict is taken from the conflict's row, not
 * from the event: two people resolving at once queue two events, and the row says who won.
 */
async function inputFor(ctx: GroupContext, event: InboundEvent, again: string[]): Promise<EntityInput | null> {
  const input = inputOf(event, ctx.config.crm);
  if (input.kind !== "resolve") return input;
  const resolution = await ctx.conflictResolution(input.conflictId);
  if (resolution === "open") {
    again.push(event.id); // the route's update has not landed yet
    return null;
  }
  if (resolution === "crm" || resolution === "email") return { ...input, choose: resolution };
  return { eventId: event.id, kind: "observe", observations: [] };
}

/** `applied` when any change was applied, else what the changes were (`stale`, `echo`, …). */
function summarize(verdicts: string[]): string {
  if (verdicts.length === 0) return "nothing to sync";
  return [...new Set(verdicts)].join(", ");
}

async function findContact(ctx: GroupContext): Promise<Found | null> {
  const crm = ctx.config.crm;
  const readProperties = crmProperties(crm);
  const readAt = (contact: HubSpotContact) => fromContact(contact, crm, ctx.now());

  if (ctx.entityKey.startsWith("contact:")) {
    const crmId = ctx.entityKey.slice("contact:".length);
    // A repair reads afresh: the CRM's values at their own times decide against the member's.
    const mustRead = !ctx.known || ctx.items.some((i) => i.event.type === "contact.creation" || i.event.type === REPAIR_EVENT);
    const deleting = ctx.items.some((i) => i.event.type === "contact.deletion");
    if (!mustRead || deleting) return { crmId, observed: [] };
    const contact = await ctx.bulk.call(READ_CONTACT, { id: crmId, properties: readProperties });
    // Gone from the CRM (deleted since): its deletion event says what to do.
    return contact ? { crmId, observed: readAt(contact) } : { crmId, observed: [], missing: true };
  }

  const address = ctx.entityKey.slice("email:".length);
  const existing = await ctx.bulk.call(READ_CONTACT_BY_EMAIL, { id: address, properties: readProperties });
  if (existing) return { crmId: existing.id, observed: readAt(existing) };

  // A subscribe, or a repair of a member the CRM lacks, makes the contact there.
  const subscribe = ctx.items.find((i) => (i.event.source === "mailchimp" && i.event.type === "subscribe") || (i.event.type === REPAIR_EVENT && i.event.payload.member));
  if (!subscribe) return null;
  // Someone subscribed in the email platform whom the CRM does not know: the contact is made
  // there with what the subscribe says (HubSpot answers 409 with the id if it exists by now).
  const input = inputOf(subscribe.event, crm);
  const said = input.kind === "observe" ? input.observations : [];
  const values: Values = { email: normalizeEmail(address), ...Object.fromEntries(said.map((o) => [o.field, o.value])) };
  const made = await ctx.bulk.call(CREATE_CONTACT, crmPropertiesOf(values, crm));
  // What we made the CRM hold, as of the subscribe: the same values, now on both sides.
  const observed = said.map((o): Observation => ({ ...o, system: "crm" }));
  return { crmId: made.id, observed: made.created ? observed : [], note: made.created ? `created CRM contact ${made.id}` : undefined };
}
