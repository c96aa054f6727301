/**
 * The fake HubSpot's documented rate limits (developers.hubspot.com/docs/api/usage-details): a
 * rolling 10-second window and a daily count per private-app token, the 429 body and the
 * X-HubSpot-RateLimit-* headers, and the `/_sandbox/limits` control endpoint.
 */
import { describe, expect, it } from "vitest";
import { createFakeHubSpot, type FakeHubSpotOptions, type FakeHubSpotState } from "../../src/sandbox/fake-hubspot";

const TOKEN = "pat-test-hubspot-token";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const T0 = Date.parse("2026-01-01T00:00:00.000Z");

function setup(opts: Partial<FakeHubSpotOptions> = {}) {
  const clock = { now: T0 };
  const fake = createFakeHubSpot({ accessToken: TOKEN, now: () => clock.now, ...opts });
  return { fake, clock };
}
type Fake = ReturnType<typeof setup>["fake"];

async function call(fake: Fake, method: string, path: string, body?: unknown, token: string | null = TOKEN) {
  const headers = new Headers({ "Content-Type": "application/json" });
  if (token !== null) headers.set("Authorization", `Bearer ${token}`);
  const init: RequestInit = { method, headers };
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await fake.handle(new Request(`https://api.hubapi.com${path}`, init), path);
  const text = await res.text();
  return { res, status: res.status, json: (text === "" ? null : JSON.parse(text)) as Record<string, unknown> };
}
const list = (fake: Fake, token?: string | null) => call(fake, "GET", "/crm/v3/objects/contacts?limit=1", undefined, token);
const limits = async (fake: Fake, body?: unknown) => {
  const init: RequestInit = body === undefined ? {} : { method: "POST", body: JSON.stringify(body) };
  const res = await fake.handle(new Request("http://fake/_sandbox/limits", init), "/_sandbox/limits");
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
};
const header = (res: Response, name: string) => res.headers.get(`X-HubSpot-RateLimit-${name}`);

async function burst(fake: Fake, n: number): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < n; i++) statuses.push((await list(fake)).status);
  return statuses;
}

describe("fake HubSpot limits: the ten-second rolling window", () => {
  it("answers every call with the documented headers, counting down", async () => {
    const { fake } = setup();
    const first = await list(fake);
    expect(first.status).toBe(200);
    expect(header(first.res, "Daily")).toBe("250000");
    expect(header(first.res, "Daily-Remaining")).toBe("249999");
    expect(header(first.res, "Interval-Milliseconds")).toBe("10000");
    expect(header(first.res, "Max")).toBe("100");
    expect(header(first.res, "Remaining")).toBe("99");
    expect(header(first.res, "Secondly")).toBe("10");
    expect(header(first.res, "Secondly-Remaining")).toBe("9");
    const second = await list(fake);
    expect(header(second.res, "Remaining")).toBe("98");
    expect(header(second.res, "Daily-Remaining")).toBe("249998");
  });

  it("turns the 101st call in 10 s away with HubSpot's 429 body and headers", async () => {
    const { fake } = setup();
    expect(await burst(fake, 100)).toEqual(Array(100).fill(200));
    const over = await list(fake);
    expect(over.status).toBe(429);
    expect(over.res.headers.get("Content-Type")).toContain("application/json");
    expect(over.json).toEqual({
      status: "error",
      message: "You have reached your ten_secondly_rolling limit.",
      errorType: "RATE_LIMIT",
      correlationId: expect.stringMatching(UUID),
      policyName: "TEN_SECONDLY_ROLLING",
      requestId: expect.stringMatching(UUID),
    });
    expect(header(over.res, "Remaining")).toBe("0");
    expect(header(over.res, "Max")).toBe("100");
    expect(header(over.res, "Interval-Milliseconds")).toBe("10000");
    expect(header(over.res, "Daily-Remaining")).toBe("249900"); // the 429 is not counted
    expect(over.res.headers.get("Retry-After")).toBeNull(); // HubSpot documents none for 429
  });

  it("lets calls through again as the window rolls; 429s do not count against it", async () => {
    const { fake, clock } = setup();
    await burst(fake, 50);
    clock.now = T0 + 5_000;
    await burst(fake, 50);
    clock.now = T0 + 9_999;
    expect(await burst(fake, 3)).toEqual([429, 429, 429]);
    clock.now = T0 + 10_000; // the first 50 are 10 s old: 50 places again
    expect(await burst(fake, 51)).toEqual([...Array(50).fill(200), 429]);
    clock.now = T0 + 15_000;
    const back = await list(fake);
    expect(back.status).toBe(200);
    expect(header(back.res, "Remaining")).toBe("49");
  });

  it("does not count calls that fail authentication, and gives them no rate headers", async () => {
    const { fake } = setup({ limits: { max: 2 } });
    for (let i = 0; i < 5; i++) {
      const denied = await list(fake, "pat-wrong");
      expect(denied.status).toBe(401);
      expect(header(denied.res, "Remaining")).toBeNull();
    }
    expect(await burst(fake, 3)).toEqual([200, 200, 429]);
  });

  it("counts faulted answers and puts the headers on them too", async () => {
    const { fake } = setup();
    await fake.handle(new Request("http://fake/_sandbox/faults", { method: "POST", body: JSON.stringify({ failNext: { count: 1, status: 503 } }) }), "/_sandbox/faults");
    const faulted = await list(fake);
    expect(faulted.status).toBe(503);
    expect(header(faulted.res, "Remaining")).toBe("99");
  });

  it("counts a batch call once, whatever its number of inputs", async () => {
    const { fake } = setup();
    const inputs = Array.from({ length: 100 }, (_, i) => ({ properties: { email: `c${i}@example.com` } }));
    const created = await call(fake, "POST", "/crm/v3/objects/contacts/batch/create", { inputs });
    expect(created.status).toBe(201);
    expect(header(created.res, "Remaining")).toBe("99");
    expect((await limits(fake)).json).toMatchObject({ window: 1, dailyCount: 1, accepted: 1 });
  });
});

describe("fake HubSpot limits: the daily count", () => {
  it("turns calls away for the rest of the UTC day once the daily limit is used", async () => {
    const { fake, clock } = setup({ limits: { daily: 5 } });
    expect(await burst(fake, 5)).toEqual(Array(5).fill(200));
    clock.now += 60_000; // the window has rolled, the day has not
    const over = await list(fake);
    expect(over.status).toBe(429);
    expect(over.json).toMatchObject({ message: "You have reached your daily limit.", errorType: "RATE_LIMIT", policyName: "DAILY" });
    expect(header(over.res, "Daily-Remaining")).toBe("0");
    expect(header(over.res, "Remaining")).toBe("100");
    clock.now = Date.parse("2026-01-02T00:00:00.000Z"); // midnight, in the account's time zone (UTC)
    const tomorrow = await list(fake);
    expect(tomorrow.status).toBe(200);
    expect(header(tomorrow.res, "Daily-Remaining")).toBe("4");
  });

  it("can start the day with calls already used, to test the end of the day", async () => {
    const { fake } = setup();
    expect((await limits(fake, { dailyCount: 249_999 })).json).toMatchObject({ dailyCount: 249_999 });
    const last = await list(fake);
    expect(header(last.res, "Daily-Remaining")).toBe("0");
    expect((await list(fake)).json).toMatchObject({ policyName: "DAILY" });
    expect((await limits(fake)).json).toMatchObject({ rejected: 1, rejectedByPolicy: { TEN_SECONDLY_ROLLING: 0, DAILY: 1 } });
  });
});

describe("fake HubSpot limits: settings and counters", () => {
  it("shows the documented defaults and the counters", async () => {
    const { fake } = setup();
    await burst(fake, 101);
    expect((await limits(fake)).json).toEqual({
      enabled: true,
      max: 100,
      intervalMs: 10_000,
      daily: 250_000,
      window: 100,
      day: "2026-01-01",
      dailyCount: 100,
      accepted: 100,
      rejected: 1,
      rejectedByPolicy: { TEN_SECONDLY_ROLLING: 1, DAILY: 0 },
    });
  });

  it("is tightened, loosened or turned off through POST /_sandbox/limits, and validated", async () => {
    const { fake } = setup();
    expect((await limits(fake, { max: 3, intervalMs: 1_000 })).json).toMatchObject({ enabled: true, max: 3, intervalMs: 1_000 });
    const first = await list(fake);
    expect(header(first.res, "Max")).toBe("3");
    expect(header(first.res, "Interval-Milliseconds")).toBe("1000");
    expect(await burst(fake, 3)).toEqual([200, 200, 429]);
    await limits(fake, { enabled: false });
    const free = await burst(fake, 20);
    expect(free).toEqual(Array(20).fill(200));
    expect(header((await list(fake)).res, "Remaining")).toBeNull(); // no limit, no headers
    for (const bad of [{ max: 0 }, { intervalMs: 1.5 }, { enabled: "yes" }, { daily: -1 }, { dailyCount: -1 }, { window: 5 }]) {
      expect((await limits(fake, bad)).status).toBe(400);
    }
    const res = await fake.handle(new Request("http://fake/_sandbox/limits", { method: "DELETE" }), "/_sandbox/limits");
    expect(res.status).toBe(405);
  });

  it("starts off with `limits: false` and with other settings from the options", async () => {
    const off = setup({ limits: false }).fake;
    expect(await burst(off, 150)).toEqual(Array(150).fill(200));
    expect((await limits(off)).json).toMatchObject({ enabled: false, accepted: 150, rejected: 0, window: 100 });
    const tight = setup({ limits: { max: 2 } }).fake;
    expect(await burst(tight, 3)).toEqual([200, 200, 429]);
  });

  it("resets counters and settings to the options with POST /_sandbox/reset", async () => {
    const { fake } = setup({ limits: { max: 5 } });
    await limits(fake, { max: 1, daily: 10 });
    await burst(fake, 3);
    await fake.handle(new Request("http://fake/_sandbox/reset", { method: "POST" }), "/_sandbox/reset");
    expect((await limits(fake)).json).toMatchObject({ enabled: true, max: 5, daily: 250_000, window: 0, dailyCount: 0, accepted: 0, rejected: 0 });
    expect(await burst(fake, 6)).toEqual([...Array(5).fill(200), 429]);
  });

  it("zeroes the counters alone with resetCounters, keeping data and settings (e.g. after seeding)", async () => {
    const { fake } = setup({ limits: false });
    await burst(fake, 120);
    expect((await limits(fake, { enabled: true, resetCounters: true })).json).toMatchObject({ enabled: true, window: 0, dailyCount: 0, accepted: 0, rejected: 0 });
    expect(await burst(fake, 101)).toEqual([...Array(100).fill(200), 429]);
  });

  it("persists settings and the window with the state, without the token", async () => {
    const { fake: a } = setup({ limits: { max: 3 } });
    await burst(a, 2);
    expect(JSON.stringify(a.state)).not.toContain(TOKEN);
    const { fake: b } = setup({ state: JSON.parse(JSON.stringify(a.state)) as FakeHubSpotState });
    expect(await burst(b, 2)).toEqual([200, 429]);
  });

  it("answers an injected 429 with the same ten-secondly body", async () => {
    const { fake } = setup();
    await fake.handle(new Request("http://fake/_sandbox/faults", { method: "POST", body: JSON.stringify({ failNext: { count: 1, status: 429, retryAfterSeconds: 2 } }) }), "/_sandbox/faults");
    const injected = await list(fake);
    expect(injected.status).toBe(429);
    expect(injected.json).toMatchObject({ errorType: "RATE_LIMIT", policyName: "TEN_SECONDLY_ROLLING" });
    expect(injected.res.headers.get("Retry-After")).toBe("2");
  });
});
