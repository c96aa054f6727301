/**
 * The fake Mailchimp's list webhooks (the real API), the form posts member changes produce,
 * filtered by event type and source, and member archive. Every delivery must be accepted by the
 * product's own parser.
 */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { parseMailchimpForm } from "../../src/ingest/mailchimp";
import { createFakeMailchimp, type FakeMailchimpState, type MailchimpChange, type MailchimpWebhookInput } from "../../src/sandbox/fake-mailchimp";

const API_KEY = "0123456789abcdef0123456789abcdef-us21";
const LIST = "list0001";
const HOOK = "https://syncwire.example.com/webhooks/mailchimp/the-url-secret";
const T0 = Date.parse("2026-01-01T00:00:00.000Z");
const ALL_EVENTS = { subscribe: true, unsubscribe: true, profile: true, cleaned: true, upemail: true, campaign: true };
const ALL_SOURCES = { user: true, admin: true, api: true };

const hashOf = (email: string) => createHash("md5").update(email.toLowerCase()).digest("hex");

function setup(opts: { webhooks?: MailchimpWebhookInput[]; state?: FakeMailchimpState } = {}) {
  const sent: Request[] = [];
  const changes: MailchimpChange[] = [];
  const fake = createFakeMailchimp({
    apiKey: API_KEY,
    listIds: [LIST],
    now: () => T0,
    onChange: (c) => changes.push(c),
    dispatch: async (r) => void sent.push(r),
    ...(opts.webhooks === undefined ? {} : { webhooks: opts.webhooks }),
    ...(opts.state === undefined ? {} : { state: opts.state }),
  });
  return { fake, sent, changes };
}

type Fake = ReturnType<typeof setup>["fake"];

async function call<T = Record<string, unknown>>(fake: Fake, method: string, path: string, body?: unknown, actor?: string) {
  const headers: Record<string, string> = { Authorization: `Basic ${btoa(`any:${API_KEY}`)}`, "Content-Type": "application/json" };
  if (actor !== undefined) headers["X-Sandbox-Actor"] = actor;
  const init: RequestInit = { method, headers };
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await fake.handle(new Request(`https://us21.api.mailchimp.com${path}`, init), path);
  const text = await res.text();
  return { status: res.status, json: (text === "" ? null : JSON.parse(text)) as T };
}

const member = (email: string) => `/3.0/lists/${LIST}/members/${hashOf(email)}`;
const subscribe = (fake: Fake, email: string, extra: Record<string, unknown> = {}) =>
  call(fake, "PUT", member(email), { email_address: email, status_if_new: "subscribed", merge_fields: { FNAME: "Ada", LNAME: "Lovelace" }, ...extra });

/** The delivery as the product receives it: form fields in order, and the product's parse. */
async function received(request: Request, url = HOOK) {
  expect(request.method).toBe("POST");
  expect(request.url).toBe(url);
  expect(request.headers.get("content-type")).toBe("application/x-www-form-urlencoded");
  const body = await request.text();
  const parsed = await parseMailchimpForm(body, T0);
  if (!parsed.ok) throw new Error(`the product rejected the form: ${parsed.message}`);
  return { fields: [...new URLSearchParams(body)], event: parsed.events[0]! };
}

describe("fake Mailchimp: list webhooks API", () => {
  it("adds, lists, reads and deletes webhooks in the API's shapes", async () => {
    const { fake } = setup();
    const created = await call(fake, "POST", `/3.0/lists/${LIST}/webhooks`, { url: HOOK, events: { unsubscribe: true }, sources: { user: true } });
    expect(created.status).toBe(200);
    const id = created.json.id as string;
    expect(id).toMatch(/^[0-9a-f]{10}$/);
    expect(created.json).toEqual({
      id,
      url: HOOK,
      events: { subscribe: false, unsubscribe: true, profile: false, cleaned: false, upemail: false, campaign: false },
      sources: { user: true, admin: false, api: false },
      list_id: LIST,
      _links: [],
    });
    expect((await call(fake, "GET", `/3.0/lists/${LIST}/webhooks`)).json).toEqual({ webhooks: [created.json], list_id: LIST, total_items: 1, _links: [] });
    expect((await call(fake, "GET", `/3.0/lists/${LIST}/webhooks/${id}`)).json).toEqual(created.json);
    expect((await call(fake, "DELETE", `/3.0/lists/${LIST}/webhooks/${id}`)).status).toBe(204);
    expect((await call(fake, "GET", `/3.0/lists/${LIST}/webhooks/${id}`)).status).toBe(404);
    expect((await call(fake, "GET", `/3.0/lists/${LIST}/webhooks`)).json).toMatchObject({ webhooks: [], total_items: 0 });
  });

  it("rejects what the API rejects", async () => {
    const { fake } = setup();
    const noUrl = await call<{ title: string; errors: { field: string }[] }>(fake, "POST", `/3.0/lists/${LIST}/webhooks`, { events: ALL_EVENTS });
    expect(noUrl.status).toBe(400);
    expect(noUrl.json).toMatchObject({ title: "Invalid Resource", errors: [{ field: "url" }] });
    expect((await call(fake, "POST", `/3.0/lists/${LIST}/webhooks`, { url: HOOK, events: { subscribe: "yes" } })).status).toBe(400);
    expect((await call(fake, "POST", "/3.0/lists/nope/webhooks", { url: HOOK })).status).toBe(404);
    expect((await call(fake, "PUT", `/3.0/lists/${LIST}/webhooks`, { url: HOOK })).status).toBe(405);
  });

  it("starts each list with the given default webhooks, masks their secret in the sandbox views, and can drop them all", async () => {
    const { fake } = setup({ webhooks: [{ url: HOOK, events: ALL_EVENTS, sources: ALL_SOURCES }] });
    expect((await call(fake, "GET", `/3.0/lists/${LIST}/webhooks`)).json).toMatchObject({ total_items: 1, webhooks: [{ url: HOOK, events: ALL_EVENTS }] });
    const control = (method: string) => fake.handle(new Request("http://fake/_sandbox/webhooks", { method }), "/_sandbox/webhooks");
    const state = await (await fake.handle(new Request("http://fake/_sandbox/state"), "/_sandbox/state")).text();
    const view = await (await control("GET")).text();
    for (const text of [state, view]) {
      expect(text).not.toContain("the-url-secret");
      expect(text).toContain("https://syncwire.example.com/webhooks/mailchimp/***");
    }
    expect(await (await control("DELETE")).json()).toEqual({ [LIST]: [] });
    await fake.handle(new Request("http://fake/_sandbox/reset", { method: "POST" }), "/_sandbox/reset");
    expect((await call(fake, "GET", `/3.0/lists/${LIST}/webhooks`)).json).toMatchObject({ total_items: 1 });
  });

  it("gives a list stored before webhooks existed the default webhooks", async () => {
    const old = setup();
    await subscribe(old.fake, "ada@example.com");
    const state = JSON.parse(JSON.stringify(old.fake.state)) as FakeMailchimpState;
    for (const list of Object.values(state.data.lists)) delete (list as { webhooks?: unknown }).webhooks;
    const { fake } = setup({ state, webhooks: [{ url: HOOK, events: ALL_EVENTS, sources: ALL_SOURCES }] });
    expect((await call(fake, "GET", `/3.0/lists/${LIST}/webhooks`)).json).toMatchObject({ total_items: 1 });
    expect((await call(fake, "GET", member("ada@example.com"))).status).toBe(200);
  });
});

describe("fake Mailchimp: webhook deliveries", () => {
  it("posts a subscribe with Mailchimp's documented fields, in order", async () => {
    const { fake, sent } = setup({ webhooks: [{ url: HOOK, events: ALL_EVENTS, sources: ALL_SOURCES }] });
    const created = await subscribe(fake, "Ada@Example.com");
    expect(sent).toHaveLength(1);
    const { fields, event } = await received(sent[0]!);
    expect(fields).toEqual([
      ["type", "subscribe"],
      ["fired_at", "2026-01-01 00:00:00"],
      ["data[id]", created.json.unique_email_id],
      ["data[list_id]", LIST],
      ["data[email]", "Ada@Example.com"],
      ["data[email_type]", "html"],
      ["data[merges][EMAIL]", "Ada@Example.com"],
      ["data[merges][FNAME]", "Ada"],
      ["data[merges][LNAME]", "Lovelace"],
      ["data[merges][ADDRESS]", ""],
      ["data[merges][PHONE]", ""],
      ["data[merges][BIRTHDAY]", ""],
      ["data[ip_opt]", ""],
      ["data[ip_signup]", ""],
    ]);
    expect(event).toMatchObject({ type: "subscribe", entityKey: "email:ada@example.com", occurredAt: T0 });
  });

  it("fires only for the configured event types and sources", async () => {
    const { fake, sent, changes } = setup({ webhooks: [{ url: HOOK, events: { unsubscribe: true }, sources: { user: true } }] });
    await subscribe(fake, "ada@example.com"); // subscribe: type not configured
    await call(fake, "PATCH", member("ada@example.com"), { status: "unsubscribed" }); // by the API: source not configured
    await call(fake, "PATCH", member("ada@example.com"), { status: "subscribed" });
    await call(fake, "PATCH", member("ada@example.com"), { merge_fields: { FNAME: "Augusta" } }, "user"); // profile: not configured
    expect(sent).toHaveLength(0);
    expect(changes.map((c) => `${c.type}/${c.source}`)).toEqual(["subscribe/api", "unsubscribe/api", "subscribe/api", "profile/user"]);

    // The person unsubscribes, through the same handler the API uses.
    await call(fake, "PATCH", member("ada@example.com"), { status: "unsubscribed" }, "user");
    expect(sent).toHaveLength(1);
    const { fields, event } = await received(sent[0]!);
    expect(fields.slice(0, 4)).toEqual([["type", "unsubscribe"], ["fired_at", "2026-01-01 00:00:00"], ["data[action]", "unsub"], ["data[reason]", "manual"]]);
    expect(Object.fromEntries(fields)).toMatchObject({ "data[email]": "ada@example.com", "data[merges][FNAME]": "Augusta", "data[list_id]": LIST });
    expect(event.type).toBe("unsubscribe");
  });

  it("tells admin changes from the person's and the API's", async () => {
    const { fake, sent } = setup({ webhooks: [{ url: HOOK, events: ALL_EVENTS, sources: { admin: true } }] });
    await subscribe(fake, "ada@example.com");
    await subscribe(fake, "bob@example.com");
    expect(sent).toHaveLength(0);
    await call(fake, "PATCH", member("bob@example.com"), { merge_fields: { LNAME: "Babbage" } }, "admin");
    expect((await received(sent[0]!)).event).toMatchObject({ type: "profile", entityKey: "email:bob@example.com" });
    expect((await call(fake, "PATCH", member("bob@example.com"), {}, "robot")).status).toBe(400);
  });

  it("posts one request per matching webhook", async () => {
    const other = "https://other.example.com/hook";
    const { fake, sent } = setup({ webhooks: [{ url: HOOK, events: ALL_EVENTS, sources: ALL_SOURCES }, { url: other, events: ALL_EVENTS, sources: ALL_SOURCES }] });
    await subscribe(fake, "ada@example.com");
    expect(sent.map((r) => r.url)).toEqual([HOOK, other]);
  });

  it("sends upemail with the old and the new address", async () => {
    const { fake, sent } = setup({ webhooks: [{ url: HOOK, events: { upemail: true }, sources: ALL_SOURCES }] });
    await subscribe(fake, "ada@example.com");
    const moved = await call(fake, "PATCH", member("ada@example.com"), { email_address: "ada@lovelace.example" });
    expect(sent).toHaveLength(1);
    const { fields, event } = await received(sent[0]!);
    expect(fields).toEqual([
      ["type", "upemail"],
      ["fired_at", "2026-01-01 00:00:00"],
      ["data[list_id]", LIST],
      ["data[new_id]", moved.json.unique_email_id],
      ["data[new_email]", "ada@lovelace.example"],
      ["data[old_email]", "ada@example.com"],
    ]);
    expect(event.entityKey).toBe("email:ada@example.com"); // keyed by the address the product knew
  });

  it("sends cleaned with reason hard", async () => {
    const { fake, sent } = setup({ webhooks: [{ url: HOOK, events: { cleaned: true }, sources: ALL_SOURCES }] });
    await subscribe(fake, "ada@example.com");
    await call(fake, "PATCH", member("ada@example.com"), { status: "cleaned" });
    const { fields } = await received(sent[0]!);
    expect(fields).toEqual([["type", "cleaned"], ["fired_at", "2026-01-01 00:00:00"], ["data[list_id]", LIST], ["data[reason]", "hard"], ["data[email]", "ada@example.com"]]);
  });
});

describe("fake Mailchimp: archive", () => {
  it("archives a member: 204, reads back archived, hidden from the default list, no webhook", async () => {
    const { fake, sent } = setup({ webhooks: [{ url: HOOK, events: ALL_EVENTS, sources: ALL_SOURCES }] });
    await subscribe(fake, "ada@example.com");
    await subscribe(fake, "bob@example.com");
    sent.length = 0;
    const archived = await call(fake, "DELETE", member("ada@example.com"));
    expect(archived).toEqual({ status: 204, json: null });
    expect(sent).toHaveLength(0);
    expect((await call(fake, "GET", member("ada@example.com"))).json).toMatchObject({ status: "archived" });
    const list = await call<{ members: { email_address: string }[]; total_items: number }>(fake, "GET", `/3.0/lists/${LIST}/members`);
    expect(list.json.members.map((m) => m.email_address)).toEqual(["bob@example.com"]);
    expect(list.json.total_items).toBe(1);
    const only = await call<{ members: { email_address: string }[] }>(fake, "GET", `/3.0/lists/${LIST}/members?status=archived`);
    expect(only.json.members.map((m) => m.email_address)).toEqual(["ada@example.com"]);
    expect((await call(fake, "DELETE", member("nobody@example.com"))).status).toBe(404);
    // Changes to an archived contact fire nothing and keep it archived.
    await call(fake, "PATCH", member("ada@example.com"), { merge_fields: { FNAME: "Augusta" } });
    expect(sent).toHaveLength(0);
    expect((await call(fake, "GET", member("ada@example.com"))).json).toMatchObject({ status: "archived" });
  });

  it("re-adds an archived contact with a PUT: status_if_new applies, and it fires subscribe", async () => {
    const { fake, sent } = setup({ webhooks: [{ url: HOOK, events: ALL_EVENTS, sources: ALL_SOURCES }] });
    await subscribe(fake, "ada@example.com");
    await call(fake, "PATCH", member("ada@example.com"), { status: "unsubscribed" });
    await call(fake, "DELETE", member("ada@example.com"));
    sent.length = 0;
    expect((await call(fake, "PUT", member("ada@example.com"), { email_address: "ada@example.com" })).status).toBe(400);
    const back = await call(fake, "PUT", member("ada@example.com"), { email_address: "ada@example.com", status_if_new: "subscribed" });
    expect(back.json).toMatchObject({ status: "subscribed" });
    expect(sent).toHaveLength(1);
    expect((await received(sent[0]!)).event.type).toBe("subscribe");
  });

  it("unarchives with a PATCH that sets a status, without an unsubscribe webhook", async () => {
    const { fake, sent } = setup({ webhooks: [{ url: HOOK, events: ALL_EVENTS, sources: ALL_SOURCES }] });
    await subscribe(fake, "ada@example.com");
    await call(fake, "DELETE", member("ada@example.com"));
    sent.length = 0;
    expect((await call(fake, "PATCH", member("ada@example.com"), { status: "unsubscribed" })).json).toMatchObject({ status: "unsubscribed" });
    expect(sent).toHaveLength(0);
  });
});
