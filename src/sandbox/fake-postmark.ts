// Fake Postmark: sending one email with a template. Sources:
// - postmarkapp.com/developer/api/templates-api#email-with-template: POST /email/withTemplate with
//   X-Postmark-Server-Token; From, To (comma-separated, at most 50 recipients), TemplateId or
//   TemplateAlias, TemplateModel (required), Tag, Metadata, MessageStream ("outbound" when absent);
//   answers 200 {To, SubmittedAt, MessageID, ErrorCode: 0, Message: "OK"}.
// - postmarkapp.com/developer/api/overview: 401 for a missing or wrong token (ErrorCode 10); 422
//   with {ErrorCode, Message} for a request it cannot process (300 invalid email request, 402
//   invalid JSON, 1101 template not found, 1235 unknown message stream); 429 rate limit; 500
//   internal error; 503 maintenance (ErrorCode 100).
// - Messages quoted from Postmark's own SDK tests: 1101 "The Template's 'Alias' associated with
//   this request is not valid or was not found." (postmark-dotnet ClientTemplateTests); ErrorCode 10's
//   two texts (missing header, wrong token). The texts of 300 for Tag and Metadata limits are the
//   fake's own (Postmark documents the limits, not the wording).
//
// Postmark has no idempotency key: a repeated request sends a second email. Every message sent is
// kept in the outbox (`GET /_sandbox/outbox`) so tests can see exactly what went out.
import { isEmail, isPlainObject, jsonResponse, type FakeService, type JsonObject, type JsonValue, type RequestBody } from "./fake-service";
import { initSandboxState, type InjectedFault, type SandboxState } from "./faults";
import { handleSandboxRequest } from "./sandbox-request";

export interface PostmarkSentMessage {
  MessageID: string;
  SubmittedAt: string;
  From: string;
  To: string;
  TemplateId: number;
  TemplateAlias: string;
  TemplateModel: JsonObject;
  Tag: string | null;
  Metadata: Record<string, string>;
  MessageStream: string;
}

export interface FakePostmarkData {
  outbox: PostmarkSentMessage[];
}

export type FakePostmarkState = SandboxState<FakePostmarkData>;

export interface FakePostmarkOptions {
  serverToken: string;
  /** The server's template aliases; ["welcome"] when absent. Their TemplateIds are 1001, 1002, … in this order. */
  templates?: string[];
  /** The server's message streams; ["outbound"] (the default transactional stream) when absent. */
  messageStreams?: string[];
  now?: () => number;
  state?: FakePostmarkState;
}

export const POSTMARK_MAX_RECIPIENTS = 50;
/** The outbox keeps this many messages, the newest (the host persists it as one stored value). */
export const OUTBOX_LIMIT = 1000;
const FIRST_TEMPLATE_ID = 1001;
const METADATA_MAX_FIELDS = 10;
const METADATA_MAX_KEY = 20;
const METADATA_MAX_VALUE = 80;
const TAG_MAX = 1000;

export function createFakePostmark(opts: FakePostmarkOptions): FakeService<FakePostmarkState> {
  const now = opts.now ?? Date.now;
  const templates = (opts.templates ?? ["welcome"]).map((alias, i) => ({ alias, id: FIRST_TEMPLATE_ID + i }));
  const streams = new Set(opts.messageStreams ?? ["outbound"]);
  const emptyData = (): FakePostmarkData => ({ outbox: [] });
  const service: FakeService<FakePostmarkState> = {
    name: "postmark",
    state: initSandboxState<FakePostmarkData, unknown>(opts.state, emptyData),
    handle: (request, path) => handleSandboxRequest(service.state, vendor, request, path, now),
  };
  const vendor = {
    emptyData,
    faultResponse: postmarkFaultResponse,
    handleControl: async (request: Request, name: string): Promise<Response | null> => {
      if (name !== "outbox") return null;
      if (request.method !== "GET") return jsonResponse({ error: `method ${request.method} not allowed` }, 405);
      const to = new URL(request.url).searchParams.get("to")?.toLowerCase();
      const messages = service.state.data.outbox.filter((m) => to === undefined || recipients(m.To)?.some((r) => r.toLowerCase() === to));
      return jsonResponse({ messages });
    },
    handleVendor: async (request: Request, url: URL, body: RequestBody): Promise<Response> => {
      const token = request.headers.get("x-postmark-server-token");
      if (token === null) {
        return pmError(401, 10, "No Account or Server API tokens were supplied in the HTTP headers. Please add a header for either X-Postmark-Server-Token or X-Postmark-Account-Token.");
      }
      if (token !== opts.serverToken) {
        return pmError(401, 10, "The Server Token you provided in the X-Postmark-Server-Token request header was invalid. Please verify that you are using a valid token.");
      }
      if (url.pathname.replace(/\/+$/, "") !== "/email/withTemplate") return jsonResponse({ Message: "Not Found" }, 404);
      if (request.method !== "POST") return jsonResponse({ Message: `The requested resource does not support http method '${request.method}'.` }, 405);
      return send(body);
    },
  };

  function send(body: RequestBody): Response {
    if (body.kind !== "json" || !isPlainObject(body.value)) return pmError(422, 402, "Invalid JSON");
    const m = body.value;
    const stream = m.MessageStream ?? "outbound";
    if (typeof stream !== "string" || !streams.has(stream)) return pmError(422, 1235, `The stream provided: '${String(stream)}' does not exist on this server.`);
    if (typeof m.From !== "string" || recipients(m.From)?.length !== 1) return pmError(422, 300, `Invalid 'From' address: '${String(m.From ?? "")}'.`);
    const to = typeof m.To === "string" ? recipients(m.To) : null;
    if (!to || to.length === 0) return pmError(422, 300, `Invalid 'To' address: '${String(m.To ?? "")}'.`);
    if (to.length > POSTMARK_MAX_RECIPIENTS) return pmError(422, 300, `Exceeded the maximum of ${POSTMARK_MAX_RECIPIENTS} recipients per message.`);
    if (m.Tag !== undefined && m.Tag !== null && (typeof m.Tag !== "string" || m.Tag.length > TAG_MAX)) {
      return pmError(422, 300, `The 'Tag' field must be a string of at most ${TAG_MAX} characters.`);
    }
    const metadataError = checkMetadata(m.Metadata);
    if (metadataError) return pmError(422, 300, metadataError);

    // TemplateId wins when both are given (Postmark's batch docs).
    const template = m.TemplateId !== undefined && m.TemplateId !== null
      ? templates.find((t) => t.id === m.TemplateId)
      : templates.find((t) => typeof m.TemplateAlias === "string" && t.alias === m.TemplateAlias);
    if (!template) {
      const field = m.TemplateId !== undefined && m.TemplateId !== null ? "TemplateId" : "Alias";
      return pmError(422, 1101, `The Template's '${field}' associated with this request is not valid or was not found.`);
    }
    if (!isPlainObject(m.TemplateModel)) return pmError(422, 1120, "The 'TemplateModel' field is required and must be a JSON object.");

    const submitted = now();
    const message: PostmarkSentMessage = {
      MessageID: crypto.randomUUID(),
      SubmittedAt: postmarkTime(submitted),
      From: m.From,
      To: m.To as string,
      TemplateId: template.id,
      TemplateAlias: template.alias,
      TemplateModel: m.TemplateModel,
      Tag: typeof m.Tag === "string" ? m.Tag : null,
      Metadata: (m.Metadata ?? {}) as Record<string, string>,
      MessageStream: stream,
    };
    const outbox = service.state.data.outbox;
    outbox.push(message);
    if (outbox.length > OUTBOX_LIMIT) outbox.splice(0, outbox.length - OUTBOX_LIMIT);
    return jsonResponse({ To: message.To, SubmittedAt: message.SubmittedAt, MessageID: message.MessageID, ErrorCode: 0, Message: "OK" });
  }

  return service;
}

/**
 * The addresses of a comma-separated list, each `addr` or `Name <addr>` (a quoted name may hold
 * commas); null when one of them is not an address.
 */
export function recipients(list: string): string[] | null {
  const parts = list.match(/(?:"[^"]*"|[^,])+/g) ?? [];
  const addresses: string[] = [];
  for (const part of parts) {
    const trimmed = part.trim();
    if (trimmed === "") continue;
    const address = /<([^<>]+)>\s*$/.exec(trimmed)?.[1] ?? trimmed;
    if (!isEmail(address.trim())) return null;
    addresses.push(address.trim());
  }
  return addresses;
}

/** Postmark's metadata limits: at most 10 fields, keys of at most 20 characters, string values of at most 80. */
function checkMetadata(value: JsonValue | undefined): string | null {
  if (value === undefined || value === null) return null;
  if (!isPlainObject(value)) return "Metadata must be an object of string values.";
  const entries = Object.entries(value);
  if (entries.length > METADATA_MAX_FIELDS) return `Metadata may contain at most ${METADATA_MAX_FIELDS} fields.`;
  for (const [key, v] of entries) {
    if (key.length > METADATA_MAX_KEY) return `The Metadata key '${key}' is longer than ${METADATA_MAX_KEY} characters.`;
    if (typeof v !== "string" || v.length > METADATA_MAX_VALUE) return `The Metadata value of '${key}' must be a string of at most ${METADATA_MAX_VALUE} characters.`;
  }
  return null;
}

/** SubmittedAt as Postmark writes it: seven fractional digits and a zone offset. */
export function postmarkTime(ms: number): string {
  return new Date(ms).toISOString().replace(/Z$/, "0000+00:00");
}

function pmError(status: number, errorCode: number, message: string): Response {
  return jsonResponse({ ErrorCode: errorCode, Message: message }, status);
}

/** Injected faults: the documented codes where there is one, else only a Message. */
export function postmarkFaultResponse(fault: InjectedFault): Response {
  if (fault.status === 401) return pmError(401, 10, "The Server Token you provided in the X-Postmark-Server-Token request header was invalid. Please verify that you are using a valid token.");
  if (fault.status === 422) return pmError(422, 300, "Invalid email request");
  if (fault.status === 429) return pmError(429, 429, "Rate limit exceeded");
  if (fault.status === 503) return pmError(503, 100, "Maintenance");
  return jsonResponse({ Message: fault.status >= 500 ? "Internal Server Error" : "Injected sandbox error" }, fault.status);
}
