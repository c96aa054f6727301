import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createFakeMailchimp, type FakeMailchimpState, type MailchimpChange } from "../../src/sandbox/fake-mailchimp";
import type { FakeService, RequestLogEntry } from "../../src/sandbox/fake-service";

const API_KEY = "0123456789abcdef0123456789abcdef-us21";
const LIST = "list0001";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const T0 = Date.parse("2026-01-01T00:00:00.000Z");

interface Member {
  id: string;
  email_address: string;
  unique_email_id: string;
  contact_id: string;
  full_name: string;
  status: string;
  merge_fields: Record<string, unknown>;
  last_changed: string;
  timestamp_opt: string;
  list_id: string;
}
interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  errors?: { field: string; message: string }[];
}

type Fake = FakeService<FakeMailchimpState>;

/** Independent of the module under test: md5 of the lower-cased address, as Mailchimp documents. */
const hashOf = (email: string) => createHash("md5").update(email.toLowerCase()).digest("hex");
const basic = (user: string, password: string) => `Basic ${btoa(`${user}:${password}`)}`;

function setup(opts: { state?: FakeMailchimpState; listIds?: string[] } = {}) {
  const clock = { now: T0 };
  const changes: MailchimpChange[] = [];
  const fake = createFakeMailchimp({
    apiKey: API_KEY,
    listIds: opts.listIds ?? [LIST],
    now: () => clock.now,
    onChange: (c) => changes.push(c),
    ...(opts.state ? { state: opts.state } : {}),
  });
  return { fake, clock, changes };
}

async function call<T = unknown>(fake: Fake, method: string, path: string, body?: unknown, auth: string | null = basic("anystring", API_KEY)) {
  const headers = new Headers({ "Content-Type": "application/json" });
  if (auth !== null) headers.set("Authorization", auth);
  const init: RequestInit = { method, headers };
  if (body !== undefined) init.body = typeof body === "string" ? body : JSON.stringify(body);
  const res = await fake.handle(new Request(`https://us21.api.mailchimp.com${path}`, init), path);
  const text = await res.text();
  return { res, status: res.status, json: (text === "" ? null : JSON.parse(text)) as T };
}

const memberPath = (email: string, list = LIST) => `/3.0/lists/${list}/members/${hashOf(email)}`;
const put = (fake: Fake, email: string, body: Record<string, unknown>) =>
  call<Member>(fake, "PUT", memberPath(email), { email_address: email, ...body });

function expectProblem(res: Response, json: unknown, status: number, title: string) {
  expect(res.headers.get("Content-Type")).toContain("application/problem+json");
  const p = json as Problem;
  expect(p).toMatchObject({ type: "https://mailchimp.com/developer/marketing/docs/errors/", status, title });
  expect(typeof p.detail).toBe("string");
  expect(p.instance).toMatch(UUID);
}

describe("fake Mailchimp: authentication", () => {
  it("accepts Basic auth with any username and the API key as password", async () => {
    const { fake } = setup();
    expect((await call(fake, "GET", `/3.0/lists/${LIST}/members`, undefined, basic("whoever", API_KEY))).status).toBe(200);
  });

  it("answers 401 API Key Invalid for a wrong key or scheme", async () => {
    const { fake } = setup();
    for (const auth of [basic("anystring", "nope-us21"), `Bearer ${API_KEY}`, "Basic !!notbase64"]) {
      const { res, json } = await call(fake, "GET", `/3.0/lists/${LIST}/members`, undefined, auth);
      expect(res.status).toBe(401);
      expectProblem(res, json, 401, "API Key Invalid");
      expect((json as Problem).detail).toBe("Your API key may be invalid, or you've attempted to access the wrong datacenter.");
    }
  });

  it("answers 401 API Key Missing without credentials", async () => {
    const { fake } = setup();
    const { res, json } = await call(fake, "GET", "/3.0/ping", undefined, null);
    expectProblem(res, json, 401, "API Key Missing");
  });
});

describe("fake Mailchimp: add or update list member (PUT)", () => {
  it("creates a new member with status_if_new", async () => {
    const { fake, changes } = setup();
    const { status, json } = await put(fake, "Ada@Example.com", { status_if_new: "subscribed", merge_fields: { FNAME: "Ada", LNAME: "Lovelace" } });
    expect(status).toBe(200);
    expect(json).toMatchObject({
      id: hashOf("ada@example.com"),
      email_address: "Ada@Example.com",
      full_name: "Ada Lovelace",
      status: "subscribed",
      merge_fields: { FNAME: "Ada", LNAME: "Lovelace", PHONE: "" },
      list_id: LIST,
      last_changed: "2026-01-01T00:00:00+00:00",
      timestamp_opt: "2026-01-01T00:00:00+00:00",
    });
    expect(json.unique_email_id).toMatch(/^[0-9a-f]{10}$/);
    expect(changes.map((c) => c.type)).toEqual(["subscribe"]);
  });

  it("requires status_if_new for a new member", async () => {
    const { fake } = setup();
    const { res, json } = await put(fake, "ada@example.com", { status: "subscribed" });
    expectProblem(res, json, 400, "Invalid Resource");
    expect((json as unknown as Problem).errors?.[0]?.field).toBe("status_if_new");
  });

  it("ignores status_if_new for an existing member and applies status", async () => {
    const { fake, clock, changes } = setup();
    await put(fake, "ada@example.com", { status_if_new: "subscribed" });
    clock.now += 60_000;
    const kept = await put(fake, "ada@example.com", { status_if_new: "unsubscribed" });
    expect(kept.json.status).toBe("subscribed");
    expect(kept.json.last_changed).toBe("2026-01-01T00:00:00+00:00"); // nothing changed
    const changed = await put(fake, "ada@example.com", { status: "unsubscribed", status_if_new: "subscribed" });
    expect(changed.json.status).toBe("unsubscribed");
    expect(changed.json.last_changed).toBe("2026-01-01T00:01:00+00:00");
    expect(changes.map((c) => c.type)).toEqual(["subscribe", "unsubscribe"]);
  });

  it("answers 400 when the subscriber hash does not match email_address", async () => {
    const { fake } = setup();
    const { res, json } = await call(fake, "PUT", memberPath("someone@example.com"), { email_address: "ada@example.com", status_if_new: "subscribed" });
    expect(res.status).toBe(400);
    expectProblem(res, json, 400, "Invalid Resource");
  });

  it("accepts the email address in place of the hash, as documented", async () => {
    const { fake } = setup();
    const { status, json } = await call<Member>(fake, "PUT", `/3.0/lists/${LIST}/members/${encodeURIComponent("Ada@example.com")}`, { email_address: "ada@example.com", status_if_new: "pending" });
    expect(status).toBe(200);
    expect(json.id).toBe(hashOf("ada@example.com"));
    expect((await call(fake, "GET", `/3.0/lists/${LIST}/members/${json.contact_id}`)).status).toBe(200);
  });

  it.each([
    ["an invalid email", { email_address: "not-an-email", status_if_new: "subscribed" }, "email_address"],
    ["an unknown status", { email_address: "ada@example.com", status_if_new: "archived" }, "status_if_new"],
    ["non-object merge_fields", { email_address: "ada@example.com", status_if_new: "subscribed", merge_fields: "x" }, "merge_fields"],
  ])("answers 400 Invalid Resource with errors for %s", async (_label, body, field) => {
    const { fake } = setup();
    const { res, json } = await call<Problem>(fake, "PUT", memberPath("ada@example.com"), body);
    expectProblem(res, json, 400, "Invalid Resource");
    expect(json.errors?.map((e) => e.field)).toEqual([field]);
  });

  it("answers 400 JSON Parse Error for a malformed body", async () => {
    const { fake } = setup();
    const { res, json } = await call(fake, "PUT", memberPath("ada@example.com"), "{nope");
    expectProblem(res, json, 400, "JSON Parse Error");
  });

  it("answers 404 Resource Not Found for an unknown list", async () => {
    const { fake } = setup();
    const { res, json } = await call(fake, "PUT", memberPath("ada@example.com", "nolist"), { email_address: "ada@example.com", status_if_new: "subscribed" });
    expectProblem(res, json, 404, "Resource Not Found");
  });
});

describe("fake Mailchimp: read, update and list members", () => {
  it("GET answers the member, or 404 when absent", async () => {
    const { fake } = setup();
    const missing = await call(fake, "GET", memberPath("ada@example.com"));
    expectProblem(missing.res, missing.json, 404, "Resource Not Found");
    await put(fake, "ada@example.com", { status_if_new: "subscribed" });
    const found = await call<Member>(fake, "GET", memberPath("ADA@example.com"));
    expect(found.json).toMatchObject({ email_address: "ada@example.com", status: "subscribed" });
  });

  it("PATCH merges merge_fields and moves last_changed", async () => {
    const { fake, clock, changes } = setup();
    await put(fake, "ada@example.com", { status_if_new: "subscribed", merge_fields: { FNAME: "Ada", LNAME: "Lovelace" } });
    clock.now += 5_000;
    const { status, json } = await call<Member>(fake, "PATCH", memberPath("ada@example.com"), { merge_fields: { FNAME: "Augusta" } });
    expect(status).toBe(200);
    expect(json.merge_fields).toMatchObject({ FNAME: "Augusta", LNAME: "Lovelace" });
    expect(json.full_name).toBe("Augusta Lovelace");
    expect(json.last_changed).toBe("2026-01-01T00:00:05+00:00");
    expect(changes.map((c) => c.type)).toEqual(["subscribe", "profile"]);
  });

  it("PATCH of email_address re-keys the member and reports upemail", async () => {
    const { fake, changes } = setup();
    const created = await put(fake, "ada@example.com", { status_if_new: "subscribed" });
    const { json } = await call<Member>(fake, "PATCH", memberPath("ada@example.com"), { email_address: "ada@lovelace.org" });
    expect(json.id).toBe(hashOf("ada@lovelace.org"));
    expect(json.contact_id).toBe(created.json.contact_id);
    expect((await call(fake, "GET", memberPath("ada@example.com"))).status).toBe(404);
    expect((await call(fake, "GET", memberPath("ada@lovelace.org"))).status).toBe(200);
    expect(changes.at(-1)).toMatchObject({ type: "upemail", oldEmail: "ada@example.com" });
  });

  it("PATCH answers 404 when absent and 400 when the new email is taken", async () => {
    const { fake, changes } = setup();
    expect((await call(fake, "PATCH", memberPath("ghost@example.com"), { status: "subscribed" })).status).toBe(404);
    await put(fake, "ada@example.com", { status_if_new: "subscribed" });
    await put(fake, "bob@example.com", { status_if_new: "subscribed" });
    const { res, json } = await call(fake, "PATCH", memberPath("bob@example.com"), { email_address: "ada@example.com" });
    expectProblem(res, json, 400, "Invalid Resource");
    await call(fake, "PATCH", memberPath("bob@example.com"), { status: "cleaned" });
    expect(changes.at(-1)?.type).toBe("cleaned");
  });

  it("lists members with count, offset, status and total_items", async () => {
    const { fake } = setup();
    for (let i = 0; i < 12; i++) await put(fake, `m${i}@example.com`, { status_if_new: i % 4 === 0 ? "unsubscribed" : "subscribed" });
    const page = await call<{ members: Member[]; list_id: string; total_items: number }>(fake, "GET", `/3.0/lists/${LIST}/members`);
    expect(page.json.members).toHaveLength(10);
    expect(page.json).toMatchObject({ list_id: LIST, total_items: 12 });
    const tail = await call<{ members: Member[] }>(fake, "GET", `/3.0/lists/${LIST}/members?count=5&offset=10`);
    expect(tail.json.members.map((m) => m.email_address)).toEqual(["m10@example.com", "m11@example.com"]);
    const unsub = await call<{ total_items: number }>(fake, "GET", `/3.0/lists/${LIST}/members?status=unsubscribed`);
    expect(unsub.json.total_items).toBe(3);
  });

  it("answers 405 with an Allow header for unsupported methods", async () => {
    const { fake } = setup();
    const { res, json } = await call(fake, "POST", memberPath("ada@example.com"), {});
    expectProblem(res, json, 405, "Method Not Allowed");
    expect(res.headers.get("Allow")).toBe("GET, PUT, PATCH, DELETE");
  });
});

describe("fake Mailchimp: sandbox controls", () => {
  const control = (fake: Fake, method: string, path: string, body?: unknown) => call(fake, method, path, body, null);

  it("answers 503 problem details during an outage, then recovers", async () => {
    const { fake, clock } = setup();
    await control(fake, "POST", "/_sandbox/faults", { outageSeconds: 10 });
    const down = await call(fake, "GET", `/3.0/lists/${LIST}/members`);
    expectProblem(down.res, down.json, 503, "Service Unavailable");
    clock.now += 10_000;
    expect((await call(fake, "GET", `/3.0/lists/${LIST}/members`)).status).toBe(200);
  });

  it("fails the next call with Retry-After", async () => {
    const { fake } = setup();
    await control(fake, "POST", "/_sandbox/faults", { failNext: { count: 1, status: 429, retryAfterSeconds: 3 } });
    const limited = await put(fake, "ada@example.com", { status_if_new: "subscribed" });
    expectProblem(limited.res, limited.json, 429, "Too Many Requests");
    expect(limited.res.headers.get("Retry-After")).toBe("3");
    expect((await call(fake, "GET", memberPath("ada@example.com"))).status).toBe(404); // the faulted PUT did nothing
  });

  it("logs calls, dumps state, resets, and round-trips state", async () => {
    const { fake } = setup();
    await put(fake, "ada@example.com", { status_if_new: "subscribed" });
    const log = (await control(fake, "GET", "/_sandbox/requests")).json as { requests: RequestLogEntry[] };
    expect(log.requests).toEqual([
      { at: T0, method: "PUT", path: memberPath("ada@example.com"), status: 200, body: { email_address: "ada@example.com", status_if_new: "subscribed" } },
    ]);
    expect(JSON.stringify(fake.state)).not.toContain(API_KEY);
    const dump = (await control(fake, "GET", "/_sandbox/state")).json as FakeMailchimpState["data"];
    expect(Object.keys(dump.lists[LIST]?.members ?? {})).toEqual([hashOf("ada@example.com")]);

    const { fake: copy } = setup({ state: JSON.parse(JSON.stringify(fake.state)) as FakeMailchimpState, listIds: [LIST, "list0002"] });
    expect((await call(copy, "GET", memberPath("ada@example.com"))).status).toBe(200);
    expect((await call(copy, "GET", "/3.0/lists/list0002/members")).status).toBe(200);

    await control(fake, "POST", "/_sandbox/reset");
    expect((await call(fake, "GET", memberPath("ada@example.com"))).status).toBe(404);
    expect(fake.state.requests).toHaveLength(1); // only the GET just made
    expect((await call(copy, "GET", memberPath("ada@example.com"))).status).toBe(200);
  });
});
