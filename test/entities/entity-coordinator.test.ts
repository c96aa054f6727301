/**
 * The contact's Durable Object itself: the lease that serializes consumer invocations, and its
 * SQLite storage as the truth behind the copy it keeps in memory.
 */
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { EntityCoordinator, PlanRequest } from "../../src/entities/entity-coordinator.do";

const coordinator = () => env.ENTITY.getByName(`contact:test-${crypto.randomUUID()}`);
const options = (now: number) => ({ policy: "latest-wins" as const, crmTakesSubscription: true, now });
const request = (token: string, now: number, leaseMs = 90_000, value = "a@example.com"): PlanRequest => ({
  token,
  leaseMs,
  inputs: [{ eventId: `e-${token}-${now}`, kind: "observe", observations: [{ system: "crm", field: "email", value, at: now }] }],
  options: options(now),
});

describe("the lease", () => {
  it("makes a second invocation wait until the first settles", async () => {
    const stub = coordinator();
    const now = Date.now();
    expect(await stub.plan(request("a", now))).toMatchObject({ kind: "planned" });
    expect(await stub.plan(request("b", now + 10))).toEqual({ kind: "busy", retryInMs: 90_000 - 10 });
    await stub.settle({ token: "a", now: now + 20, results: [], options: { policy: "latest-wins", crmTakesSubscription: true, now: Date.now() } });
    expect(await stub.plan(request("b", now + 30))).toMatchObject({ kind: "planned" });
  });

  it("passes to another invocation once it has run out (its holder died)", async () => {
    const stub = coordinator();
    const now = Date.now();
    await stub.plan(request("a", now, 1_000));
    expect(await stub.plan(request("b", now + 1_001))).toMatchObject({ kind: "planned" });
    // The late holder's settle does not end the new lease.
    await stub.settle({ token: "a", now: now + 1_002, results: [], options: { policy: "latest-wins", crmTakesSubscription: true, now: Date.now() } });
    expect(await stub.plan(request("c", now + 1_003))).toMatchObject({ kind: "busy" });
  });

  it("lets the holder plan again under its own token (a retried request)", async () => {
    const stub = coordinator();
    const now = Date.now();
    await stub.plan(request("a", now));
    expect(await stub.plan(request("a", now + 5))).toMatchObject({ kind: "planned" });
  });
});

describe("storage", () => {
  it("holds per field the winning value and each system's, and is what a fresh instance reads", async () => {
    const stub = coordinator();
    const now = Date.now();
    const planned = await stub.plan(request("a", now, 90_000, "ada@example.com"));
    if (planned.kind !== "planned") throw new Error("busy");
    await stub.settle({ token: "a", now: now + 5, results: planned.writes.map((write) => ({ write, outcome: "ok" as const })), options: options(now + 5) });
    const before = await stub.snapshot();

    const rows = await runInDurableObject(stub, (instance: EntityCoordinator, state) => {
      // Forget the in-memory copy, as an evicted object would.
      (instance as unknown as { loaded: unknown }).loaded = null;
      return state.storage.sql.exec("SELECT field, desired_value, desired_system, crm_value, email_value FROM fields").toArray();
    });
    expect(rows).toEqual([{ field: "email", desired_value: "ada@example.com", desired_system: "crm", crm_value: "ada@example.com", email_value: "ada@example.com" }]);
    expect(await stub.snapshot()).toEqual(before);
    expect(before.lease).toBeNull();
  });
});

describe("an event is judged once", () => {
  it("gives a retried event its first verdicts and changes nothing, whatever happened since", async () => {
    const stub = coordinator();
    const now = Date.now();
    const first = await stub.plan(request("a", now, 90_000, "ada@example.com"));
    if (first.kind !== "planned") throw new Error("busy");
    await stub.settle({ token: "a", now: now + 5, results: first.writes.map((write) => ({ write, outcome: "ok" as const })), options: options(now + 5) });
    const late = { eventId: "late-change", kind: "observe" as const, observations: [{ system: "email" as const, field: "firstname" as const, value: "Old", at: now - 1_000 }] };
    const once = await stub.plan({ token: "b", leaseMs: 90_000, inputs: [late], options: options(now + 10) });
    const state = await stub.snapshot();
    const again = await stub.plan({ token: "b", leaseMs: 90_000, inputs: [late], options: options(now + 20) });
    expect(once.kind === "planned" && again.kind === "planned" && again.verdicts).toEqual(once.kind === "planned" && once.verdicts);
    expect((await stub.snapshot()).state.fields).toEqual(state.state.fields);
  });
});
