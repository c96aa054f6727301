/**
 * The rate limits of the fakes the worker hosts (SandboxHost): on by default, off after the test
 * support's resetSandbox(), and enforced across concurrent requests to the Durable Object.
 */
import { afterEach, describe, expect, it } from "vitest";
import { HUBSPOT_TOKEN, LIST_ID, MAILCHIMP_KEY, limitsOf, resetSandbox, sandboxFetch, setFaults, setLimits } from "../support/sandbox";

const hubspot = (path: string) => sandboxFetch(`/hubspot${path}`, { headers: { authorization: `Bearer ${HUBSPOT_TOKEN}` } });
const mailchimp = (path: string) => sandboxFetch(`/mailchimp${path}`, { headers: { authorization: `Basic ${btoa(`x:${MAILCHIMP_KEY}`)}` } });

afterEach(() => resetSandbox());

describe("hosted fakes: rate limits", () => {
  it("are on after the fakes' own reset, and off after resetSandbox()", async () => {
    for (const vendor of ["hubspot", "mailchimp"]) expect((await sandboxFetch(`/${vendor}/_sandbox/reset`, { method: "POST" })).status).toBe(200);
    expect(await limitsOf("hubspot")).toMatchObject({ enabled: true, max: 100, intervalMs: 10_000, daily: 250_000 });
    expect(await limitsOf("mailchimp")).toMatchObject({ enabled: true, maxConnections: 10 });
    await resetSandbox();
    expect(await limitsOf("hubspot")).toMatchObject({ enabled: false });
    expect(await limitsOf("mailchimp")).toMatchObject({ enabled: false });
    await resetSandbox({ limits: true });
    expect(await limitsOf("hubspot")).toMatchObject({ enabled: true, accepted: 0, rejected: 0 });
  });

  it("turn HubSpot's 101st call in ten seconds away, headers and all", async () => {
    await resetSandbox();
    await setLimits("hubspot", { enabled: true });
    const statuses: number[] = [];
    let last: Response | undefined;
    for (let i = 0; i < 101; i++) {
      last = await hubspot("/crm/v3/objects/contacts?limit=1");
      statuses.push(last.status);
    }
    expect(statuses.slice(0, 100).every((s) => s === 200)).toBe(true);
    expect(statuses[100]).toBe(429);
    expect(last?.headers.get("X-HubSpot-RateLimit-Remaining")).toBe("0");
    expect(await last?.json()).toMatchObject({ policyName: "TEN_SECONDLY_ROLLING", errorType: "RATE_LIMIT" });
    expect(await limitsOf("hubspot")).toMatchObject({ window: 100, accepted: 100, rejected: 1 });
  });

  it("let at most 10 Mailchimp calls run in the Durable Object at once", async () => {
    await resetSandbox({ limits: true });
    await setFaults("mailchimp", { latencyMs: 200 });
    const statuses = (await Promise.all(Array.from({ length: 11 }, () => mailchimp(`/3.0/lists/${LIST_ID}/members?count=1`)))).map((r) => r.status);
    expect(statuses.filter((s) => s === 429)).toHaveLength(1);
    expect(await limitsOf("mailchimp")).toMatchObject({ peak: 10, rejected: 1, inFlight: 0 });
  });
});
