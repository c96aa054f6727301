/**
 * HubSpot `contact.creation` -> read the contact from HubSpot -> upsert it into the Mailchimp
 * audience as subscribed, first and last name as merge fields.
 *
 * Order-insensitive and idempotent: the webhook only says *which* contact; the action reads
 * its current state and PUTs it, so a late, repeated or replayed event writes the same member.
 * The PUT sets `status_if_new` only, so an existing member's status (an unsubscribe) is kept.
 */
import { ActionFailure } from "../connectors/errors";
import type { Flow } from "./types";

export const crmContactToEmail: Flow = {
  name: "crm-contact-to-email",
  matches: (event) => event.source === "hubspot" && event.type === "contact.creation",
  actions: [
    {
      name: "crm-contact-to-email.subscribe",
      async run({ event, connectors }) {
        const contactId = String(event.payload.objectId);
        const contact = await connectors.hubspot().getContact(contactId);
        const email = contact.properties.email?.trim();
        if (!email) throw new ActionFailure("invalid", `HubSpot contact ${contactId} has no email`);
        const mergeFields: Record<string, string> = {};
        if (contact.properties.firstname) mergeFields.FNAME = contact.properties.firstname;
        if (contact.properties.lastname) mergeFields.LNAME = contact.properties.lastname;
        await connectors.mailchimp().upsertMember({ email, statusIfNew: "subscribed", mergeFields });
      },
    },
  ],
};
