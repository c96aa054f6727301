/**
 * The seeded world, planned: every contact's story and its drift, as HubSpot and Mailchimp
 * records, from the seed alone. Pure: it reads the fakes' id counters as numbers and writes
 * nothing, so the same seed and counters give the same world; seed-fakes.ts lays it into the
 * fakes. Apart from seed.ts (the route's contract) because this is the part that decides.
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
import { md5Hex, nextRandom } from "./fake-service";
import type { HubSpotContactRecord, PropertyVersion } from "./hubspot-contact";
import { mailchimpTime, subscriberHash, uniqueEmailId, type MailchimpMemberRecord } from "./mailchimp-member";
import { crmUnsubscribe, DRIFT_KINDS, SEED_EPOCH, type DriftKind, type NameField, type SeedInput, type SeedSettings, type Side } from "./seed";

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

/** One seeded contact: its records on each side (null where it has none) and its drift. */
export interface Entity {
  k: number;
  kind: DriftKind | null;
  first: string;
  last: string;
  email: string;
  crm: HubSpotContactRecord | null;
  member: MailchimpMemberRecord | null;
  lastSync: number;
}

export interface SeedWorld {
  /** Every contact, in contact order (k). */
  entities: Entity[];
  /** The contacts (k) that have a member, in the list's order. */
  memberOrder: number[];
  /** The HubSpot ids given: from firstId up to, not including, nextId. */
  firstId: number;
  nextId: number;
}

/** The world for `input`, its HubSpot ids from `firstId` and its Mailchimp web ids from `firstWebId`. */
export function planWorld(input: SeedInput, settings: SeedSettings, firstId: number, firstWebId: number): SeedWorld {
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
  const webIds = new Map<number, number>(memberOrder.map((k, i) => [k, firstWebId + i]));

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
  return { entities, memberOrder, firstId, nextId };
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
