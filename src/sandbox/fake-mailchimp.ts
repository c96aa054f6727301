// Fake Mailchimp Marketing API 3.0 (list members, list webhooks). Sources: mailchimp.com/developer/
// marketing/api/list-members/, /api/list-webhooks/ and /docs/errors/ (RFC 7807 problem details,
// `application/problem+json`). Webhooks are posted through the injected dispatcher, for the event
// types and sources each list webhook is configured for (see mailchimp-webhooks.ts).
//
// Archive (`DELETE .../members/{hash}`, 204) keeps the member with status "archived": it reads
// back with that status and is left out of the member list unless `status=archived` is asked for.
// Mailchimp documents no webhook for an archive (its webhook types are subscribe, unsubscribe,
// profile, cleaned, upemail, campaign; the unsubscribe samples only show data[action]=unsub), so
// none is sent. An archived contact is no longer on the audience, so a PUT re-adds it like a new
// one: with `status` if given, else `status_if_new` (required then), and a subscribe webhook when
// it comes back subscribed; a PATCH with a `status` unarchives it to that status. The API cannot
// restore the status a contact had before it was archived (only the app's "unarchive" can).
//
// The batch endpoint (POST /3.0/lists/{list_id}) is in mailchimp-batch.ts, the documented
// connection limit (on by default) in mailchimp-limits.ts.
import { jsonResponse, mailchimpProblem, parseIntParam, pathSegments, type FakeService, type RequestBody } from "./fake-service";
import { initSandboxState, mailchimpFaultResponse, type SandboxState } from "./faults";
import { batchSubscribe } from "./mailchimp-batch";
import { createMailchimpLimiter, type MailchimpLimitOption, type MailchimpLimitState } from "./mailchimp-limits";
import { handleSandboxRequest } from "./sandbox-request";
import {
  deliveriesFor,
  maskedWebhook,
  newWebhook,
  SOURCES,
  webhookControl,
  webhooksRoute,
  type MailchimpChange,
  type MailchimpWebhookInput,
} from "./mailchimp-webhooks";
import { checkAuth, mailchimpTime, renderMember, resolveMemberKey, subscriberHash, type MailchimpMemberRecord } from "./mailchimp-member";
import { addMember, commitUpdate, invalidResource, methodNotAllowed, notFound, readInput, type Ctx, type FakeMailchimpData, type ListData } from "./mailchimp-writes";
import { handOver, sandboxActor, type WebhookDispatcher } from "./webhooks";

export { mailchimpTime, subscriberHash, type MailchimpMemberRecord, type MemberStatus } from "./mailchimp-member";

export type { MailchimpChange, MailchimpWebhook, MailchimpWebhookInput } from "./mailchimp-webhooks";
export type { FakeMailchimpData } from "./mailchimp-writes";
export type { MailchimpLimitOption, MailchimpLimitSettings, MailchimpLimitState } from "./mailchimp-limits";

export type FakeMailchimpState = SandboxState<FakeMailchimpData, MailchimpLimitState>;

export interface FakeMailchimpOptions {
  apiKey: string;
  listIds: string[];
  now?: () => number;
  state?: FakeMailchimpState;
  onChange?: (change: MailchimpChange) => void;
  /** Delivers the list webhooks; without it, changes only reach onChange. */
  dispatch?: WebhookDispatcher;
  /** The webhooks every list starts with (and gets back on reset). */
  webhooks?: MailchimpWebhookInput[];
  /**
   * The connection limit of a fresh (or reset) fake: Mailchimp's 10 simultaneous connections
   * when absent; `false` turns it off; an object changes it. `POST /_sandbox/limits` changes it at run time.
   */
  limits?: MailchimpLimitOption;
}

export function createFakeMailchimp(opts: FakeMailchimpOptions): FakeService<FakeMailchimpState> {
  const now = opts.now ?? Date.now;
  const emptyData = (): FakeMailchimpData => initLists({ nextWebId: 1, nextWebhookSeq: 1, lists: {} }, opts);
  const state: FakeMailchimpState = initSandboxState(opts.state, emptyData);
  initLists(state.data, opts);

  const service: FakeService<FakeMailchimpState> = {
    name: "mailchimp",
    state,
    handle: (request, path) => handleSandboxRequest(service.state, vendor, request, path, now),
  };
  const vendor = {
    emptyData,
    faultResponse: mailchimpFaultResponse,
    limiter: createMailchimpLimiter({ apiKey: opts.apiKey, option: opts.limits, holder: () => service.state }),
    handleControl: async (request: Request, name: string) => webhookControl(service.state.data.lists, request, name),
    // The webhook URLs carry the receiver's secret; the sandbox's state view masks it.
    publicData: (data: FakeMailchimpData) => ({
      ...data,
      lists: Object.fromEntries(Object.entries(data.lists).map(([id, l]) => [id, { ...l, webhooks: l.webhooks.map(maskedWebhook) }])),
    }),
    handleVendor: async (request: Request, url: URL, body: RequestBody): Promise<Response> => {
      const authError = checkAuth(request, opts.apiKey);
      if (authError) return authError;
      const actor = sandboxActor(request);
      const source = SOURCES.find((s) => s === actor);
      if (source === undefined) return mailchimpProblem(400, "Invalid Resource", "X-Sandbox-Actor must be user, admin or api.");
      const changes: MailchimpChange[] = [];
      const emit = (c: Omit<MailchimpChange, "source">) => {
        const change = { ...c, source };
        changes.push(change);
        opts.onChange?.(change);
      };
      const data = service.state.data;
      const response = route(request.method, { data, url, body, now, emit });
      // After the answer is produced: one form post per change and configured webhook.
      if (opts.dispatch) {
        for (const change of changes) {
          const list = data.lists[String(change.member.list_id)];
          handOver(opts.dispatch, deliveriesFor(list?.webhooks ?? [], change, now()));
        }
      }
      return response;
    },
  };
  return service;
}

/** Adds the configured lists, and the webhook fields to data stored before webhooks existed. */
function initLists(data: FakeMailchimpData, opts: FakeMailchimpOptions): FakeMailchimpData {
  data.nextWebhookSeq ??= 1;
  for (const id of opts.listIds) data.lists[id] ??= { members: {} } as ListData;
  for (const [id, list] of Object.entries(data.lists)) {
    // A new list, or one stored before webhooks existed, starts with the host's default webhooks.
    list.webhooks ??= (opts.webhooks ?? []).map((w) => newWebhook(id, data.nextWebhookSeq++, w));
  }
  return data;
}

function route(method: string, ctx: Ctx): Response {
  const [version, collection, listId, sub, memberKey, ...rest] = pathSegments(ctx.url.pathname);
  if (version !== "3.0") return notFound();
  if (collection === "ping" && listId === undefined) {
    return method === "GET" ? jsonResponse({ health_status: "Everything's Chimpy!" }) : methodNotAllowed(["GET"]);
  }
  if (collection !== "lists" || listId === undefined || rest.length > 0) return notFound();
  const list = ctx.data.lists[listId];
  if (list === undefined) return notFound();
  // The fake implements only the batch subscribe on the list itself.
  if (sub === undefined) return method === "POST" ? batchSubscribe(ctx, listId, list.members) : methodNotAllowed(["POST"]);
  if (sub === "webhooks") return webhooksRoute(method, listId, list.webhooks, memberKey, ctx.body, () => ctx.data.nextWebhookSeq++);
  if (sub !== "members") return notFound();
  if (memberKey === undefined) {
    return method === "GET" ? listMembers(ctx, listId, list.members) : methodNotAllowed(["GET"]);
  }
  if (method === "GET") {
    const member = list.members[resolveMemberKey(list.members, memberKey) ?? ""];
    return member === undefined ? notFound() : jsonResponse(renderMember(member));
  }
  if (method === "PUT") return upsertMember(ctx, listId, list.members, memberKey);
  if (method === "PATCH") return patchMember(ctx, list.members, memberKey);
  if (method === "DELETE") return archiveMember(ctx, list.members, memberKey);
  return methodNotAllowed(["GET", "PUT", "PATCH", "DELETE"]);
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
    // Archived contacts are out of the audience: listed only when asked for by status.
    .filter((m) => (status === null ? m.status !== "archived" : m.status === status))
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
  if (existing?.status === "archived") {
    // Re-adding an archived contact: like a new one, status_if_new applies unless `status` is given.
    const status = input.status ?? input.status_if_new;
    if (status === undefined) return invalidResource([{ field: "status_if_new", message: "This value should not be blank." }]);
    return commitUpdate(ctx, members, existing, { ...input, status });
  }
  if (existing !== undefined) return commitUpdate(ctx, members, existing, input);

  // New member: status_if_new is required (docs: "required only if the email address is not
  // already present on the list") and is the status it gets; `status` only applies to existing ones.
  if (input.status_if_new === undefined) {
    return invalidResource([{ field: "status_if_new", message: "This value should not be blank." }]);
  }
  return jsonResponse(addMember(ctx, listId, members, input, input.status_if_new));
}

function archiveMember(ctx: Ctx, members: Record<string, MailchimpMemberRecord>, key: string): Response {
  const member = members[resolveMemberKey(members, key) ?? ""];
  if (member === undefined) return notFound();
  if (member.status !== "archived") {
    member.status = "archived";
    member.last_changed = mailchimpTime(ctx.now());
  }
  return new Response(null, { status: 204 }); // no webhook: see the header comment
}

function patchMember(ctx: Ctx, members: Record<string, MailchimpMemberRecord>, key: string): Response {
  const existing = members[resolveMemberKey(members, key) ?? ""];
  if (existing === undefined) return notFound();
  const input = readInput(ctx.body);
  return input instanceof Response ? input : commitUpdate(ctx, members, existing, input);
}
