/**
 * The events routes of the operations API, through the worker's fetch handler: listing with
 * filters and cursor paging, one event with its payload (from D1 or R2), actions and audit rows
 * (bulk rows found through `served`), and replay onto a queue the test holds.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { openApiDocument } from "../../src/http/admin";
import { CONTACT_SYNC_ACTION } from "../../src/flows/contact-sync";
import { enqueue, type EventMessage } from "../../src/pipeline/message";
import { r2PayloadStore } from "../../src/pipeline/payloads";
import { crmCreated } from "../support/contacts";
import { actionRow, capturingQueue, contactCreated, deadLettersOf, deliver } from "../support/messages";
import { createCrmContact, HUBSPOT_TOKEN, MAILCHIMP_KEY, mailchimpMember, resetSandbox, setFaults } from "../support/sandbox";
import { unique } from "../support/sync";
import { ADMIN_TOKEN, callWith, callWorker, refusingQueue, type ErrorAnswer } from "./admin-support";
import { addDoneAction, clearEventTables, seedAudit, seedEvents, type EventDetail, type EventPageAnswer, type ReplayAnswer } from "./events-support";

beforeEach(async () => {
  await resetSandbox();
  await clearEventTables();
});

const T0 = Date.UTC(2026, 4, 1, 9);
const ids = (page: EventPageAnswer) => page.items.map((e) => e.id);
const getJson = async <T>(path: string) => {
  const res = await callWorker(path);
  expect(res.status).toBe(200);
  return (await res.json()) as T;
};

async function errorOf(res: Response, status: number): Promise<ErrorAnswer["error"]> {
  expect(res.status).toBe(status);
  return ((await res.json()) as ErrorAnswer).error;
}

/** Every id of every page, following nextCursor; and how many pages it took. */
async function allPages(query: string, between?: () => Promise<void>): Promise<{ seen: string[]; pages: number }> {
  const seen: string[] = [];
  let pages = 0;
  let cursor: string | null = null;
  do {
    const page: EventPageAnswer = await getJson(`/api/events?${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    seen.push(...ids(page));
    pages++;
    cursor = page.nextCursor;
    if (pages === 1) await between?.();
  } while (cursor && pages < 10);
  return { seen, pages };
}

/** A contact event whose email write Mailchimp refused (400): its one action is dead, through the real pipeline. */
async function deadContactEvent(email = unique("dead")): Promise<EventMessage> {
  const message = await contactCreated(await createCrmContact({ email }));
  await setFaults("mailchimp", { failNext: { count: 1, status: 400 } });
  await deliver([message]);
  expect(await actionRow(message.event.id)).toMatchObject({ state: "dead" });
  return message;
}

describe("without the admin token", () => {
  it.each([
    ["GET", "/api/events"],
    ["GET", "/api/events/evt_x"],
    ["POST", "/api/events/evt_x/replay"],
  ])("answers 401 to %s %s and queues nothing", async (method, path) => {
    await seedEvents([{ id: "evt_x", receivedAt: T0, status: "dead" }]);
    const { queue, sent } = capturingQueue();
    const res = await callWith({ EVENTS: queue }, path, { method, token: null });
    expect((await errorOf(res, 401)).code).toBe("unauthorized");
    expect(sent).toHaveLength(0);
  });
});

describe("GET /api/events", () => {
  it("pages newest first by (received_at, id) across 3 pages; an event arriving meanwhile shifts nothing", async () => {
    // e3 and e4 arrive in the same millisecond: the id orders them.
    await seedEvents([{ id: "e1", receivedAt: T0 }, { id: "e2", receivedAt: T0 + 1 }, { id: "e3", receivedAt: T0 + 2 }, { id: "e4", receivedAt: T0 + 2 }, { id: "e5", receivedAt: T0 + 3 }]);
    const { seen, pages } = await allPages("limit=2", () => seedEvents([{ id: "e6", receivedAt: T0 + 4 }]));
    expect(pages).toBe(3);
    expect(seen).toEqual(["e5", "e4", "e3", "e2", "e1"]);
  });

  it("filters by source and status, and pages within the filter", async () => {
    await seedEvents([
      { id: "s1", receivedAt: T0, source: "shopify", status: "dead" },
      { id: "s2", receivedAt: T0 + 1, source: "shopify", status: "done" },
      { id: "s3", receivedAt: T0 + 2, source: "hubspot", status: "dead" },
      { id: "s4", receivedAt: T0 + 3, source: "shopify", status: "dead" },
      { id: "s5", receivedAt: T0 + 4, source: "mailchimp", status: "retrying" },
      { id: "s6", receivedAt: T0 + 5, source: "shopify", status: "dead" },
    ]);
    expect(await allPages("source=shopify&status=dead&limit=1")).toEqual({ seen: ["s6", "s4", "s1"], pages: 3 });
    expect((await allPages("source=shopify")).seen).toEqual(["s6", "s4", "s2", "s1"]);
    expect((await allPages("status=retrying")).seen).toEqual(["s5"]);
    expect((await allPages("source=syncwire")).seen).toEqual([]);
  });

  it("answers the item shape, times as ISO-8601 and without the payload", async () => {
    await seedEvents([{ id: "shape", receivedAt: T0, source: "mailchimp", status: "invalid" }]);
    const page = await getJson<EventPageAnswer>("/api/events");
    expect(page).toEqual({
      items: [{ id: "shape", source: "mailchimp", type: "contact.creation", entityKey: "contact:shape", status: "invalid", receivedAt: new Date(T0).toISOString(), occurredAt: new Date(T0 - 1000).toISOString(), duplicates: 0, lastError: null }],
      nextCursor: null,
    });
  });

  it("defaults to 50 a page", async () => {
    await seedEvents(Array.from({ length: 51 }, (_, i) => ({ id: `many-${String(i).padStart(2, "0")}`, receivedAt: T0 + i })));
    const page = await getJson<EventPageAnswer>("/api/events");
    expect(page.items).toHaveLength(50);
    expect(page.items[0]!.id).toBe("many-50");
    expect(page.nextCursor).not.toBeNull();
  });

  it.each([
    ["an unknown source", "source=salesforce", "source"],
    ["an action state as the status", "status=failed", "status"],
    ["limit 0", "limit=0", "limit"],
    ["limit over 200", "limit=201", "limit"],
    ["a limit that is not a number", "limit=ten", "limit"],
    ["a cursor it never issued", "cursor=not-a-cursor", "cursor"],
    ["a cursor of the wrong shape", `cursor=${btoa(JSON.stringify({ t: "x" }))}`, "cursor"],
  ])("answers 400 invalid_request for %s, naming the field", async (_, query, field) => {
    const error = await errorOf(await callWorker(`/api/events?${query}`), 400);
    expect(error.code).toBe("invalid_request");
    expect(error.message.startsWith(`${field}:`)).toBe(true);
  });
});

describe("GET /api/events/:id", () => {
  it("shows the payload, the dead action and the calls made for it, without secrets", async () => {
    const message = await deadContactEvent();
    const res = await callWorker(`/api/events/${message.event.id}`);
    const text = await res.text();
    expect(res.status).toBe(200);
    for (const secret of [MAILCHIMP_KEY, HUBSPOT_TOKEN, ADMIN_TOKEN]) expect(text).not.toContain(secret);
    const event = JSON.parse(text) as EventDetail;
    expect(event).toMatchObject({ id: message.event.id, source: "hubspot", status: "dead", payload: message.event.payload, payloadRef: null, auditTruncated: false });
    expect(event.actions).toEqual([expect.objectContaining({ action: CONTACT_SYNC_ACTION, flow: "contact-sync", state: "dead", attempts: 1, lastStatus: 400 })]);
    const refused = event.audit.find((a) => a.connector === "mailchimp");
    expect(refused).toMatchObject({ eventId: message.event.id, status: 400, outcome: "permanent", served: null });
    expect(event.audit.some((a) => a.connector === "hubspot" && a.outcome === "success")).toBe(true);
    expect(event.audit.every((a) => a.eventId === message.event.id && typeof a.id === "string")).toBe(true);
  });

  it("finds the bulk calls that served the event through `served`, and no one else's", async () => {
    const contacts = await Promise.all([0, 1, 2].map(() => createCrmContact({ email: unique("bulk") })));
    const batch = await Promise.all(contacts.map((id) => crmCreated(id)));
    await deliver(batch);
    await seedAudit([{ eventId: "evt_other", served: ["evt_other", "evt_another"], createdAt: Date.now() }]);
    const last = batch[2]!.event.id;
    const event = await getJson<EventDetail>(`/api/events/${last}`);
    const bulk = event.audit.filter((a) => a.served !== null);
    expect(bulk.length).toBeGreaterThanOrEqual(1);
    for (const row of bulk) {
      expect(row.served).toEqual(expect.arrayContaining(batch.map((m) => m.event.id)));
      // The row is named after the first event it served: only `served` ties it to this one.
      expect(row.eventId).not.toBe(last);
    }
    expect(event.audit.every((a) => a.eventId !== "evt_other")).toBe(true);
  });

  it("returns a payload kept in R2 because it was too large for a queue message", async () => {
    const plain = await contactCreated(await createCrmContact({ email: unique("large") }));
    const payload = { ...plain.event.payload, note: "ü".repeat(70_000) };
    const { queue, sent } = capturingQueue();
    await enqueue(queue, r2PayloadStore(env.PAYLOADS), [{ ...plain, event: { ...plain.event, payload } }]);
    expect((sent[0]!.body as EventMessage).event.payloadRef).toBe(`payloads/${plain.event.id}.json`);
    await deliver([sent[0]!.body]);
    const event = await getJson<EventDetail>(`/api/events/${plain.event.id}`);
    expect(event).toMatchObject({ status: "done", payloadRef: `payloads/${plain.event.id}.json` });
    expect(event.payload).toEqual(payload);
  });

  it("answers payload null, with the reference, when the stored object is gone", async () => {
    await seedEvents([{ id: "gone", receivedAt: T0, status: "dead", payload: "{}", payloadRef: "payloads/gone.json" }]);
    expect(await getJson<EventDetail>("/api/events/gone")).toMatchObject({ payload: null, payloadRef: "payloads/gone.json", actions: [], audit: [] });
  });

  it("answers 404 not_found for an unknown id", async () => {
    const error = await errorOf(await callWorker("/api/events/evt_nope"), 404);
    expect(error).toEqual({ code: "not_found", message: "no event evt_nope" });
  });
});

describe("POST /api/events/:id/replay", () => {
  const replay = (path: string, queue: Queue) => callWith({ EVENTS: queue }, path, { method: "POST" });

  it("queues one replay delivery of the dead action, which then runs only that action", async () => {
    const email = unique("replayed");
    const message = await deadContactEvent(email);
    const id = message.event.id;
    await addDoneAction(id, "welcome.send");
    const { queue, sent } = capturingQueue();
    const res = await replay(`/api/events/${id}/replay`, queue);
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({
      eventId: id,
      all: false,
      replayed: [{ action: CONTACT_SYNC_ACTION, state: "dead" }],
      skipped: [{ action: "welcome.send", state: "done", reason: "done; ?all=true runs it again" }],
      rerouted: false,
    });
    expect(sent).toHaveLength(1);
    const body = sent[0]!.body as EventMessage;
    expect(body.event.id).toBe(id);
    expect(body.replay).toEqual({ all: false, at: expect.any(Number) });
    expect(body.deliveryId).not.toBe(message.deliveryId);
    expect((await deadLettersOf(id)).every((l) => l.replayed_at !== null)).toBe(true);

    await deliver([body]);
    const event = await getJson<EventDetail>(`/api/events/${id}`);
    expect(event.status).toBe("done");
    expect(event.actions).toEqual([
      expect.objectContaining({ action: CONTACT_SYNC_ACTION, state: "done", attempts: 2 }),
      expect.objectContaining({ action: "welcome.send", state: "done", attempts: 1 }),
    ]);
    expect(await mailchimpMember(email)).toMatchObject({ email_address: email });
  });

  it("with ?all=true replays done actions too", async () => {
    const message = await contactCreated(await createCrmContact({ email: unique("all") }));
    await deliver([message]);
    const { queue, sent } = capturingQueue();
    const res = await replay(`/api/events/${message.event.id}/replay?all=true`, queue);
    expect(res.status).toBe(202);
    const answer = (await res.json()) as ReplayAnswer;
    expect(answer).toMatchObject({ eventId: message.event.id, all: true, replayed: [{ action: CONTACT_SYNC_ACTION, state: "done" }], skipped: [], rerouted: false });
    expect(sent).toHaveLength(1);
    expect((sent[0]!.body as EventMessage).replay).toMatchObject({ all: true });
  });

  it("answers 409 conflict and queues nothing when no action failed or died", async () => {
    const message = await contactCreated(await createCrmContact({ email: unique("fine") }));
    await deliver([message]);
    const { queue, sent } = capturingQueue();
    const error = await errorOf(await replay(`/api/events/${message.event.id}/replay`, queue), 409);
    expect(error.code).toBe("conflict");
    expect(error.message).toBe(`event ${message.event.id} has nothing to replay: ${CONTACT_SYNC_ACTION} is done; ?all=true runs it again`);
    await seedEvents([{ id: "ignored", receivedAt: T0, status: "ignored" }]);
    expect((await errorOf(await replay("/api/events/ignored/replay?all=true", queue), 409)).message).toContain("it has no actions (status ignored)");
    expect(sent).toHaveLength(0);
  });

  it("routes afresh an event that died before its actions were recorded", async () => {
    await seedEvents([{ id: "evt_gave_up", receivedAt: T0, status: "dead" }]);
    const { queue, sent } = capturingQueue();
    const res = await replay("/api/events/evt_gave_up/replay", queue);
    expect(res.status).toBe(202);
    expect(await res.json()).toMatchObject({ replayed: [], rerouted: true });
    expect(sent).toHaveLength(1);
  });

  it("answers 404 for an unknown id, 400 for a bad `all`, 503 when the queue refuses", async () => {
    const { queue, sent } = capturingQueue();
    expect((await errorOf(await replay("/api/events/evt_nope/replay", queue), 404)).code).toBe("not_found");
    const message = await deadContactEvent();
    const bad = await errorOf(await replay(`/api/events/${message.event.id}/replay?all=yes`, queue), 400);
    expect(bad.code).toBe("invalid_request");
    expect(bad.message.startsWith("all:")).toBe(true);
    expect(sent).toHaveLength(0);
    expect((await errorOf(await replay(`/api/events/${message.event.id}/replay`, refusingQueue), 503)).code).toBe("unavailable");
    expect(await actionRow(message.event.id)).toMatchObject({ state: "dead" });
    expect((await deadLettersOf(message.event.id)).every((l) => l.replayed_at === null)).toBe(true);
  });
});

describe("OpenAPI document", () => {
  it("lists the event routes with every status they answer", () => {
    const doc = openApiDocument();
    const statuses = (op: { responses?: object } | undefined) => Object.keys(op?.responses ?? {}).sort();
    expect(statuses(doc.paths?.["/api/events"]?.get)).toEqual(["200", "400", "401", "503"]);
    expect(statuses(doc.paths?.["/api/events/{id}"]?.get)).toEqual(["200", "401", "404", "503"]);
    expect(statuses(doc.paths?.["/api/events/{id}/replay"]?.post)).toEqual(["202", "400", "401", "404", "409", "413", "503"]);
    expect(doc.paths?.["/api/events/{id}/replay"]?.post?.security).toEqual([{ adminToken: [] }]);
    expect(doc.components?.schemas).toHaveProperty("EventDetail");
  });
});
