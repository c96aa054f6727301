// The Mailchimp list-member model of the fake: validation of PUT/PATCH bodies, applying an
// update, and rendering a member the way the API does.
// Source: mailchimp.com/developer/marketing/api/list-members/
import { isEmail, isPlainObject, md5Hex, type JsonObject, type JsonValue } from "./fake-service";

export const STATUSES = ["subscribed", "unsubscribed", "cleaned", "pending", "transactional"] as const;
export type MemberStatus = (typeof STATUSES)[number];

export interface MailchimpMemberRecord {
  /** The subscriber hash: md5 of the lower-cased email address. */
  id: string;
  email_address: string;
  unique_email_id: string;
  contact_id: string;
  web_id: number;
  email_type: string;
  status: MemberStatus;
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
