/** The fake Postmark in-process: POST /email/withTemplate, its errors, faults and the outbox. */
import { describe, expect, it } from "vitest";
import { createFakePostmark, recipients, type FakePostmarkState, type PostmarkSentMessage } from "../../src/sandbox/fake-postmark";
import type { FakeService } from "../../src/sandbox/fake-service";

const TOKEN = "sandbox-postmark-server-token";
const T0 = Date.parse("2026-01-01T00:00:00.000Z");
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

type Fake = FakeService<FakePostmarkState>;

function setup(templates?: string[]) {
  return createFakePostmark({ serverToken: TOKEN, now: () => T0, ...(templates ? { templates } : {}) });
}

async function call<T = Record<string, unknown>>(fake: Fake, method: string, path: string, body?: unknown, token: string | null = TOKEN) {
  const headers = new Headers({ Accept: "application/json", "Content-Type": "application/json" });
  if (token !== null) headers.set("X-Postmark-Server-Token", token);
  const init: RequestInit = { method, headers };
  if (body !== undefined) init.body = typeof body === "string" ? body : JSON.stringify(body);
  const res = await fake.handle(new Request(`https://api.postmarkapp.com${path}`, init), path);
  const text = await res.text();
  return { status: res.status, json: (text === "" ? null : JSON.parse(text)) as T };
}

const welcome = (overrides: Record<string, unknown> = {}) => ({
  From: "Syncwire <hello@example.com>",
  To: "ada@example.com",
  TemplateAlias: "welcome",
  TemplateModel: { name: "Ada" },
  ...overrides,
});

const send = (fake: Fake, message: unknown, token: string | null = TOKEN) => call(fake, "POST", "/email/withTemplate", message, token);
const outbox = async (fake: Fake, query = "") => (await call<{ messages: PostmarkSentMessage[] }>(fake, "GET", `/_sandbox/outbox${query}`)).json.messages;

describe("fake Postmark: send email with template", () => {
  it("answers 200 with To, SubmittedAt, MessageID, ErrorCode 0 and records the message", async () => {
    const fake = setup();
    const { status, json } = await send(fake, welcome({ Tag: "welcome", Metadata: { customer: "820982911946154508" } }));
    expect(status).toBe(200);
    expect(json).toEqual({ To: "ada@example.com", SubmittedAt: "2026-01-01T00:00:00.0000000+00:00", MessageID: expect.stringMatching(UUID), ErrorCode: 0, Message: "OK" });
    expect(await outbox(fake)).toEqual([{
      MessageID: json.MessageID,
      SubmittedAt: json.SubmittedAt,
      From: "Syncwire <hello@example.com>",
      To: "ada@example.com",
      TemplateId: 1001,
      TemplateAlias: "welcome",
      TemplateModel: { name: "Ada" },
      Tag: "welcome",
      Metadata: { customer: "820982911946154508" },
      MessageStream: "outbound",
    }]);
  });

  it("sends by TemplateId too, and a repeated request is a second email (Postmark has no idempotency key)", async () => {
    const fake = setup(["welcome", "receipt"]);
    const byId = await send(fake, welcome({ TemplateAlias: undefined, TemplateId: 1002 }));
    expect(byId.status).toBe(200);
    await send(fake, welcome());
    const sent = await outbox(fake);
    expect(sent.map((m) => m.TemplateAlias)).toEqual(["receipt", "welcome"]);
    expect(new Set(sent.map((m) => m.MessageID)).size).toBe(2);
  });

  it("filters the outbox by recipient", async () => {
    const fake = setup();
    await send(fake, welcome({ To: "Ada <ada@example.com>" }));
    await send(fake, welcome({ To: "grace@example.com" }));
    expect((await outbox(fake, "?to=ADA@example.com")).map((m) => m.To)).toEqual(["Ada <ada@example.com>"]);
  });
});

describe("fake Postmark: errors", () => {
  it("answers 401 ErrorCode 10 for a missing or wrong server token, and sends nothing", async () => {
    const fake = setup();
    const missing = await send(fake, welcome(), null);
    expect(missing.status).toBe(401);
    expect(missing.json).toMatchObject({ ErrorCode: 10, Message: expect.stringContaining("No Account or Server API tokens were supplied") });
    const wrong = await send(fake, welcome(), "not-the-token");
    expect(wrong.status).toBe(401);
    expect(wrong.json).toMatchObject({ ErrorCode: 10, Message: expect.stringContaining("X-Postmark-Server-Token request header was invalid") });
    expect(await outbox(fake)).toEqual([]);
  });

  it.each([
    ["an unknown alias", welcome({ TemplateAlias: "goodbye" }), 1101, "The Template's 'Alias' associated with this request is not valid or was not found."],
    ["an unknown TemplateId", welcome({ TemplateId: 9 }), 1101, "The Template's 'TemplateId' associated with this request is not valid or was not found."],
    ["no template at all", welcome({ TemplateAlias: undefined }), 1101, expect.any(String)],
    ["no TemplateModel", welcome({ TemplateModel: undefined }), 1120, expect.any(String)],
    ["a bad To", welcome({ To: "not an address" }), 300, "Invalid 'To' address: 'not an address'."],
    ["a bad From", welcome({ From: "" }), 300, "Invalid 'From' address: ''."],
    ["51 recipients", welcome({ To: Array.from({ length: 51 }, (_, i) => `r${i}@example.com`).join(", ") }), 300, expect.stringContaining("50")],
    ["11 metadata fields", welcome({ Metadata: Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`k${i}`, "v"])) }), 300, expect.any(String)],
    ["a metadata value over 80 characters", welcome({ Metadata: { k: "v".repeat(81) } }), 300, expect.any(String)],
    ["an unknown stream", welcome({ MessageStream: "broadcasts" }), 1235, "The stream provided: 'broadcasts' does not exist on this server."],
  ])("answers 422 for %s", async (_name, message, errorCode, text) => {
    const fake = setup();
    const { status, json } = await send(fake, message);
    expect(status).toBe(422);
    expect(json).toEqual({ ErrorCode: errorCode, Message: text });
    expect(await outbox(fake)).toEqual([]);
  });

  it("answers 422 ErrorCode 402 for a body that is not JSON", async () => {
    const { status, json } = await send(setup(), "{not json");
    expect([status, json.ErrorCode]).toEqual([422, 402]);
  });

  it("renders injected faults with Postmark's codes and logs the calls", async () => {
    const fake = setup();
    await call(fake, "POST", "/_sandbox/faults", { failNext: { count: 2, status: 503 } });
    expect(await send(fake, welcome())).toEqual({ status: 503, json: { ErrorCode: 100, Message: "Maintenance" } });
    expect((await send(fake, welcome())).status).toBe(503);
    await call(fake, "POST", "/_sandbox/faults", { failNext: { count: 1, status: 500 } });
    expect((await send(fake, welcome())).status).toBe(500);
    expect((await send(fake, welcome())).status).toBe(200);
    const log = (await call<{ requests: { status: number }[] }>(fake, "GET", "/_sandbox/requests")).json.requests;
    expect(log.map((r) => r.status)).toEqual([503, 503, 500, 200]);
    expect(await outbox(fake)).toHaveLength(1);
  });

  it("empties the outbox on reset", async () => {
    const fake = setup();
    await send(fake, welcome());
    await call(fake, "POST", "/_sandbox/reset");
    expect(await outbox(fake)).toEqual([]);
  });
});

describe("recipients", () => {
  it("reads bare and named addresses, with commas inside quoted names", () => {
    expect(recipients(`"Lovelace, Ada" <ada@example.com>, grace@example.com`)).toEqual(["ada@example.com", "grace@example.com"]);
    expect(recipients("ada@example.com, nope")).toBeNull();
  });
});
