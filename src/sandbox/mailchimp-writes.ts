// The fake Mailchimp's stored audiences and the member writes every endpoint shares (one member
// or a batch of them), with the changes the list webhooks report, and its common error answers.
// Source: https://mailchimp.com/developer/marketing/api/list-members/
import { jsonResponse, mailchimpProblem, type JsonObject, type RequestBody } from "./fake-service";
import {
  applyMemberUpdate,
  createMember,
  mailchimpTime,
  parseMemberBody,
  renderMember,
  subscriberHash,
  uniqueEmailId,
  type FieldError,
  type MailchimpMemberRecord,
  type MemberInput,
  type MemberStatus,
  type RecordStatus,
} from "./mailchimp-member";
import type { MailchimpChange, MailchimpWebhook } from "./mailchimp-webhooks";

export interface ListData {
  members: Record<string, MailchimpMemberRecord>;
  webhooks: MailchimpWebhook[];
}

export interface FakeMailchimpData {
  nextWebId: number;
  /** Numbers the webhooks created, for their ids. */
  nextWebhookSeq: number;
  lists: Record<string, ListData>;
}

/** One vendor call being answered. */
export interface Ctx {
  data: FakeMailchimpData;
  url: URL;
  body: RequestBody;
  now: () => number;
  emit: (change: Omit<MailchimpChange, "source">) => void;
}

type ChangeType = MailchimpChange["type"];

const STATUS_EVENTS: Partial<Record<RecordStatus, ChangeType>> = {
  subscribed: "subscribe", unsubscribed: "unsubscribe", cleaned: "cleaned",
};
export const VALIDATION_DETAIL = "The resource submitted could not be validated. For field-specific details, see the 'errors' array.";

/** Adds a member who is not on the list; a subscribe webhook when it joins subscribed. */
export function addMember(ctx: Ctx, listId: string, members: Record<string, MailchimpMemberRecord>, input: MemberInput, status: MemberStatus): JsonObject {
  const member = createMember(ctx.data.nextWebId++, listId, input, status, mailchimpTime(ctx.now()));
  members[member.id] = member;
  const rendered = renderMember(member);
  if (member.status === "subscribed") ctx.emit({ type: "subscribe", member: rendered });
  return rendered;
}

/**
 * Applies an update to an existing member, re-keys it on an email change, and emits changes:
 * the member as the API renders it, or the field errors of an email already on the list.
 */
export function updateMember(ctx: Ctx, members: Record<string, MailchimpMemberRecord>, member: MailchimpMemberRecord, input: MemberInput): JsonObject | FieldError[] {
  const newHash = input.email_address === undefined ? member.id : subscriberHash(input.email_address);
  const clash = newHash !== member.id ? members[newHash] : undefined;
  if (clash !== undefined) {
    return [{ field: "email_address", message: `"${clash.email_address}" is already in this list with a status of "${clash.status}".` }];
  }
  const oldEmail = member.email_address;
  const wasArchived = member.status === "archived";
  const diff = applyMemberUpdate(member, input, mailchimpTime(ctx.now()));
  if (newHash !== member.id) {
    delete members[member.id];
    member.id = newHash;
    member.unique_email_id = uniqueEmailId(member.list_id, member.email_address);
    members[newHash] = member;
  }
  const rendered = renderMember(member);
  // Archived contacts are off the audience: changes to them fire nothing, and coming back is a
  // subscribe (when subscribed), as for a contact added for the first time.
  if (member.status === "archived") return rendered;
  if (wasArchived) {
    if (member.status === "subscribed") ctx.emit({ type: "subscribe", member: rendered });
    return rendered;
  }
  if (newHash !== subscriberHash(oldEmail)) ctx.emit({ type: "upemail", member: rendered, oldEmail });
  if (diff.profileChanged) ctx.emit({ type: "profile", member: rendered });
  const statusEvent = diff.statusChanged ? STATUS_EVENTS[member.status] : undefined;
  if (statusEvent !== undefined) ctx.emit({ type: statusEvent, member: rendered });
  return rendered;
}

/** updateMember as a single call's answer. */
export function commitUpdate(ctx: Ctx, members: Record<string, MailchimpMemberRecord>, member: MailchimpMemberRecord, input: MemberInput): Response {
  const updated = updateMember(ctx, members, member, input);
  return Array.isArray(updated) ? invalidResource(updated) : jsonResponse(updated);
}

export function readInput(body: RequestBody): MemberInput | Response {
  if (body.kind === "invalid") return jsonParseError();
  const parsed = parseMemberBody(body.kind === "json" ? body.value : {});
  return Array.isArray(parsed) ? invalidResource(parsed) : parsed;
}

export function jsonParseError(): Response {
  return mailchimpProblem(400, "JSON Parse Error", "We encountered an unspecified JSON parsing error.");
}

export function invalidResource(errors: FieldError[]): Response {
  return mailchimpProblem(400, "Invalid Resource", VALIDATION_DETAIL, { errors });
}

export function notFound(): Response {
  return mailchimpProblem(404, "Resource Not Found", "The requested resource could not be found.");
}

export function methodNotAllowed(allowed: string[]): Response {
  const detail = "The requested method and resource are not compatible. See the Allow header for this resource's available methods.";
  return mailchimpProblem(405, "Method Not Allowed", detail, {}, { Allow: allowed.join(", ") });
}
