/**
 * The fake Mailchimp's "Batch subscribe or unsubscribe": POST /3.0/lists/{list_id}
 * (https://mailchimp.com/developer/marketing/api/lists/batch-subscribe-or-unsubscribe/). One
 * call is one connection against the connection limit, whatever the number of members.
 *
 * From the reference:
 * - Body {members, update_existing?, sync_tags?}; query skip_merge_validation,
 *   skip_duplicate_check. "Up to 500 members may be added or updated with each API call."
 * - A member: email_address, status ("Subscriber's current status": subscribed, unsubscribed,
 *   cleaned, pending, transactional), email_type, merge_fields, language, vip (and interests,
 *   location, ip/timestamp fields, tags, which the fake accepts and ignores). There is no
 *   status_if_new here, unlike PUT /members/{hash}: the status given is the status the member
 *   gets, new or existing. The fake ignores a status_if_new and requires `status` (a member
 *   without one is an error), so nothing can lean on a status_if_new the reference does not have.
 * - update_existing: "Whether this batch operation will change existing members' subscription
 *   status." With it, an existing member is updated like a PATCH, status included: an
 *   unsubscribed member sent with status "subscribed" is subscribed again, and a subscribe
 *   webhook fires. Syncwire must never send that (CONTRACT 6: an unsubscribe is never reversed).
 *   Without it, an existing member is left alone and reported with error_code
 *   ERROR_CONTACT_EXISTS and the API's wording: "<email> is already a list member, do you want
 *   to update? please provide update_existing:true in the request body".
 *   (The real API also refuses to subscribe again, with an error, a contact in a "compliance
 *   state", one who unsubscribed through an email's link; reported by its users, not in the
 *   reference, and not modelled: the fake shows the worse outcome, the resubscribe.)
 * - skip_duplicate_check: "we will ignore duplicates sent in the request ... The status of the
 *   first appearance in the request will be saved. This defaults to false." Without it, the fake
 *   reports each later appearance as an error (the API's wording for that is not documented).
 * - Answer: {new_members, updated_members, errors: [{email_address, error, error_code:
 *   ERROR_CONTACT_EXISTS | ERROR_GENERIC, field?, field_message?}], total_created,
 *   total_updated, error_count, _links}, 200 even when members were refused: an invalid email
 *   address ("Please provide a valid email address.") is one entry of `errors`, not a failed
 *   request. Only a request that is not valid as a whole (not JSON, no members array, more than
 *   500 members) is a 400.
 * An archived contact is off the audience: it comes back as a new member (as with a PUT).
 * Webhooks fire per changed member as for single calls (subscribe, unsubscribe, profile, cleaned).
 */
import { isPlainObject, jsonResponse, type JsonObject, type JsonValue } from "./fake-service";
import { parseMemberBody, subscriberHash, type MailchimpMemberRecord, type MemberInput, type MemberStatus } from "./mailchimp-member";
import { addMember, invalidResource, jsonParseError, updateMember, type Ctx } from "./mailchimp-writes";

export const BATCH_MEMBER_LIMIT = 500;

interface BatchOutcome {
  new_members: JsonObject[];
  updated_members: JsonObject[];
  errors: JsonObject[];
}

export function batchSubscribe(ctx: Ctx, listId: string, members: Record<string, MailchimpMemberRecord>): Response {
  if (ctx.body.kind === "invalid") return jsonParseError();
  const body = ctx.body.kind === "json" ? ctx.body.value : null;
  if (!isPlainObject(body) || !Array.isArray(body.members)) {
    return invalidResource([{ field: "members", message: "Required fields were not provided: members" }]);
  }
  if (body.members.length > BATCH_MEMBER_LIMIT) {
    return invalidResource([{ field: "members", message: `Up to ${BATCH_MEMBER_LIMIT} members may be added or updated with each API call; this request has ${body.members.length}.` }]);
  }
  for (const key of ["update_existing", "sync_tags"]) {
    if (body[key] !== undefined && typeof body[key] !== "boolean") return invalidResource([{ field: key, message: "Expected a boolean." }]);
  }
  const options = {
    updateExisting: body.update_existing === true,
    skipDuplicates: ctx.url.searchParams.get("skip_duplicate_check") === "true",
    seen: new Set<string>(),
  };
  const out: BatchOutcome = { new_members: [], updated_members: [], errors: [] };
  for (const raw of body.members) subscribeOne(ctx, listId, members, raw, options, out);
  return jsonResponse({
    new_members: out.new_members,
    updated_members: out.updated_members,
    errors: out.errors,
    total_created: out.new_members.length,
    total_updated: out.updated_members.length,
    error_count: out.errors.length,
    _links: [],
  });
}

function subscribeOne(
  ctx: Ctx,
  listId: string,
  members: Record<string, MailchimpMemberRecord>,
  raw: JsonValue,
  options: { updateExisting: boolean; skipDuplicates: boolean; seen: Set<string> },
  out: BatchOutcome,
): void {
  const given = isPlainObject(raw) && typeof raw.email_address === "string" ? raw.email_address.trim() : "";
  if (!isPlainObject(raw)) {
    out.errors.push(memberError(given, "ERROR_GENERIC", "Each member must be an object.", ""));
    return;
  }
  const { status_if_new: _notInThisEndpoint, ...fields } = raw;
  const parsed = parseMemberBody(fields);
  if (Array.isArray(parsed)) {
    const first = parsed[0] ?? { field: "", message: "The member could not be validated." };
    out.errors.push(memberError(given, "ERROR_GENERIC", first.message, first.field));
    return;
  }
  if (parsed.email_address === undefined) {
    out.errors.push(memberError(given, "ERROR_GENERIC", "Please provide a valid email address.", "email_address"));
    return;
  }
  if (parsed.status === undefined) {
    out.errors.push(memberError(given, "ERROR_GENERIC", "Required fields were not provided: status", "status"));
    return;
  }
  const input: MemberInput & { email_address: string; status: MemberStatus } = { ...parsed, email_address: parsed.email_address, status: parsed.status };
  const hash = subscriberHash(input.email_address);
  if (options.seen.has(hash)) {
    if (!options.skipDuplicates) out.errors.push(memberError(given, "ERROR_GENERIC", `${given} appears more than once in this request.`, "email_address"));
    return;
  }
  options.seen.add(hash);

  const existing = members[hash];
  if (existing === undefined) {
    out.new_members.push(addMember(ctx, listId, members, input, input.status));
    return;
  }
  const wasArchived = existing.status === "archived";
  if (!wasArchived && !options.updateExisting) {
    out.errors.push(memberError(given, "ERROR_CONTACT_EXISTS", `${given} is already a list member, do you want to update? please provide update_existing:true in the request body`));
    return;
  }
  // The email is the member's key here, so an update cannot clash with another member.
  const updated = updateMember(ctx, members, existing, input);
  if (Array.isArray(updated)) {
    out.errors.push(memberError(given, "ERROR_GENERIC", updated[0]?.message ?? "The member could not be updated.", "email_address"));
  } else if (wasArchived) {
    out.new_members.push(updated);
  } else {
    out.updated_members.push(updated);
  }
}

function memberError(email: string, code: "ERROR_CONTACT_EXISTS" | "ERROR_GENERIC", error: string, field?: string): JsonObject {
  const entry: JsonObject = { email_address: email, error, error_code: code };
  if (field !== undefined && field !== "") {
    entry.field = field;
    entry.field_message = error;
  }
  return entry;
}
