/**
 * Sends the writes a contact's plan asks for, through the connectors of CONTRACT 6:
 * - CRM: one `PATCH /crm/v3/objects/contacts/{id}` with every pending property;
 * - email platform: one `PATCH` of the member at the address it holds (a new address goes in
 *   `email_address`, so the same member moves, never a second one), a `PUT` upsert for a member
 *   not known yet (`status_if_new`), or a `DELETE` (archive) after the CRM deleted the contact.
 * A subscribe is never sent to an existing member: PATCH carries `status` only to unsubscribe.
 */
import type { Connectors } from "../../connectors";
import { ActionFailure } from "../../connectors/errors";
import type { MailchimpMember, MemberPatch } from "../../connectors/mailchimp";
import type { CrmWrite, EmailWrite, Values, Write, WriteReport } from "../../entities/plan";
import type { CrmSettings } from "./observe";

/** A write's report for the Durable Object, and why it failed. */
export interface WriteResult extends WriteReport {
  failure?: ActionFailure;
}

export async function executeWrites(writes: Write[], crmId: string, connectors: Connectors, crm: CrmSettings): Promise<WriteResult[]> {
  return Promise.all(
    writes.map(async (write): Promise<WriteResult> => {
      try {
        const holds = write.system === "crm" ? await writeCrm(write, crmId, connectors, crm) : await writeEmail(write, connectors);
        return { write, outcome: "ok", ...(holds ? { holds } : {}) };
      } catch (error) {
        const failure = error instanceof ActionFailure ? error : new ActionFailure("permanent", `unexpected error: ${String(error)}`);
        return { write, outcome: failure.kind === "transient" ? "failed" : "rejected", failure };
      }
    }),
  );
}

async function writeCrm(write: CrmWrite, crmId: string, connectors: Connectors, crm: CrmSettings): Promise<undefined> {
  const properties = crmPropertiesOf(write.set, crm);
  if (Object.keys(properties).length > 0) await connectors.hubspot().updateContact(crmId, properties);
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

async function writeEmail(write: EmailWrite, connectors: Connectors): Promise<Values | undefined> {
  const mailchimp = connectors.mailchimp();
  if (write.op === "archive") {
    await mailchimp.archiveMember(write.address);
    return undefined;
  }
  if (write.op === "patch") {
    const patch: MemberPatch = {};
    if (write.set.email !== undefined) patch.email_address = write.set.email;
    if (write.set.subscription === "unsubscribed") patch.status = "unsubscribed";
    const merges = mergeFields(write.set);
    if (merges) patch.merge_fields = merges;
    const member = await mailchimp.patchMember(write.address, patch);
    if (member) return held(member);
    // The member is gone from the list (deleted by hand): made again from the winning values.
  }
  const values = { ...write.full, ...write.set };
  if (!values.email) throw new ActionFailure("invalid", "the contact has no email address to subscribe");
  const unsubscribe = values.subscription === "unsubscribed";
  const member = await mailchimp.upsertMember({
    email: values.email,
    statusIfNew: unsubscribe ? "unsubscribed" : "subscribed",
    ...(unsubscribe ? { status: "unsubscribed" as const } : {}),
    mergeFields: mergeFields(values) ?? {},
  });
  return held(member);
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
