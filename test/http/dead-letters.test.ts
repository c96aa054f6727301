/**
 * GET /api/dead-letters and POST /api/dead-letters/replay (issue 10): newest first with cursor
 * paging and filters, the error shape for bad input, the token; a replay queues one replay per
 * event and closes the letters only once the queue has them.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import type { EventMessage } from "../../src/pipeline/message";
import { capturingQueue } from "../support/messages";
import { ADMIN_TOKEN, callWith, callWorker, refusingQueue, type ErrorAnswer } from "./admin-support";
import { clearEventTables, seedEvents } from "./events-support";

type LetterPage = { items: { id: string; eventId: string; action: string | null; source: string; replayedAt: string | null; replayCount: number; createdAt: string }[]; nextCursor: string | null };

beforeEach(clearEventTables);

const T0 = Date.parse("2026-05-01T09:00:00.000Z");

/** Dead letters (and the dead events behind them) as the consumer keeps them. */
async function seedLetters(n: number, options: { source?: "hubspot" | "shopify"; replayed?: boolean; from?: number } = {}) {
  const ids: string[] = [];
  const from = options.from ?? 0;
  await seedEvents(Array.from({ length: n }, (_, i) => ({ id: `evt_dl_${from + i}`, receivedAt: T0 + (from + i) * 1000, status: "dead" as const, source: options.source ?? "hubspot" })));
  await env.DB.batch(
    Array.from({ length: n }, (_, i) => {
      const id = `dl_${String(from + i).padStart(3, "0")}`;
      ids.push(id);
      return env.DB.prepare("INSERT INTO dead_letters (id, event_id, action, source, reason, created_at, replayed_at, replay_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?)").bind(
        id,
        `evt_dl_${from + i}`,
        options.source === "shopify" ? "stripe.invoice" : "contact-sync.apply",
        options.source ?? "hubspot",
        "permanent: answered 400",
        T0 + (from + i) * 1000 + 500,
        options.replayed ? T0 + 999_999 : null,
        options.replayed ? 1 : 0,
      );
    }),
  );
  return ids;
}

const list = async (query = "") => {
  const res = await callWorker(`/api/dead-letters${query}`);
  return { status: res.status, body: (await res.json()) as LetterPage & ErrorAnswer };
};

describe("GET /api/dead-letters", () => {
  it("pages newest first across pages with the cursor", async () => {
    await seedLetters(5);
    const first = await list("?limit=2");
    expect(first.status).toBe(200);
    expect(first.body.items.map((l) => l.id)).toEqual(["dl_004", "dl_003"]);
    const second = await list(`?limit=2&cursor=${first.body.nextCursor}`);
    expect(second.body.items.map((l) => l.id)).toEqual(["dl_002", "dl_001"]);
    const third = await list(`?limit=2&cursor=${second.body.nextCursor}`);
    expect(third.body).toMatchObject({ items: [{ id: "dl_000" }], nextCursor: null });
    expect(first.body.items[0]).toEqual({
      id: "dl_004", eventId: "evt_dl_4", action: "contact-sync.apply", source: "hubspot", reason: "permanent: answered 400", body: null,
      createdAt: new Date(T0 + 4500).toISOString(), replayedAt: null, replayCount: 0,
    });
  });

  it("filters by status, source, action and event", async () => {
    await seedLetters(2);
    await seedLetters(2, { source: "shopify", from: 10 });
    await seedLetters(1, { replayed: true, from: 20 });
    expect((await list("?status=open")).body.items).toHaveLength(4);
    expect((await list("?status=replayed")).body.items.map((l) => l.id)).toEqual(["dl_020"]);
    expect((await list("?source=shopify")).body.items.map((l) => l.id)).toEqual(["dl_011", "dl_010"]);
    expect((await list("?action=stripe.invoice&status=open")).body.items).toHaveLength(2);
    expect((await list("?eventId=evt_dl_1")).body.items.map((l) => l.id)).toEqual(["dl_001"]);
  });

  it.each([["?status=closed", "status"], ["?source=nowhere", "source"], ["?limit=0", "limit"], ["?limit=201", "limit"], ["?cursor=not-a-cursor", "cursor"]])(
    "answers 400 invalid_request naming the field for %s",
    async (query, field) => {
      const { status, body } = await list(query);
      expect(status).toBe(400);
      expect(body.error).toMatchObject({ code: "invalid_request", message: expect.stringContaining(field) });
    },
  );

  it.each([["no token", null], ["a wrong token", "nope"], ["a near-miss token", `${ADMIN_TOKEN.slice(0, -1)}x`]])("answers 401 with %s", async (_what, token) => {
    const res = await callWorker("/api/dead-letters", { token });
    expect(res.status).toBe(401);
    expect(((await res.json()) as ErrorAnswer).error.code).toBe("unauthorized");
  });
});

describe("POST /api/dead-letters/replay", () => {
  const replay = (json: unknown, queue: Queue) => callWith({ EVENTS: queue }, "/api/dead-letters/replay", { method: "POST", json });

  it("replays the named letters, one replay per event, and closes them; an unknown id is skipped", async () => {
    const ids = await seedLetters(3);
    const { queue, sent } = capturingQueue();
    const res = await replay({ ids: [ids[0], ids[2], "dl_unknown"] }, queue);
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ queued: 2, eventIds: ["evt_dl_0", "evt_dl_2"].sort(), skipped: ["dl_unknown"], more: false });
    expect(sent.map((s) => (s.body as EventMessage).event.id).sort()).toEqual(["evt_dl_0", "evt_dl_2"]);
    expect(sent.every((s) => (s.body as EventMessage).replay?.all === false)).toBe(true);
    expect((await list("?status=open")).body.items.map((l) => l.id)).toEqual([ids[1]]);
  });

  it("replays every open letter with {all: true}", async () => {
    await seedLetters(4);
    await seedLetters(1, { replayed: true, from: 20 });
    const { queue, sent } = capturingQueue();
    const res = await replay({ all: true }, queue);
    expect(await res.json()).toMatchObject({ queued: 4, more: false });
    expect(sent).toHaveLength(4);
    expect((await list("?status=open")).body.items).toEqual([]);
  });

  it("leaves the letters open when the queue refuses, so the same request can be repeated", async () => {
    const ids = await seedLetters(1);
    const res = await replay({ ids }, refusingQueue as unknown as Queue);
    expect(res.status).toBe(503);
    expect(((await res.json()) as ErrorAnswer).error.code).toBe("unavailable");
    expect((await list("?status=open")).body.items.map((l) => l.id)).toEqual(ids);
  });

  it.each([[{}], [{ ids: [] }], [{ ids: Array.from({ length: 101 }, (_, i) => `dl_${i}`) }], [{ all: false }], [{ ids: ["a"], all: true }], [{ ids: "dl_1" }]])("answers 400 invalid_request for %j", async (json) => {
    const res = await replay(json, capturingQueue().queue);
    expect(res.status).toBe(400);
    expect(((await res.json()) as ErrorAnswer).error.code).toBe("invalid_request");
  });

  it("answers 401 without the token", async () => {
    const res = await callWorker("/api/dead-letters/replay", { method: "POST", json: { all: true }, token: null });
    expect(res.status).toBe(401);
  });
});
