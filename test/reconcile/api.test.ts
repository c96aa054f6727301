/**
 * The nightly check from outside (issue 9): POST and GET /api/sync-runs (one run at a time: a
 * second start is a 409), and the cron, called as the runtime calls it, running a whole check
 * through the real SYNC queue.
 */
import { createScheduledController } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import worker from "../../src/index";
import { callWith, callWorker, type ErrorAnswer } from "../http/admin-support";
import { createCrmContact, resetSandbox, waitFor } from "../support/sandbox";

beforeEach(async () => {
  await resetSandbox();
  await env.DB.batch([env.DB.prepare("DELETE FROM sync_runs"), env.DB.prepare("DELETE FROM alerts")]);
});

/** A queue that keeps what it is sent, so a started run makes no progress until a test says so. */
const holdingQueue = () => ({ send: async () => undefined, sendBatch: async () => undefined }) as unknown as Queue;

type RunPage = { items: { id: string; trigger: string; status: string; dryRun: boolean }[]; nextCursor: string | null };

describe("POST /api/sync-runs", () => {
  it("starts a run (202 with its id), and a second start while it runs is a 409 naming it: one run", async () => {
    const first = await callWith({ SYNC: holdingQueue() }, "/api/sync-runs", { method: "POST", json: { dryRun: true } });
    expect(first.status).toBe(202);
    const { id } = (await first.json()) as { id: string };
    expect(id).toMatch(/^run_/);
    const second = await callWith({ SYNC: holdingQueue() }, "/api/sync-runs", { method: "POST" });
    expect(second.status).toBe(409);
    expect(((await second.json()) as ErrorAnswer).error).toMatchObject({ code: "conflict", message: expect.stringContaining(id) });
    const list = (await (await callWorker("/api/sync-runs")).json()) as RunPage;
    expect(list.items.filter((r) => r.status === "running")).toEqual([expect.objectContaining({ id, trigger: "manual", dryRun: true })]);
  });

  it("a run with no step for over an hour has stalled: a start ends it as failed (with an alert) and begins a new one", async () => {
    const twoHoursAgo = Date.now() - 2 * 3_600_000;
    await env.DB.prepare("INSERT INTO sync_runs (id, trigger, status, dry_run, phase, started_at, updated_at) VALUES ('run_stalled', 'cron', 'running', 0, 'scan', ?, ?)").bind(twoHoursAgo, twoHoursAgo).run();
    const started = await callWith({ SYNC: holdingQueue() }, "/api/sync-runs", { method: "POST" });
    expect(started.status).toBe(202);
    expect(await env.DB.prepare("SELECT status, error FROM sync_runs WHERE id = 'run_stalled'").first()).toMatchObject({ status: "failed", error: expect.stringMatching(/^stalled: no step for 12\d minutes/) });
    expect(await env.DB.prepare("SELECT kind FROM alerts WHERE run_id = 'run_stalled'").all()).toMatchObject({ results: [{ kind: "run_failed" }] });
  });

  it("two starts at the same moment: one 202, one 409", async () => {
    const answers = await Promise.all([1, 2].map(() => callWith({ SYNC: holdingQueue() }, "/api/sync-runs", { method: "POST" })));
    expect(answers.map((a) => a.status).sort()).toEqual([202, 409]);
  });

  it("refuses a body that is not a dry-run flag, and asks for the token", async () => {
    expect((await callWith({ SYNC: holdingQueue() }, "/api/sync-runs", { method: "POST", json: { dryRun: "yes" } })).status).toBe(400);
    expect((await callWorker("/api/sync-runs", { token: null })).status).toBe(401);
  });
});

describe("GET /api/sync-runs", () => {
  it("lists runs newest first, with cursor paging", async () => {
    const now = Date.now();
    for (let i = 0; i < 3; i++) {
      await env.DB.prepare(
        "INSERT INTO sync_runs (id, trigger, status, dry_run, phase, started_at, finished_at, updated_at) VALUES (?, 'cron', 'succeeded', 0, 'done', ?, ?, ?)",
      ).bind(`run_page_${i}`, now + 10_000 + i, now + 20_000 + i, now).run();
    }
    const first = (await (await callWorker("/api/sync-runs?limit=2")).json()) as RunPage;
    expect(first.items.map((r) => r.id)).toEqual(["run_page_2", "run_page_1"]);
    const second = (await (await callWorker(`/api/sync-runs?limit=2&cursor=${first.nextCursor}`)).json()) as RunPage;
    expect(second.items[0]!.id).toBe("run_page_0");
    expect((await callWorker("/api/sync-runs?cursor=nonsense")).status).toBe(400);
  });
});

describe("the cron", () => {
  it("called as the runtime calls it, runs a whole check through the SYNC queue", { timeout: 30_000 }, async () => {
    for (let i = 0; i < 3; i++) await createCrmContact({ email: `cron.${i}.${crypto.randomUUID().slice(0, 6)}@example.com`, firstname: "Ada", lastname: "Lovelace" });
    await worker.scheduled(createScheduledController({ scheduledTime: Date.now(), cron: "0 2 * * *" }), env);
    const run = await waitFor(
      async () => {
        const row = await env.DB.prepare("SELECT * FROM sync_runs WHERE trigger = 'cron' ORDER BY started_at DESC LIMIT 1").first<{ status: string; crm_records: number; mismatches: number }>();
        return row && row.status !== "running" ? row : undefined;
      },
      20_000,
      "the cron's run to end",
    );
    // Three contacts only in the CRM: found missing in the list.
    expect(run).toMatchObject({ status: "succeeded", crm_records: 3, mismatches: 3 });
  });
});

describe("GET /health and the nightly check", () => {
  const health = async () => (await (await callWorker("/health", { token: null })).json()) as { status: string; reasons?: string[]; lastSyncRun: { id: string; status: string } | null };

  it("a fresh install is ok, with no last run", async () => {
    await env.DB.prepare("DELETE FROM worker_state").run();
    expect(await health()).toMatchObject({ status: "ok", lastSyncRun: null });
  });

  it("degraded when no run succeeded in the 26 hours since the first start; ok again with the last run once one succeeds", async () => {
    const longAgo = Date.now() - 27 * 3_600_000;
    await env.DB.prepare("INSERT OR REPLACE INTO worker_state (key, value, updated_at) VALUES ('first_start', ?, ?)").bind(String(longAgo), longAgo).run();
    await env.DB.prepare("INSERT INTO sync_runs (id, trigger, status, dry_run, phase, started_at, finished_at, error, updated_at) VALUES ('run_failed_1', 'cron', 'failed', 0, 'done', ?, ?, 'HubSpot answered 401', ?)")
      .bind(longAgo + 1_000, longAgo + 2_000, longAgo)
      .run();
    const degraded = await health();
    expect(degraded).toMatchObject({ status: "degraded", lastSyncRun: { id: "run_failed_1", status: "failed" } });
    expect(degraded.reasons?.[0]).toContain("no sync run succeeded since");
    const now = Date.now();
    await env.DB.prepare("INSERT INTO sync_runs (id, trigger, status, dry_run, phase, started_at, finished_at, updated_at) VALUES ('run_ok_1', 'cron', 'succeeded', 0, 'done', ?, ?, ?)").bind(now - 5_000, now, now).run();
    expect(await health()).toMatchObject({ status: "ok", lastSyncRun: { id: "run_ok_1", status: "succeeded" } });
  });
});
