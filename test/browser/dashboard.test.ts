/**
 * The dashboard in real headless Chromium against the bundled worker (issue 10): a person signs
 * in once, sees the numbers the system holds, replays a dead letter and resolves a conflict with
 * the page's buttons (which go through the admin API), follows an event's story, and the page
 * talks to nothing but the worker. A screenshot lands in test-results/.
 */
import { createHash } from "node:crypto";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../support/e2e";
import { launchChromium, outside, recordRequests, screenshot } from "../support/browser";
import { startLocalWorker, type LocalWorker } from "../support/local-worker";

const TOKEN = "dashboard-test-admin-token";
// The sandbox's own credentials (src/sandbox/credentials.ts).
const HUBSPOT = { authorization: "Bearer pat-sandbox-hubspot-token" };
const MAILCHIMP = { authorization: `Basic ${Buffer.from("any:00000000000000000000000000000000-us21").toString("base64")}` };
const LIST = "sandbox-list";

let worker: LocalWorker;
let browser: Browser;

beforeAll(async () => {
  [worker, browser] = await Promise.all([startLocalWorker({ vars: { SANDBOX: "true", ADMIN_TOKEN: TOKEN } }), launchChromium()]);
});

afterAll(async () => {
  await Promise.all([browser?.close(), worker?.close()]);
});

async function call<T = any>(method: string, path: string, headers: Record<string, string> = {}, body?: unknown): Promise<{ status: number; json: T }> {
  const res = await fetch(`${worker.url}${path}`, { method, headers: { ...headers, ...(body ? { "content-type": "application/json" } : {}) }, body: body ? JSON.stringify(body) : undefined });
  const text = await res.text();
  return { status: res.status, json: (text ? JSON.parse(text) : null) as T };
}
const admin = <T = any>(path: string) => call<T>("GET", path, { authorization: `Bearer ${TOKEN}` });

/**
 * Clicks a button that calls the admin API and reloads the page; answers the API's status and
 * JSON. The answer is read on its way through (page.route passes it on unchanged), since the
 * reload that follows it discards the browser's copy.
 */
async function clickAndReload(page: Page, testId: string, apiPath: string): Promise<{ status: number; body: any }> {
  let answer: { status: number; body: any } | undefined;
  const matcher = (url: URL) => url.pathname === apiPath;
  await page.route(matcher, async (route) => {
    const response = await route.fetch();
    answer = { status: response.status(), body: await response.json() };
    await route.fulfill({ response });
  });
  const reloaded = page.waitForEvent("load");
  await page.getByTestId(testId).click();
  await reloaded;
  await page.unroute(matcher);
  if (!answer) throw new Error(`no answer from ${apiPath}`);
  return answer;
}

const text = (page: Page, testId: string) => page.getByTestId(testId).innerText();
const card = (page: Page, testId: string) => page.locator(`[data-testid="${testId}"] .n`).innerText();

describe("GET /dashboard in Chromium", () => {
  it("signs in once, shows the seeded numbers, replays a dead letter and resolves a conflict through its buttons, and talks only to the worker", async () => {
    // Real dead letters: Mailchimp refuses the next write for good (400). The creation's webhook
    // events share one bulk write, so each of them dies; wait until none is in progress.
    expect((await call("POST", "/sandbox/mailchimp/_sandbox/faults", {}, { failNext: { count: 1, status: 400 } })).status).toBe(200);
    const email = `ada-${Date.now()}@example.com`;
    const created = await call<{ id: string }>("POST", "/sandbox/hubspot/crm/v3/objects/contacts", { ...HUBSPOT, "x-sandbox-actor": "user" }, { properties: { email, firstname: "Ada", lastname: "Lovelace" } });
    expect(created.status).toBe(201);
    await until(
      async () => (await worker.query("SELECT 1 FROM dead_letters")).length > 0 && (await worker.query("SELECT 1 FROM events WHERE status IN ('processing', 'retrying')")).length === 0,
      30_000,
      "dead letters",
    );
    const letters = await worker.query<{ id: string; event_id: string }>("SELECT id, event_id FROM dead_letters WHERE replayed_at IS NULL ORDER BY created_at DESC, id DESC");
    // The letter of the event whose call Mailchimp refused (the others died with it, in its entity's group).
    const [refused] = await worker.query<{ event_id: string }>("SELECT event_id FROM audit_log WHERE connector = 'mailchimp' AND status = 400");
    const letter = letters.find((l) => l.event_id === refused?.event_id)!;
    expect(letter).toBeDefined();

    // An open conflict on that contact, and Stripe calls in this minute's rollup: 40 calls, 3 failed, each about 200 ms.
    const now = Date.now();
    await worker.query(
      "INSERT INTO conflicts (id, entity_key, field, crm_value, crm_at, email_value, email_at, status, created_at) VALUES ('cf_browser', ?, 'firstname', 'Ada', ?, 'Augusta', ?, 'open', ?)",
      `contact:${created.json.id}`, now - 60_000, now - 55_000, now - 50_000,
    );
    await worker.query(
      `INSERT INTO metrics_minutes (connector, minute, calls, errors, sum_ms, le_10, le_25, le_50, le_100, le_250, le_500, le_1000, le_2500, le_5000, le_10000, le_inf)
       VALUES ('stripe', ?, 40, 3, 8000, 0, 0, 0, 0, 40, 40, 40, 40, 40, 40, 40)`,
      Math.floor(now / 60_000),
    );
    const metrics = (await admin("/api/metrics")).json;

    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const requests = recordRequests(page);

    // Not signed in: the sign-in form, answered 401; a wrong token is said to be wrong.
    const first = await page.goto(`${worker.url}/dashboard`);
    expect(first?.status()).toBe(401);
    await page.getByLabel("Admin token").fill("not-the-token");
    await Promise.all([page.waitForEvent("load"), page.getByRole("button", { name: "Sign in" }).click()]);
    expect(await page.getByTestId("login-error").isVisible()).toBe(true);
    await page.getByLabel("Admin token").fill(TOKEN);
    await Promise.all([page.waitForEvent("load"), page.getByRole("button", { name: "Sign in" }).click()]);
    expect(await page.title()).toBe("Overview · Syncwire");

    // The numbers the system holds.
    expect(await card(page, "card-dead-letters")).toBe(String(letters.length));
    expect(await card(page, "card-conflicts")).toBe("1");
    expect(await text(page, "calls-1h-stripe")).toBe("40");
    expect(await text(page, "errors-1h-stripe")).toBe("3 (7.5%)");
    const hubspotCalls = metrics.connectors.hubspot["1h"].calls as number;
    expect(hubspotCalls).toBeGreaterThan(0);
    expect(Number(await text(page, "calls-1h-hubspot"))).toBeGreaterThanOrEqual(hubspotCalls);
    expect(await page.locator('[data-testid="chart-throughput"] polyline, [data-testid="chart-throughput"] circle').count()).toBeGreaterThanOrEqual(2);
    expect(await text(page, `dead-letter-${letter.id}`)).toContain("400");
    const conflictRow = await text(page, "conflict-cf_browser");
    expect(conflictRow).toContain("Ada");
    expect(conflictRow).toContain("Augusta");

    // Kept for the browser session: a second tab is signed in.
    const second = await context.newPage();
    expect((await second.goto(`${worker.url}/dashboard`))?.status()).toBe(200);
    await second.close();

    // Replay a dead letter with its button: the letter closes, and the contact reaches Mailchimp.
    const replay = await clickAndReload(page, `replay-${letter.id}`, "/api/dead-letters/replay");
    expect(replay).toMatchObject({ status: 202, body: { queued: 1, eventIds: [letter.event_id] } });
    expect(await page.locator("#status").innerText()).toContain("Replayed");
    expect(await card(page, "card-dead-letters")).toBe(String(letters.length - 1));
    expect(await worker.query("SELECT id FROM dead_letters WHERE replayed_at IS NULL ORDER BY created_at DESC, id DESC")).toEqual(letters.filter((l) => l !== letter).map(({ id }) => ({ id })));
    const hash = createHash("md5").update(email).digest("hex");
    await until(async () => (await call("GET", `/sandbox/mailchimp/3.0/lists/${LIST}/members/${hash}`, MAILCHIMP)).status === 200, 30_000, "the replayed member in Mailchimp");

    // Resolve the conflict with "Keep CRM": recorded, and its event carries the choice to both systems.
    const resolved = await clickAndReload(page, "keep-crm-cf_browser", "/api/conflicts/cf_browser/resolve");
    expect(resolved).toMatchObject({ status: 202, body: { conflict: { status: "resolved", resolution: "crm", resolvedBy: "dashboard" } } });
    expect(await page.getByTestId("no-conflicts").isVisible()).toBe(true);
    await until(async () => (await admin(`/api/events/${resolved.body.eventId}`)).json?.status === "done", 30_000, "the resolution applied");

    // One event's story, one click away: the refused write, then the replayed one.
    await page.goto(`${worker.url}/dashboard`);
    await Promise.all([page.waitForEvent("load"), page.locator(`a[href="/dashboard/events/${letter.event_id}"]`).first().click()]);
    expect(await text(page, "event-audit")).toMatch(/mailchimp[\s\S]*400/);
    expect(await text(page, "event-actions")).toContain("done");
    expect(await text(page, "event-payload")).toContain(String(created.json.id));

    await page.goto(`${worker.url}/dashboard`);
    await screenshot(page, "dashboard");
    expect(outside(requests, worker.url)).toEqual([]);
    await context.close();
  });

  it("answers 401 in the error shape to a client that does not ask for HTML, and takes the bearer header", async () => {
    const bare = await call("GET", "/dashboard");
    expect(bare).toMatchObject({ status: 401, json: { error: { code: "unauthorized" } } });
    const nearMiss = await call("GET", "/dashboard", { authorization: `Bearer ${TOKEN}x` });
    expect(nearMiss).toMatchObject({ status: 401, json: { error: { code: "unauthorized" } } });
    const res = await fetch(`${worker.url}/dashboard`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-security-policy")).toContain("default-src 'none'");
    expect(await res.text()).toMatch(/^<!DOCTYPE html>/i);
  });
});
