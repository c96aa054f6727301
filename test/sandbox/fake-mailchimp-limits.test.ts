/**
 * The fake Mailchimp's documented connection limit (mailchimp.com/developer/marketing/docs/
 * fundamentals/: 10 simultaneous connections per account): calls in flight, latency included,
 * the 429 problem body, the peak, and the `/_sandbox/limits` control endpoint.
 */
import { describe, expect, it } from "vitest";
import { createFakeMailchimp, type FakeMailchimpState } from "../../src/sandbox/fake-mailchimp";

const API_KEY = "0123456789abcdef0123456789abcdef-us21";
const LIST = "list0001";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const AUTH = `Basic ${btoa(`anystring:${API_KEY}`)}`;

function setup(opts: { limits?: false | { enabled?: boolean; maxConnections?: number }; state?: FakeMailchimpState } = {}) {
  return createFakeMailchimp({ apiKey: API_KEY, listIds: [LIST], ...opts });
}
type Fake = ReturnType<typeof setup>;

async function call(fake: Fake, method: string, path: string, body?: unknown, auth: string | null = AUTH) {
  const headers = new Headers({ "Content-Type": "application/json" });
  if (auth !== null) headers.set("Authorization", auth);
  const init: RequestInit = { method, headers };
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await fake.handle(new Request(`https://us21.api.mailchimp.com${path}`, init), path);
  const text = await res.text();
  return { res, status: res.status, json: (text === "" ? null : JSON.parse(text)) as Record<string, unknown> };
}
const ping = (fake: Fake, auth?: string | null) => call(fake, "GET", "/3.0/ping", undefined, auth);
const control = async (fake: Fake, name: string, body?: unknown) => {
  const init: RequestInit = body === undefined ? {} : { method: "POST", body: JSON.stringify(body) };
  const res = await fake.handle(new Request(`http://fake/_sandbox/${name}`, init), `/_sandbox/${name}`);
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
};
const slow = (fake: Fake, latencyMs = 50) => control(fake, "faults", { latencyMs });

/** `n` calls at once; their statuses in the order they were sent. */
async function concurrent(fake: Fake, n: number, send: (fake: Fake) => Promise<{ status: number }> = ping): Promise<number[]> {
  return (await Promise.all(Array.from({ length: n }, () => send(fake)))).map((r) => r.status);
}

describe("fake Mailchimp limits: simultaneous connections", () => {
  it("answers exactly one of 11 simultaneous calls with Mailchimp's 429, and records the peak", async () => {
    const fake = setup();
    await slow(fake);
    const results = await Promise.all(Array.from({ length: 11 }, () => ping(fake)));
    const refused = results.filter((r) => r.status === 429);
    expect(results.filter((r) => r.status === 200)).toHaveLength(10);
    expect(refused).toHaveLength(1);
    const { res, json } = refused[0]!;
    expect(res.headers.get("Content-Type")).toContain("application/problem+json");
    expect(json).toEqual({
      type: "https://mailchimp.com/developer/marketing/docs/errors/",
      title: "Too Many Requests",
      status: 429,
      detail: "You have exceeded the limit of 10 simultaneous connections.",
      instance: expect.stringMatching(UUID),
    });
    expect(res.headers.get("Retry-After")).toBeNull(); // Mailchimp documents none
    expect((await control(fake, "limits")).json).toEqual({ enabled: true, maxConnections: 10, inFlight: 0, peak: 10, accepted: 10, rejected: 1 });
  });

  it("frees a connection when its answer is made: the next calls go through", async () => {
    const fake = setup();
    await slow(fake, 20);
    expect((await concurrent(fake, 12)).filter((s) => s === 429)).toHaveLength(2);
    expect(await concurrent(fake, 10)).toEqual(Array(10).fill(200));
  });

  it("never counts sequential calls as simultaneous", async () => {
    const fake = setup({ limits: { maxConnections: 1 } });
    await slow(fake, 5);
    for (let i = 0; i < 5; i++) expect((await ping(fake)).status).toBe(200);
    expect((await control(fake, "limits")).json).toMatchObject({ peak: 1, accepted: 5, rejected: 0 });
  });

  it("holds one connection per call, a batch of members included", async () => {
    const fake = setup({ limits: { maxConnections: 2 } });
    await slow(fake);
    const members = Array.from({ length: 500 }, (_, i) => ({ email_address: `m${i}@example.com`, status: "subscribed" }));
    const batch = (f: Fake) => call(f, "POST", `/3.0/lists/${LIST}`, { members });
    expect((await concurrent(fake, 3, batch)).sort()).toEqual([200, 200, 429]);
    expect((await control(fake, "limits")).json).toMatchObject({ peak: 2, accepted: 2, rejected: 1 });
  });

  it("does not count calls that fail authentication", async () => {
    const fake = setup({ limits: { maxConnections: 1 } });
    await slow(fake);
    const [denied, ok] = await Promise.all([ping(fake, `Basic ${btoa("x:wrong-us21")}`), ping(fake)]);
    expect(denied?.status).toBe(401);
    expect(ok?.status).toBe(200);
  });
});

describe("fake Mailchimp limits: settings and counters", () => {
  it("is tightened or turned off through POST /_sandbox/limits, and validated", async () => {
    const fake = setup();
    await slow(fake, 30);
    expect((await control(fake, "limits", { maxConnections: 2 })).json).toMatchObject({ enabled: true, maxConnections: 2 });
    const tight = await Promise.all(Array.from({ length: 3 }, () => ping(fake)));
    expect(tight.map((r) => r.status).sort()).toEqual([200, 200, 429]);
    expect(tight.find((r) => r.status === 429)?.json.detail).toBe("You have exceeded the limit of 2 simultaneous connections.");
    await control(fake, "limits", { enabled: false });
    expect(await concurrent(fake, 15)).toEqual(Array(15).fill(200));
    expect((await control(fake, "limits")).json).toMatchObject({ enabled: false, peak: 15 }); // still measured
    for (const bad of [{ maxConnections: 0 }, { enabled: 1 }, { peak: 3 }]) expect((await control(fake, "limits", bad)).status).toBe(400);
  });

  it("starts off with `limits: false`", async () => {
    const fake = setup({ limits: false });
    await slow(fake);
    expect(await concurrent(fake, 20)).toEqual(Array(20).fill(200));
    expect((await control(fake, "limits")).json).toMatchObject({ enabled: false, maxConnections: 10, peak: 20, rejected: 0 });
  });

  it("resets the counters and the settings to the options", async () => {
    const fake = setup({ limits: { maxConnections: 3 } });
    await control(fake, "limits", { maxConnections: 1 });
    await slow(fake);
    await concurrent(fake, 2);
    const reset = await fake.handle(new Request("http://fake/_sandbox/reset", { method: "POST" }), "/_sandbox/reset");
    expect(reset.status).toBe(200);
    expect((await control(fake, "limits")).json).toEqual({ enabled: true, maxConnections: 3, inFlight: 0, peak: 0, accepted: 0, rejected: 0 });
  });

  it("zeroes the counters alone with resetCounters", async () => {
    const fake = setup({ limits: false });
    await slow(fake, 10);
    await concurrent(fake, 12);
    expect((await control(fake, "limits", { enabled: true, resetCounters: true })).json).toEqual({ enabled: true, maxConnections: 10, inFlight: 0, peak: 0, accepted: 0, rejected: 0 });
  });

  it("persists the settings and counters with the state, without the API key", async () => {
    const a = setup({ limits: { maxConnections: 4 } });
    await ping(a);
    expect(JSON.stringify(a.state)).not.toContain(API_KEY);
    const b = setup({ state: JSON.parse(JSON.stringify(a.state)) as FakeMailchimpState });
    expect((await control(b, "limits")).json).toMatchObject({ maxConnections: 4, accepted: 1, peak: 1, inFlight: 0 });
  });
});
