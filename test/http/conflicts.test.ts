/**
 * Conflicts: listing and resolving, through the domain functions (with a capturing queue) and
 * through the worker's fetch handler (with the real queue, or a refusing one).
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { encodeCursor } from "../../src/db/paging";
import { listConflicts, resolveConflict, type Conflict } from "../../src/entities/conflicts";
import { openApiDocument } from "../../src/http/admin";
import { eventIdFor } from "../../src/ingest/event";
import { database } from "../../src/pipeline/ledger";
import type { EventMessage } from "../../src/pipeline/message";
import { r2PayloadStore } from "../../src/pipeline/payloads";
import { capturingQueue } from "../support/messages";
import { callWith, callWorker, conflictRow, refusingQueue, seedConflicts, type ErrorAnswer } from "./admin-support";

// Storage is shared by the tests of this file: each starts from an empty table.
beforeEach(async () => {
  await env.DB.prepare("DELETE FROM conflicts").run();
});

const T0 = Date.UTC(2026, 4, 1, 9);
const db = () => database(env.DB);
type Page = { items: Conflict[]; nextCursor: string | null };
const ids = (page: Page) => page.items.map((c) => c.id);

async function errorOf(res: Response, status: number): Promise<ErrorAnswer["error"]> {
  expect(res.status).toBe(status);
  return ((await res.json()) as ErrorAnswer).error;
}

describe("GET /api/conflicts", () => {
  it("pages newest first by (created_at, id) until nextCursor is null", async () => {
    // c3 and c4 share a creation time: the id orders them, so no row is skipped or repeated.
    await seedConflicts([
      { id: "c1", createdAt: T0 },
      { id: "c2", createdAt: T0 + 1000 },
      { id: "c3", createdAt: T0 + 2000 },
      { id: "c4", createdAt: T0 + 2000 },
      { id: "c5", createdAt: T0 + 3000 },
    ]);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await callWorker(`/api/conflicts?limit=2${cursor ? `&cursor=${cursor}` : ""}`);
      expect(res.status).toBe(200);
      const page = (await res.json()) as Page;
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...ids(page));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual(["c5", "c4", "c3", "c2", "c1"]);
  });

  it("answers the API shape, times as ISO-8601", async () => {
    await seedConflicts([{ id: "shape", entityKey: "contact:42", field: "lastname", crm: ["Lovelace", T0 - 5000], email: [null, T0 - 4000], createdAt: T0 }]);
    const page = (await (await callWorker("/api/conflicts")).json()) as Page;
    expect(page).toEqual({
      items: [
        {
          id: "shape",
          entityKey: "contact:42",
          field: "lastname",
          crm: { value: "Lovelace", at: new Date(T0 - 5000).toISOString() },
          // The email platform cleared the field: a null value with a time.
          email: { value: null, at: new Date(T0 - 4000).toISOString() },
          status: "open",
          resolution: null,
          resolvedBy: null,
          resolvedAt: null,
          createdAt: new Date(T0).toISOString(),
        },
      ],
      nextCursor: null,
    });
  });

  it("filters by status", async () => {
    await seedConflicts([
      { id: "open-1", createdAt: T0 },
      { id: "done-1", createdAt: T0 + 1, status: "resolved", resolution: "email" },
      { id: "open-2", createdAt: T0 + 2 },
    ]);
    const open = (await (await callWorker("/api/conflicts?status=open")).json()) as Page;
    expect(ids(open)).toEqual(["open-2", "open-1"]);
    const resolved = (await (await callWorker("/api/conflicts?status=resolved")).json()) as Page;
    expect(ids(resolved)).toEqual(["done-1"]);
    expect(resolved.items[0]).toMatchObject({ status: "resolved", resolution: "email", resolvedBy: "seed" });
  });

  it("defaults to 50 a page", async () => {
    await seedConflicts(Array.from({ length: 51 }, (_, i) => ({ id: `many-${String(i).padStart(2, "0")}`, createdAt: T0 + i })));
    const page = (await (await callWorker("/api/conflicts")).json()) as Page;
    expect(page.items).toHaveLength(50);
    expect(page.nextCursor).not.toBeNull();
  });

  it.each([
    ["a cursor it never issued", "cursor=not-a-cursor", "cursor"],
    ["a cursor of the wrong shape", `cursor=${btoa(JSON.stringify({ x: 1 }))}`, "cursor"],
    ["limit 0", "limit=0", "limit"],
    ["limit over 200", "limit=201", "limit"],
    ["a limit that is not a number", "limit=ten", "limit"],
    ["a fractional limit", "limit=1.5", "limit"],
    ["an unknown status", "status=pending", "status"],
  ])("answers 400 invalid_request for %s, naming the field", async (_, query, field) => {
    const error = await errorOf(await callWorker(`/api/conflicts?${query}`), 400);
    expect(error.code).toBe("invalid_request");
    expect(error.message.startsWith(`${field}:`)).toBe(true);
  });

  it("pages the same through the domain function", async () => {
    await seedConflicts([{ id: "d1", createdAt: T0 }, { id: "d2", createdAt: T0 + 1 }, { id: "d3", createdAt: T0 + 2 }]);
    const first = await listConflicts(db(), { limit: 2 });
    if (!first.ok) throw new Error(first.message);
    expect(ids(first)).toEqual(["d3", "d2"]);
    expect(first.nextCursor).toBe(encodeCursor({ t: T0 + 1, id: "d2" }));
    const second = await listConflicts(db(), { limit: 2, cursor: first.nextCursor });
    expect(second).toMatchObject({ ok: true, nextCursor: null });
    expect(second.ok && ids(second)).toEqual(["d1"]);
    expect(await listConflicts(db(), { cursor: "%%%" })).toMatchObject({ ok: false, code: "invalid_request" });
  });
});

describe("resolveConflict", () => {
  const deps = (queue: Queue) => ({ db: db(), queue, store: r2PayloadStore(env.PAYLOADS), now: () => T0 + 60_000 });

  it("queues a conflict.resolve event for the entity and records the choice", async () => {
    await seedConflicts([{ id: "r1", entityKey: "contact:777", field: "email", createdAt: T0 }]);
    const { queue, sent } = capturingQueue();
    const result = await resolveConflict(deps(queue), "r1", "email", "grace");
    const eventId = await eventIdFor("syncwire", "r1:email");
    expect(result).toMatchObject({ ok: true, eventId, conflict: { id: "r1", status: "resolved", resolution: "email", resolvedBy: "grace", resolvedAt: new Date(T0 + 60_000).toISOString() } });
    expect(sent).toHaveLength(1);
    const message = sent[0]!.body as EventMessage;
    expect(message.retryFrom).toBe(T0 + 60_000);
    expect(message.event).toEqual({
      id: eventId,
      source: "syncwire",
      type: "conflict.resolve",
      dedupeKey: "r1:email",
      entityKey: "contact:777",
      receivedAt: T0 + 60_000,
      occurredAt: T0 + 60_000,
      payload: { conflictId: "r1", field: "email", choose: "email", by: "grace" },
    });
    expect(await conflictRow("r1")).toEqual({ status: "resolved", resolution: "email", resolved_by: "grace", resolved_at: T0 + 60_000 });
  });

  it("answers already_resolved to a repeat, without queueing again", async () => {
    await seedConflicts([{ id: "r2", createdAt: T0 }]);
    const { queue, sent } = capturingQueue();
    expect((await resolveConflict(deps(queue), "r2", "crm", "a")).ok).toBe(true);
    const again = await resolveConflict(deps(queue), "r2", "email", "b");
    expect(again).toMatchObject({ ok: false, reason: "already_resolved", resolution: "crm" });
    expect(sent).toHaveLength(1);
    expect(await conflictRow("r2")).toMatchObject({ resolution: "crm", resolved_by: "a" });
  });

  it("lets one of two racing resolves win, and the other never flips it", async () => {
    await seedConflicts([{ id: "race", createdAt: T0 }]);
    const { queue } = capturingQueue();
    const [a, b] = await Promise.all([resolveConflict(deps(queue), "race", "crm", "a"), resolveConflict(deps(queue), "race", "email", "b")]);
    const winners = [a, b].filter((r) => r.ok);
    expect(winners).toHaveLength(1);
    const winner = winners[0]!;
    const loser = winner === a ? b : a;
    const row = await conflictRow("race");
    expect(row?.resolution).toBe(winner.ok ? winner.conflict.resolution : "never");
    expect(loser).toMatchObject({ ok: false, reason: "already_resolved", resolution: row?.resolution });
  });

  it("answers not_found for an unknown id", async () => {
    expect(await resolveConflict(deps(capturingQueue().queue), "nope", "crm", "a")).toEqual({ ok: false, reason: "not_found" });
  });

  it("records nothing when the queue refuses", async () => {
    await seedConflicts([{ id: "refused", createdAt: T0 }]);
    expect(await resolveConflict(deps(refusingQueue), "refused", "crm", "a")).toMatchObject({ ok: false, reason: "queue_refused" });
    expect(await conflictRow("refused")).toMatchObject({ status: "open", resolution: null });
  });
});

describe("POST /api/conflicts/:id/resolve", () => {
  it("answers 202 with the resolved conflict and the id of the queued event", async () => {
    await seedConflicts([{ id: "http-1", createdAt: T0 }]);
    const before = Date.now();
    const res = await callWorker("/api/conflicts/http-1/resolve", { json: { choose: "crm", by: "ops@example.com" } });
    expect(res.status).toBe(202);
    const body = (await res.json()) as { conflict: Conflict; eventId: string };
    expect(body.eventId).toBe(await eventIdFor("syncwire", "http-1:crm"));
    expect(body.conflict).toMatchObject({ id: "http-1", status: "resolved", resolution: "crm", resolvedBy: "ops@example.com" });
    const row = await conflictRow("http-1");
    expect(row).toMatchObject({ status: "resolved", resolution: "crm", resolved_by: "ops@example.com" });
    expect(row!.resolved_at).toBeGreaterThanOrEqual(before);
  });

  it("records the decider as admin when the body names none", async () => {
    await seedConflicts([{ id: "http-2", createdAt: T0 }]);
    const res = await callWith({ EVENTS: capturingQueue().queue }, "/api/conflicts/http-2/resolve", { json: { choose: "email" } });
    expect(res.status).toBe(202);
    expect(await conflictRow("http-2")).toMatchObject({ resolution: "email", resolved_by: "admin" });
  });

  it("answers 409 conflict to a second resolve, saying which side was chosen", async () => {
    await seedConflicts([{ id: "http-3", createdAt: T0 }]);
    const queue = capturingQueue().queue;
    expect((await callWith({ EVENTS: queue }, "/api/conflicts/http-3/resolve", { json: { choose: "email" } })).status).toBe(202);
    const error = await errorOf(await callWith({ EVENTS: queue }, "/api/conflicts/http-3/resolve", { json: { choose: "crm" } }), 409);
    expect(error.code).toBe("conflict");
    expect(error.message).toContain("email");
    expect(await conflictRow("http-3")).toMatchObject({ resolution: "email" });
  });

  it("answers 404 not_found for an unknown id", async () => {
    const error = await errorOf(await callWorker("/api/conflicts/no-such-conflict/resolve", { json: { choose: "crm" } }), 404);
    expect(error.code).toBe("not_found");
  });

  it.each([
    ["an unknown side", { choose: "both" }, "choose"],
    ["no side", {}, "choose"],
    ["a body that is not an object", ["crm"], "body"],
    ["a decider over 100 characters", { choose: "crm", by: "x".repeat(101) }, "by"],
    ["an empty decider", { choose: "crm", by: "  " }, "by"],
  ])("answers 400 invalid_request for %s, naming the field", async (_, json, field) => {
    await seedConflicts([{ id: "bad-body", createdAt: T0 }]);
    const error = await errorOf(await callWorker("/api/conflicts/bad-body/resolve", { json }), 400);
    expect(error.code).toBe("invalid_request");
    expect(error.message.startsWith(`${field}:`)).toBe(true);
    expect(await conflictRow("bad-body")).toMatchObject({ status: "open" });
  });

  it("answers 400 malformed_body for a body that is not JSON, never a 500", async () => {
    const res = await callWorker("/api/conflicts/x/resolve", { body: "{choose: crm", headers: { "content-type": "application/json" } });
    expect((await errorOf(res, 400)).code).toBe("malformed_body");
  });

  it("answers 400 when there is no body at all", async () => {
    const res = await callWorker("/api/conflicts/x/resolve", { method: "POST" });
    expect((await errorOf(res, 400)).code).toBe("invalid_request");
  });

  it("answers 415 for a body that is not application/json", async () => {
    const res = await callWorker("/api/conflicts/x/resolve", { body: "choose=crm", headers: { "content-type": "application/x-www-form-urlencoded" } });
    expect((await errorOf(res, 415)).code).toBe("unsupported_media_type");
  });

  it("answers 413 for a body over 64 KiB, before parsing it", async () => {
    const res = await callWorker("/api/conflicts/x/resolve", { json: { choose: "crm", pad: "x".repeat(70_000) } });
    expect((await errorOf(res, 413)).code).toBe("payload_too_large");
  });

  it("answers 503 unavailable when the queue refuses, and leaves the conflict open", async () => {
    await seedConflicts([{ id: "http-503", createdAt: T0 }]);
    const error = await errorOf(await callWith({ EVENTS: refusingQueue }, "/api/conflicts/http-503/resolve", { json: { choose: "crm" } }), 503);
    expect(error.code).toBe("unavailable");
    expect(await conflictRow("http-503")).toMatchObject({ status: "open", resolution: null });
  });
});

describe("OpenAPI document", () => {
  it("is OpenAPI 3.1 and lists the conflict routes with every status they answer", () => {
    const doc = openApiDocument();
    expect(doc.openapi).toBe("3.1.0");
    const list = doc.paths?.["/api/conflicts"]?.get;
    const resolve = doc.paths?.["/api/conflicts/{id}/resolve"]?.post;
    expect(Object.keys(list?.responses ?? {}).sort()).toEqual(["200", "400", "401", "503"]);
    expect(Object.keys(resolve?.responses ?? {}).sort()).toEqual(["202", "400", "401", "404", "409", "413", "415", "503"]);
    for (const op of [list, resolve]) {
      expect(op?.security).toEqual([{ adminToken: [] }]);
      for (const response of Object.values(op?.responses ?? {})) {
        const json = (response as { content: Record<string, { example?: unknown; examples?: object }> }).content["application/json"];
        expect(json?.example ?? json?.examples).toBeDefined();
      }
    }
    expect(doc.components?.securitySchemes?.adminToken).toMatchObject({ type: "http", scheme: "bearer" });
    expect(doc.components?.schemas).toHaveProperty("Conflict");
  });
});
