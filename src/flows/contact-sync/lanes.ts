/**
 * The contact sync's vendor calls as bulk lanes (pipeline/bulk.ts): what one contact asks for
 * alone goes through the single-item endpoint exactly as before; what many contacts of one
 * queue batch ask for at once goes through the vendors' bulk endpoints (CONTRACT 6):
 *
 * - contact reads: HubSpot `batch/read`, by id or by email (100 inputs). Without property
 *   histories, because asking for them halves the batch (50): a contact unchanged since its
 *   creation (`updatedAt` = `createdAt`) has every value from its creation time, which is all a
 *   history would say. Only contacts changed since are read again, with histories.
 * - CRM creations: HubSpot `batch/create` (100), each input with an `objectWriteTraceId`, so one
 *   refused input (an address another contact has, which names that contact) is that input's alone.
 * - CRM writes: HubSpot `batch/update` (100). HubSpot fails such a batch as a whole for one bad
 *   input (multi-status is documented for batch create only), so a refused batch is halved
 *   until the bad inputs stand alone: only their actions fail.
 * - member writes: Mailchimp `POST /3.0/lists/{list_id}` (500). It has no `status_if_new`, and an
 *   unsubscribe is never reversed, so a subscribe is sent without `update_existing`: a member who
 *   exists already is refused (ERROR_CONTACT_EXISTS) and then upserted alone with `status_if_new`,
 *   which leaves their status as it is. Only unsubscribes update existing members in bulk.
 */
import { ActionFailure } from "../../connectors/errors";
import type { Connectors } from "../../connectors";
import { HUBSPOT_BATCH_MAX, HUBSPOT_HISTORY_BATCH_MAX, type HubSpotContact } from "../../connectors/hubspot";
import { MAILCHIMP_BATCH_MAX, type BatchMember, type MailchimpMember, type MemberPatch, type MemberUpsert } from "../../connectors/mailchimp";
import type { Lane } from "../../pipeline/bulk";
import { normalizeEmail } from "./observe";

type Results<O> = (O | ActionFailure)[];
type ConnectorsFor = (indexes: number[]) => Connectors;

const all = (n: number) => Array.from({ length: n }, (_, i) => i);

export function asFailure(error: unknown): ActionFailure {
  return error instanceof ActionFailure ? error : new ActionFailure("permanent", `unexpected error: ${String(error)}`);
}

/** Runs `body`; a throw becomes the failure of every input. */
async function each<O>(n: number, body: () => Promise<Results<O>>): Promise<Results<O>> {
  try {
    return await body();
  } catch (error) {
    return Array.from({ length: n }, () => asFailure(error));
  }
}

// ---- reads ------------------------------------------------------------------------------

/** A contact read by CRM id, or by email address: the properties asked for (the same for every input). */
export interface ContactRead {
  id: string;
  properties: readonly string[];
}

function readLane(name: string, byEmail: boolean): Lane<ContactRead, HubSpotContact | null> {
  const keyOf = (id: string) => (byEmail ? normalizeEmail(id) : id);
  return {
    name,
    max: HUBSPOT_BATCH_MAX,
    key: (input) => keyOf(input.id),
    send: (inputs, connectors) =>
      each(inputs.length, async () => {
        const hubspot = connectors(all(inputs.length)).hubspot();
        const properties = inputs[0]!.properties;
        if (inputs.length === 1) {
          const id = inputs[0]!.id;
          return [byEmail ? await hubspot.findContactByEmail(id, properties, true) : await hubspot.findContact(id, properties, true)];
        }
        const read = await hubspot.batchRead(
          inputs.map((i) => i.id),
          properties,
          byEmail ? { idProperty: "email" } : {},
        );
        const found = new Map<string, HubSpotContact | null>(read.results.map((c) => [byEmail ? normalizeEmail(c.properties.email ?? "") : c.id, c]));
        // Changed since its creation: when each value was set takes the histories (50 a call).
        const changed = inputs.map((input, i) => ({ i, contact: found.get(keyOf(input.id)) })).filter((x) => x.contact && !unchangedSinceCreation(x.contact));
        for (let start = 0; start < changed.length; start += HUBSPOT_HISTORY_BATCH_MAX) {
          const part = changed.slice(start, start + HUBSPOT_HISTORY_BATCH_MAX);
          const again = await connectors(part.map((x) => x.i))
            .hubspot()
            .batchRead(
              part.map((x) => x.contact!.id),
              properties,
              { history: true },
            );
          const byId = new Map(again.results.map((c) => [c.id, c]));
          // Not found any more: deleted in between.
          for (const x of part) found.set(keyOf(inputs[x.i]!.id), byId.get(x.contact!.id) ?? null);
        }
        return inputs.map((input) => found.get(keyOf(input.id)) ?? null);
      }),
  };
}

/** `updatedAt` = `createdAt`: no value changed since the contact was made. */
export const unchangedSinceCreation = (contact: HubSpotContact): boolean => contact.createdAt !== undefined && contact.createdAt === contact.updatedAt;

export const READ_CONTACT = readLane("hubspot.read", false);
export const READ_CONTACT_BY_EMAIL = readLane("hubspot.read-by-email", true);

// ---- CRM writes -------------------------------------------------------------------------

export interface ContactUpdate {
  id: string;
  properties: Record<string, string>;
}

export const UPDATE_CONTACT: Lane<ContactUpdate, null> = {
  name: "hubspot.update",
  max: HUBSPOT_BATCH_MAX,
  key: (input) => input.id,
  send: (inputs, connectors) => updateContacts(inputs, all(inputs.length), connectors),
};

async function updateContacts(inputs: ContactUpdate[], indexes: number[], connectors: ConnectorsFor): Promise<Results<null>> {
  return each(inputs.length, async () => {
    const hubspot = connectors(indexes).hubspot();
    if (inputs.length === 1) {
      await hubspot.updateContact(inputs[0]!.id, inputs[0]!.properties);
      return [null];
    }
    try {
      const { missing } = await hubspot.batchUpdate(inputs);
      return inputs.map((input) =>
        missing.includes(input.id) ? new ActionFailure("permanent", `hubspot has no contact ${input.id} (deleted?)`, { connector: "hubspot", status: 404 }) : null,
      );
    } catch (error) {
      // Refused as a whole for one bad input: halves, until the bad ones stand alone.
      if (!(error instanceof ActionFailure) || error.kind === "transient") throw error;
      const half = Math.ceil(inputs.length / 2);
      return [
        ...(await updateContacts(inputs.slice(0, half), indexes.slice(0, half), connectors)),
        ...(await updateContacts(inputs.slice(half), indexes.slice(half), connectors)),
      ];
    }
  });
}

/** A contact made in the CRM (someone subscribed in the email platform whom it does not know). */
export const CREATE_CONTACT: Lane<Record<string, string>, { id: string; created: boolean }> = {
  name: "hubspot.create",
  max: HUBSPOT_BATCH_MAX,
  key: (properties) => normalizeEmail(properties.email ?? ""),
  send: (inputs, connectors) =>
    each(inputs.length, async () => {
      const hubspot = connectors(all(inputs.length)).hubspot();
      if (inputs.length === 1) return [await hubspot.createContact(inputs[0]!)];
      return hubspot.batchCreate(inputs);
    }),
};

// ---- member writes ----------------------------------------------------------------------

/**
 * A member write that one call could also make: a PATCH of the member at `address` (first, when
 * given), or the PUT upsert (a new member, or one the PATCH found gone).
 */
export interface MemberWrite {
  /** The member's address as the email platform holds it. */
  address: string;
  patch?: MemberPatch;
  upsert: MemberUpsert;
}

function memberLane(name: string, status: "subscribed" | "unsubscribed"): Lane<MemberWrite, MailchimpMember> {
  const updateExisting = status === "unsubscribed";
  return {
    name,
    max: MAILCHIMP_BATCH_MAX,
    key: (input) => normalizeEmail(input.address),
    send: (inputs, connectors) =>
      each(inputs.length, async () => {
        if (inputs.length === 1) return [await writeOne(inputs[0]!, connectors([0]))];
        const members: BatchMember[] = inputs.map((w) => ({
          email_address: w.address,
          status,
          ...(w.upsert.mergeFields && Object.keys(w.upsert.mergeFields).length > 0 ? { merge_fields: w.upsert.mergeFields } : {}),
        }));
        const answer = await connectors(all(inputs.length)).mailchimp().batchSubscribe(members, updateExisting);
        const written = new Map([...answer.new_members, ...answer.updated_members].map((m) => [normalizeEmail(m.email_address), m]));
        const refused = new Map(answer.errors.map((e) => [normalizeEmail(e.email_address ?? ""), e]));
        return Promise.all(
          inputs.map(async (w, i): Promise<MailchimpMember | ActionFailure> => {
            const key = normalizeEmail(w.address);
            const member = written.get(key);
            if (member) return member;
            const error = refused.get(key);
            // Already a member: upserted alone, with status_if_new, so their status stays theirs.
            if (error?.error_code === "ERROR_CONTACT_EXISTS") return writeOne(w, connectors([i])).catch(asFailure);
            const why = error?.error ?? "the answer does not mention this member";
            return new ActionFailure("permanent", `mailchimp refused ${w.address} in a batch subscribe: ${why}`, { connector: "mailchimp", status: 400 });
          }),
        );
      }),
  };
}

async function writeOne(write: MemberWrite, connectors: Connectors): Promise<MailchimpMember> {
  const mailchimp = connectors.mailchimp();
  if (write.patch) {
    const member = await mailchimp.patchMember(write.address, write.patch);
    if (member) return member;
    // The member is gone from the list (deleted by hand): made again from the winning values.
  }
  return mailchimp.upsertMember(write.upsert);
}

/** Members that are subscribed if new and left as they are if not. */
export const SUBSCRIBE_MEMBER = memberLane("mailchimp.subscribe", "subscribed");
/** Members that are unsubscribed, new or not. */
export const UNSUBSCRIBE_MEMBER = memberLane("mailchimp.unsubscribe", "unsubscribed");
