/**
 * The nightly check's alerts (issue 9): a failed run, too many mismatches, a slow run (through an
 * injected clock), a missed run; each at most once per run (or missed period), delivered as a
 * Slack-compatible {"text"} to ALERT_WEBHOOK_URL, and an endpoint that is down never fails a run.
 * The alert endpoint is a stand-in receiver: it is the customer's system, not Syncwire's.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { getConfig } from "../../src/config";
import { scheduledTick } from "../../src/reconcile/nightly";
import { reconcileDeps } from "../../src/reconcile/consumer";
import { runToEnd, synced } from "../support/reconcile";
import { createCrmContact, resetSandbox, setFaults } from "../support/sandbox";

const HOOK = "https://hooks.example.test/services/T000/B000/XXXX";

beforeEach(async () => {
  await resetSandbox();
  await env.DB.batch([env.DB.prepare("DELETE FROM sync_runs"), env.DB.prepare("DELETE FROM alerts"), env.DB.prepare("DELETE FROM worker_state")]);
});

/** An alert endpoint that keeps what it is sent, answering `status` (or failing when it throws). */
function receiver(answer: () => number = () => 200) {
  const received: { url: string; body: unknown }[] = [];
  const post = async (url: string, init: RequestInit) => {
    const status = answer();
    if (status === 0) throw new TypeError("Network connection lost.");
    received.push({ url, body: JSON.parse(String(init.body)) });
    return new Response("ok", { status });
  };
  return { received, post };
}

const withHook = (post: ReturnType<typeof receiver>["post"], now?: () => number) => ({
  config: { ...getConfig(env), alertWebhookUrl: HOOK },
  post,
  ...(now ? { now } : {}),
});
const alertRows = async () => (await env.DB.prepare("SELECT kind, run_id, text, delivered_at, attempts FROM alerts ORDER BY created_at").all<{ kind: string; run_id: string | null; text: string; delivered_at: number | null; attempts: number }>()).results;

describe("alerts of a run", () => {
  it("a failed run: one alert, recorded and delivered as {text}", async () => {
    await synced(0);
    await setFaults("hubspot", { failNext: { count: 1, status: 401 } });
    const hook = receiver();
    const { run } = await runToEnd({ deps: withHook(hook.post) });
    expect(run.status).toBe("failed");
    expect(await alertRows()).toEqual([expect.objectContaining({ kind: "run_failed", run_id: run.id, attempts: 1, delivered_at: expect.any(Number) })]);
    expect(hook.received).toEqual([{ url: HOOK, body: { text: expect.stringMatching(/nightly check failed .*401/) } }]);
  });

  it("mismatches over ALERT_MISMATCH_PERCENT of the records compared: one alert; none at or under it", async () => {
    for (let i = 0; i < 3; i++) await synced(i);
    const hook = receiver();
    const clean = await runToEnd({ deps: withHook(hook.post) });
    expect(clean.run.mismatches.total).toBe(0);
    expect(await alertRows()).toEqual([]);
    await createCrmContact({ email: `drift.${crypto.randomUUID().slice(0, 6)}@example.com`, firstname: "Grace", lastname: "Hopper" });
    const { run } = await runToEnd({ deps: withHook(hook.post) });
    expect(run.mismatches.total).toBe(1);
    expect((await alertRows()).map((a) => a.kind)).toEqual(["too_many_mismatches"]);
    expect(hook.received[0]!.body).toEqual({ text: expect.stringContaining("1 mismatches in 4 records (25%, over 1%)") });
  });

  it("a run longer than twice the median of the last successful runs (an injected clock): one alert", async () => {
    await synced(0);
    const started = Date.now() - 10 * 86_400_000;
    // Seven earlier runs of 10 s each.
    for (let i = 0; i < 7; i++) {
      await env.DB.prepare("INSERT INTO sync_runs (id, trigger, status, dry_run, phase, started_at, finished_at, updated_at) VALUES (?, 'cron', 'succeeded', 0, 'done', ?, ?, ?)")
        .bind(`run_old_${i}`, started + i * 86_400_000, started + i * 86_400_000 + 10_000, started)
        .run();
    }
    let clock = Date.now();
    const slow = () => (clock += 5_000); // every reading of the clock 5 s later: the run takes far over 20 s
    const hook = receiver();
    const { run } = await runToEnd({ deps: withHook(hook.post, slow) });
    expect(run.status).toBe("succeeded");
    expect(run.durationMs).toBeGreaterThan(20_000);
    expect((await alertRows()).map((a) => a.kind)).toEqual(["slow_run"]);
  });

  it("an alert endpoint that is down: the run still succeeds, the alert is retried, then left recorded and undelivered", async () => {
    for (let i = 0; i < 2; i++) await synced(i);
    await createCrmContact({ email: `drift.${crypto.randomUUID().slice(0, 6)}@example.com`, firstname: "Grace", lastname: "Hopper" });
    const hook = receiver(() => 503);
    const { run } = await runToEnd({ deps: withHook(hook.post) });
    expect(run.status).toBe("succeeded");
    const [alert] = await alertRows();
    expect(alert).toMatchObject({ kind: "too_many_mismatches", delivered_at: null });
    expect(alert!.attempts).toBeGreaterThan(1);
  });

  it("without ALERT_WEBHOOK_URL: recorded, and nothing is sent", async () => {
    await setFaults("hubspot", { failNext: { count: 1, status: 401 } });
    const { run, deliveries } = await runToEnd();
    expect(run.status).toBe("failed");
    expect(await alertRows()).toEqual([expect.objectContaining({ kind: "run_failed", delivered_at: null, attempts: 0 })]);
    expect(deliveries).toBeLessThan(10);
  });
});

describe("the missed-run check on every cron tick", () => {
  it("no successful run in 26 hours since the first start: one alert, not repeated by the next tick", async () => {
    const firstStart = Date.now() - 30 * 3_600_000;
    await env.DB.prepare("INSERT INTO worker_state (key, value, updated_at) VALUES ('first_start', ?, ?)").bind(String(firstStart), firstStart).run();
    const deps = reconcileDeps(env);
    await scheduledTick(env, "0 2 * * *", deps.now);
    await scheduledTick(env, "0 2 * * *", deps.now);
    const missed = (await alertRows()).filter((a) => a.kind === "missed_run");
    expect(missed).toHaveLength(1);
    expect(missed[0]!.text).toContain(new Date(firstStart).toISOString());
  });

  it("a fresh install is not missed, and /health says ok until 26 hours have passed", async () => {
    await scheduledTick(env, "0 2 * * *");
    expect((await alertRows()).filter((a) => a.kind === "missed_run")).toEqual([]);
  });
});
