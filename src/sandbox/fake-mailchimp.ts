// Fake Mailchimp Marketing API 3.0 (list members). Sources: mailchimp.com/developer/marketing/api/
// list-members/ and /docs/errors/ (RFC 7807 problem details, `application/problem+json`).
import {
  mailchimpProblem,
  jsonResponse,
  md5Hex,
  parseIntParam,
  pathSegments,
  type FakeService,
  type JsonObject,
  type RequestBody,
} from "./fake-service";
import { handleSandboxRequest, initSandboxState, mailchimpFaultResponse, type SandboxState } from "./faults";
import {
  applyMemberUpdate,
  mailchimpTime,
  parseMemberBody,
  renderMember,
  subscriberHash,
  type FieldError,
  type MailchimpMemberRecord,
  type MemberInput,
  type MemberStatus,
} from "./mailchimp-member";

export { mailchimpTime, subscriberHash, type MailchimpMemberRecord, type MemberStatus } from "./mailchimp-member";

export interface FakeMailchimpData {
  nextWebId: number;
  lists: Record<string, { members: Record<string, MailchimpMemberRecord> }>;
}

export type FakeMailchimpState = SandboxState<FakeMailchimpData>;

/** Mirrors Mailchimp's webhook event types, so a later feature can post webhooks from it. */
export interface MailchimpChange {
  type: "subscribe" | "unsubscribe" | "profile" | "upemail" | "cleaned";
  /** The member as the API renders it after the change. */
  member: JsonObject;
  /** For "upemail": the address before the change. */
  oldEmail?: string;
}

export interface FakeMailchimpOptions {
  apiKey: string;
  listIds: string[];
  now?: () => number;
  state?: FakeMailchimpState;
  onChange?: (change: MailchimpChange) => void;
}

type ChangeType = MailchimpChange["type"];

const STATUS_EVENTS: Partial<Record<MemberStatus, ChangeType>> = {
  subscribed: "subscribe", unsubscribed: "unsubscribe", cleaned: "cleaned",
};
const VALIDATION_DETAIL = "The resource submitted could not be validated. For field-specific details, see the 'errors' array.";

export function createFakeMailchimp(opts: FakeMailchimpOptions): FakeService<FakeMailchimpState> {
  const now = opts.now ?? Date.now;
  const emptyData = (): FakeMailchimpData => ({
    nextWebId: 1,
    lists: Object.fromEntries(opts.listIds.map((id) => [id, { members: {} }])),
  });
  const state = initSandboxState(opts.state, emptyData);
  for (const id of opts.listIds) state.data.lists[id] ??= { members: {} };

  const service: FakeService<FakeMailchimpState> = {
    name: "mailchimp",
    state,
    handle: (request, path) => handleSandboxRequest(service.state, vendor, request, path, now),
  };
  const vendor = {
    emptyData,
    faultResponse: mailchimpFaultResponse,
    handleVendor: async (request: Request, url: URL, body: RequestBody): Promise<Response> => {
      const authError = checkAuth(request, opts.apiKey);
      if (authError) return authError;
      const ctx: Ctx = { data: service.state.data, url, body, now, emit: (c) => opts.onChange?.(c) };
      return route(request.method, ctx);
    },
  };
  return service;
}

interface Ctx {
  data: FakeMailchimpData;
  url: URL;
  body: RequestBody;
  now: () => number;
  emit: (change: MailchimpChange) => void;
}

/** HTTP Basic with any username and the API key as password ("anystring:<apikey>"). */
function checkAuth(request: Request, apiKey: string): Response | null {
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

function route(method: string, ctx: Ctx): Response {
  const [version, collection, listId, sub, memberKey, ...rest] = pathSegments(ctx.url.pathname);
  if (version !== "3.0") return notFound();
  if (collection === "ping" && listId === undefined) {
    return method === "GET" ? jsonResponse({ health_status: "Everything's Chimpy!" }) : methodNotAllowed(["GET"]);
  }
  if (collection !== "lists" || listId === undefined || sub !== "members" || rest.length > 0) return notFound();
  const list = ctx.data.lists[listId];
  if (list === undefined) return notFound();
  if (memberKey === undefined) {
    return method === "GET" ? listMembers(ctx, listId, list.members) : methodNotAllowed(["GET"]);
  }
  if (method === "GET") {
    const member = list.members[resolveMemberKey(list.members, memberKey) ?? ""];
    return member === undefined ? notFound() : jsonResponse(renderMember(member));
  }
  if (method === "PUT") return upsertMember(ctx, listId, list.members, memberKey);
  if (method === "PATCH") return patchMember(ctx, list.members, memberKey);
  return methodNotAllowed(["GET", "PUT", "PATCH"]);
}

/**
 * The path segment is normally the subscriber hash; the docs add "This endpoint also accepts a
 * list member's email address or contact_id", so those are resolved to the hash too.
 */
function resolveMemberKey(members: Record<string, MailchimpMemberRecord>, key: string): string | null {
  if (key.includes("@")) return subscriberHash(key);
  const lower = key.toLowerCase();
  if (members[lower] !== undefined) return lower;
  // contact_ids are 32 hex characters too, so they are tried before treating the key as an unknown hash.
  const byContactId = Object.values(members).find((m) => m.contact_id === key);
  if (byContactId !== undefined) return byContactId.id;
  return /^[0-9a-f]{32}$/.test(lower) ? lower : null;
}

function listMembers(ctx: Ctx, listId: string, members: Record<string, MailchimpMemberRecord>): Response {
  const params = ctx.url.searchParams;
  const count = Math.min(parseIntParam(params.get("count"), 10), 1000); // documented max 1000
  const offset = parseIntParam(params.get("offset"), 0);
  if (Number.isNaN(count) || Number.isNaN(offset)) {
    return mailchimpProblem(400, "Invalid Resource", "count and offset must be non-negative integers.");
  }
  const status = params.get("status");
  const all = Object.values(members)
    .filter((m) => status === null || m.status === status)
    .sort((a, b) => a.web_id - b.web_id);
  return jsonResponse({
    members: all.slice(offset, offset + count).map(renderMember),
    list_id: listId,
    total_items: all.length,
    _links: [],
  });
}

function upsertMember(ctx: Ctx, listId: string, members: Record<string, MailchimpMemberRecord>, key: string): Response {
  const input = readInput(ctx.body);
  if (input instanceof Response) return input;
  if (input.email_address === undefined) return invalidResource([{ field: "email_address", message: "This value should not be blank." }]);
  const hash = subscriberHash(input.email_address);
  if (resolveMemberKey(members, key) !== hash) {
    // The real API rejects a PUT whose path hash is not md5(lowercase(email_address)).
    return invalidResource([{ field: "email_address", message: "The subscriber hash in the URL does not match the email_address provided." }]);
  }
  const existing = members[hash];
  if (existing !== undefined) return commitUpdate(ctx, members, existing, input);

  // New member: status_if_new is required (docs: "required only if the email address is not
  // already present on the list") and is the status it gets; `status` only applies to existing ones.
  if (input.status_if_new === undefined) {
    return invalidResource([{ field: "status_if_new", message: "This value should not be blank." }]);
  }
  const member = createMember(ctx, listId, input, input.status_if_new);
  members[hash] = member;
  const rendered = renderMember(member);
  if (member.status === "subscribed") ctx.emit({ type: "subscribe", member: rendered });
  return jsonResponse(rendered);
}

function patchMember(ctx: Ctx, members: Record<string, MailchimpMemberRecord>, key: string): Response {
  const existing = members[resolveMemberKey(members, key) ?? ""];
  if (existing === undefined) return notFound();
  const input = readInput(ctx.body);
  return input instanceof Response ? input : commitUpdate(ctx, members, existing, input);
}

/** A blank member with the API's defaults, then the input applied like any update. */
function createMember(ctx: Ctx, listId: string, input: MemberInput, status: MemberStatus): MailchimpMemberRecord {
  const webId = ctx.data.nextWebId++;
  const email = input.email_address ?? "";
  const member: MailchimpMemberRecord = {
    id: subscriberHash(email), email_address: email, unique_email_id: uniqueEmailId(listId, email),
    contact_id: md5Hex(`contact:${listId}:${webId}`), web_id: webId, email_type: "html", status,
    merge_fields: {}, language: "", vip: false, timestamp_opt: "", last_changed: "", list_id: listId,
  };
  applyMemberUpdate(member, { ...input, status: undefined }, mailchimpTime(ctx.now()));
  member.last_changed = mailchimpTime(ctx.now());
  if (status === "subscribed") member.timestamp_opt = member.last_changed;
  return member;
}

function uniqueEmailId(listId: string, email: string): string {
  return md5Hex(`${listId}:${email.toLowerCase()}`).slice(0, 10);
}

/** Applies an update to an existing member, re-keys it on an email change, and emits changes. */
function commitUpdate(ctx: Ctx, members: Record<string, MailchimpMemberRecord>, member: MailchimpMemberRecord, input: MemberInput): Response {
  const newHash = input.email_address === undefined ? member.id : subscriberHash(input.email_address);
  const clash = newHash !== member.id ? members[newHash] : undefined;
  if (clash !== undefined) {
    return invalidResource([{ field: "email_address", message: `"${clash.email_address}" is already in this list with a status of "${clash.status}".` }]);
  }
  const oldEmail = member.email_address;
  const diff = applyMemberUpdate(member, input, mailchimpTime(ctx.now()));
  if (newHash !== member.id) {
    delete members[member.id];
    member.id = newHash;
    member.unique_email_id = uniqueEmailId(member.list_id, member.email_address);
    members[newHash] = member;
  }
  const rendered = renderMember(member);
  if (newHash !== subscriberHash(oldEmail)) ctx.emit({ type: "upemail", member: rendered, oldEmail });
  if (diff.profileChanged) ctx.emit({ type: "profile", member: rendered });
  const statusEvent = diff.statusChanged ? STATUS_EVENTS[member.status] : undefined;
  if (statusEvent !== undefined) ctx.emit({ type: statusEvent, member: rendered });
  return jsonResponse(rendered);
}

function readInput(body: RequestBody): MemberInput | Response {
  if (body.kind === "invalid") return mailchimpProblem(400, "JSON Parse Error", "We encountered an unspecified JSON parsing error.");
  const parsed = parseMemberBody(body.kind === "json" ? body.value : {});
  return Array.isArray(parsed) ? invalidResource(parsed) : parsed;
}

function invalidResource(errors: FieldError[]): Response {
  return mailchimpProblem(400, "Invalid Resource", VALIDATION_DETAIL, { errors });
}

function notFound(): Response {
  return mailchimpProblem(404, "Resource Not Found", "The requested resource could not be found.");
}

function methodNotAllowed(allowed: string[]): Response {
  const detail = "The requested method and resource are not compatible. See the Allow header for this resource's available methods.";
  return mailchimpProblem(405, "Method Not Allowed", detail, {}, { Allow: allowed.join(", ") });
}
