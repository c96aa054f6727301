/**
 * The vendors' shared budgets in the pipeline (CONTRACT 4.11), against the fakes with their
 * documented limits on: many contacts at once, concurrent consumer invocations sharing one
 * budget, a 429's Retry-After waited out by everyone, work that finds no capacity waiting
 * (uncounted, never dead), HubSpot's remaining count learned, and GET /health.
 */
import { env } from "cloudflare:workers";
import { SELF } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { budgetName, type BudgetApi } from "../../src/budgets/apis";
import { BudgetGate, stripeEndpoint, type CallPass } from "../../src/budgets/gate";
import { pipelineDeps } from "../../src/pipeline/consumer";
import { crmCreated } from "../support/contacts";
import { actionRow, consume, deadLettersOf } from "../support/messages";
import { HUBSPOT_TOKEN, LIST_ID, MAILCHIMP_KEY, limitsOf, mailchimpMember, resetSandbox, sandboxFetch, setFaults, setLimits, vendorRequests, type LoggedRequest } from "../support/sandbox";
import { orderMessage, requests, resetFanoutFakes, shopifyOrder } from "../support/orders";
import { unique } from "../support/sync";

beforeEach(() => resetSandbox());

/** Consumer deps as the worker builds them, with these vars changed. */
const depsWith = (vars: Record<string, string>) => pipelineDeps({ ...env, ...vars } as Env);

const hubspotBudget = () => env.BUDGET.get(env.BUDGET.idFromName(budgetName("hubspot", HUBSPOT_TOKEN))) as unknown as BudgetApi;

/** `n` CRM contacts made through the fake's batch create (100 a call), their creation events with them. */
async function contacts(n: number): Promise<{ id: string; email: string; message: Awaited<ReturnType<typeof crmCreated>> }[]> {
  const out = [];
  for (let start = 0; start < n; start += 100) {
    const emails = Array.from({ length: Math.min(100, n - start) }, (_, i) => unique(`budget${start + i}`));
    const res = await sandboxFetch("/hubspot/crm/v3/objects/contacts/batch/create", {
      method: "POST",
      headers: { authorization: `Bearer ${HUBSPOT_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ inputs: emails.map((email) => ({ properties: { email } })) }),
    });
    if (res.status !== 201) throw new Error(`batch create: ${res.status} ${await res.text()}`);
    const { results } = (await res.json()) as { results: { id: string; properties: { email: string } }[] };
    for (const r of results) out.push({ id: r.id, email: r.properties.email, message: await crmCreated(r.id) });
  }
  return out;
}

/** The most calls in any span of `windowMs`, from the fake's request log. */
function peakIn(calls: LoggedRequest[], windowMs: number): number {
  return Math.max(0, ...calls.map((c) => calls.filter((d) => d.at >= c.at && d.at < c.at + windowMs).length));
}

const vendorCalls = async (vendor: "hubspot" | "mailchimp", from = 0) => (await vendorRequests(vendor)).slice(from).filter((r) => !r.path.startsWith("/_sandbox"));

describe("many contacts at once under the documented limits", () => {
  it("1,000 contacts in 10 concurrent batches: all subscribed, no 429, HubSpot within its window, Mailchimp within 10 connections", { timeout: 90_000 }, async () => {
    const made = await contacts(1000);
    // The documented limits from here on (HubSpot 100 per 10 s, Mailchimp 10 connections), counters at zero.
    await setLimits("hubspot", { enabled: true, max: 100, intervalMs: 10_000, resetCounters: true });
    await setLimits("mailchimp", { enabled: true, maxConnections: 10, resetCounters: true });
    // Every Mailchimp call takes 300 ms, so the invocations' calls overlap.
    await setFaults("mailchimp", { latencyMs: 300 });
    const from = (await vendorRequests("hubspot")).length;

    const batches = Array.from({ length: 10 }, (_, i) => made.slice(i * 100, i * 100 + 100).map((c) => c.message));
    const results = await Promise.all(batches.map((batch) => consume(batch, pipelineDeps(env))));
    for (const r of results) expect(r.explicitAcks.sort()).toEqual([...r.ids].sort());

    const hubspot = await limitsOf("hubspot");
    const mailchimp = await limitsOf("mailchimp");
    expect(hubspot.rejected).toBe(0);
    expect(mailchimp.rejected).toBe(0);
    expect(mailchimp.peak).toBeLessThanOrEqual(10);
    expect(peakIn(await vendorCalls("hubspot", from), 10_000)).toBeLessThanOrEqual(100);
    // Bulk: a read and a member write per batch of 100.
    expect((await vendorCalls("hubspot", from)).length).toBeLessThanOrEqual(20);
    const list = (await (await sandboxFetch(`/mailchimp/3.0/lists/${LIST_ID}/members?count=1000&status=subscribed`, { headers: { authorization: `Basic ${btoa(`t:${MAILCHIMP_KEY}`)}` } })).json()) as { total_items: number };
    expect(list.total_items).toBe(1000);
  });
});

describe("concurrent consumer invocations", () => {
  it("share one budget: together they stay within it, and each waits its turn rather than failing", { timeout: 30_000 }, async () => {
    // 4 calls per 3 s for HubSpot, in the fake and in the budget; one call per contact.
    const made = await contacts(10);
    await setLimits("hubspot", { enabled: true, max: 4, intervalMs: 3_000, resetCounters: true });
    const vars = { HUBSPOT_RATE_LIMIT: "4/3s", BULK_CALLS: "false" };
    const from = (await vendorRequests("hubspot")).length;
    const [a, b] = await Promise.all([consume(made.slice(0, 5).map((c) => c.message), depsWith(vars)), consume(made.slice(5).map((c) => c.message), depsWith(vars))]);
    expect([...a!.explicitAcks, ...b!.explicitAcks]).toHaveLength(10);
    expect((await limitsOf("hubspot")).rejected).toBe(0);
    const reads = await vendorCalls("hubspot", from);
    expect(reads).toHaveLength(10);
    expect(peakIn(reads, 3_000)).toBeLessThanOrEqual(4);
    for (const c of made) expect(await mailchimpMember(c.email)).toMatchObject({ status: "subscribed" });
  });
});

describe("a 429 with Retry-After", () => {
  it("pauses every invocation until it has passed", { timeout: 30_000 }, async () => {
    const [first, second, third] = await contacts(3);
    await setFaults("mailchimp", { failNext: { count: 1, status: 429, retryAfterSeconds: 2 } });
    const one = await consume([first!.message], pipelineDeps(env));
    expect(one.retryMessages).toHaveLength(1); // its own retry waits at least the Retry-After
    expect(one.retryMessages[0]!.delaySeconds).toBeGreaterThanOrEqual(2);
    const refused = (await vendorCalls("mailchimp")).find((r) => r.status === 429)!;

    const [two, three] = await Promise.all([consume([second!.message], pipelineDeps(env)), consume([third!.message], pipelineDeps(env))]);
    expect([...two.explicitAcks, ...three.explicitAcks]).toHaveLength(2);
    const after = (await vendorCalls("mailchimp")).filter((r) => r.at > refused.at);
    expect(after).toHaveLength(2);
    // Nobody called Mailchimp before the 2 s were over (the fake's clock and ours are the same).
    for (const call of after) expect(call.at - refused.at).toBeGreaterThanOrEqual(1_950);
  });
});

describe("work that finds no capacity", () => {
  it("waits as a delayed retry that counts no attempt, and is never dead-lettered", async () => {
    const [a, b] = await contacts(2);
    const result = await consume([a!.message, b!.message], depsWith({ HUBSPOT_RATE_LIMIT: "1/1min", BULK_CALLS: "false" }));
    expect(result.explicitAcks).toHaveLength(1);
    expect(result.retryMessages).toHaveLength(1);
    // It waits for the window, in the queue: longer than a call may wait in the invocation.
    expect(result.retryMessages[0]!.delaySeconds).toBeGreaterThanOrEqual(50);
    const waiting = [a!, b!].find((c) => result.retryMessages[0]!.msgId === result.ids[[a!, b!].indexOf(c)])!;
    expect(await actionRow(waiting.message.event.id)).toMatchObject({ state: "pending", attempts: 0, last_error: null, note: expect.stringContaining("no capacity") });
    expect(await deadLettersOf(waiting.message.event.id)).toEqual([]);
  });

  it("waits in the invocation for a connection another invocation releases, rather than turning the call away", async () => {
    const budget = env.BUDGET.getByName(`mailchimp:test-${crypto.randomUUID()}`) as unknown as BudgetApi;
    const config = depsWith({}).config;
    // Another invocation holds all 10 connections under leases of 20 s, and ends a call after 300 ms.
    const held = await budget.connections(10, 10, 20_000, Date.now());
    expect(held.ids).toHaveLength(10);
    setTimeout(() => void budget.release(held.ids.slice(0, 1)), 300);
    const gate = new BudgetGate({ mailchimp: budget }, config.budgets);
    const started = Date.now();
    const pass = await gate.enter("mailchimp", Date.now() + 60_000);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect((await budget.status([], Date.now())).connectionsHeld).toBe(10);
    await pass.exit(null);
    expect((await budget.status([], Date.now())).connectionsHeld).toBe(9);
  });
});

describe("what HubSpot says is left", () => {
  it("is learned by the budget when it is less than the budget counted", async () => {
    // The account has 10 per 10 s left for us (another app uses the rest); the budget thinks 100.
    const [c] = await contacts(1);
    await setLimits("hubspot", { enabled: true, max: 10, intervalMs: 10_000, resetCounters: true });
    await consume([c!.message], pipelineDeps(env));
    const status = await hubspotBudget().status([{ limit: 100, windowMs: 10_000 }, { limit: 250_000, windowMs: 86_400_000 }], Date.now());
    expect(status.remaining[0]).toBeLessThanOrEqual(9);
  });
});

describe("GET /health", () => {
  it("shows what is left of each budget, and the daily budget nearing its end", async () => {
    // The worker's configuration (wrangler.toml): 100 per 10 s, 250,000 a day.
    const windows = [{ limit: 100, windowMs: 10_000 }, { limit: 250_000, windowMs: 86_400_000 }];
    await hubspotBudget().rate(windows, 19, Date.now());
    const read = async () => (await (await SELF.fetch("http://syncwire.test/health")).json()) as { budgets: { hubspot: { windows: { remaining: number }[]; low: boolean }; mailchimp: { maxConnections: number } } };
    const before = await read();
    expect(before.budgets.mailchimp.maxConnections).toBe(10);
    expect(before.budgets.hubspot.windows[0]!.remaining).toBeLessThanOrEqual(81);
    expect(before.budgets.hubspot.low).toBe(false);
    // HubSpot says 1,000 calls are left today (under a tenth): it shows.
    await hubspotBudget().learn(windows, 1, 1_000, Date.now());
    const after = await read();
    expect(after.budgets.hubspot.windows[1]!.remaining).toBeLessThanOrEqual(1_000);
    expect(after.budgets.hubspot.low).toBe(true);
  });
});

describe("Stripe's limit per endpoint", () => {
  it("names an endpoint as Stripe counts it: the method and path without object ids", () => {
    expect(stripeEndpoint("POST /v1/invoices/in_1PqRsT2eZvKYlo2C/finalize")).toBe("POST /v1/invoices/{id}/finalize");
    expect(stripeEndpoint("POST /v1/invoiceitems")).toBe("POST /v1/invoiceitems");
    expect(stripeEndpoint("GET /v1/customers/cus_NffrFeUfNV2Hib?expand=x")).toBe("GET /v1/customers/{id}");
  });

  it("holds one endpoint's calls to its own limit, besides the account's", { timeout: 30_000 }, async () => {
    await resetFanoutFakes();
    // Six invoice items (four lines, shipping, tax) under 3 per 3 s for each endpoint.
    const order = shopifyOrder({
      customerId: "207119551000000001",
      totalPrice: "70.00",
      totalTax: "4.00",
      shipping: ["6.00"],
      lines: [1, 2, 3, 4].map((n) => ({ title: `Item ${n}`, price: "15.00", quantity: 1 })),
    });
    const message = await orderMessage(order.raw);
    const result = await consume([message], depsWith({ STRIPE_ENDPOINT_RATE_LIMIT: "3/3s" }));
    expect(result.explicitAcks).toHaveLength(1);
    const items = (await requests("stripe")).filter((r) => r.method === "POST" && r.path.split("?")[0] === "/v1/invoiceitems");
    expect(items).toHaveLength(6);
    expect(peakIn(items as LoggedRequest[], 3_000)).toBeLessThanOrEqual(3);
    const invoice = (await requests("stripe")).filter((r) => r.path.endsWith("/finalize") && r.status === 200);
    expect(invoice).toHaveLength(1);
  });
});

describe("spare grants in an invocation", () => {
  /** A vendor budget object, with the requests made to it counted. */
  function countedBudget(vendor: string) {
    const stub = env.BUDGET.getByName(`${vendor}:test-${crypto.randomUUID()}`) as unknown as BudgetApi;
    const requests: string[] = [];
    const api = new Proxy(stub, {
      get(target, prop) {
        const member = Reflect.get(target, prop) as unknown;
        if (typeof member !== "function") return member;
        return (...args: unknown[]) => {
          requests.push(String(prop));
          // An RPC stub's methods are called on the stub (they have no `apply` of their own).
          return (target as unknown as Record<string, (...a: unknown[]) => unknown>)[prop as string]!(...args);
        };
      },
    });
    return { api, requests, stub };
  }

  it("serve the next calls of an endpoint without asking the budget again, until their freshness ends", async () => {
    const { api, requests, stub } = countedBudget("stripe");
    const config = depsWith({}).config;
    let clock = Date.now();
    const gate = new BudgetGate({ stripe: api }, config.budgets, () => clock);
    const enter = () => gate.enter("stripe", clock + 60_000, "POST /v1/invoiceitems");
    const passes: CallPass[] = [];
    for (let i = 0; i < 5; i++) passes.push(await enter());
    // One request: the first call and 4 spares.
    expect(requests.filter((r) => r === "rates")).toHaveLength(1);
    expect(passes.every((p) => p.freshUntil === passes[0]!.freshUntil)).toBe(true);
    // The budget counted all five against the account and the endpoint.
    expect((await stub.status(config.budgets.stripe, clock)).remaining[0]).toBe(config.budgets.stripe[0]!.limit - 5);
    // Past the spares' freshness (half the slack of a 1 s window: 50 ms), the budget is asked again.
    await enter();
    expect(requests.filter((r) => r === "rates")).toHaveLength(2);
    clock += 60;
    await enter();
    expect(requests.filter((r) => r === "rates")).toHaveLength(3);
  });

  it("are dropped after a 429, and Postmark's standing pass with them: the next call asks and waits out the pause", async () => {
    const { api, requests } = countedBudget("postmark");
    const config = depsWith({}).config;
    let clock = Date.now();
    const slept: number[] = [];
    const gate = new BudgetGate({ postmark: api }, config.budgets, () => clock, async (ms) => {
      slept.push(ms);
      clock += ms;
    });
    const first = await gate.enter("postmark", clock + 60_000);
    for (let i = 0; i < 9; i++) await gate.enter("postmark", clock + 60_000);
    // No rate: one request learns there is no pause, for a second.
    expect(requests.filter((r) => r === "rates")).toHaveLength(1);
    await first.exit({ status: 429, headers: new Headers({ "retry-after": "2" }) });
    await gate.enter("postmark", clock + 60_000);
    expect(requests.filter((r) => r === "rates").length).toBeGreaterThanOrEqual(2);
    expect(slept.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(1_900);
  });
});
