/**
 * The nightly check's view of one contact on each side, and what differs between the two
 * (CONTRACT 4.9). Pure: a CRM contact and a list member become records through the same reading
 * as the live sync (flows/contact-sync/observe.ts: lost and subscription properties, normalized
 * addresses), so the check and the sync never disagree about what a system holds.
 */
import type { HubSpotContact } from "../connectors/hubspot";
import type { MailchimpMember } from "../connectors/mailchimp";
import type { Field } from "../entities/sync-state";
import { fromContact, normalizeEmail, type CrmSettings } from "../flows/contact-sync/observe";

/** One side's contact: the fields compared, and when each last changed where the side says so (epoch ms). */
export interface SideRecord {
  email: string;
  firstname: string;
  lastname: string;
  subscription: "subscribed" | "unsubscribed";
  at: Partial<Record<Field, number>>;
}

export const MISMATCH_KINDS = ["missing_in_email", "missing_in_crm", "email_differs", "names_differ", "subscription_differs"] as const;
export type MismatchKind = (typeof MISMATCH_KINDS)[number];

export interface Mismatch {
  kind: MismatchKind;
  /** The field that differs (names_differ: firstname or lastname), else null. */
  field: Field | null;
  crmValue: string | null;
  emailValue: string | null;
}

/** A CRM contact as the check stores it; null when it has no address (nothing to hold in a list). */
export function crmRecord(contact: HubSpotContact, crm: CrmSettings, now: number): SideRecord | null {
  const record: SideRecord = { email: "", firstname: "", lastname: "", subscription: "subscribed", at: {} };
  for (const o of fromContact(contact, crm, now)) {
    if (o.field === "subscription") record.subscription = o.value === "unsubscribed" ? "unsubscribed" : "subscribed";
    else record[o.field] = o.value;
    record.at[o.field] = o.at;
  }
  return record.email === "" ? null : record;
}

/**
 * A list member as the check stores it: anything but `subscribed` keeps the address off the
 * list, as for the sync. Mailchimp's `last_changed` has whole seconds: the change happened
 * somewhere in that second and is taken to be at its end, as the sync takes a webhook's
 * `fired_at` (observe.ts sourceTime), so a change in the list is not lost as "older" than a CRM
 * change made earlier in the same second.
 */
export function emailRecord(member: MailchimpMember): SideRecord {
  const merge = member.merge_fields ?? {};
  const text = (value: unknown) => (typeof value === "string" ? value : "");
  const changed = member.last_changed ? Date.parse(member.last_changed) : Number.NaN;
  const wholeSeconds = member.last_changed !== undefined && !/\.\d/.test(member.last_changed);
  const at = Number.isFinite(changed) ? changed + (wholeSeconds ? 999 : 0) : undefined;
  return {
    email: normalizeEmail(member.email_address),
    firstname: text(merge.FNAME),
    lastname: text(merge.LNAME),
    subscription: member.status === "subscribed" ? "subscribed" : "unsubscribed",
    at: at === undefined ? {} : { email: at, firstname: at, lastname: at, subscription: at },
  };
}

/** What differs between the two sides' records of one contact (either may be missing). */
export function compareRecords(crm: SideRecord | null, email: SideRecord | null): Mismatch[] {
  if (crm && !email) return [{ kind: "missing_in_email", field: null, crmValue: crm.email, emailValue: null }];
  if (!crm && email) return [{ kind: "missing_in_crm", field: null, crmValue: null, emailValue: email.email }];
  if (!crm || !email) return [];
  const out: Mismatch[] = [];
  if (crm.email !== email.email) out.push({ kind: "email_differs", field: "email", crmValue: crm.email, emailValue: email.email });
  for (const field of ["firstname", "lastname"] as const) {
    if (crm[field] !== email[field]) out.push({ kind: "names_differ", field, crmValue: crm[field], emailValue: email[field] });
  }
  if (crm.subscription !== email.subscription) out.push({ kind: "subscription_differs", field: "subscription", crmValue: crm.subscription, emailValue: email.subscription });
  return out;
}
