/**
 * Sandbox mode's webhook wiring: the default configuration of the hosted fakes, deliveries the
 * worker's own ingest accepts, the in-process delivery of the SandboxHost, and the dispatchers.
 */
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { getConfig } from "../../src/config";
import { receiveHubSpot, receiveMailchimp } from "../../src/ingest/receive";
import { createFakeHubSpot } from "../../src/sandbox/fake-hubspot";
import { createFakeMailchimp } from "../../src/sandbox/fake-mailchimp";
import { defaultHubSpotWebhooks, defaultMailchimpWebhooks } from "../../src/sandbox/sandbox-host.do";
import { fetchDispatcher, retryingDispatcher } from "../../src/sandbox/webhooks";
import { HUBSPOT_TOKEN, LIST_ID, MAILCHIMP_KEY, sandboxFetch, waitFor } from "../support/sandbox";

const mailchimpAuth = { authorization: `Basic ${btoa(`test:${MAILCHIMP_KEY}`)}`, "content-type": "application/json" };
const hubspotAuth = { authorization: `Bearer ${HUBSPOT_TOKEN}`, "content-type": "application/json" };

afterEach(() => vi.restoreAllMocks());

/** The fakes' own reset (back to the host's defaults), whatever test support's reset adds to it. */
async function resetToDefaults(): Promise<void> {
  for (const vendor of ["hubspot", "mailchimp"]) {
    const res = await sandboxFetch(`/${vendor}/_sandbox/reset`, { method: "POST" });
    if (!res.ok) throw new Error(`reset ${vendor}: ${res.status}`);
  }
}

function enabledConfig() {
  const config = getConfig(env);
  if (!config.hubspot.enabled || !config.mailchimp.enabled) throw new Error("the test environment enables both");
  return { config, hubspot: config.hubspot, mailchimp: config.mailchimp };
}

describe("sandbox webhooks: default configuration", () => {
  it("starts the hosted fakes with HubSpot's subscriptions and one all-events Mailchimp webhook", async () => {
    await resetToDefaults();
    const { config } = enabledConfig();
    const crmProperties = [config.crm.lostProperty, config.crm.subscriptionProperty].filter((p) => p !== null);
    const hubspot = await (await sandboxFetch("/hubspot/_sandbox/webhooks")).json();
    expect(hubspot).toEqual({
      targetUrl: "https://sandbox.invalid/webhooks/hubspot",
      portalId: expect.any(Number),
      appId: expect.any(Number),
      subscriptions: [
        { id: 1, subscriptionType: "contact.creation" },
        { id: 2, subscriptionType: "contact.deletion" },
        ...["email", "firstname", "lastname", ...crmProperties].map((propertyName, i) => ({ id: 3 + i, subscriptionType: "contact.propertyChange", propertyName })),
      ],
    });
    expect(JSON.stringify(hubspot)).not.toContain("clientSecret");
    const mailchimp = await (await sandboxFetch(`/mailchimp/3.0/lists/${LIST_ID}/webhooks`, { headers: mailchimpAuth })).json();
    expect(mailchimp).toMatchObject({
      total_items: 1,
      webhooks: [{
        url: "https://sandbox.invalid/webhooks/mailchimp/test-mailchimp-url-secret",
        events: { subscribe: true, unsubscribe: true, profile: true, cleaned: true, upemail: true, campaign: true },
        sources: { user: true, admin: true, api: true },
      }],
    });
  });

  it("subscribes the configured lost and subscription properties, skipping unset ones", () => {
    const { config } = enabledConfig();
    const names = (crm: typeof config.crm) =>
      defaultHubSpotWebhooks({ ...config, crm }, "secret").subscriptions.flatMap((s) => (s.propertyName === undefined ? [] : [s.propertyName]));
    expect(names({ lostProperty: "hs_lead_status", lostValue: "UNQUALIFIED", subscriptionProperty: "syncwire_subscription" }))
      .toEqual(["email", "firstname", "lastname", "hs_lead_status", "syncwire_subscription"]);
    expect(names({ lostProperty: null, lostValue: null, subscriptionProperty: "email" })).toEqual(["email", "firstname", "lastname"]);
  });

  it("builds deliveries that the worker's own ingest verifies and parses", async () => {
    const { config, hubspot, mailchimp } = enabledConfig();
    const sent: Request[] = [];
    const dispatch = async (r: Request) => void sent.push(r);
    const crm = createFakeHubSpot({ accessToken: "t", dispatch, webhooks: defaultHubSpotWebhooks(config, hubspot.clientSecret) });
    const audience = createFakeMailchimp({ apiKey: "k", listIds: [LIST_ID], dispatch, webhooks: defaultMailchimpWebhooks(mailchimp.webhookSecret) });
    const crmCall = (method: string, path: string, body: unknown) =>
      crm.handle(new Request(`https://api.hubapi.com${path}`, { method, headers: { authorization: "Bearer t" }, body: JSON.stringify(body) }), path);
    const audienceCall = (method: string, path: string, body: unknown, actor = "api") =>
      audience.handle(new Request(`https://us21.api.mailchimp.com${path}`, {
        method, headers: { authorization: `Basic ${btoa("x:k")}`, "X-Sandbox-Actor": actor }, body: JSON.stringify(body),
      }), path);

    await crmCall("POST", "/crm/v3/objects/contacts", { properties: { email: "ada@example.com", firstname: "Ada" } });
    await crmCall("PATCH", "/crm/v3/objects/contacts/101", { properties: { lastname: "Lovelace" } });
    await crmCall("DELETE", "/crm/v3/objects/contacts/101", {});
    const memberPath = `/3.0/lists/${LIST_ID}/members/ada@example.com`;
    await audienceCall("PUT", memberPath, { email_address: "ada@example.com", status_if_new: "subscribed" });
    await audienceCall("PATCH", memberPath, { status: "unsubscribed" }, "user");
    await audienceCall("PATCH", memberPath, { email_address: "ada@lovelace.example" }, "admin");

    const types: string[] = [];
    for (const request of sent) {
      const url = new URL(request.url);
      const received = url.pathname === "/webhooks/hubspot"
        ? await receiveHubSpot(request, hubspot, Date.now())
        : await receiveMailchimp(request, decodeURIComponent(url.pathname.split("/").at(-1)!), mailchimp, Date.now());
      if (!received.ok) throw new Error(`${url.pathname}: ${received.code} ${received.message}`);
      types.push(...received.events.map((e) => `${e.source}:${e.type}`));
    }
    expect(types).toEqual([
      "hubspot:contact.creation", "hubspot:contact.propertyChange", "hubspot:contact.propertyChange",
      "hubspot:contact.propertyChange",
      "hubspot:contact.deletion",
      "mailchimp:subscribe", "mailchimp:unsubscribe", "mailchimp:upemail",
    ]);
  });
});

describe("sandbox webhooks: the SandboxHost", () => {
  it("hands its fakes' webhooks to the worker in-process, after the vendor answer", async () => {
    await resetToDefaults();
    const warnings: Record<string, unknown>[] = [];
    vi.spyOn(console, "warn").mockImplementation((text: unknown) => {
      try {
        warnings.push(JSON.parse(String(text)) as Record<string, unknown>);
      } catch {
        /* not a JSON line */
      }
    });
    try {
      // Aimed at a route that answers 404, so the deliveries show without starting any flow.
      const retarget = await sandboxFetch("/hubspot/_sandbox/webhooks", {
        method: "POST",
        body: JSON.stringify({ targetUrl: "https://sandbox.invalid/health/hubspot", clientSecret: "x", subscriptions: [{ subscriptionType: "contact.creation" }] }),
      });
      expect(retarget.status).toBe(200);
      await sandboxFetch("/mailchimp/_sandbox/webhooks", { method: "DELETE" });
      await sandboxFetch(`/mailchimp/3.0/lists/${LIST_ID}/webhooks`, {
        method: "POST", headers: mailchimpAuth,
        body: JSON.stringify({ url: "https://sandbox.invalid/health/mailchimp", events: { subscribe: true }, sources: { api: true } }),
      });

      const created = await sandboxFetch("/hubspot/crm/v3/objects/contacts", { method: "POST", headers: hubspotAuth, body: JSON.stringify({ properties: { email: "host@example.com" } }) });
      expect(created.status).toBe(201);
      const added = await sandboxFetch(`/mailchimp/3.0/lists/${LIST_ID}/members/host@example.com`, {
        method: "PUT", headers: mailchimpAuth, body: JSON.stringify({ email_address: "host@example.com", status_if_new: "subscribed" }),
      });
      expect(added.status).toBe(200);

      const rejected = await waitFor(async () => {
        const lines = warnings.filter((w) => w.step === "sandbox_webhook_rejected");
        return lines.length >= 2 ? lines : undefined;
      }, 10_000, "both deliveries");
      expect(rejected).toEqual([
        { step: "sandbox_webhook_rejected", target: "https://sandbox.invalid", status: 404, attempts: 1 },
        { step: "sandbox_webhook_rejected", target: "https://sandbox.invalid", status: 404, attempts: 1 },
      ]);
    } finally {
      await resetToDefaults();
    }
  });
});

describe("sandbox webhooks: dispatchers", () => {
  it("retries network errors and 5xx with backoff, and idle() waits for the end", async () => {
    const statuses = [503, 500, 202];
    const attempts: string[] = [];
    const dispatch = retryingDispatcher(async (request) => {
      attempts.push(await request.text());
      const status = statuses.shift()!;
      return new Response(null, { status });
    }, { retries: 3, backoffMs: 5 });
    void dispatch(new Request("https://example.com/hook", { method: "POST", body: "same body" }));
    await dispatch.idle();
    expect(attempts).toEqual(["same body", "same body", "same body"]);
  });

  it("gives up after the retries and logs no secret", async () => {
    const lines: Record<string, unknown>[] = [];
    let calls = 0;
    const dispatch = retryingDispatcher(async () => {
      calls++;
      throw new TypeError("network down");
    }, { retries: 2, backoffMs: 1, log: (line) => void lines.push(line) });
    await expect(dispatch(new Request("https://example.com/webhooks/mailchimp/secret-part?key=also-secret", { method: "POST", body: "x" }))).resolves.toBeUndefined();
    await dispatch.idle();
    expect(calls).toBe(3);
    expect(lines).toEqual([{ step: "sandbox_webhook_failed", target: "https://example.com", outcome: "TypeError", attempts: 3 }]);
    expect(JSON.stringify(lines)).not.toContain("secret");
  });

  it("fetchDispatcher posts with fetch and does not retry a 4xx", async () => {
    const seen: string[] = [];
    vi.spyOn(globalThis, "fetch").mockImplementation(async (input) => {
      seen.push(input instanceof Request ? `${input.method} ${input.url}` : String(input));
      return new Response(null, { status: 401 });
    });
    const log = vi.fn();
    const dispatch = fetchDispatcher({ retries: 3, backoffMs: 1, log });
    void dispatch(new Request("https://example.com/webhooks/hubspot", { method: "POST", body: "[]" }));
    await dispatch.idle();
    expect(seen).toEqual(["POST https://example.com/webhooks/hubspot"]);
    expect(log).toHaveBeenCalledWith({ step: "sandbox_webhook_rejected", target: "https://example.com", status: 401, attempts: 1 });
  });
});
