/**
 * `POST /sandbox/_sandbox/seed`: fills the fake HubSpot and the fake Mailchimp audience with N
 * contacts that the sync has kept in step, plus a chosen amount of drift of each kind, and writes
 * the email index (D1 `contact_emails`) the way the live sync would have left it, so the nightly
 * check has a known world to find.
 *
 * Everything but the record ids is a function of the `seed`: names, addresses, which contacts
 * drift and how, and every timestamp (all before SEED_EPOCH). Ids continue from the fakes'
 * counters, as a real vendor never reuses one (what Syncwire keeps per contact outlives a seed);
 * the answer says where they start.
 *
 * The story of a contact in sync: created in the CRM by a person at `c`; Syncwire creates the
 * member 2 s later and writes the subscription property 3 s later; some had a name changed in the
 * CRM later on (copied to the member 2 s after), some unsubscribed in Mailchimp (copied to the CRM
 * 2 s after). The drift happens after the contact's last sync, by a person on one side:
 * - missingInEmail: the contact is only in the CRM; missingInCrm: the member is only in the list
 *   (signed up there, never synced). Neither has an index row.
 * - emailDiffers: the CRM's address changed; the member and the index keep the old one.
 * - namesDiffer: a first or last name changed on one side (alternately the CRM, by a new version
 *   of the property, and Mailchimp, by its `last_changed`); that side changed last and wins.
 * - subscriptionDiffers: one side unsubscribed (alternately the CRM, by CRM_SUBSCRIPTION_PROPERTY
 *   or else the "lost" property, and Mailchimp); the unsubscribe wins.
 */
import type { Config } from "../config";
import { isPlainObject, md5Hex, nextRandom, type RequestBody } from "./fake-service";
import type { HubSpotContactRecord, PropertyVersion } from "./hubspot-contact";
import { BUILT_IN } from "./hubspot-contact";
import type { FakeHubSpotData } from "./hubspot-records";
import { mailchimpTime, subscriberHash, uniqueEmailId, type MailchimpMemberRecord } from "./mailchimp-member";
import type { FakeMailchimpData } from "./mailchimp-writes";

export const DRIFT_KINDS = ["missingInEmail", "missingInCrm", "emailDiffers", "namesDiffer", "subscriptionDiffers"] as const;
export type DriftKind = (typeof DRIFT_KINDS)[number];

export interface SeedInput {
  contacts: number;
  drift: Record<DriftKind, number>;
  seed: number;
}

/** Enough for the nightly check's bench (10,000); the fakes keep every record in memory. */
export const MAX_SEED_CONTACTS = 50_000;
/** Every seeded timestamp lies before this instant. */
export const SEED_EPOCH = Date.UTC(2026, 0, 1);

type Side = "crm" | "email";
type Subscription = "subscribed" | "unsubscribed";
type NameField = "firstname" | "lastname";

export interface SeedAnswer {
  seed: number;
  contacts: number;
  hubspot: { contacts: number; firstId: string | null; lastId: string | null };
  mailchimp: { listId: string; members: number; subscribed: number; unsubscribed: number };
  index: { rows: number };
  mismatches: { total: number; byKind: Record<DriftKind, number> };
  drift: {
    missingInEmail: { crmId: string; email: string; subscription: Subscription }[];
    missingInCrm: { email: string; subscription: Subscription }[];
    emailDiffers: { crmId: string; email: string; values: { crm: string; email: string }; winner: "crm" }[];
    namesDiffer: { crmId: string; email: string; field: NameField; values: { crm: string; email: string }; changedAt: { crm: string; email: string }; winner: Side }[];
    subscriptionDiffers: { crmId: string; email: string; values: { crm: Subscription; email: Subscription }; changedAt: { crm: string; email: string }; winner: Side }[];
  };
}

/** One `contact_emails` row: the member's address, `contact:<crm id>`, when it was last synced (ms). */
export type IndexRow = [email: string, contactKey: string, updatedAt: number];

export interface SeedResult {
  answer: SeedAnswer;
  index: IndexRow[];
}

/** Validates the body; a message saying what is wrong otherwise. */
export function parseSeedInput(body: RequestBody): SeedInput | string {
  if (body.kind === "invalid") return "the body is not valid JSON";
  if (body.kind === "empty" || !isPlainObject(body.value)) return "the body must be a JSON object: {\"contacts\": N, \"drift\": {…}, \"seed\": n}";
  const value = body.value;
  const unknown = Object.keys(value).filter((k) => !["contacts", "drift", "seed"].includes(k));
  if (unknown.length > 0) return `unknown field ${unknown[0]}: expected contacts, drift and seed`;
  const { contacts, drift = {}, seed = 1 } = value;
  if (!isCount(contacts) || contacts > MAX_SEED_CONTACTS) return `contacts must be an integer from 0 to ${MAX_SEED_CONTACTS}`;
  if (!isPlainObject(drift)) return "drift must be an object of counts";
  const strange = Object.keys(drift).filter((k) => !(DRIFT_KINDS as readonly string[]).includes(k));
  if (strange.length > 0) return `unknown drift kind ${strange[0]}: expected ${DRIFT_KINDS.join(", ")}`;
  const counts = {} as Record<DriftKind, number>;
  for (const kind of DRIFT_KINDS) {
    const n = drift[kind] ?? 0;
    if (!isCount(n)) return `drift.${kind} must be a non-negative integer`;
    counts[kind] = n;
  }
  const total = DRIFT_KINDS.reduce((sum, kind) => sum + counts[kind], 0);
  if (total > contacts) return `the drift (${total} contacts) is more than the ${contacts} contacts: each kind goes to contacts of its own`;
  if (!(typeof seed === "number" && Number.isInteger(seed) && seed >= 0 && seed <= 0xffffffff)) return "seed must be an integer from 0 to 4294967295";
  return { contacts, drift: counts, seed };
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0;
}

export interface SeedSettings {
  listId: string;
  crm: Config["crm"];
}

/** Why the configuration cannot show a drift kind, or null. */
export function unsupported(input: SeedInput, settings: SeedSettings): string | null {
  if (input.drift.subscriptionDiffers > 0 && crmUnsubscribe(settings.crm) === null) {
    return "subscriptionDiffers needs CRM_SUBSCRIPTION_PROPERTY (or CRM_LOST_PROPERTY and CRM_LOST_VALUE) to show an unsubscribe in the CRM";
  }
  return null;
}

/** The CRM property and value that say "unsubscribed", if the configuration has one. */
function crmUnsubscribe(crm: Config["crm"]): { property: string; value: string } | null {
  if (crm.subscriptionProperty !== null) return { property: crm.subscriptionProperty, value: "unsubscribed" };
  if (crm.lostProperty !== null && crm.lostValue !== null) return { property: crm.lostProperty, value: crm.lostValue };
  return null;
}

// ---- the generator ---------------------------------------------------------------------------

const FIRST_NAMES = ["Ada", "Alan", "Amira", "Ana", "Ben", "Bianca", "Carlos", "Chen", "Dara", "David", "Elena", "Emeka", "Farah",
  "Felix", "Grace", "Hana", "Hugo", "Ines", "Ivan", "Jamal", "Julia", "Kai", "Kenji", "Lara", "Leo", "Maya", "Mateo", "Nadia",
  "Noah", "Olga", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Sofia", "Tariq", "Uma", "Viktor", "Wen", "Yara", "Zoe"];
const LAST_NAMES = ["Abara", "Berg", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ito", "Jensen", "Kowalski",
  "Lopez", "Moreau", "Nakamura", "Okafor", "Petrov", "Quiroga", "Rossi", "Silva", "Tanaka", "Usman", "Varga", "Weber", "Xu",
  "Yilmaz", "Zhang", "Novak", "Patel", "Khan", "Larsen"];

const SECOND = 1_000;
const DAY = 86_400_000;

class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed | 0;
  }
  next(): number {
    const draw = nextRandom(this.state);
    this.state = draw.seed;
    return draw.value;
  }
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
  other(items: readonly string[], not: string | undefined): string {
    for (;;) {
      const item = this.pick(items);
      if (item !== not) return item;
    }
  }
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  }
}

/** Every seeded time is a whole second, so HubSpot's ms and Mailchimp's seconds compare exactly. */
const iso = (ms: number) => new Date(ms).toISOString();

interface Entity {
  k: number;
  kind: DriftKind | null;
  first: string;
  last: string;
  email: string;
  crm: HubSpotContactRecord | null;
  member: MailchimpMemberRecord | null;
  lastSync: number;
}

/**
 * Replaces the HubSpot contacts and the list's members with the seeded world (ids from the
 * fakes' counters) and returns the answer and the index rows to write.
 */
export function seedFakes(hubspot: FakeHubSpotData, mailchimp: FakeMailchimpData, input: SeedInput, settings: SeedSettings): SeedResult {
  const rng = new Rng(input.seed);
  const { listId, crm } = settings;
  const subscriptionProperty = crm.subscriptionProperty;

  // Which contacts drift, and how: each kind on contacts of its own.
  const kinds: (DriftKind | null)[] = new Array<DriftKind | null>(input.contacts).fill(null);
  const order = rng.shuffle(Array.from({ length: input.contacts }, (_, k) => k));
  let next = 0;
  for (const kind of DRIFT_KINDS) for (let i = 0; i < input.drift[kind]; i++) kinds[order[next++]!] = kind;

  // The HubSpot ids in contact order; the list in an order of its own (a run must match, not zip, pages).
  const memberOrder = rng.shuffle(Array.from({ length: input.contacts }, (_, k) => k).filter((k) => kinds[k] !== "missingInEmail"));
  const webIds = new Map<number, number>(memberOrder.map((k, i) => [k, mailchimp.nextWebId + i]));
  const firstId = hubspot.nextId;

  const entities: Entity[] = [];
  let nextId = firstId;
  const seen = Object.fromEntries(DRIFT_KINDS.map((kind) => [kind, 0])) as Record<DriftKind, number>;
  for (let k = 0; k < input.contacts; k++) {
    const kind = kinds[k]!;
    const first = rng.pick(FIRST_NAMES);
    const last = rng.pick(LAST_NAMES);
    const email = `${first}.${last}.${k + 1}@example.com`.toLowerCase();
    const created = SEED_EPOCH - rng.int(200, 420) * DAY - rng.int(0, 86_399) * SECOND;
    const entity: Entity = { k, kind, first, last, email, crm: null, member: null, lastSync: created };

    if (kind === "missingInCrm") {
      // Signed up in Mailchimp; the sync never saw it.
      entity.member = newMember(webIds.get(k)!, listId, email, first, last, created);
      entities.push(entity);
      continue;
    }
    const contact = newContact(String(nextId++), created, { email, firstname: first, lastname: last });
    entity.crm = contact;
    // Syncwire wrote the member 2 s after the creation, and the subscription property 1 s later.
    const member = kind === "missingInEmail" ? null : newMember(webIds.get(k)!, listId, email, first, last, created + 2 * SECOND);
    if (subscriptionProperty !== null) setProperty(contact, subscriptionProperty, "subscribed", created + 3 * SECOND, "API");
    let at = created + 3 * SECOND;
    if (kind === null && rng.next() < 0.3) {
      // A name changed in the CRM later on, copied to the member.
      const field: NameField = rng.next() < 0.5 ? "firstname" : "lastname";
      const value = rng.other(field === "firstname" ? FIRST_NAMES : LAST_NAMES, contact.properties[field]);
      at += rng.int(1, 60) * DAY + rng.int(0, 86_399) * SECOND;
      setProperty(contact, field, value, at, "CRM_UI");
      at += 2 * SECOND;
      if (member) setMerge(member, field, value, at);
    }
    const unsubscribe = crmUnsubscribe(crm);
    if (kind === null && member && unsubscribe && rng.next() < 0.05) {
      // Unsubscribed in Mailchimp, copied to the CRM.
      at += rng.int(1, 60) * DAY + rng.int(0, 86_399) * SECOND;
      member.status = "unsubscribed";
      member.last_changed = mailchimpTime(at);
      at += 2 * SECOND;
      setProperty(contact, unsubscribe.property, unsubscribe.value, at, "API");
    }
    entity.member = member;
    entity.lastSync = at;

    // The drift, by a person on one side, after the last sync.
    const changed = at + rng.int(1, 60) * DAY + rng.int(0, 86_399) * SECOND;
    // Half on each side: the first, third, … of a kind in the CRM, the others in Mailchimp.
    const turn = kind === null ? 0 : (seen[kind] = seen[kind] + 1);
    const side: Side = turn % 2 === 1 ? "crm" : "email";
    if (kind === "emailDiffers") {
      setProperty(contact, "email", `${first}.${last}.${k + 1}@example.org`.toLowerCase(), changed, "CRM_UI");
    } else if (kind === "namesDiffer") {
      const field: NameField = rng.next() < 0.5 ? "firstname" : "lastname";
      const value = rng.other(field === "firstname" ? FIRST_NAMES : LAST_NAMES, contact.properties[field]);
      if (side === "crm") setProperty(contact, field, value, changed, "CRM_UI");
      else setMerge(member!, field, value, changed);
    } else if (kind === "subscriptionDiffers") {
      if (side === "crm") setProperty(contact, unsubscribe!.property, unsubscribe!.value, changed, "CRM_UI");
      else {
        member!.status = "unsubscribed";
        member!.last_changed = mailchimpTime(changed);
      }
    }
    entities.push(entity);
  }

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

function newContact(id: string, created: number, props: Record<string, string>): HubSpotContactRecord {
  const at = iso(created);
  const contact: HubSpotContactRecord = { id, properties: {}, history: {}, createdAt: at, updatedAt: at, archived: false };
  for (const [name, value] of Object.entries({ ...props, hs_object_id: id, createdate: at })) setProperty(contact, name, value, created, "CRM_UI");
  return contact;
}

/** A new version of a property, as the fake's own writes record it (newest first). */
function setProperty(contact: HubSpotContactRecord, name: string, value: string, at: number, sourceType: PropertyVersion["sourceType"]): void {
  const timestamp = iso(at);
  contact.properties[name] = value;
  contact.history[name] = [{ value, timestamp, sourceType }, ...(contact.history[name] ?? [])];
  contact.updatedAt = timestamp;
  contact.properties.lastmodifieddate = timestamp;
  contact.history.lastmodifieddate = [{ value: timestamp, timestamp, sourceType }];
}

function newMember(webId: number, listId: string, email: string, first: string, last: string, at: number): MailchimpMemberRecord {
  const time = mailchimpTime(at);
  return {
    id: subscriberHash(email), email_address: email, unique_email_id: uniqueEmailId(listId, email),
    contact_id: md5Hex(`contact:${listId}:${webId}`), web_id: webId, email_type: "html", status: "subscribed",
    merge_fields: { FNAME: first, LNAME: last }, language: "", vip: false, timestamp_opt: time, last_changed: time, list_id: listId,
  };
}

function setMerge(member: MailchimpMemberRecord, field: NameField, value: string, at: number): void {
  member.merge_fields[field === "firstname" ? "FNAME" : "LNAME"] = value;
  member.last_changed = mailchimpTime(at);
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
