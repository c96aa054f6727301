/**
 * GET /api/sync-runs/:id, GET /api/sync-runs/:id/mismatches and GET /api/alerts: what the nightly
 * check and the alert conditions recorded, paged newest first; bad input is a 400 in the error
 * shape, an unknown run a 404. (The token on every route: test/http/openapi.test.ts.)
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { callWorker, type ErrorAnswer } from "./admin-support";

const T0 = Date.parse("2026-05-02T02:00:00.000Z");

beforeEach(async () => {
  await env.DB.batch(["sync_runs", "sync_mismatches", "alerts"].map((t) => env.DB.prepare(`DELETE FROM ${t}`)));
  await env.DB.prepare(
    "INSERT INTO sync_runs (id, trigger, status, dry_run, phase, started_at, finished_at, crm_records, email_records, mismatches, mismatches_by_kind, repairs_queued, updated_at) VALUES ('run_1', 'cron', 'succeeded', 0, 'done', ?, ?, 250, 249, 3, '{\"names_differ\":2,\"missing_in_email\":1}', 3, ?)",
  ).bind(T0, T0 + 41_000, T0 + 41_000).run();
  const mismatch = (id: string, kind: string, at: number) =>
    env.DB.prepare("INSERT INTO sync_mismatches (id, run_id, entity_key, kind, field, crm_value, email_value, repair_event_id, created_at) VALUES (?, 'run_1', ?, ?, 'firstname', 'Ada', 'Augusta', ?, ?)").bind(id, `contact:${id}`, kind, `evt_${id}`, at);
  await env.DB.batch([mismatch("mm_1", "names_differ", T0 + 1), mismatch("mm_2", "names_differ", T0 + 2), mismatch("mm_3", "missing_in_email", T0 + 3)]);
});

const json = async <T>(path: string) => {
  const res = await callWorker(path);
  return { status: res.status, body: (await res.json()) as T & ErrorAnswer };
};

describe("GET /api/sync-runs/:id", () => {
  it("answers one run in the list's shape, or 404", async () => {
    const { status, body } = await json<Record<string, unknown>>("/api/sync-runs/run_1");
    expect(status).toBe(200);
    expect(body).toMatchObject({ id: "run_1", status: "succeeded", durationMs: 41_000, recordsCompared: { crm: 250, email: 249 }, mismatches: { total: 3, byKind: { names_differ: 2, missing_in_email: 1 } }, repairsQueued: 3 });
    const list = await json<{ items: unknown[] }>("/api/sync-runs");
    expect(list.body.items[0]).toEqual(body);
    expect(await json("/api/sync-runs/run_nope")).toMatchObject({ status: 404, body: { error: { code: "not_found", message: "no sync run run_nope" } } });
  });
});

describe("GET /api/sync-runs/:id/mismatches", () => {
  it("pages newest first and filters by kind", async () => {
    const first = await json<{ items: { id: string }[]; nextCursor: string | null }>("/api/sync-runs/run_1/mismatches?limit=2");
    expect(first.status).toBe(200);
    expect(first.body.items.map((m) => m.id)).toEqual(["mm_3", "mm_2"]);
    const second = await json<{ items: { id: string }[]; nextCursor: string | null }>(`/api/sync-runs/run_1/mismatches?limit=2&cursor=${first.body.nextCursor}`);
    expect(second.body).toMatchObject({ items: [{ id: "mm_1", runId: "run_1", kind: "names_differ", crmValue: "Ada", emailValue: "Augusta", repairEventId: "evt_mm_1", createdAt: new Date(T0 + 1).toISOString() }], nextCursor: null });
    const names = await json<{ items: { id: string }[] }>("/api/sync-runs/run_1/mismatches?kind=names_differ");
    expect(names.body.items.map((m) => m.id)).toEqual(["mm_2", "mm_1"]);
  });

  it("answers 400 for a bad kind, limit or cursor, and 404 for an unknown run", async () => {
    for (const query of ["kind=nope", "limit=0", "limit=201", "cursor=not-ours"]) {
      const { status, body } = await json(`/api/sync-runs/run_1/mismatches?${query}`);
      expect(status, query).toBe(400);
      expect(body.error.code, query).toBe("invalid_request");
    }
    expect((await json("/api/sync-runs/run_nope/mismatches")).status).toBe(404);
  });
});

describe("GET /api/alerts", () => {
  it("pages the recorded alerts newest first, with their delivery", async () => {
    await env.DB.batch(
      [1, 2, 3].map((i) =>
        env.DB.prepare("INSERT INTO alerts (id, dedupe, kind, run_id, text, created_at, delivered_at, attempts, last_error) VALUES (?, ?, 'backlog', NULL, ?, ?, ?, ?, ?)").bind(
          `al_${i}`, `backlog:${i}`, `alert ${i}`, T0 + i, i === 3 ? null : T0 + i + 500, i === 3 ? 2 : 1, i === 3 ? "answered 503" : null,
        ),
      ),
    );
    const first = await json<{ items: Record<string, unknown>[]; nextCursor: string | null }>("/api/alerts?limit=1");
    expect(first.body.items).toEqual([{ id: "al_3", kind: "backlog", runId: null, text: "alert 3", createdAt: new Date(T0 + 3).toISOString(), deliveredAt: null, attempts: 2, lastError: "answered 503" }]);
    const rest = await json<{ items: { id: string; deliveredAt: string | null }[]; nextCursor: string | null }>(`/api/alerts?cursor=${first.body.nextCursor}`);
    expect(rest.body.items.map((a) => [a.id, a.deliveredAt])).toEqual([["al_2", new Date(T0 + 502).toISOString()], ["al_1", new Date(T0 + 501).toISOString()]]);
    expect(rest.body.nextCursor).toBeNull();
    expect((await json("/api/alerts?cursor=%%%")).status).toBe(400);
  });
});
