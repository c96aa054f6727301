/**
 * Postmark: one email from a server template, with the server token as X-Postmark-Server-Token.
 * https://postmarkapp.com/developer/api/templates-api#email-with-template
 *
 * Postmark has no idempotency key: a request sent twice is two emails. The action ledger is what
 * keeps a welcome to one per customer; this connector sends exactly one request per call and
 * never retries on its own. Errors: 401 (ErrorCode 10, bad token) and 422 (the request itself:
 * 300 invalid request, 406 inactive recipient, 1101 unknown template, …) are permanent; 429 and
 * 5xx are transient (the HttpClient classifies them).
 */
import { z } from "zod";
import type { PostmarkConfig } from "../config";
import { ActionFailure } from "./errors";
import type { HttpClient } from "./http-client";

export interface TemplatedEmail {
  /** Recipient address(es), comma-separated; Postmark allows 50. */
  to: string;
  templateAlias: string;
  /** The values the template renders (Subject, HtmlBody, TextBody). */
  model: Record<string, unknown>;
  /** One tag per message, at most 1000 characters. */
  tag?: string;
  /** At most 10 fields; keys up to 20 characters, values up to 80. Never shown to the recipient. */
  metadata?: Record<string, string>;
  /** Default "outbound", the server's transactional stream. */
  messageStream?: string;
}

export interface SentEmail {
  messageId: string;
  submittedAt: string;
}

const SendAnswer = z.looseObject({
  To: z.string().optional(),
  SubmittedAt: z.string(),
  MessageID: z.string(),
  ErrorCode: z.number(),
  Message: z.string(),
});

export class PostmarkConnector {
  constructor(
    private readonly http: HttpClient,
    private readonly config: PostmarkConfig,
  ) {}

  /**
   * POST /email/withTemplate from POSTMARK_FROM.
   *
   * @example await postmark.sendWithTemplate({ to: "ada@example.com", templateAlias: "welcome", model: { name: "Ada" }, tag: "welcome" })
   *          // -> { messageId: "b7bc2f4a-…", submittedAt: "2026-01-01T00:00:00.0000000+00:00" }
   */
  async sendWithTemplate(email: TemplatedEmail): Promise<SentEmail> {
    const json: Record<string, unknown> = {
      From: this.config.from,
      To: email.to,
      TemplateAlias: email.templateAlias,
      TemplateModel: email.model,
    };
    if (email.tag !== undefined) json.Tag = email.tag;
    if (email.metadata !== undefined) json.Metadata = email.metadata;
    if (email.messageStream !== undefined) json.MessageStream = email.messageStream;
    const { status, data } = await this.http.call({
      connector: "postmark",
      method: "POST",
      url: `${this.config.baseUrl}/email/withTemplate`,
      headers: { "x-postmark-server-token": this.config.serverToken },
      json,
      schema: SendAnswer,
    });
    // A single send reports its errors with a 4xx; a 2xx naming one is not a sent email.
    if (data.ErrorCode !== 0) {
      throw new ActionFailure("permanent", `postmark answered ${status} with ErrorCode ${data.ErrorCode}: ${data.Message}`, { connector: "postmark", status });
    }
    return { messageId: data.MessageID, submittedAt: data.SubmittedAt };
  }

  /** The welcome email: POSTMARK_WELCOME_TEMPLATE, tagged "welcome". */
  async sendWelcome(to: string, model: Record<string, unknown>, metadata?: Record<string, string>): Promise<SentEmail> {
    return this.sendWithTemplate({ to, templateAlias: this.config.welcomeTemplate, model, tag: "welcome", ...(metadata ? { metadata } : {}) });
  }
}
