/**
 * GET /api/audit: the outbound calls newest first, with filters and cursor paging, through the
 * route mounted as src/http/admin/index.ts mounts every route (behind requireAdmin, with the
 * invalid-request hook), and through listAudit itself. One test runs the real pipeline so the
 * bulk rows it lists are the ones the consumer writes.
 */
import { env } from "cloudflare:workers";
import { OpenAPIHono } from "@hono/zod-openapi";
import { beforeEach, describe, expect, it } from "vitest";
import { listAudit, type AuditItem } from "../../src/audit/queries";
import type { AuditRecord } from "../../src/audit/sink";
import { encodeCursor } from "../../src/db/paging";
import { auditLog } from "../../src/db/schema";
import { registerAudit } from "../../src/http/admin/audit";
import { requireAdmin } from "../../src/http/admin/auth";
import { invalidRequestHook } from "../../src/http/admin/responses";
import type { AppEnv } from "../../src/http/app-env";
import { database } from "../../src/pipeline/ledger";
import { crmCreated } from "../support/contacts";
import { deliver } from "../support/messages";
import { createCrmContact, HUBSPOT_TOKEN, MAILCHIMP_KEY, resetSandbox } from "../support/sandbox";
import { unique } from "../support/sync";
import { ADMIN_TOKEN, adminRequest, callWorker, type Call, type ErrorAnswer } from "./admin-support";
import { clearEventTables, seedEvents } from "./events-support";

/** The audit route on its own /api app, built like the real one: the admin token first, zod failures as 400 invalid_request. */
function auditApi() {
  const base = new OpenAPIHono<AppEnv>({ defaultHook: invalidRequestHook });
  base.openAPIRegistry.registerComponent("securitySchemes", "adminToken", { type: "http", scheme: "bearer" });
  base.use("*", requireAdmin);
  return new OpenAPIHono<AppEnv>().route("/api", registerAudit(base));
}
const app = auditApi();
const callAudit = (query = "", call?: Call) => app.fetch(adminRequest(`/api/audit${query ? `?${query}` : ""}`, call), env);

// Storage is shared by the tests of a file: each starts from empty event and audit tables.
beforeEach(async () => {
  await clearEventTables();
});

const T0 = Date.UTC(2026, 4, 1, 9);
const db = () => database(env.DB);
type Page = { items: AuditItem[]; nextCursor: string | null };
const ids = (page: Page) => page.items.map((a) => a.id);

type SeedCall = Partial<AuditRecord> & { id: number; createdAt: number };

/** Audit rows with the ids the test chooses (the consumer's rows get theirs from SQLite), one insert each: D1 binds 100 parameters a statement. */
async function seedCalls(rows: SeedCall[]): Promise<void> {
  const d = db();
  const inserts = rows.map((r) =>
    d.insert(auditLog).values({
      id: r.id,
      eventId: r.eventId ?? null,
      entityKey: r.entityKey ?? null,
      action: r.action ?? "contact-sync.apply",
      connector: r.connector ?? "hubspot",
      method: r.method ?? "GET",
      url: r.url ?? `https://api.hubapi.com/crm/v3/objects/contacts/${r.id}`,
      requestBody: r.requestBody ?? null,
      status: r.status === undefined ? 200 : r.status,
      responseBody: r.responseBody ?? null,
      durationMs: r.durationMs ?? 12,
      attempt: r.attempt ?? 1,
      outcome: r.outcome ?? "success",
      error: r.error ?? null,
      createdAt: r.createdAt,
      served: r.served ? JSON.stringify(r.served) : null,
    }),
  );
  const [first, ...rest] = inserts;
  if (first) await d.batch([first, ...rest]);
}

async function getPage(query = ""): Promise<Page> {
  const res = await callAudit(query);
  expect(res.status).toBe(200);
  return (await res.json()) as Page;
}

/** Every id of every page, following nextCursor; and how many pages it took. */
async function allPages(query: string, between?: () => Promise<void>): Promise<{ seen: string[]; pages: number }> {
  const seen: string[] = [];
  let pages = 0;
  let cursor: string | null = null;
  do {
    const page: Page = await getPage(`${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    seen.push(...ids(page));
    pages++;
    cursor = page.nextCursor;
    if (pages === 1) await between?.();
  } while (cursor && pages < 10);
  return { seen, pages };
}

async function errorOf(res: Response, status: number): Promise<ErrorAnswer["error"]> {
  expect(res.status).toBe(status);
  return ((await res.json()) as ErrorAnswer).error;
}

describe("GET /api/audit", () => {
  it("pages newest first by (created_at, id) across 3 pages, ids compared as numbers; a call made meanwhile shifts nothing", async () => {
    // 9, 10 and 100 were written in the same millisecond: as numbers 100 > 10 > 9, as text "9" > "100" > "10".
    await seedCalls([
      { id: 8, createdAt: T0 },
      { id: 9, createdAt: T0 + 1 },
      { id: 100, createdAt: T0 + 1 },
      { id: 10, createdAt: T0 + 1 },
      { id: 11, createdAt: T0 + 2 },
    ]);
    const { seen, pages } = await allPages("limit=2", () => seedCalls([{ id: 12, createdAt: T0 + 3 }]));
    expect(pages).toBe(3);
    expect(seen).toEqual(["11", "100", "10", "9", "8"]);
  });

  it("answers the item shape as stored: ids as strings, times as ISO-8601, `served` as a list or null", async () => {
    await seedCalls([
      {
        id: 1, eventId: "evt_one", entityKey: "contact:151", action: "contact-sync.apply", connector: "mailchimp", method: "PUT",
        url: "https://us21.api.mailchimp.com/3.0/lists/list0001/members/0f1e", requestBody: '{"email_address":"ada@example.com","api_key":"[REDACTED]"}',
        status: 400, responseBody: '{"title":"Invalid Resource"}', durationMs: 182, attempt: 3, outcome: "permanent", error: "permanent: mailchimp answered 400 Invalid Resource", createdAt: T0,
      },
      { id: 2, eventId: "evt_two", connector: "hubspot", method: "POST", url: "https://api.hubapi.com/crm/v3/objects/contacts/batch/read", status: null, outcome: "transient", error: "network error", createdAt: T0 + 1, served: ["evt_two", "evt_one"] },
    ]);
    expect(await getPage()).toEqual({
      items: [
        {
          id: "2", eventId: "evt_two", entityKey: null, action: "contact-sync.apply", connector: "hubspot", method: "POST", url: "https://api.hubapi.com/crm/v3/objects/contacts/batch/read",
          requestBody: null, status: null, responseBody: null, durationMs: 12, attempt: 1, outcome: "transient", error: "network error", createdAt: new Date(T0 + 1).toISOString(), served: ["evt_two", "evt_one"],
        },
        {
          id: "1", eventId: "evt_one", entityKey: "contact:151", action: "contact-sync.apply", connector: "mailchimp", method: "PUT", url: "https://us21.api.mailchimp.com/3.0/lists/list0001/members/0f1e",
          requestBody: '{"email_address":"ada@example.com","api_key":"[REDACTED]"}', status: 400, responseBody: '{"title":"Invalid Resource"}', durationMs: 182, attempt: 3,
          outcome: "permanent", error: "permanent: mailchimp answered 400 Invalid Resource", createdAt: new Date(T0).toISOString(), served: null,
        },
      ],
      nextCursor: null,
    });
  });

  it("defaults to 50 a page", async () => {
    await seedCalls(Array.from({ length: 51 }, (_, i) => ({ id: i + 1, createdAt: T0 + i })));
    const page = await getPage();
    expect(page.items).toHaveLength(50);
    expect(page.items[0]!.id).toBe("51");
    expect(page.nextCursor).not.toBeNull();
  });

  it("filters by eventId: the event's own calls and the bulk calls that served it, no one else's", async () => {
    await seedEvents([{ id: "evt_a", receivedAt: T0 }]);
    await seedCalls([
      { id: 1, eventId: "evt_a", createdAt: T0 + 10 },
      // A bulk call is named after the first event it served: only `served` ties it to evt_a.
      { id: 2, eventId: "evt_b", createdAt: T0 + 20, served: ["evt_b", "evt_a"] },
      { id: 3, eventId: "evt_c", createdAt: T0 + 30, served: ["evt_c", "evt_d"] },
      { id: 4, eventId: "evt_b", createdAt: T0 + 40 },
      { id: 5, eventId: "evt_a", createdAt: T0 + 50, connector: "mailchimp", outcome: "transient" },
    ]);
    expect(await allPages("eventId=evt_a&limit=1")).toEqual({ seen: ["5", "2", "1"], pages: 3 });
    expect((await allPages("eventId=evt_b")).seen).toEqual(["4", "2"]);
    expect((await allPages("eventId=evt_d")).seen).toEqual(["3"]);
    expect((await allPages("eventId=evt_a&connector=hubspot")).seen).toEqual(["2", "1"]);
    expect((await allPages("eventId=evt_nobody")).seen).toEqual([]);
  });

  it("filters by eventId when the event row is gone (pruned before its last calls)", async () => {
    await seedCalls([
      { id: 1, eventId: "evt_pruned", createdAt: T0 },
      { id: 2, eventId: "evt_first", createdAt: T0 + 1, served: ["evt_first", "evt_pruned"] },
      { id: 3, eventId: "evt_other", createdAt: T0 + 2 },
    ]);
    expect((await allPages("eventId=evt_pruned")).seen).toEqual(["2", "1"]);
  });

  it("filters by connector and outcome, and pages within the filter", async () => {
    await seedCalls([
      { id: 1, createdAt: T0, connector: "stripe", outcome: "success" },
      { id: 2, createdAt: T0 + 1, connector: "stripe", outcome: "transient" },
      { id: 3, createdAt: T0 + 2, connector: "salesforce", outcome: "transient" },
      { id: 4, createdAt: T0 + 3, connector: "stripe", outcome: "transient" },
      { id: 5, createdAt: T0 + 4, connector: "postmark", outcome: "permanent" },
      { id: 6, createdAt: T0 + 5, connector: "stripe", outcome: "transient" },
    ]);
    expect(await allPages("connector=stripe&outcome=transient&limit=1")).toEqual({ seen: ["6", "4", "2"], pages: 3 });
    expect((await allPages("connector=stripe")).seen).toEqual(["6", "4", "2", "1"]);
    expect((await allPages("outcome=transient")).seen).toEqual(["6", "4", "3", "2"]);
    expect((await allPages("outcome=permanent")).seen).toEqual(["5"]);
    expect((await allPages("connector=mailchimp")).seen).toEqual([]);
  });

  it("filters by since: calls made at or after it, the time in UTC or with an offset", async () => {
    await seedCalls([
      { id: 1, createdAt: T0 - 1 },
      { id: 2, createdAt: T0 },
      { id: 3, createdAt: T0 + 1000 },
      { id: 4, createdAt: T0 + 60_000 },
    ]);
    expect((await allPages(`since=${new Date(T0).toISOString()}`)).seen).toEqual(["4", "3", "2"]);
    expect((await allPages("since=2026-05-01T09:00:00Z")).seen).toEqual(["4", "3", "2"]);
    // 11:00:01 at +02:00 is 09:00:01 UTC.
    expect((await allPages(`since=${encodeURIComponent("2026-05-01T11:00:01+02:00")}`)).seen).toEqual(["4", "3"]);
    expect(await allPages(`since=${new Date(T0).toISOString()}&limit=2`)).toEqual({ seen: ["4", "3", "2"], pages: 2 });
    expect((await allPages("since=2026-05-02T00:00:00Z")).seen).toEqual([]);
  });

  it.each([
    ["an unknown connector", "connector=shopify", "connector"],
    ["an unknown outcome", "outcome=failed", "outcome"],
    ["an empty eventId", "eventId=", "eventId"],
    ["limit 0", "limit=0", "limit"],
    ["limit over 200", "limit=201", "limit"],
    ["a limit that is not a number", "limit=ten", "limit"],
    ["a fractional limit", "limit=1.5", "limit"],
    ["a since that is not a date", "since=yesterday", "since"],
    ["a since in epoch milliseconds", `since=${T0}`, "since"],
    ["a since without a time zone", "since=2026-05-01T09:00:00", "since"],
    ["a since with month 13", "since=2026-13-01T09:00:00Z", "since"],
    ["a cursor it never issued", "cursor=not-a-cursor", "cursor"],
    ["a cursor of the wrong shape", `cursor=${btoa(JSON.stringify({ t: "x" }))}`, "cursor"],
    ["a cursor of another list (a text id)", `cursor=${encodeCursor({ t: T0, id: "evt_0f1e" })}`, "cursor"],
  ])("answers 400 invalid_request for %s, naming the field", async (_, query, field) => {
    const res = await callAudit(query);
    expect(res.status).toBe(400);
    const body = (await res.json()) as ErrorAnswer;
    expect(Object.keys(body)).toEqual(["error"]);
    expect(body.error).toEqual({ code: "invalid_request", message: expect.any(String) });
    expect(body.error.message.startsWith(`${field}:`)).toBe(true);
  });
});

describe("GET /api/audit without the admin token", () => {
  // The right token with one character changed, at its end and in its middle.
  const nearMisses = [`${ADMIN_TOKEN.slice(0, -1)}m`, `${ADMIN_TOKEN.slice(0, 5)}A${ADMIN_TOKEN.slice(6)}`];

  it.each([
    ["no token", null],
    ["a wrong token", "not-the-admin-token"],
    ["a near miss at the end", nearMisses[0]!],
    ["a near miss in the middle", nearMisses[1]!],
  ])("answers 401 to %s, and lists nothing", async (_, token) => {
    await seedCalls([{ id: 1, createdAt: T0, url: "https://api.hubapi.com/crm/v3/objects/contacts/secret-looking" }]);
    expect(nearMisses.every((t) => t.length === ADMIN_TOKEN.length && t !== ADMIN_TOKEN)).toBe(true);
    const res = await callAudit("", { token });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toMatch(/^Bearer\b/);
    const text = await res.text();
    expect(text).not.toContain(ADMIN_TOKEN);
    if (token) expect(text).not.toContain(token);
    expect(text).not.toContain("secret-looking");
    expect((JSON.parse(text) as ErrorAnswer).error.code).toBe("unauthorized");
  });
});

describe("GET /api/audit over the pipeline's own rows", () => {
  it("lists a bulk call under every event it served, without secrets", async () => {
    await resetSandbox();
    const contacts = await Promise.all([0, 1, 2].map(() => createCrmContact({ email: unique("audit") })));
    const batch = await Promise.all(contacts.map((id) => crmCreated(id)));
    await deliver(batch);
    const batchIds = batch.map((m) => m.event.id);

    const all = await callAudit("limit=200");
    const text = await all.text();
    for (const secret of [MAILCHIMP_KEY, HUBSPOT_TOKEN, ADMIN_TOKEN]) expect(text).not.toContain(secret);
    const every = (JSON.parse(text) as Page).items;
    expect(every.length).toBeGreaterThan(0);
    expect(every.map((a) => a.createdAt)).toEqual([...every.map((a) => a.createdAt)].sort().reverse());

    const last = batchIds[2]!;
    const mine = await allPages(`eventId=${last}`);
    const rows = every.filter((a) => mine.seen.includes(a.id));
    const bulk = rows.filter((a) => a.served !== null);
    expect(bulk.length).toBeGreaterThanOrEqual(1);
    for (const row of bulk) expect(row.served).toEqual(expect.arrayContaining(batchIds));
    // Every row listed is the event's own or served it; every such row is listed.
    expect(rows.every((a) => a.eventId === last || a.served?.includes(last))).toBe(true);
    expect(mine.seen.sort()).toEqual(every.filter((a) => a.eventId === last || a.served?.includes(last)).map((a) => a.id).sort());
    // The mailchimp filter keeps only the email-platform calls of the event.
    const emailCalls = await getPage(`eventId=${last}&connector=mailchimp`);
    expect(emailCalls.items.length).toBeGreaterThanOrEqual(1);
    expect(emailCalls.items.every((a) => a.connector === "mailchimp")).toBe(true);
  });
});

describe("listAudit", () => {
  it("pages with the shared cursor, the id as decimal text", async () => {
    await seedCalls([{ id: 7, createdAt: T0 }, { id: 10, createdAt: T0 + 1 }, { id: 9, createdAt: T0 + 1 }]);
    const first = await listAudit(db(), { limit: 2 });
    if (!first.ok) throw new Error(first.message);
    expect(ids(first)).toEqual(["10", "9"]);
    expect(first.nextCursor).toBe(encodeCursor({ t: T0 + 1, id: "9" }));
    const second = await listAudit(db(), { limit: 2, cursor: first.nextCursor });
    expect(second).toMatchObject({ ok: true, nextCursor: null });
    expect(second.ok && ids(second)).toEqual(["7"]);
  });

  it("answers invalid_request, naming the field, to what the route would have refused", async () => {
    expect(await listAudit(db(), { cursor: "%%%" })).toMatchObject({ ok: false, code: "invalid_request", message: expect.stringMatching(/^cursor:/) });
    expect(await listAudit(db(), { cursor: encodeCursor({ t: T0, id: "1e3" }) })).toMatchObject({ ok: false, code: "invalid_request" });
    expect(await listAudit(db(), { since: "May 1, 2026" })).toMatchObject({ ok: false, code: "invalid_request", message: expect.stringMatching(/^since:/) });
    expect(await listAudit(db(), { connector: "shopify" as never })).toMatchObject({ ok: false, message: expect.stringMatching(/^connector:/) });
    expect(await listAudit(db(), { outcome: "failed" as never })).toMatchObject({ ok: false, message: expect.stringMatching(/^outcome:/) });
  });
});

describe("OpenAPI document", () => {
  it("describes the route: its query, every status it answers with an example, the admin token", () => {
    const doc = app.getOpenAPI31Document({ openapi: "3.1.0", info: { title: "audit", version: "0" } });
    const op = doc.paths?.["/api/audit"]?.get;
    expect(op?.tags).toEqual(["audit"]);
    expect(op?.security).toEqual([{ adminToken: [] }]);
    expect(Object.keys(op?.responses ?? {}).sort()).toEqual(["200", "400", "401", "503"]);
    for (const response of Object.values(op?.responses ?? {})) {
      expect((response as { content: Record<string, { example?: unknown }> }).content["application/json"]?.example).toBeDefined();
    }
    const params = (op?.parameters ?? []) as { name: string; in: string; description?: string; example?: unknown }[];
    expect(params.map((p) => p.name).sort()).toEqual(["connector", "cursor", "eventId", "limit", "outcome", "since"]);
    for (const p of params) {
      expect(p.in).toBe("query");
      expect(p.description).toEqual(expect.any(String));
    }
    expect(doc.components?.schemas).toHaveProperty("AuditPage");
  });
});

describe("GET /api/audit through the worker", () => {
  it("is served behind the admin token", async () => {
    await seedCalls([{ id: 1, createdAt: T0 }, { id: 2, createdAt: T0 + 1, connector: "stripe" }]);
    const res = await callWorker("/api/audit?connector=stripe");
    expect(res.status).toBe(200);
    expect(ids((await res.json()) as Page)).toEqual(["2"]);
    expect((await callWorker("/api/audit", { token: `${ADMIN_TOKEN.slice(0, -1)}m` })).status).toBe(401);
    expect((await errorOf(await callWorker("/api/audit?outcome=failed"), 400)).code).toBe("invalid_request");
  });
});
