// The Mailchimp list-member model of the fake: validation of PUT/PATCH bodies, creating and
// updating a member, rendering it the way the API does, resolving the path's member key, and
// the API's Basic authentication.
// Source: mailchimp.com/developer/marketing/api/list-members/
import { isEmail, isPlainObject, mailchimpProblem, md5Hex, type JsonObject, type JsonValue } from "./fake-service";

export const STATUSES = ["subscribed", "unsubscribed", "cleaned", "pending", "transactional"] as const;
export type MemberStatus = (typeof STATUSES)[number];
/** What a stored member can have: also "archived", which the API reports but never accepts as input. */
export type RecordStatus = MemberStatus | "archived";

export interface MailchimpMemberRecord {
  /** The subscriber hash: md5 of the lower-cased email address. */
  id: string;
  email_address: string;
  unique_email_id: string;
  contact_id: string;
  web_id: number;
  email_type: string;
  status: RecordStatus;
  merge_fields: JsonObject;
  language: string;
  vip: boolean;
  timestamp_opt: string;
  last_changed: string;
  list_id: string;
}

/** The writable member fields accepted by PUT and PATCH, after validation. */
export interface MemberInput {
  email_address?: string;
  status?: MemberStatus;
  status_if_new?: MemberStatus;
  merge_fields?: JsonObject;
  email_type?: string;
  language?: string;
  vip?: boolean;
}

export type FieldError = { field: string; message: string };

/** A new audience has these merge fields; Mailchimp renders unset ones as "". */
const DEFAULT_MERGE_FIELDS = { FNAME: "", LNAME: "", ADDRESS: "", PHONE: "", BIRTHDAY: "" };

export function subscriberHash(email: string): string {
  return md5Hex(email.toLowerCase());
}

export function parseMemberBody(value: JsonValue): MemberInput | FieldError[] {
  if (!isPlainObject(value)) return [{ field: "", message: "The request body must be a JSON object." }];
  const { email_address, status, status_if_new, merge_fields, email_type, language, vip } = value;
  const errors: FieldError[] = [];
  const out: MemberInput = {};
  if (email_address !== undefined) {
    if (typeof email_address === "string" && isEmail(email_address.trim())) out.email_address = email_address.trim();
    else errors.push({ field: "email_address", message: "Please provide a valid email address." });
  }
  for (const [field, v] of [["status", status], ["status_if_new", status_if_new]] as const) {
    if (v === undefined) continue;
    if (isStatus(v)) out[field] = v;
    else errors.push({ field, message: `Value must be one of: ${STATUSES.join(", ")}.` });
  }
  if (merge_fields !== undefined) {
    if (isPlainObject(merge_fields)) out.merge_fields = merge_fields;
    else errors.push({ field: "merge_fields", message: "Expected an object of merge tag values." });
  }
  if (email_type !== undefined) {
    if (email_type === "html" || email_type === "text") out.email_type = email_type;
    else errors.push({ field: "email_type", message: "Value must be one of: html, text." });
  }
  if (typeof language === "string") out.language = language;
  if (typeof vip === "boolean") out.vip = vip;
  return errors.length > 0 ? errors : out;
}

function isStatus(v: JsonValue): v is MemberStatus {
  return (STATUSES as readonly JsonValue[]).includes(v);
}

/** Mutates the member; last_changed moves only when something actually changed. */
export function applyMemberUpdate(m: MailchimpMemberRecord, input: MemberInput, at: string): { statusChanged: boolean; profileChanged: boolean } {
  let profileChanged = false;
  let statusChanged = false;
  if (input.email_address !== undefined && input.email_address !== m.email_address) {
    // A case-only change keeps the hash, so it is a profile change rather than "upemail".
    profileChanged = subscriberHash(input.email_address) === m.id;
    m.email_address = input.email_address;
  }
  if (input.status !== undefined && input.status !== m.status) {
    statusChanged = true;
    m.status = input.status;
    if (m.status === "subscribed") m.timestamp_opt = at;
  }
  for (const [tag, v] of Object.entries(input.merge_fields ?? {})) {
    if (JSON.stringify(m.merge_fields[tag]) === JSON.stringify(v)) continue;
    m.merge_fields[tag] = v; // merge fields are merged, not replaced: absent tags keep their value
    profileChanged = true;
  }
  for (const field of ["email_type", "language", "vip"] as const) {
    const v = input[field];
    if (v === undefined || v === m[field]) continue;
    Object.assign(m, { [field]: v });
    profileChanged = true;
  }
  const emailMoved = input.email_address !== undefined && subscriberHash(input.email_address) !== m.id;
  if (statusChanged || profileChanged || emailMoved) m.last_changed = at;
  return { statusChanged, profileChanged };
}

export function renderMember(m: MailchimpMemberRecord): JsonObject {
  const merge: JsonObject = { ...DEFAULT_MERGE_FIELDS, ...m.merge_fields };
  const fullName = [merge.FNAME, merge.LNAME].filter((v) => typeof v === "string" && v !== "").join(" ");
  return {
    id: m.id, email_address: m.email_address, unique_email_id: m.unique_email_id, contact_id: m.contact_id,
    full_name: fullName, web_id: m.web_id, email_type: m.email_type, status: m.status,
    consents_to_one_to_one_messaging: true, merge_fields: merge, stats: { avg_open_rate: 0, avg_click_rate: 0 },
    ip_signup: "", timestamp_signup: "", ip_opt: "", timestamp_opt: m.timestamp_opt, member_rating: 2,
    last_changed: m.last_changed, language: m.language, vip: m.vip, email_client: "",
    location: { latitude: 0, longitude: 0, gmtoff: 0, dstoff: 0, country_code: "", timezone: "", region: "" },
    source: "API - Generic", tags_count: 0, tags: [], list_id: m.list_id, _links: [],
  };
}

/** Mailchimp timestamps look like "2015-09-15T14:40:36+00:00" (no milliseconds). */
export function mailchimpTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "+00:00");
}

/**
 * The path segment is normally the subscriber hash; the docs add "This endpoint also accepts a
 * list member's email address or contact_id", so those are resolved to the hash too.
 */
export function resolveMemberKey(members: Record<string, MailchimpMemberRecord>, key: string): string | null {
  if (key.includes("@")) return subscriberHash(key);
  const lower = key.toLowerCase();
  if (members[lower] !== undefined) return lower;
  // contact_ids are 32 hex characters too, so they are tried before treating the key as an unknown hash.
  const byContactId = Object.values(members).find((m) => m.contact_id === key);
  if (byContactId !== undefined) return byContactId.id;
  return /^[0-9a-f]{32}$/.test(lower) ? lower : null;
}

/** A blank member with the API's defaults, then the input applied like any update. */
export function createMember(webId: number, listId: string, input: MemberInput, status: MemberStatus, at: string): MailchimpMemberRecord {
  const email = input.email_address ?? "";
  const member: MailchimpMemberRecord = {
    id: subscriberHash(email), email_address: email, unique_email_id: uniqueEmailId(listId, email),
    contact_id: md5Hex(`contact:${listId}:${webId}`), web_id: webId, email_type: "html", status,
    merge_fields: {}, language: "", vip: false, timestamp_opt: "", last_changed: "", list_id: listId,
  };
  applyMemberUpdate(member, { ...input, status: undefined }, at);
  member.last_changed = at;
  if (status === "subscribed") member.timestamp_opt = member.last_changed;
  return member;
}

export function uniqueEmailId(listId: string, email: string): string {
  return md5Hex(`${listId}:${email.toLowerCase()}`).slice(0, 10);
}

/** HTTP Basic with any username and the API key as password ("anystring:<apikey>"). */
export function checkAuth(request: Request, apiKey: string): Response | null {
  const header = request.headers.get("Authorization");
  if (header === null || header.trim() === "") {
    return mailchimpProblem(401, "API Key Missing", "Your request did not include an API key.");
  }
  const match = /^Basic\s+(.+)$/i.exec(header);
  let password: string | undefined;
  try {
    const decoded = match?.[1] === undefined ? "" : atob(match[1].trim());
    password = decoded.includes(":") ? decoded.slice(decoded.indexOf(":") + 1) : undefined;
  } catch {
    password = undefined;
  }
  if (password === apiKey) return null;
  return mailchimpProblem(401, "API Key Invalid", "Your API key may be invalid, or you've attempted to access the wrong datacenter.");
}
