/**
 * `POST /sandbox/_sandbox/seed`: fills the fake HubSpot and the fake Mailchimp audience with N
 * contacts that the sync has kept in step, plus a chosen amount of drift of each kind, and writes
 * the email index (D1 `contact_emails`) the way the live sync would have left it, so the nightly
 * check has a known world to find.
 *
 * This file is the route's contract: the drift kinds, the body's validation, the answer's shape,
 * and whether the configuration can show a kind. It depends on none of the rest, which is:
 * seed-world.ts plans the world (pure: the story of each contact and its drift),
 * seed-fakes.ts lays it into the fakes and reads the answer back, seed-route.ts reads the
 * request and writes the index to D1.
 *
 * Everything but the record ids is a function of the `seed`: names, addresses, which contacts
 * drift and how, and every timestamp (all before SEED_EPOCH). Ids continue from the fakes'
 * counters, as a real vendor never reuses one (what Syncwire keeps per contact outlives a seed);
 * the answer says where they start.
 */
import type { Config } from "../config";
import { isPlainObject, type RequestBody } from "./fake-service";

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

export type Side = "crm" | "email";
export type Subscription = "subscribed" | "unsubscribed";
export type NameField = "firstname" | "lastname";

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
export function crmUnsubscribe(crm: Config["crm"]): { property: string; value: string } | null {
  if (crm.subscriptionProperty !== null) return { property: crm.subscriptionProperty, value: "unsubscribed" };
  if (crm.lostProperty !== null && crm.lostValue !== null) return { property: crm.lostProperty, value: crm.lostValue };
  return null;
}
