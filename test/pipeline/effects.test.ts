/**
 * The once-ever claims and links of one invocation (pipeline/effects.ts): requests made at the
 * same moment share a D1 round trip, and sharing one changes nothing about what each answers:
 * the first claim owns the effect, the first link is kept, and a request D1 refuses fails alone.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { D1Effects } from "../../src/pipeline/effects";
import { database } from "../../src/pipeline/ledger";
import { refusingBatches } from "../support/d1";

const unique = () => crypto.randomUUID().slice(0, 8);

/** The real D1 binding, counting its round trips (`batch` calls). */
function countingD1() {
  let batches = 0;
  const d1 = refusingBatches(env.DB, () => {
    batches++;
    return false;
  });
  return { d1, batches: () => batches };
}

describe("once-ever claims", () => {
  it("made at the same moment by two events of one entity: one round trip, and both name the first as the owner", async () => {
    const { d1, batches } = countingD1();
    const effects = new D1Effects(database(d1), Date.now);
    const key = `postmark.welcome\u0000customer:${unique()}`;
    const [first, second] = await Promise.all([effects.claimOnce(key, "evt_first", 1), effects.claimOnce(key, "evt_second", 2)]);
    expect(first).toEqual({ owner: "evt_first", done: false });
    expect(second).toEqual({ owner: "evt_first", done: false });
    expect(batches()).toBe(1);
    // A later invocation sees the same owner.
    expect(await new D1Effects(database(env.DB), Date.now).claimOnce(key, "evt_third", 3)).toEqual({ owner: "evt_first", done: false });
  });

  it("a hundred entities at once: each owned by its own event, in a round trip or two", async () => {
    const { d1, batches } = countingD1();
    const effects = new D1Effects(database(d1), Date.now);
    const keys = Array.from({ length: 100 }, (_, i) => `postmark.welcome\u0000customer:${unique()}-${i}`);
    const claims = await Promise.all(keys.map((key, i) => effects.claimOnce(key, `evt_${i}`, i)));
    expect(claims.map((c) => c.owner)).toEqual(keys.map((_, i) => `evt_${i}`));
    expect(batches()).toBeLessThanOrEqual(2);
  });
});

describe("links", () => {
  it("keeps the first value when two runs link the same key at once; both answer it", async () => {
    const effects = new D1Effects(database(env.DB), Date.now);
    const key = `order-${unique()}`;
    const kept = await Promise.all([effects.put("stripe-invoice", key, "in_first"), effects.put("stripe-invoice", key, "in_second")]);
    expect(kept).toEqual(["in_first", "in_first"]);
    expect(await new D1Effects(database(env.DB), Date.now).get("stripe-invoice", key)).toBe("in_first");
  });

  it("reads many at once, in the order asked, past the 100 bound parameters of one statement", async () => {
    const { d1, batches } = countingD1();
    const effects = new D1Effects(database(d1), Date.now);
    const keys = Array.from({ length: 120 }, (_, i) => ["stripe-customer", `c-${unique()}-${i}`] as const);
    await Promise.all(keys.filter((_, i) => i % 3 === 0).map(([kind, key]) => effects.put(kind, key, `cus_${key}`)));
    const before = batches();
    const values = await effects.getMany(keys);
    expect(values).toEqual(keys.map(([, key], i) => (i % 3 === 0 ? `cus_${key}` : null)));
    expect(batches() - before).toBe(1);
  });

  it("a write D1 refuses fails alone; the writes that shared its round trip are kept", async () => {
    // D1 refuses any batch holding the bad link (as it would a row it cannot take).
    const d1 = refusingBatches(env.DB, (statements) => statements.some((s) => s.sql.startsWith("INSERT INTO links") && s.params.includes("bad")));
    const effects = new D1Effects(database(d1), Date.now);
    const keys = [`a-${unique()}`, `b-${unique()}`, `c-${unique()}`];
    const results = await Promise.allSettled([effects.put("k", keys[0]!, "one"), effects.put("k", keys[1]!, "bad"), effects.put("k", keys[2]!, "three")]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(d1.refused).toBe(2); // the shared round trip, then the bad one alone
    expect(await effects.getMany(keys.map((key) => ["k", key] as const))).toEqual(["one", null, "three"]);
  });
});
