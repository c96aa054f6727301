/**
 * The one outbound HTTP client every connector uses: a timeout, classification of failures
 * (transient vs permanent), typed response parsing, and an audit row for every call with
 * secrets redacted. Connectors only describe requests and response schemas.
 */
import type { z } from "zod";
import { MAX_REQUEST_BODY, MAX_RESPONSE_BODY, truncate, type AuditSink } from "../audit/sink";
import type { Redactor } from "../audit/redact";
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

  constructor(private readonly options: HttpClientOptions) {
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.now = options.now ?? Date.now;
  }

  async call<T>(spec: CallSpec<T>): Promise<CallResult<T>> {
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
    const started = this.now();
    const audit = (status: number | null, responseBody: string | null, outcome: "success" | "transient" | "permanent", error: string | null) => {
      const { redactor, context } = this.options;
      this.options.audit.record({
        ...context,
        connector: spec.connector,
        method: spec.method,
        url: redactor.redact(spec.url),
        requestBody: truncate(redactor.redact(body ?? null), MAX_REQUEST_BODY),
        status,
        responseBody: truncate(redactor.redact(responseBody), MAX_RESPONSE_BODY),
        durationMs: this.now() - started,
        attempt: context.attempt,
        outcome,
        error: error === null ? null : redactor.redact(error),
        createdAt: started,
      });
    };

    let response: Response;
    let text: string;
    try {
      const request = new Request(spec.url, { method: spec.method, headers, body, signal: AbortSignal.timeout(this.timeoutMs) });
      response = await this.options.transport(request);
      text = await response.text();
    } catch (error) {
      const timedOut = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
      const message = timedOut ? `timed out after ${this.timeoutMs} ms` : `network error: ${error instanceof Error ? error.message : String(error)}`;
      audit(null, null, "transient", message);
      throw new ActionFailure("transient", `${spec.connector} ${spec.method}: ${message}`, { connector: spec.connector, status: null });
    }

    const outcome = classifyStatus(response.status);
    if (outcome !== "success") {
      const message = `${spec.connector} ${spec.method} answered ${response.status}: ${errorMessage(text)}`;
      audit(response.status, text, outcome, message);
      throw new ActionFailure(outcome, this.options.redactor.redact(message), {
        connector: spec.connector,
        status: response.status,
        retryAfterMs: parseRetryAfter(response.headers.get("retry-after"), this.now()),
      });
    }

    const parsed = spec.schema.safeParse(parseJson(text));
    if (!parsed.success) {
      const message = `${spec.connector} ${spec.method} answered ${response.status} with an unexpected body: ${parsed.error.issues[0]?.message ?? "invalid"}`;
      audit(response.status, text, "permanent", message);
      throw new ActionFailure("permanent", message, { connector: spec.connector, status: response.status });
    }
    audit(response.status, text, "success", null);
    return { status: response.status, data: parsed.data, headers: response.headers };
  }
}

function parseJson(text: string): unknown {
  if (text.trim() === "") return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The human part of a vendor error body (Mailchimp `detail`, HubSpot `message`, Stripe `error.message`, …). */
export function errorMessage(text: string): string {
  const body = parseJson(text);
  if (body && typeof body === "object") {
    const b = body as Record<string, unknown>;
    const nested = b.error && typeof b.error === "object" ? (b.error as Record<string, unknown>).message : undefined;
    for (const candidate of [b.detail, b.message, nested, b.title, b.Message, b.error_description, b.error]) {
      if (typeof candidate === "string" && candidate !== "") return candidate.slice(0, 300);
    }
  }
  return text.slice(0, 300) || "(empty body)";
}
