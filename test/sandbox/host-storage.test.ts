/**
 * How the SandboxHost stores its fakes (src/sandbox/host-storage.ts): records in buckets apart
 * from the rest, only changed buckets written, nothing of the records after a read, and state
 * stored the old way (records inside the main value) carried over.
 */
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { FakeStateStore } from "../../src/sandbox/host-storage";

type Obj = Record<string, unknown>;

/** A storage of its own (a SandboxHost instance no request reaches), and the keys each put wrote. */
async function withStorage(name: string, test: (storage: DurableObjectStorage, puts: string[][]) => Promise<void>): Promise<void> {
  const stub = env.SANDBOX_HOST.get(env.SANDBOX_HOST.idFromName(`host-storage-test:${name}`));
  await runInDurableObject(stub, async (_instance, state) => {
    const puts: string[][] = [];
    const storage = new Proxy(state.storage, {
      get(target, prop) {
        if (prop === "put") {
          return (keyOrEntries: string | Obj, value?: unknown) => {
            puts.push(typeof keyOrEntries === "string" ? [keyOrEntries] : Object.keys(keyOrEntries));
            return typeof keyOrEntries === "string" ? target.put(keyOrEntries, value) : target.put(keyOrEntries);
          };
        }
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    await test(storage, puts);
  });
}

function hubspotState(n: number): { data: { nextId: number; contacts: Obj }; faults: Obj; requests: unknown[] } {
  const contacts: Obj = {};
  for (let i = 0; i < n; i++) contacts[String(101 + i)] = { id: String(101 + i), properties: { email: `p${i}@example.com` } };
  return { data: { nextId: 101 + n, contacts }, faults: {}, requests: [] };
}

describe("the SandboxHost's fake storage", () => {
  it("keeps records apart from the rest, and reads them back whole", async () => {
    await withStorage("roundtrip", async (storage) => {
      const state = hubspotState(1_000);
      await new FakeStateStore(storage).save("hubspot", state, true);
      const base = (await storage.get<{ data: { contacts: Obj; nextId: number } }>("hubspot"))!;
      expect(base.data).toEqual({ nextId: 1_101, contacts: {} });
      const buckets = await storage.list({ prefix: "hubspot/records/" });
      expect(buckets.size).toBeGreaterThan(100);
      const loaded = (await new FakeStateStore(storage).load(["hubspot", "stripe"])).get("hubspot");
      expect(loaded).toEqual(state);
    });
  });

  it("writes only the buckets that changed, nothing of the records after a read, and deletes emptied ones", async () => {
    await withStorage("dirty", async (storage, puts) => {
      const store = new FakeStateStore(storage);
      const state = hubspotState(2_000);
      await store.save("hubspot", state, true);
      puts.length = 0;

      (state.data.contacts["150"] as { properties: Obj }).properties.email = "changed@example.com";
      await store.save("hubspot", state, false);
      expect(puts.flat()).toEqual(["hubspot"]);
      expect((await new FakeStateStore(storage).load(["hubspot"])).get("hubspot")).not.toEqual(state);

      puts.length = 0;
      await store.save("hubspot", state, true);
      expect(puts.flat()).toHaveLength(2);
      expect(puts.flat().filter((k) => k.startsWith("hubspot/records/contacts/"))).toHaveLength(1);
      expect((await new FakeStateStore(storage).load(["hubspot"])).get("hubspot")).toEqual(state);

      state.data.contacts = {};
      await store.save("hubspot", state, true);
      expect((await storage.list({ prefix: "hubspot/records/" })).size).toBe(0);
      expect((await new FakeStateStore(storage).load(["hubspot"])).get("hubspot")).toEqual(state);
    });
  });

  it("keeps each Mailchimp list's members apart, whatever the list id", async () => {
    await withStorage("mailchimp", async (storage) => {
      const members = (list: string, n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`${list}-${i}`, { email_address: `${list}${i}@example.com` }]));
      const state = { data: { nextWebId: 9, lists: { "a/b c": { members: members("x", 30), webhooks: [] }, plain: { members: members("y", 5), webhooks: [{ id: "w" }] } } }, faults: {}, requests: [] };
      await new FakeStateStore(storage).save("mailchimp", state, true);
      const base = (await storage.get<{ data: { lists: Record<string, { members: Obj }> } }>("mailchimp"))!;
      expect(Object.values(base.data.lists).map((l) => l.members)).toEqual([{}, {}]);
      expect((await new FakeStateStore(storage).load(["mailchimp"])).get("mailchimp")).toEqual(state);
    });
  });

  it("moves records stored inside the main value (before buckets) out on the next write, even a read's", async () => {
    await withStorage("inline", async (storage) => {
      const state = hubspotState(50);
      await storage.put("hubspot", state);
      const store = new FakeStateStore(storage);
      expect((await store.load(["hubspot"])).get("hubspot")).toEqual(state);
      await store.save("hubspot", state, false);
      expect(((await storage.get<{ data: { contacts: Obj } }>("hubspot"))!).data.contacts).toEqual({});
      expect((await new FakeStateStore(storage).load(["hubspot"])).get("hubspot")).toEqual(state);
    });
  });
});
