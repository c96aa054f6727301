/**
 * The planned world (seed-world.ts) laid into the fakes, and read back as what the route answers
 * and the email index it writes. Apart from the plan so that the plan stays pure: this is the one
 * place a seed replaces the fakes' contacts and members and moves their id counters.
 */
import { BUILT_IN, type HubSpotContactRecord } from "./hubspot-contact";
import type { FakeHubSpotData } from "./hubspot-records";
import type { FakeMailchimpData } from "./mailchimp-writes";
import { crmUnsubscribe, DRIFT_KINDS, type DriftKind, type IndexRow, type NameField, type SeedAnswer, type SeedInput, type SeedSettings, type Subscription } from "./seed";
import { planWorld, type Entity } from "./seed-world";

export interface SeedResult {
  answer: SeedAnswer;
  index: IndexRow[];
}

/**
 * Replaces the HubSpot contacts and the list's members with the seeded world (ids from the
 * fakes' counters) and returns the answer and the index rows to write.
 */
export function seedFakes(hubspot: FakeHubSpotData, mailchimp: FakeMailchimpData, input: SeedInput, settings: SeedSettings): SeedResult {
  const { listId, crm } = settings;
  const { entities, memberOrder, firstId, nextId } = planWorld(input, settings, hubspot.nextId, mailchimp.nextWebId);

  // Replace both sides at once.
  hubspot.contacts = {};
  for (const e of entities) if (e.crm) hubspot.contacts[e.crm.id] = e.crm;
  hubspot.nextId = nextId;
  for (const name of [crm.subscriptionProperty, crm.lostProperty]) {
    if (name !== null && !BUILT_IN.has(name) && !hubspot.customProperties.includes(name)) hubspot.customProperties.push(name);
  }
  const list = (mailchimp.lists[listId] ??= { members: {}, webhooks: [] });
  list.members = {};
  const byK = new Map(entities.map((e) => [e.k, e]));
  for (const k of memberOrder) {
    const member = byK.get(k)!.member!;
    list.members[member.id] = member;
  }
  mailchimp.nextWebId += memberOrder.length;

  return { answer: answerOf(input, settings, entities, firstId, nextId), index: indexRows(entities) };
}

function indexRows(entities: Entity[]): IndexRow[] {
  const rows: IndexRow[] = [];
  for (const e of entities) if (e.crm && e.member) rows.push([e.member.email_address, `contact:${e.crm.id}`, e.lastSync]);
  return rows;
}

function answerOf(input: SeedInput, settings: SeedSettings, entities: Entity[], firstId: number, nextId: number): SeedAnswer {
  const members = entities.flatMap((e) => (e.member ? [e.member] : []));
  const crmSubscription = (c: HubSpotContactRecord): Subscription => {
    const { subscriptionProperty, lostProperty, lostValue } = settings.crm;
    const lost = lostProperty !== null && c.properties[lostProperty] === lostValue;
    return lost || (subscriptionProperty !== null && c.properties[subscriptionProperty] === "unsubscribed") ? "unsubscribed" : "subscribed";
  };
  const newest = (c: HubSpotContactRecord, name: string) => c.history[name]?.[0]?.timestamp ?? c.createdAt;
  const drift: SeedAnswer["drift"] = { missingInEmail: [], missingInCrm: [], emailDiffers: [], namesDiffer: [], subscriptionDiffers: [] };
  for (const e of entities) {
    const c = e.crm;
    const m = e.member;
    if (e.kind === "missingInEmail" && c) drift.missingInEmail.push({ crmId: c.id, email: c.properties.email!, subscription: crmSubscription(c) });
    if (e.kind === "missingInCrm" && m) drift.missingInCrm.push({ email: m.email_address, subscription: m.status === "unsubscribed" ? "unsubscribed" : "subscribed" });
    if (!c || !m) continue;
    if (e.kind === "emailDiffers") {
      drift.emailDiffers.push({ crmId: c.id, email: m.email_address, values: { crm: c.properties.email!, email: m.email_address }, winner: "crm" });
    } else if (e.kind === "namesDiffer") {
      const field: NameField = c.properties.firstname !== m.merge_fields.FNAME ? "firstname" : "lastname";
      const crmAt = newest(c, field);
      const emailAt = new Date(Date.parse(m.last_changed)).toISOString();
      drift.namesDiffer.push({
        crmId: c.id, email: m.email_address, field,
        values: { crm: c.properties[field]!, email: String(m.merge_fields[field === "firstname" ? "FNAME" : "LNAME"]) },
        changedAt: { crm: crmAt, email: emailAt },
        winner: Date.parse(crmAt) > Date.parse(emailAt) ? "crm" : "email",
      });
    } else if (e.kind === "subscriptionDiffers") {
      const values = { crm: crmSubscription(c), email: m.status === "unsubscribed" ? "unsubscribed" as const : "subscribed" as const };
      const unsubscribe = crmUnsubscribe(settings.crm)!;
      drift.subscriptionDiffers.push({
        crmId: c.id, email: m.email_address, values,
        changedAt: { crm: newest(c, unsubscribe.property), email: new Date(Date.parse(m.last_changed)).toISOString() },
        // An unsubscribe always wins.
        winner: values.crm === "unsubscribed" ? "crm" : "email",
      });
    }
  }
  const byKind = Object.fromEntries(DRIFT_KINDS.map((kind) => [kind, input.drift[kind]])) as Record<DriftKind, number>;
  const subscribed = members.filter((m) => m.status === "subscribed").length;
  return {
    seed: input.seed,
    contacts: input.contacts,
    hubspot: { contacts: nextId - firstId, firstId: nextId > firstId ? String(firstId) : null, lastId: nextId > firstId ? String(nextId - 1) : null },
    mailchimp: { listId: settings.listId, members: members.length, subscribed, unsubscribed: members.length - subscribed },
    index: { rows: entities.filter((e) => e.crm && e.member).length },
    mismatches: { total: DRIFT_KINDS.reduce((sum, kind) => sum + input.drift[kind], 0), byKind },
    drift,
  };
}
