/**
 * GET /dashboard and its pages in workerd (issue 10): the token by header or by the session
 * cookie, the sign-in form for a browser and the error shape for anyone else, the pages' content
 * from seeded rows, and what a bad id or range gets. The browser test (test/browser) clicks.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, callWith, callWorker, seedConflicts } from "./admin-support";
import { clearEventTables, seedAudit, seedEvents } from "./events-support";

const T0 = Date.now() - 10 * 60_000;
const browser = { accept: "text/html,application/xhtml+xml" };

beforeEach(async () => {
  await clearEventTables();
  await env.DB.batch(["conflicts", "sync_runs", "sync_mismatches", "metrics_minutes", "alerts"].map((t) => env.DB.prepare(`DELETE FROM ${t}`)));
});

describe("the dashboard's token", () => {
  it("without one: the error shape for a client, the sign-in form for a browser; both 401", async () => {
    const bare = await callWorker("/dashboard", { token: null });
    expect(bare.status).toBe(401);
    expect(bare.headers.get("www-authenticate")).toBe('Bearer realm="syncwire"');
    expect(await bare.json()).toEqual({ error: { code: "unauthorized", message: "send Authorization: Bearer <ADMIN_TOKEN>" } });

    const page = await callWorker("/dashboard", { token: null, headers: browser });
    expect(page.status).toBe(401);
    expect(page.headers.get("content-type")).toContain("text/html");
    const html = await page.text();
    expect(html).toContain('id="login"');
    expect(html).not.toContain("not the admin token");
    expect(html).not.toContain(ADMIN_TOKEN);
  });

  it("refuses a wrong or near-miss token by header and by cookie, and says so", async () => {
    for (const token of ["wrong", `${ADMIN_TOKEN}x`, ADMIN_TOKEN.slice(0, -1), ADMIN_TOKEN.toUpperCase()]) {
      expect((await callWorker("/dashboard", { token })).status, token).toBe(401);
      const byCookie = await callWorker("/dashboard", { token: null, headers: { ...browser, cookie: `syncwire_admin=${encodeURIComponent(token)}` } });
      expect(byCookie.status, token).toBe(401);
      expect(await byCookie.text()).toContain("That is not the admin token.");
    }
    // An empty cookie is a wrong token, not a missing one, and never a way in.
    expect((await callWorker("/dashboard", { token: null, headers: { cookie: "syncwire_admin=" } })).status).toBe(401);
  });

  it("takes the token by header or by the session cookie, with a strict CSP and no caching", async () => {
    const byHeader = await callWorker("/dashboard");
    expect(byHeader.status).toBe(200);
    const byCookie = await callWorker("/dashboard", { token: null, headers: { cookie: `other=1; syncwire_admin=${encodeURIComponent(ADMIN_TOKEN)}` } });
    expect(byCookie.status).toBe(200);
    const csp = byCookie.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'none'");
    expect(csp).toMatch(/script-src 'nonce-[^']+'/);
    expect(csp).toContain("connect-src 'self'");
    expect(byCookie.headers.get("cache-control")).toBe("no-store");
    // The inline script runs under the nonce the header names; nothing else is loaded.
    const nonce = /'nonce-([^']+)'/.exec(csp)![1]!;
    const html = await byCookie.text();
    expect(html).toContain(`<script nonce="${nonce}">`);
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=|https?:\/\/(?!www\.w3\.org)/);
  });
});

describe("signing in (POST /dashboard/session)", () => {
  const form = (token: string, accept = browser) => ({ method: "POST", token: null, redirect: "manual" as const, body: new URLSearchParams({ token }).toString(), headers: { ...accept, "content-type": "application/x-www-form-urlencoded" } });

  it("the form posts the token (never a GET, so never in a URL)", async () => {
    const html = await (await callWorker("/dashboard", { token: null, headers: browser })).text();
    expect(html).toMatch(/<form[^>]+method="post"[^>]+action="\/dashboard\/session"/);
  });

  it("sets the session cookie scoped to /dashboard and goes back to the page", async () => {
    const res = await callWorker("/dashboard/session", form(ADMIN_TOKEN));
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/dashboard");
    const cookie = res.headers.get("set-cookie") ?? "";
    expect(cookie).toMatch(new RegExp(`^syncwire_admin=${encodeURIComponent(ADMIN_TOKEN)};`));
    expect(cookie).toContain("Path=/dashboard");
    expect(cookie).toContain("SameSite=Strict");
    // https here (the test origin), so Secure; a session cookie (no Max-Age, no Expires).
    expect(cookie).toContain("Secure");
    expect(cookie).not.toMatch(/Max-Age|Expires/i);
    // The cookie it set lets the page through.
    expect((await callWorker("/dashboard", { token: null, headers: { cookie: cookie.split(";")[0]! } })).status).toBe(200);
  });

  it("answers a wrong token with the form again (401), a script with the error shape, and a huge body with 413", async () => {
    const wrong = await callWorker("/dashboard/session", form(`${ADMIN_TOKEN}x`));
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get("set-cookie")).toBeNull();
    expect(await wrong.text()).toContain("That is not the admin token.");
    const script = await callWorker("/dashboard/session", form("nope", { accept: "application/json" }));
    expect(script.status).toBe(401);
    expect(((await script.json()) as { error: { code: string } }).error.code).toBe("unauthorized");
    const notForm = await callWorker("/dashboard/session", { method: "POST", token: null, json: { token: ADMIN_TOKEN } });
    expect(notForm.status).toBe(401);
    const huge = await callWorker("/dashboard/session", form("x".repeat(10_000)));
    expect(huge.status).toBe(413);
  });
});

describe("when Syncwire cannot read its state", () => {
  it("shows a person a page saying so (503), and gives a script the error shape", async () => {
    const broken = { SANDBOX: "false", ADMIN_TOKEN: "short" } as unknown as Partial<Env>;
    const page = await callWith(broken, "/dashboard", { headers: browser });
    expect(page.status).toBe(503);
    expect(await page.text()).toContain('data-testid="unavailable"');
    const script = await callWith(broken, "/dashboard");
    expect(script.status).toBe(503);
    expect(((await script.json()) as { error: { code: string } }).error.code).toBe("unavailable");
  });
});

describe("the pages", () => {
  it("shows what is open: dead letters with a replay button each, conflicts with both values and both buttons", async () => {
    await seedEvents([{ id: "evt_dead", receivedAt: T0, status: "dead" }]);
    await env.DB.prepare("INSERT INTO dead_letters (id, event_id, action, source, reason, created_at, replay_count) VALUES ('dl_1', 'evt_dead', 'contact-sync.apply', 'hubspot', 'permanent: mailchimp PUT answered 400', ?, 0)").bind(T0 + 1).run();
    await seedConflicts([{ id: "cf_1", createdAt: T0, crm: ["Ada <b>", T0 - 5000], email: ["Augusta", T0 - 1000] }]);
    const html = await (await callWorker("/dashboard")).text();
    expect(html).toContain('data-post="/api/dead-letters/replay" data-body="{&quot;ids&quot;:[&quot;dl_1&quot;]}"');
    expect(html).toContain('data-post="/api/conflicts/cf_1/resolve" data-body="{&quot;choose&quot;:&quot;crm&quot;,&quot;by&quot;:&quot;dashboard&quot;}"');
    expect(html).toContain('data-body="{&quot;choose&quot;:&quot;email&quot;,&quot;by&quot;:&quot;dashboard&quot;}"');
    // A value from a vendor is text, never markup.
    expect(html).toContain("Ada &lt;b&gt;");
    expect(html).toContain('href="/dashboard/events/evt_dead"');
  });

  it("charts the rollups over the last hour or the last day, and falls back to an hour for a range it does not know", async () => {
    await seedAudit([{ connector: "hubspot", createdAt: Date.now() - 120_000 }, { connector: "mailchimp", outcome: "transient", status: 503, createdAt: Date.now() - 60_000 }]);
    const hour = await (await callWorker("/dashboard")).text();
    expect(hour).toContain("calls per minute");
    expect(hour).toMatch(/data-testid="calls-1h-hubspot">1</);
    expect(hour).toMatch(/data-testid="errors-1h-mailchimp">1/);
    expect((await (await callWorker("/dashboard?range=24h")).text())).toContain("calls per 30 min");
    const odd = await callWorker("/dashboard?range=1y");
    expect(odd.status).toBe(200);
    expect(await odd.text()).toContain("calls per minute");
  });

  it("tells an event's story: payload, actions, its calls", async () => {
    await seedEvents([{ id: "evt_story", receivedAt: T0, status: "done", payload: '{"objectId":"story-151"}' }]);
    await seedAudit([{ eventId: "evt_story", connector: "mailchimp", method: "PUT", url: "https://us21.api.mailchimp.com/3.0/lists/l/members/h", status: 200, createdAt: T0 + 50 }]);
    const res = await callWorker("/dashboard/events/evt_story");
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain("story-151");
    expect(html).toContain("PUT https://us21.api.mailchimp.com/3.0/lists/l/members/h");
    expect(html).toContain('data-post="/api/events/evt_story/replay?all=true"');
  });

  it("shows a sync run with its mismatches, each repair linked to its event", async () => {
    await env.DB.prepare("INSERT INTO sync_runs (id, trigger, status, dry_run, phase, started_at, finished_at, mismatches, mismatches_by_kind, updated_at) VALUES ('run_1', 'cron', 'succeeded', 0, 'done', ?, ?, 1, '{\"names_differ\":1}', ?)").bind(T0, T0 + 4200, T0 + 4200).run();
    await env.DB.prepare("INSERT INTO sync_mismatches (id, run_id, entity_key, kind, field, crm_value, email_value, repair_event_id, created_at) VALUES ('mm_1', 'run_1', 'contact:151', 'names_differ', 'firstname', 'Ada', 'Augusta', 'evt_repair_1', ?)").bind(T0 + 100).run();
    const overview = await (await callWorker("/dashboard")).text();
    expect(overview).toContain('href="/dashboard/sync-runs/run_1"');
    const html = await (await callWorker("/dashboard/sync-runs/run_1")).text();
    expect(html).toContain("names_differ");
    expect(html).toContain("4.2 s");
    expect(html).toContain('href="/dashboard/events/evt_repair_1"');
  });

  it("answers 400 for a mismatch page's cursor it did not issue", async () => {
    await env.DB.prepare("INSERT INTO sync_runs (id, trigger, status, dry_run, phase, started_at, updated_at) VALUES ('run_c', 'cron', 'running', 0, 'scan', ?, ?)").bind(T0, T0).run();
    const res = await callWorker("/dashboard/sync-runs/run_c?cursor=not-ours");
    expect(res.status).toBe(400);
    expect(await res.text()).toContain("not a page of this run");
  });

  it("answers 404 for an event or a run that does not exist", async () => {
    for (const path of ["/dashboard/events/evt_nope", "/dashboard/sync-runs/run_nope"]) {
      const res = await callWorker(path);
      expect(res.status, path).toBe(404);
      expect(await res.text()).toContain("nope");
    }
  });
});
