/** The Postmark connector against the fake, in-process: what it sends, how failures are classified, redaction. */
import { describe, expect, it } from "vitest";
import { Redactor } from "../../src/audit/redact";
import { AuditBuffer } from "../../src/audit/sink";
import type { PostmarkConfig } from "../../src/config";
import { ActionFailure } from "../../src/connectors/errors";
import { HttpClient, type Transport } from "../../src/connectors/http-client";
import { PostmarkConnector } from "../../src/connectors/postmark";
import { createFakePostmark, type FakePostmarkState, type PostmarkSentMessage } from "../../src/sandbox/fake-postmark";
import type { FakeService } from "../../src/sandbox/fake-service";

const BASE = "https://sandbox.invalid/postmark";
const TOKEN = "pm-server-token-0123456789abcdef";

function setup(overrides: Partial<PostmarkConfig> = {}) {
  const fake = createFakePostmark({ serverToken: TOKEN, templates: ["welcome"] });
  const transport: Transport = (request) => {
    const url = new URL(request.url);
    return fake.handle(request, url.pathname.slice("/postmark".length) + url.search);
  };
  const config: PostmarkConfig = { baseUrl: BASE, serverToken: TOKEN, from: "Syncwire <hello@example.com>", welcomeTemplate: "welcome", ...overrides };
  const audit = new AuditBuffer();
  const http = new HttpClient({ transport, audit, redactor: new Redactor([TOKEN, config.serverToken]), context: { eventId: "evt_1", entityKey: "customer:1", action: "welcome", attempt: 1 } });
  return { fake, audit, postmark: new PostmarkConnector(http, config) };
}

type Fake = FakeService<FakePostmarkState>;
const outbox = (fake: Fake): PostmarkSentMessage[] => fake.state.data.outbox;
const failNext = (fake: Fake, status: number, count = 1) =>
  fake.handle(new Request(`${BASE}/_sandbox/faults`, { method: "POST", body: JSON.stringify({ failNext: { count, status } }) }), "/_sandbox/faults");

async function failure(promise: Promise<unknown>): Promise<ActionFailure> {
  const error = await promise.then(() => null, (e: unknown) => e);
  expect(error).toBeInstanceOf(ActionFailure);
  return error as ActionFailure;
}

describe("Postmark connector", () => {
  it("sends the template from POSTMARK_FROM with the model, tag and metadata", async () => {
    const { fake, postmark } = setup();
    const sent = await postmark.sendWithTemplate({
      to: "ada@example.com", templateAlias: "welcome", model: { name: "Ada Lovelace" }, tag: "welcome", metadata: { shopifyCustomerId: "820982911946154508" },
    });
    expect(sent.messageId).toBe(outbox(fake)[0]?.MessageID);
    expect(outbox(fake)).toEqual([expect.objectContaining({
      From: "Syncwire <hello@example.com>",
      To: "ada@example.com",
      TemplateAlias: "welcome",
      TemplateModel: { name: "Ada Lovelace" },
      Tag: "welcome",
      Metadata: { shopifyCustomerId: "820982911946154508" },
      MessageStream: "outbound",
    })]);
  });

  it("sends the welcome with POSTMARK_WELCOME_TEMPLATE", async () => {
    const { fake, postmark } = setup();
    await postmark.sendWelcome("grace@example.com", { name: "Grace" });
    expect(outbox(fake)[0]).toMatchObject({ To: "grace@example.com", TemplateAlias: "welcome", Tag: "welcome" });
  });

  it("treats 500 and 503 as transient and sends nothing while they last", async () => {
    const { fake, postmark, audit } = setup();
    await failNext(fake, 500);
    expect(await failure(postmark.sendWelcome("ada@example.com", {}))).toMatchObject({ kind: "transient", details: { connector: "postmark", status: 500 } });
    await failNext(fake, 503);
    expect(await failure(postmark.sendWelcome("ada@example.com", {}))).toMatchObject({ kind: "transient", details: { status: 503 } });
    expect(outbox(fake)).toHaveLength(0);
    await postmark.sendWelcome("ada@example.com", {});
    expect(outbox(fake)).toHaveLength(1);
    expect(audit.drain().map((r) => [r.status, r.outcome])).toEqual([[500, "transient"], [503, "transient"], [200, "success"]]);
  });

  it("treats a 422 (unknown template) as permanent, with Postmark's message", async () => {
    const { fake, postmark } = setup({ welcomeTemplate: "welcome-v2" });
    const error = await failure(postmark.sendWelcome("ada@example.com", {}));
    expect(error).toMatchObject({ kind: "permanent", details: { status: 422 } });
    expect(error.message).toContain("The Template's 'Alias' associated with this request is not valid or was not found.");
    expect(outbox(fake)).toHaveLength(0);
  });

  it("treats a 401 (wrong server token) as permanent", async () => {
    const { postmark } = setup({ serverToken: "not-the-server-token-0123456789" });
    expect(await failure(postmark.sendWelcome("ada@example.com", {}))).toMatchObject({ kind: "permanent", details: { status: 401 } });
  });

  it("treats a 429 as transient", async () => {
    const { fake, postmark } = setup();
    await failNext(fake, 429);
    expect(await failure(postmark.sendWelcome("ada@example.com", {}))).toMatchObject({ kind: "transient", details: { status: 429 } });
  });

  it("never puts the server token in an audit row", async () => {
    const { postmark, audit } = setup();
    await postmark.sendWelcome("ada@example.com", { token: TOKEN }); // even when the model quotes it
    const rows = audit.drain();
    expect(rows).toHaveLength(1);
    expect(JSON.stringify(rows)).not.toContain(TOKEN);
    expect(rows[0]?.requestBody).toContain('"token":"[REDACTED]"');
  });
});
