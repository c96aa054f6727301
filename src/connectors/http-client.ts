/**
 * The one outbound HTTP client every connector uses: a timeout, classification of failures
 * (transient vs permanent), typed response parsing, and an audit row for every call with
 * secrets redacted. Connectors only describe requests and response schemas.
 */
import pLimit, { type LimitFunction } from "p-limit";
import PQueue from "p-queue";
import type { z } from "zod";
import { MAX_REQUEST_BODY, MAX_RESPONSE_BODY, type AuditOutcome, type AuditSink } from "../audit/sink";
import type { Redactor } from "../audit/redact";
import type { CallGate, CallPass } from "../budgets/gate";
import { ActionFailure, classifyStatus, parseRetryAfter } from "./errors";

export type Transport = (request: Request) => Promise<Response>;

/** Who a call is made for; copied into its audit row. */
export interface CallContext {
  eventId: string | null;
  entityKey: string | null;
  action: string | null;
  attempt: number;
}

export interface HttpClientOptions {
  transport: Transport;
  audit: AuditSink;
  redactor: Redactor;
  context: CallContext;
  /** Bounds the calls in flight; shared by every client of one consumer invocation. */
  limit?: LimitFunction;
  /** The vendors' shared budgets (budgets/gate.ts); shared by every client of one consumer invocation. */
  gate?: CallGate;
  /**
   * Epoch ms by which every call must have finished: the end of the attempt's lease on its
   * ledger row. A call that could not finish before it is not sent, so no call of this attempt
   * is still in flight when another consumer may claim the row again.
   */
  deadline?: number;
  timeoutMs?: number;
  now?: () => number;
}

export interface CallSpec<T> {
  connector: string;
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  url: string;
  headers?: Record<string, string>;
  /** A JSON body, or a form body (application/x-www-form-urlencoded). */
  json?: unknown;
  form?: URLSearchParams;
  /** Schema of a 2xx response body; an empty body parses as `null`. */
  schema: z.ZodType<T>;
}

export interface CallResult<T> {
  status: number;
  data: T;
  headers: Headers;
}

export const DEFAULT_TIMEOUT_MS = 15_000;

export class HttpClient {
  private readonly timeoutMs: number;
  private readonly now: () => number;
  private readonly limit: LimitFunction;
  private readonly admit: PQueue;
  /** Calls this client (one action's attempt) has asked for so far. */
  private asked = 0;

  constructor(private readonly options: HttpClientOptions) {
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.now = options.now ?? Date.now;
    this.limit = options.limit ?? pLimit(6);
    this.admit = admissionOf(this.limit);
  }

  /**
   * What every client of one consumer invocation shares (its bound on calls in flight): work
   * that may be shared in flight (a token call) is shared within it, never across invocations,
   * since workerd does not resolve a promise for a request other than the one that made it.
   */
  get scope(): object {
    return this.limit;
  }

  /**
   * Asks the budget, then waits for a free connection and sends; the timeout runs from the
   * moment the call is sent. The next calls ask the budget while the connections are busy, so a
   * connection never waits on a budget request (admissionOf). An action's later calls go before
   * other actions' first ones: work that has begun finishes first, so a long chain of calls (an
   * invoice: customer, invoice, items, finalize) is not left alone at the end of its batch.
   */
  call<T>(spec: CallSpec<T>): Promise<CallResult<T>> {
    return this.admit.add(() => this.send(spec), { priority: this.asked++ });
  }

  private async send<T>(spec: CallSpec<T>): Promise<CallResult<T>> {
    const { redactor, gate } = this.options;
    const failure = (kind: "transient" | "permanent", message: string, status: number | null, retryAfterMs: number | null = null) =>
      new ActionFailure(kind, redactor.redact(`${spec.connector} ${spec.method} ${message}`), { connector: spec.connector, status, retryAfterMs });
    // A call is sent only with its whole timeout before the deadline: cut short, it could time
    // out after the vendor applied it, and its retry would apply it again.
    const latestStart = (this.options.deadline ?? Infinity) - this.timeoutMs;
    const tooLate = () => failure("transient", "not sent: the attempt's lease ends before the call could finish", null);
    if (this.now() > latestStart) throw tooLate();

    const endpoint = `${spec.method} ${new URL(spec.url).pathname}`;
    // Encoded before the budget is asked: a body that cannot be encoded holds no grant.
    const request = encode(spec);
    let pass = gate ? await gate.enter(spec.connector, latestStart, endpoint) : null;
    // The connection is held only while the call is on the wire: the answer is read, then the
    // connection is free while the answer is parsed, audited and reported to the budget.
    const sent = await this.limit(async () => {
      if (this.now() > latestStart) return null;
      // Granted too long ago (connections were busy): counted again, since the vendor counts the
      // call when it arrives. The first grant is spent unused, which errs on the safe side.
      if (pass && this.now() > pass.freshUntil) {
        await pass.exit(null);
        pass = await gate!.enter(spec.connector, latestStart, endpoint);
      }
      return this.transfer(spec, request);
    });
    if (sent === null) {
      await pass?.exit(null);
      throw tooLate();
    }
    return this.conclude(spec, request, sent, failure, pass);
  }

  /** Sends the call and reads its answer; a network error or timeout is the error itself. */
  private async transfer(spec: CallSpec<unknown>, request: EncodedRequest): Promise<Transfer> {
    const started = this.now();
    try {
      // A redirect is never followed: it would carry the Authorization header to whatever host
      // it names. It ends as a failure with its 3xx status instead.
      const init = { method: spec.method, headers: request.headers, body: request.body, redirect: "manual", signal: AbortSignal.timeout(this.timeoutMs) } as const;
      const response = await this.options.transport(new Request(spec.url, init));
      return { started, response, text: await response.text() };
    } catch (error) {
      return { started, error };
    }
  }

  /** Reports the answer to the budget, audits the call, and parses its answer or throws its failure. */
  private async conclude<T>(
    spec: CallSpec<T>,
    request: EncodedRequest,
    sent: Transfer,
    failure: (kind: "transient" | "permanent", message: string, status: number | null, retryAfterMs?: number | null) => ActionFailure,
    pass: CallPass | null,
  ): Promise<CallResult<T>> {
    const { redactor, context } = this.options;
    const audit = (status: number | null, responseBody: string | null, outcome: AuditOutcome, error: string | null) => {
      this.options.audit.record({
        ...context,
        connector: spec.connector,
        method: spec.method,
        url: redactor.redact(spec.url),
        requestBody: redactor.redactTruncated(request.body ?? null, MAX_REQUEST_BODY),
        status,
        responseBody: redactor.redactTruncated(responseBody, MAX_RESPONSE_BODY),
        durationMs: this.now() - sent.started,
        attempt: context.attempt,
        outcome,
        error: error === null ? null : redactor.redact(error),
        createdAt: sent.started,
      });
    };

    if (!("response" in sent)) {
      await pass?.exit(null);
      const { error } = sent;
      const timedOut = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
      // A network error's message can quote the URL, and with it a credential: redacted like everything else.
      const message = timedOut ? `timed out after ${this.timeoutMs} ms` : `network error: ${error instanceof Error ? error.message : String(error)}`;
      audit(null, null, "transient", message);
      throw failure("transient", message, null);
    }
    const { response, text } = sent;
    await pass?.exit(response);

    const outcome = classifyStatus(response.status);
    if (outcome !== "success") {
      // Redacted as it is cut short: a secret cut in half would escape the redactor.
      const message = `answered ${response.status}: ${redactor.redactTruncated(errorMessage(text), MAX_ERROR_TEXT)}`;
      audit(response.status, text, outcome, message);
      throw failure(outcome, message, response.status, parseRetryAfter(response.headers.get("retry-after"), this.now()));
    }

    const parsed = spec.schema.safeParse(parseJson(text));
    if (!parsed.success) {
      const message = `answered ${response.status} with an unexpected body: ${parsed.error.issues[0]?.message ?? "invalid"}`;
      audit(response.status, text, "permanent", message);
      throw failure("permanent", message, response.status);
    }
    audit(response.status, text, "success", null);
    return { status: response.status, data: parsed.data, headers: response.headers };
  }
}

interface EncodedRequest {
  headers: Headers;
  body: string | undefined;
}

/** A call sent: its answer read in full, or what went wrong on the way (a network error, the timeout). */
type Transfer = { started: number; response: Response; text: string } | { started: number; error: unknown };

function encode(spec: CallSpec<unknown>): EncodedRequest {
  const headers = new Headers(spec.headers);
  let body: string | undefined;
  if (spec.json !== undefined) {
    body = JSON.stringify(spec.json);
    headers.set("content-type", "application/json");
  } else if (spec.form) {
    body = spec.form.toString();
    headers.set("content-type", "application/x-www-form-urlencoded");
  }
  headers.set("accept", "application/json");
  return { headers, body };
}

/**
 * The calls of one invocation that may hold a budget grant at once: those in flight and as many
 * again waiting for a connection. Shared by every client with the same connection bound. So the
 * next calls' budget requests overlap the calls in flight, and a grant waits at most about one
 * call's time for its connection (well within the budget's arrival slack).
 */
const admissions = new WeakMap<LimitFunction, PQueue>();
function admissionOf(connections: LimitFunction): PQueue {
  let admit = admissions.get(connections);
  if (!admit) admissions.set(connections, (admit = new PQueue({ concurrency: connections.concurrency * 2 })));
  return admit;
}

function parseJson(text: string): unknown {
  if (text.trim() === "") return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** How much of a vendor's error text a failure message keeps. */
const MAX_ERROR_TEXT = 300;

/** The human part of a vendor error body (Mailchimp `detail`, HubSpot `message`, Stripe `error.message`, …), uncut. */
export function errorMessage(text: string): string {
  const body = parseJson(text);
  if (body && typeof body === "object") {
    const b = body as Record<string, unknown>;
    const nested = b.error && typeof b.error === "object" ? (b.error as Record<string, unknown>).message : undefined;
    for (const candidate of [b.detail, b.message, nested, b.title, b.Message, b.error_description, b.error]) {
      if (typeof candidate === "string" && candidate !== "") return candidate;
    }
  }
  return text || "(empty body)";
}
