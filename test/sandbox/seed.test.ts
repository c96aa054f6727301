/**
 * `POST /sandbox/_sandbox/seed`: the fake HubSpot and the fake Mailchimp audience filled with N
 * contacts in sync plus chosen drift, and the email index the live sync would have left. Read
 * back here only through the vendors' own list endpoints (paged as the real APIs page) and D1,
 * and compared by an independent check in this file, so the answer is what a run must find.
 */
import { env, exports } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { app } from "../../src/http/app";
import { HUBSPOT_TOKEN, LIST_ID, MAILCHIMP_KEY, resetSandbox, sandboxFetch } from "../support/sandbox";

const ORIGIN = "https://syncwire.test";
const SUBSCRIPTION = "syncwire_subscription"; // the sandbox's CRM_SUBSCRIPTION_PROPERTY (credentials.ts)
const LOST = { property: "hs_lead_status", value: "UNQUALIFIED" };
const KINDS = ["missingInEmail", "missingInCrm", "emailDiffers", "namesDiffer", "subscriptionDiffers"] as const;
type Kind = (typeof KINDS)[number];

interface Version { value: string; timestamp: string }
interface Contact {
  id: string;
  properties: Record<string, string | null>;
  propertiesWithHistory: Record<string, Version[]>;
  createdAt: string;
  updatedAt: string;
  archived: boolean;
}
interface Member {
  id: string;
  email_address: string;
  status: string;
  merge_fields: Record<string, string>;
  last_changed: string;
  web_id: number;
  contact_id: string;
  timestamp_opt: string;
}
type Side = "crm" | "email";
interface Answer {
  seed: number;
  contacts: number;
  hubspot: { contacts: number; firstId: string | null; lastId: string | null };
  mailchimp: { listId: string; members: number; subscribed: number; unsubscribed: number };
  index: { rows: number };
  mismatches: { total: number; byKind: Record<Kind, number> };
  drift: {
    missingInEmail: { crmId: string; email: string; subscription: string }[];
    missingInCrm: { email: string; subscription: string }[];
    emailDiffers: { crmId: string; email: string; values: { crm: string; email: string }; winner: Side }[];
    namesDiffer: { crmId: string; email: string; field: "firstname" | "lastname"; values: { crm: string; email: string }; changedAt: { crm: string; email: string }; winner: Side }[];
    subscriptionDiffers: { crmId: string; email: string; values: { crm: string; email: string }; changedAt: { crm: string; email: string }; winner: Side }[];
  };
}

function seedRequest(body: unknown): Request {
  return new Request(`${ORIGIN}/sandbox/_sandbox/seed`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** Through the worker's own fetch handler, as `curl` would. */
async function seed(body: unknown): Promise<Answer> {
  const res = await exports.default.fetch(seedRequest(body));
  if (res.status !== 200) throw new Error(`seed: ${res.status} ${await res.text()}`);
  return (await res.json()) as Answer;
}

const hubspotGet = (path: string) => sandboxFetch(`/hubspot${path}`, { headers: { authorization: `Bearer ${HUBSPOT_TOKEN}` } });
const mailchimpGet = (path: string) => sandboxFetch(`/mailchimp${path}`, { headers: { authorization: `Basic ${btoa(`x:${MAILCHIMP_KEY}`)}` } });

const PROPS = ["email", "firstname", "lastname", SUBSCRIPTION, LOST.property].join(",");

/** Every contact, page by page, as a run reads them; checks each page's shape on the way. */
async function allContacts(limit = 100): Promise<{ contacts: Contact[]; pages: number }> {
  const contacts: Contact[] = [];
  let after: string | undefined;
  let pages = 0;
  for (;;) {
    const res = await hubspotGet(`/crm/v3/objects/contacts?limit=${limit}&properties=${PROPS}&propertiesWithHistory=${PROPS}${after ? `&after=${after}` : ""}`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { results: Contact[]; paging?: { next: { after: string; link: string } } };
    pages++;
    contacts.push(...body.results);
    if (body.paging === undefined) {
      expect(body.results.length).toBeLessThanOrEqual(limit);
      return { contacts, pages };
    }
    // A next cursor only when more follow, after a full page.
    expect(body.results).toHaveLength(limit);
    expect(body.paging.next.link).toContain(`after=${body.paging.next.after}`);
    after = body.paging.next.after;
  }
}

async function allMembers(count = 100): Promise<{ members: Member[]; pages: number; totals: number[] }> {
  const members: Member[] = [];
  const totals: number[] = [];
  let pages = 0;
  for (let offset = 0; ; offset += count) {
    const res = await mailchimpGet(`/3.0/lists/${LIST_ID}/members?count=${count}&offset=${offset}`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { members: Member[]; total_items: number; list_id: string };
    expect(body.list_id).toBe(LIST_ID);
    pages++;
    totals.push(body.total_items);
    members.push(...body.members);
    if (offset + count >= body.total_items) return { members, pages, totals };
  }
}

async function indexRows(): Promise<Map<string, string>> {
  const { results } = await env.DB.prepare("SELECT email, contact_key FROM contact_emails").all<{ email: string; contact_key: string }>();
  return new Map(results.map((r) => [r.email, r.contact_key]));
}

const newest = (c: Contact, property: string) => c.propertiesWithHistory[property]?.[0]?.timestamp ?? c.createdAt;
const crmSubscription = (c: Contact) =>
  c.properties[SUBSCRIPTION] === "unsubscribed" || c.properties[LOST.property] === LOST.value ? "unsubscribed" : "subscribed";
const isoOf = (mailchimpTime: string) => new Date(Date.parse(mailchimpTime)).toISOString();

/**
 * An independent comparison of what the list endpoints and the index show, the way the nightly
 * check is specified (CONTRACT 4.9): entities mapped CRM id <-> email through the index.
 */
function driftOf(contacts: Contact[], members: Member[], index: Map<string, string>): Answer["drift"] {
  const drift: Answer["drift"] = { missingInEmail: [], missingInCrm: [], emailDiffers: [], namesDiffer: [], subscriptionDiffers: [] };
  const byKey = new Map(contacts.map((c) => [`contact:${c.id}`, c]));
  const memberOf = new Map<string, Member>();
  for (const m of members) {
    const key = index.get(m.email_address);
    const contact = key === undefined ? undefined : byKey.get(key);
    if (contact === undefined) drift.missingInCrm.push({ email: m.email_address, subscription: m.status });
    else memberOf.set(contact.id, m);
  }
  for (const c of contacts) {
    const m = memberOf.get(c.id);
    if (m === undefined) {
      drift.missingInEmail.push({ crmId: c.id, email: c.properties.email!, subscription: crmSubscription(c) });
      continue;
    }
    if (c.properties.email !== m.email_address) {
      drift.emailDiffers.push({ crmId: c.id, email: m.email_address, values: { crm: c.properties.email!, email: m.email_address }, winner: "crm" });
    }
    for (const [field, tag] of [["firstname", "FNAME"], ["lastname", "LNAME"]] as const) {
      if (c.properties[field] === m.merge_fields[tag]) continue;
      const changedAt = { crm: newest(c, field), email: isoOf(m.last_changed) };
      drift.namesDiffer.push({
        crmId: c.id, email: m.email_address, field, values: { crm: c.properties[field]!, email: m.merge_fields[tag]! }, changedAt,
        winner: Date.parse(changedAt.crm) > Date.parse(changedAt.email) ? "crm" : "email",
      });
    }
    const values = { crm: crmSubscription(c), email: m.status };
    if (values.crm !== values.email) {
      drift.subscriptionDiffers.push({
        crmId: c.id, email: m.email_address, values, changedAt: { crm: newest(c, SUBSCRIPTION), email: isoOf(m.last_changed) },
        winner: values.crm === "unsubscribed" ? "crm" : "email",
      });
    }
  }
  return drift;
}

const sortDrift = (drift: Answer["drift"]) =>
  Object.fromEntries(Object.entries(drift).map(([kind, items]) => [kind, [...(items as { email: string }[])].sort((a, b) => a.email.localeCompare(b.email))]));

/** The answer and the fakes' contents with the ids made relative to the seed's first id. */
function relative(answer: Answer, contacts: Contact[], members: Member[]) {
  const first = Number(answer.hubspot.firstId);
  const rel = (id: string) => String(Number(id) - first);
  const text = JSON.stringify(answer.drift).replace(/"crmId":"(\d+)"/g, (_, id: string) => `"crmId":"${rel(id)}"`);
  return {
    drift: JSON.parse(text) as unknown,
    counts: { ...answer, drift: undefined, hubspot: { ...answer.hubspot, firstId: undefined, lastId: undefined } },
    contacts: contacts.map((c) => ({ ...c, id: rel(c.id), properties: { ...c.properties, hs_object_id: null }, propertiesWithHistory: { ...c.propertiesWithHistory } })),
    members: members.map(({ web_id: _w, contact_id: _c, ...m }) => m),
  };
}

const TWO_EACH = { missingInEmail: 2, missingInCrm: 2, emailDiffers: 2, namesDiffer: 2, subscriptionDiffers: 2 };

beforeEach(() => resetSandbox());

describe("POST /sandbox/_sandbox/seed", () => {
  it("seeds 250 contacts with two of each drift: the list endpoints page through exactly them, the index maps them, the drift is as answered", async () => {
    const answer = await seed({ contacts: 250, drift: TWO_EACH, seed: 123 });
    expect(answer).toMatchObject({
      seed: 123,
      contacts: 250,
      hubspot: { contacts: 248 },
      mailchimp: { listId: LIST_ID, members: 248 },
      index: { rows: 246 },
      mismatches: { total: 10, byKind: TWO_EACH },
    });
    for (const kind of KINDS) expect(answer.drift[kind]).toHaveLength(2);
    expect(answer.drift.namesDiffer.map((d) => d.winner).sort()).toEqual(["crm", "email"]);
    expect(answer.drift.subscriptionDiffers.map((d) => d.winner).sort()).toEqual(["crm", "email"]);

    // HubSpot: three pages of at most 100, every contact once, ids in order from firstId.
    const { contacts, pages: crmPages } = await allContacts(100);
    expect(crmPages).toBe(3);
    expect(contacts).toHaveLength(248);
    const first = Number(answer.hubspot.firstId);
    expect(contacts.map((c) => c.id)).toEqual(Array.from({ length: 248 }, (_, i) => String(first + i)));
    expect(answer.hubspot.lastId).toBe(String(first + 247));
    expect(new Set(contacts.map((c) => c.properties.email)).size).toBe(248);
    for (const c of contacts) {
      expect(c.archived).toBe(false);
      expect(c.properties).toMatchObject({ hs_object_id: c.id, createdate: c.createdAt, lastmodifieddate: c.updatedAt });
      expect(c.properties.email).toMatch(/^[a-z]+\.[a-z]+\.\d+@example\.(com|org)$/);
      expect(c.properties.firstname).toMatch(/^[A-Z][a-z]+$/);
      expect(c.properties[SUBSCRIPTION]).toMatch(/^(subscribed|unsubscribed)$/);
      // Requested but never set: null, as HubSpot answers for a property the portal has.
      expect(c.properties[LOST.property]).toBeNull();
      expect(Date.parse(c.createdAt)).toBeLessThan(Date.parse(c.updatedAt));
      expect(Date.parse(c.updatedAt)).toBeLessThan(Date.now());
      // updatedAt is the newest property version.
      const versions = Object.values(c.propertiesWithHistory).flat().map((v) => Date.parse(v.timestamp));
      expect(Math.max(...versions)).toBe(Date.parse(c.updatedAt));
    }

    // Mailchimp: three pages of 100, 100 and 48, total_items on each.
    const { members, pages: emailPages, totals } = await allMembers(100);
    expect(emailPages).toBe(3);
    expect(totals).toEqual([248, 248, 248]);
    expect(members).toHaveLength(248);
    expect(new Set(members.map((m) => m.email_address)).size).toBe(248);
    for (const m of members) {
      expect(m.status).toMatch(/^(subscribed|unsubscribed)$/);
      expect(m.merge_fields.FNAME).toMatch(/^[A-Z][a-z]+$/);
      expect(m.merge_fields.LNAME).toMatch(/^[A-Z][a-z]+$/);
      expect(m.last_changed).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/);
      expect(Date.parse(m.last_changed)).toBeLessThan(Date.now());
    }
    expect(members.filter((m) => m.status === "subscribed")).toHaveLength(answer.mailchimp.subscribed);
    // The list is not in the CRM's order: a run has to match entities, not zip pages.
    const crmOrder = contacts.map((c) => c.properties.email);
    expect(members.map((m) => m.email_address)).not.toEqual(crmOrder.filter((e) => members.some((m) => m.email_address === e)));

    // The index: a row per contact on both sides, under the member's address.
    const index = await indexRows();
    expect(index.size).toBe(246);
    for (const [email, key] of index) {
      expect(members.some((m) => m.email_address === email)).toBe(true);
      expect(contacts.some((c) => key === `contact:${c.id}`)).toBe(true);
    }
    for (const d of answer.drift.emailDiffers) expect(index.get(d.email)).toBe(`contact:${d.crmId}`);
    for (const d of answer.drift.emailDiffers) expect(index.has(d.values.crm)).toBe(false);

    // What an independent comparison finds is exactly the answer's drift, and nothing else.
    expect(sortDrift(driftOf(contacts, members, index))).toEqual(sortDrift(answer.drift));

    // Each drift happened after the other side last changed; the unsubscribe is the later change too.
    for (const d of [...answer.drift.namesDiffer, ...answer.drift.subscriptionDiffers]) {
      const loser: Side = d.winner === "crm" ? "email" : "crm";
      expect(Date.parse(d.changedAt[d.winner])).toBeGreaterThan(Date.parse(d.changedAt[loser]));
    }
    for (const d of answer.drift.subscriptionDiffers) expect(d.values[d.winner]).toBe("unsubscribed");
  });

  it("pages the list endpoints at their maximums: HubSpot 100 (a larger limit is clamped), Mailchimp 1000", async () => {
    await seed({ contacts: 1_205, drift: { missingInEmail: 3, missingInCrm: 2 }, seed: 9 });
    const crm = await allContacts(100);
    expect(crm.pages).toBe(13);
    expect(crm.contacts).toHaveLength(1_203);
    const clamped = (await (await hubspotGet("/crm/v3/objects/contacts?limit=500")).json()) as { results: unknown[] };
    expect(clamped.results).toHaveLength(100);

    const email = await allMembers(1_000);
    expect(email.pages).toBe(2);
    expect(email.members).toHaveLength(1_202);
    const big = (await (await mailchimpGet(`/3.0/lists/${LIST_ID}/members?count=5000`)).json()) as { members: unknown[]; total_items: number };
    expect(big).toMatchObject({ total_items: 1_202 });
    expect(big.members).toHaveLength(1_000);
    // Past the end: an empty page with the same total.
    const past = (await (await mailchimpGet(`/3.0/lists/${LIST_ID}/members?count=10&offset=1202`)).json()) as { members: unknown[]; total_items: number };
    expect(past).toMatchObject({ members: [], total_items: 1_202 });
  });

  it("replaces what an earlier seed (or anything else) put in the fakes and the index, without reusing ids", async () => {
    const firstSeed = await seed({ contacts: 40, drift: TWO_EACH, seed: 1 });
    const second = await seed({ contacts: 25, drift: { missingInCrm: 1, namesDiffer: 3 }, seed: 2 });
    expect(Number(second.hubspot.firstId)).toBeGreaterThan(Number(firstSeed.hubspot.lastId));
    const { contacts } = await allContacts(10);
    expect(contacts.map((c) => c.id)).toEqual(Array.from({ length: 24 }, (_, i) => String(Number(second.hubspot.firstId) + i)));
    const { members, totals } = await allMembers(10);
    expect(members).toHaveLength(25);
    expect(totals[0]).toBe(25);
    const index = await indexRows();
    expect(index.size).toBe(24);
    expect(second.index.rows).toBe(24);
    for (const key of index.values()) expect(Number(key.slice("contact:".length))).toBeGreaterThanOrEqual(Number(second.hubspot.firstId));
    expect(sortDrift(driftOf(contacts, members, index))).toEqual(sortDrift(second.drift));

    // Zero contacts empties both sides and the index.
    const none = await seed({ contacts: 0 });
    expect(none).toMatchObject({ contacts: 0, hubspot: { contacts: 0, firstId: null, lastId: null }, mailchimp: { members: 0 }, index: { rows: 0 } });
    expect((await allContacts()).contacts).toEqual([]);
    expect((await allMembers()).members).toEqual([]);
    expect((await indexRows()).size).toBe(0);
  });

  it("is deterministic for a seed: the same names, addresses, drift and timestamps (ids from the fakes' counters)", async () => {
    const body = { contacts: 120, drift: { missingInEmail: 1, missingInCrm: 1, emailDiffers: 3, namesDiffer: 4, subscriptionDiffers: 5 }, seed: 77 };
    const a = await seed(body);
    const aView = relative(a, (await allContacts()).contacts, (await allMembers()).members);
    const b = await seed(body);
    const bView = relative(b, (await allContacts()).contacts, (await allMembers()).members);
    expect(b.hubspot.firstId).not.toBe(a.hubspot.firstId);
    expect(bView).toEqual(aView);

    const c = await seed({ ...body, seed: 78 });
    const cView = relative(c, (await allContacts()).contacts, (await allMembers()).members);
    expect(cView.drift).not.toEqual(aView.drift);
    expect(cView.members).not.toEqual(aView.members);
    // Odd counts: the extra one of a kind goes to the CRM side.
    expect(a.drift.subscriptionDiffers.filter((d) => d.winner === "crm")).toHaveLength(3);
    expect(a.drift.namesDiffer.filter((d) => d.winner === "crm")).toHaveLength(2);
  });

  it("answers a bad body 400 with the error shape, and leaves the fakes and the index as they were", async () => {
    await seed({ contacts: 10, drift: { missingInCrm: 1 }, seed: 5 });
    const before = { contacts: (await allContacts()).contacts, members: (await allMembers()).members, index: await indexRows() };
    const bad: [unknown, string, RegExp][] = [
      ["{not json", "malformed_body", /JSON/],
      ["", "invalid_request", /JSON object/],
      [[1, 2], "invalid_request", /JSON object/],
      [{}, "invalid_request", /contacts/],
      [{ contacts: -1 }, "invalid_request", /contacts/],
      [{ contacts: 2.5 }, "invalid_request", /contacts/],
      [{ contacts: "10" }, "invalid_request", /contacts/],
      [{ contacts: 50_001 }, "invalid_request", /contacts/],
      [{ contacts: 10, extra: true }, "invalid_request", /unknown field extra/],
      [{ contacts: 10, drift: [] }, "invalid_request", /drift/],
      [{ contacts: 10, drift: { missingInMail: 1 } }, "invalid_request", /unknown drift kind missingInMail/],
      [{ contacts: 10, drift: { namesDiffer: -1 } }, "invalid_request", /drift.namesDiffer/],
      [{ contacts: 10, drift: { namesDiffer: 1.5 } }, "invalid_request", /drift.namesDiffer/],
      [{ contacts: 4, drift: { namesDiffer: 3, emailDiffers: 2 } }, "invalid_request", /more than the 4 contacts/],
      [{ contacts: 10, seed: "x" }, "invalid_request", /seed/],
      [{ contacts: 10, seed: -3 }, "invalid_request", /seed/],
    ];
    for (const [body, code, message] of bad) {
      const res = await exports.default.fetch(seedRequest(body));
      expect(res.status, JSON.stringify(body)).toBe(400);
      const answer = (await res.json()) as { error: { code: string; message: string } };
      expect(answer.error.code, JSON.stringify(body)).toBe(code);
      expect(answer.error.message).toMatch(message);
    }
    const huge = await exports.default.fetch(seedRequest({ contacts: 1, pad: "x".repeat(20_000) }));
    expect(huge.status).toBe(413);
    expect(await huge.json()).toMatchObject({ error: { code: "payload_too_large" } });

    const get = await exports.default.fetch(new Request(`${ORIGIN}/sandbox/_sandbox/seed`));
    expect(get.status).toBe(405);
    expect(await get.json()).toMatchObject({ error: { code: "method_not_allowed" } });
    const unknown = await exports.default.fetch(new Request(`${ORIGIN}/sandbox/_sandbox/sow`, { method: "POST" }));
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: { code: "not_found" } });

    expect({ contacts: (await allContacts()).contacts, members: (await allMembers()).members, index: await indexRows() }).toEqual(before);
  });

  it("does not exist when SANDBOX is off", async () => {
    const res = await app.fetch(seedRequest({ contacts: 1 }), { ...env, SANDBOX: "false" });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: { code: "not_found" } });
  });

  it("seeds 10,000 contacts with 1% drift in well under the test timeout, and a full read of both sides agrees", async () => {
    const drift = { missingInEmail: 20, missingInCrm: 20, emailDiffers: 20, namesDiffer: 20, subscriptionDiffers: 20 };
    const started = performance.now();
    const answer = await seed({ contacts: 10_000, drift, seed: 2026 });
    const seededMs = performance.now() - started;
    expect(answer).toMatchObject({ hubspot: { contacts: 9_980 }, mailchimp: { members: 9_980 }, index: { rows: 9_960 }, mismatches: { total: 100 } });
    const { count } = (await env.DB.prepare("SELECT count(*) AS count FROM contact_emails").first<{ count: number }>())!;
    expect(count).toBe(9_960);

    const read = performance.now();
    const { contacts, pages: crmPages } = await allContacts(100);
    const crmMs = performance.now() - read;
    const readEmail = performance.now();
    const { members, pages: emailPages } = await allMembers(1_000);
    const emailMs = performance.now() - readEmail;
    expect([crmPages, emailPages]).toEqual([100, 10]);
    expect(sortDrift(driftOf(contacts, members, await indexRows()))).toEqual(sortDrift(answer.drift));
    console.log(JSON.stringify({ seeded: 10_000, seedMs: Math.round(seededMs), hubspotPages: crmPages, hubspotReadMs: Math.round(crmMs), mailchimpPages: emailPages, mailchimpReadMs: Math.round(emailMs) }));
    expect(seededMs).toBeLessThan(10_000);
  }, 60_000);
});
