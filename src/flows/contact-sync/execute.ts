/**
 * Sends the writes a contact's plan asks for, through the connectors of CONTRACT 6:
 * - CRM: one `PATCH /crm/v3/objects/contacts/{id}` with every pending property;
 * - email platform: one `PATCH` of the member at the address it holds (a new address goes in
 *   `email_address`, so the same member moves, never a second one), a `PUT` upsert for a member
 *   not known yet (`status_if_new`), or a `DELETE` (archive) after the CRM deleted the contact.
 * A subscribe is never sent to an existing member: PATCH carries `status` only to unsubscribe.
 * CRM writes, upserts and unsubscribes go through the batch's bulk lanes (lanes.ts): alone in
 * their batch they are the single calls above; with others, bulk calls.
 */
import type { Connectors } from "../../connectors";
import { ActionFailure } from "../../connectors/errors";
import type { MailchimpMember, MemberPatch, MemberUpsert } from "../../connectors/mailchimp";
import type { CrmWrite, EmailWrite, Values, Write, WriteReport } from "../../entities/plan";
import type { BulkCalls } from "../../pipeline/bulk";
import { asFailure, SUBSCRIBE_MEMBER, UNSUBSCRIBE_MEMBER, UPDATE_CONTACT } from "./lanes";
import type { CrmSettings } from "./observe";

/** A write's report for the Durable Object, and why it failed. */
export interface WriteResult extends WriteReport {
  failure?: ActionFailure;
}

export async function executeWrites(writes: Write[], crmId: string, vendors: Vendors, crm: CrmSettings): Promise<WriteResult[]> {
  return Promise.all(
    writes.map(async (write): Promise<WriteResult> => {
      try {
        const holds = write.system === "crm" ? await writeCrm(write, crmId, vendors, crm) : await writeEmail(write, vendors);
        return { write, outcome: "ok", ...(holds ? { holds } : {}) };
      } catch (error) {
        const failure = asFailure(error);
        return { write, outcome: failure.kind === "transient" ? "failed" : "rejected", failure };
      }
    }),
  );
}

/** Single calls (a group's own connectors) and the batch's bulk lanes. */
export interface Vendors {
  connectors: Connectors;
  bulk: BulkCalls;
}

async function writeCrm(write: CrmWrite, crmId: string, vendors: Vendors, crm: CrmSettings): Promise<undefined> {
  const properties = crmPropertiesOf(write.set, crm);
  if (Object.keys(properties).length > 0) await vendors.bulk.call(UPDATE_CONTACT, { id: crmId, properties });
  return undefined;
}

/** The sync's values as CRM properties: the subscription goes to CRM_SUBSCRIPTION_PROPERTY, if there is one. */
export function crmPropertiesOf(values: Values, crm: CrmSettings): Record<string, string> {
  const properties: Record<string, string> = {};
  for (const [field, value] of Object.entries(values)) {
    if (value === undefined) continue;
    if (field !== "subscription") properties[field] = value;
    else if (crm.subscriptionProperty) properties[crm.subscriptionProperty] = value;
  }
  return properties;
}

async function writeEmail(write: EmailWrite, vendors: Vendors): Promise<Values | undefined> {
  if (write.op === "archive") {
    await vendors.connectors.mailchimp().archiveMember(write.address);
    return undefined;
  }
  const values = { ...write.full, ...write.set };
  if (!values.email) throw new ActionFailure("invalid", "the contact has no email address to subscribe");
  const unsubscribe = values.subscription === "unsubscribed";
  const upsert: MemberUpsert = {
    email: values.email,
    statusIfNew: unsubscribe ? "unsubscribed" : "subscribed",
    ...(unsubscribe ? { status: "unsubscribed" as const } : {}),
    mergeFields: mergeFields(values) ?? {},
  };
  if (write.op === "patch") {
    const patch: MemberPatch = {};
    if (write.set.email !== undefined) patch.email_address = write.set.email;
    if (write.set.subscription === "unsubscribed") patch.status = "unsubscribed";
    const merges = mergeFields(write.set);
    if (merges) patch.merge_fields = merges;
    // A new address or names alone: only a PATCH does that (the bulk endpoint keys members by address).
    if (patch.email_address !== undefined || patch.status !== "unsubscribed") {
      const member = await vendors.connectors.mailchimp().patchMember(write.address, patch);
      // Gone from the list (deleted by hand): made again from the winning values.
      return held(member ?? (await vendors.bulk.call(unsubscribe ? UNSUBSCRIBE_MEMBER : SUBSCRIBE_MEMBER, { address: upsert.email, upsert })));
    }
    return held(await vendors.bulk.call(UNSUBSCRIBE_MEMBER, { address: write.address, patch, upsert: { ...upsert, email: write.address } }));
  }
  return held(await vendors.bulk.call(unsubscribe ? UNSUBSCRIBE_MEMBER : SUBSCRIBE_MEMBER, { address: upsert.email, upsert }));
}

function mergeFields(values: Values): Record<string, string> | null {
  const out: Record<string, string> = {};
  if (values.firstname !== undefined) out.FNAME = values.firstname;
  if (values.lastname !== undefined) out.LNAME = values.lastname;
  return Object.keys(out).length > 0 ? out : null;
}

/** The member's subscription as the sync sees it: anything but `subscribed` keeps them off the list. */
function held(member: MailchimpMember): Values {
  return { subscription: member.status === "subscribed" ? "subscribed" : "unsubscribed" };
}
