/**
 * The fake Mailchimp's "Batch subscribe or unsubscribe" (POST /3.0/lists/{list_id}): up to 500
 * members, per-member errors rather than a failed request, update_existing's semantics (it
 * changes an existing member's status, an unsubscribe included), and the webhooks it fires.
 */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createFakeMailchimp, type MailchimpChange } from "../../src/sandbox/fake-mailchimp";

const API_KEY = "0123456789abcdef0123456789abcdef-us21";
const LIST = "list0001";
const HOOK = "https://syncwire.example.com/webhooks/mailchimp/url-secret";
const hashOf = (email: string) => createHash("md5").update(email.toLowerCase()).digest("hex");

interface BatchBody {
  new_members: { email_address: string; status: string; merge_fields: Record<string, string> }[];
  updated_members: { email_address: string; status: string; merge_fields: Record<string, string> }[];
  errors: { email_address: string; error: string; error_code: string; field?: string; field_message?: string }[];
  total_created: number;
  total_updated: number;
  error_count: number;
  _links: unknown[];
}

function setup(webhooks = false) {
  const changes: MailchimpChange[] = [];
  const sent: Request[] = [];
  const fake = createFakeMailchimp({
    apiKey: API_KEY,
    listIds: [LIST],
    now: () => Date.parse("2026-01-01T00:00:00.000Z"),
    onChange: (c) => changes.push(c),
    ...(webhooks
      ? { dispatch: async (r: Request) => void sent.push(r), webhooks: [{ url: HOOK, events: { subscribe: true, unsubscribe: true, profile: true }, sources: { api: true } }] }
      : {}),
  });
  return { fake, changes, sent };
}
type Fake = ReturnType<typeof setup>["fake"];

async function call<T = BatchBody>(fake: Fake, method: string, path: string, body?: unknown) {
  const init: RequestInit = { method, headers: { Authorization: `Basic ${btoa(`x:${API_KEY}`)}`, "Content-Type": "application/json" } };
  if (body !== undefined) init.body = typeof body === "string" ? body : JSON.stringify(body);
  const res = await fake.handle(new Request(`https://us21.api.mailchimp.com${path}`, init), path);
  const text = await res.text();
  return { res, status: res.status, json: (text === "" ? null : JSON.parse(text)) as T };
}
const batch = (fake: Fake, body: unknown, query = "") => call(fake, "POST", `/3.0/lists/${LIST}${query}`, body);
const member = async (fake: Fake, email: string) => (await call<{ status: string; merge_fields: Record<string, string> }>(fake, "GET", `/3.0/lists/${LIST}/members/${hashOf(email)}`)).json;
const m = (email: string, status?: string, extra: Record<string, unknown> = {}) => ({ email_address: email, ...(status ? { status } : {}), ...extra });

describe("fake Mailchimp batch subscribe: new members", () => {
  it("adds many members in one call with the status each is given", async () => {
    const { fake, changes } = setup();
    const { status, json } = await batch(fake, { members: [m("ada@example.com", "subscribed", { merge_fields: { FNAME: "Ada" } }), m("bob@example.com", "unsubscribed")] });
    expect(status).toBe(200);
    expect(json).toMatchObject({ total_created: 2, total_updated: 0, error_count: 0, errors: [], updated_members: [], _links: [] });
    expect(json.new_members.map((x) => [x.email_address, x.status, x.merge_fields.FNAME])).toEqual([["ada@example.com", "subscribed", "Ada"], ["bob@example.com", "unsubscribed", ""]]);
    expect(fake.state.requests.map((r) => `${r.method} ${r.path}`)).toEqual([`POST /3.0/lists/${LIST}`]);
    expect((await member(fake, "bob@example.com")).status).toBe("unsubscribed");
    expect(changes.map((c) => [c.type, c.member.email_address])).toEqual([["subscribe", "ada@example.com"]]);
  });

  it("reports invalid addresses and members without a status as errors, and adds the rest", async () => {
    const { fake } = setup();
    const { status, json } = await batch(fake, {
      members: [m("ok@example.com", "subscribed"), m("not-an-email", "subscribed"), m("nostatus@example.com"), m("x@example.com", "maybe"), "nope"],
    });
    expect(status).toBe(200);
    expect(json.total_created).toBe(1);
    expect(json.error_count).toBe(4);
    expect(json.errors[0]).toEqual({
      email_address: "not-an-email",
      error: "Please provide a valid email address.",
      error_code: "ERROR_GENERIC",
      field: "email_address",
      field_message: "Please provide a valid email address.",
    });
    expect(json.errors.slice(1).map((e) => [e.email_address, e.error_code, e.field])).toEqual([
      ["nostatus@example.com", "ERROR_GENERIC", "status"], ["x@example.com", "ERROR_GENERIC", "status"], ["", "ERROR_GENERIC", undefined],
    ]);
  });

  it("has no status_if_new: a member with only that one is an error", async () => {
    const { fake } = setup();
    const { json } = await batch(fake, { members: [m("ada@example.com", undefined, { status_if_new: "subscribed" })] });
    expect(json.errors.map((e) => e.field)).toEqual(["status"]);
    expect(json.total_created).toBe(0);
  });

  it("reports an address sent twice, unless skip_duplicate_check keeps the first", async () => {
    const { fake } = setup();
    const twice = [m("ada@example.com", "subscribed"), m("ADA@example.com", "unsubscribed")];
    const plain = await batch(fake, { members: twice });
    expect([plain.json.total_created, plain.json.error_count]).toEqual([1, 1]);
    const { fake: other } = setup();
    const skipped = await batch(other, { members: twice }, "?skip_duplicate_check=true");
    expect([skipped.json.total_created, skipped.json.error_count]).toEqual([1, 0]);
    expect((await member(other, "ada@example.com")).status).toBe("subscribed");
  });
});

describe("fake Mailchimp batch subscribe: existing members", () => {
  it("leaves existing members alone without update_existing: ERROR_CONTACT_EXISTS", async () => {
    const { fake } = setup();
    await batch(fake, { members: [m("ada@example.com", "unsubscribed")] });
    const { json } = await batch(fake, { members: [m("ada@example.com", "subscribed", { merge_fields: { FNAME: "Ada" } }), m("bob@example.com", "subscribed")] });
    expect(json.total_created).toBe(1);
    expect(json.errors).toEqual([{
      email_address: "ada@example.com",
      error: "ada@example.com is already a list member, do you want to update? please provide update_existing:true in the request body",
      error_code: "ERROR_CONTACT_EXISTS",
    }]);
    expect(await member(fake, "ada@example.com")).toMatchObject({ status: "unsubscribed", merge_fields: { FNAME: "" } });
  });

  it("with update_existing, updates existing members' fields and status: an unsubscribed member is subscribed again", async () => {
    const { fake, changes } = setup();
    await batch(fake, { members: [m("ada@example.com", "unsubscribed"), m("bob@example.com", "subscribed")] });
    changes.length = 0;
    const { json } = await batch(fake, {
      update_existing: true,
      members: [m("ada@example.com", "subscribed"), m("bob@example.com", "subscribed", { merge_fields: { FNAME: "Bob" } }), m("cy@example.com", "subscribed")],
    });
    expect([json.total_created, json.total_updated, json.error_count]).toEqual([1, 2, 0]);
    expect(json.updated_members.map((x) => [x.email_address, x.status])).toEqual([["ada@example.com", "subscribed"], ["bob@example.com", "subscribed"]]);
    // What the reference says update_existing does: the unsubscribe is reversed.
    expect((await member(fake, "ada@example.com")).status).toBe("subscribed");
    expect(changes.map((c) => [c.type, c.member.email_address])).toEqual([
      ["subscribe", "ada@example.com"], ["profile", "bob@example.com"], ["subscribe", "cy@example.com"],
    ]);
  });

  it("keeps an unsubscribe when the member is sent with its own status", async () => {
    const { fake, changes } = setup();
    await batch(fake, { members: [m("ada@example.com", "unsubscribed")] });
    const { json } = await batch(fake, { update_existing: true, members: [m("ada@example.com", "unsubscribed", { merge_fields: { FNAME: "Ada" } })] });
    expect(json.total_updated).toBe(1);
    expect(await member(fake, "ada@example.com")).toMatchObject({ status: "unsubscribed", merge_fields: { FNAME: "Ada" } });
    expect(changes.map((c) => c.type)).toEqual(["profile"]);
  });

  it("unsubscribes with update_existing and brings an archived contact back as new", async () => {
    const { fake, changes } = setup();
    await batch(fake, { members: [m("ada@example.com", "subscribed"), m("bob@example.com", "subscribed")] });
    await call(fake, "DELETE", `/3.0/lists/${LIST}/members/${hashOf("bob@example.com")}`);
    changes.length = 0;
    const { json } = await batch(fake, { update_existing: true, members: [m("ada@example.com", "unsubscribed"), m("bob@example.com", "subscribed")] });
    expect(json.updated_members.map((x) => x.email_address)).toEqual(["ada@example.com"]);
    expect(json.new_members.map((x) => [x.email_address, x.status])).toEqual([["bob@example.com", "subscribed"]]);
    expect(changes.map((c) => [c.type, c.member.email_address])).toEqual([["unsubscribe", "ada@example.com"], ["subscribe", "bob@example.com"]]);
  });
});

describe("fake Mailchimp batch subscribe: the request", () => {
  it("posts one list webhook per changed member, as single calls do", async () => {
    const { fake, sent } = setup(true);
    await batch(fake, { members: [m("ada@example.com", "subscribed"), m("bob@example.com", "unsubscribed"), m("bad", "subscribed")] });
    await batch(fake, { update_existing: true, members: [m("ada@example.com", "unsubscribed"), m("bob@example.com", "unsubscribed")] });
    const bodies = await Promise.all(sent.map(async (r) => new URLSearchParams(await r.text())));
    expect(sent.every((r) => r.url === HOOK && r.method === "POST")).toBe(true);
    expect(bodies.map((b) => [b.get("type"), b.get("data[email]")])).toEqual([["subscribe", "ada@example.com"], ["unsubscribe", "ada@example.com"]]);
  });

  it("takes at most 500 members; a request that is not valid as a whole is a 400", async () => {
    const { fake } = setup();
    const members = (n: number) => Array.from({ length: n }, (_, i) => m(`m${i}@example.com`, "subscribed"));
    const full = await batch(fake, { members: members(500) });
    expect([full.status, full.json.total_created]).toEqual([200, 500]);
    const { fake: other } = setup();
    const over = await batch(other, { members: members(501) });
    expect(over.status).toBe(400);
    expect(over.res.headers.get("Content-Type")).toContain("application/problem+json");
    expect(over.json).toMatchObject({ title: "Invalid Resource", status: 400 });
    expect(Object.keys(other.state.data.lists[LIST]!.members)).toHaveLength(0);
    expect((await batch(other, "{nope")).json).toMatchObject({ title: "JSON Parse Error" });
    expect((await batch(other, { members: "x" })).status).toBe(400);
    expect((await batch(other, { members: [], update_existing: "yes" })).status).toBe(400);
    expect((await call(other, "GET", `/3.0/lists/${LIST}`)).status).toBe(405);
    expect((await call(other, "POST", "/3.0/lists/unknown", { members: [] })).status).toBe(404);
  });
});
