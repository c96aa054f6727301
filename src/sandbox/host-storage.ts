/**
 * How the SandboxHost keeps each fake's state in its Durable Object storage.
 *
 * A fake's records (HubSpot's contacts, each Mailchimp list's members) can number tens of
 * thousands after a seed (`POST /_sandbox/seed`): one stored value for all of it would be
 * rewritten after every call (a nightly run's hundred list pages would each write megabytes) and
 * would pass the storage's per-value limit (2 MB deployed). So the records are kept apart, in
 * buckets by a hash of the record key, as JSON text; after a call, only the buckets whose text
 * changed are written. The rest of the state (settings, counters, the request log) stays one
 * value under the fake's name, written after every call as before.
 *
 * A GET or HEAD never changes a record (every fake's reads, vendor or `/_sandbox/`, only read),
 * so after one only the rest of the state is written.
 */

/** Where a fake's records are inside its data. */
interface RecordLayout {
  /** The record maps, each under a stable name without "/". */
  maps(data: unknown): Map<string, Record<string, unknown>>;
  /** A shallow copy of the data with every record map empty. */
  strip(data: unknown): unknown;
  /** Puts stored records back into freshly loaded data. */
  restore(data: unknown, name: string, records: Record<string, unknown>): void;
}

type Obj = Record<string, unknown>;
const asObj = (value: unknown): Obj => (typeof value === "object" && value !== null ? (value as Obj) : {});

const LAYOUTS: Record<string, RecordLayout> = {
  hubspot: {
    maps: (data) => new Map([["contacts", asObj(asObj(data).contacts)]]),
    strip: (data) => ({ ...asObj(data), contacts: {} }),
    restore: (data, name, records) => {
      if (name !== "contacts") return;
      const d = asObj(data);
      d.contacts = Object.assign(asObj(d.contacts), records);
    },
  },
  mailchimp: {
    maps: (data) => {
      const out = new Map<string, Obj>();
      for (const [id, list] of Object.entries(asObj(asObj(data).lists))) out.set(`members:${encodeURIComponent(id)}`, asObj(asObj(list).members));
      return out;
    },
    strip: (data) => {
      const d = asObj(data);
      const lists = Object.fromEntries(Object.entries(asObj(d.lists)).map(([id, list]) => [id, { ...asObj(list), members: {} }]));
      return { ...d, lists };
    },
    restore: (data, name, records) => {
      if (!name.startsWith("members:")) return;
      const id = decodeURIComponent(name.slice("members:".length));
      const d = asObj(data);
      const lists = (d.lists = asObj(d.lists));
      const list = (lists[id] = asObj(lists[id] ?? { members: {}, webhooks: [] }));
      list.members = Object.assign(asObj(list.members), records);
    },
  },
};

/** Records per fake spread over this many stored values (about 40 each at 10,000 contacts). */
const BUCKETS = 256;
/** The storage API takes at most 128 keys per put or delete. */
const KEYS_PER_CALL = 128;

const recordPrefix = (vendor: string) => `${vendor}/records/`;

function bucketOf(key: string): number {
  // FNV-1a: cheap, and spreads sequential ids and hex hashes alike.
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return (h >>> 0) % BUCKETS;
}

export class FakeStateStore {
  /** The JSON text last written per record bucket key. */
  private readonly written = new Map<string, string>();
  /** Fakes loaded with records inside their main value (stored before the records were kept apart). */
  private readonly inline = new Set<string>();

  constructor(private readonly storage: DurableObjectStorage) {}

  /** Each fake's stored state, records put back in; undefined for a fake never stored. */
  async load(vendors: string[]): Promise<Map<string, unknown>> {
    const bases = await this.storage.get<unknown>(vendors);
    const out = new Map<string, unknown>();
    for (const vendor of vendors) {
      const base = bases.get(vendor);
      const layout = LAYOUTS[vendor];
      if (base === undefined || layout === undefined) {
        if (base !== undefined) out.set(vendor, base);
        continue;
      }
      const data = asObj(asObj(base).data);
      if ([...layout.maps(data).values()].some((map) => Object.keys(map).length > 0)) this.inline.add(vendor);
      const stored = await this.storage.list<string>({ prefix: recordPrefix(vendor) });
      for (const [key, text] of stored) {
        const name = key.slice(recordPrefix(vendor).length).split("/")[0] ?? "";
        layout.restore(data, name, JSON.parse(text) as Obj);
        this.written.set(key, text);
      }
      out.set(vendor, base);
    }
    return out;
  }

  /**
   * Writes a fake's state after a call: the state without its records, and, when the call may
   * have changed records, the buckets whose text changed (and deletes those now empty).
   */
  async save(vendor: string, state: unknown, records: boolean): Promise<void> {
    const layout = LAYOUTS[vendor];
    if (layout === undefined) return this.storage.put(vendor, state);
    const s = asObj(state);
    if (this.inline.delete(vendor)) records = true;
    const entries: Obj = { [vendor]: { ...s, data: layout.strip(s.data) } };
    const deletes: string[] = [];
    if (records) {
      const buckets = new Map<string, Obj>();
      for (const [name, map] of layout.maps(s.data)) {
        for (const key of Object.keys(map)) {
          const bucketKey = `${recordPrefix(vendor)}${name}/${bucketOf(key)}`;
          let bucket = buckets.get(bucketKey);
          if (bucket === undefined) buckets.set(bucketKey, (bucket = {}));
          bucket[key] = map[key];
        }
      }
      for (const [key, bucket] of buckets) {
        const text = JSON.stringify(bucket);
        if (this.written.get(key) === text) continue;
        entries[key] = text;
        this.written.set(key, text);
      }
      for (const key of this.written.keys()) {
        if (key.startsWith(recordPrefix(vendor)) && !buckets.has(key)) deletes.push(key);
      }
      for (const key of deletes) this.written.delete(key);
    }
    // Every call is made before the first await, so writes keep the order of the calls that made them.
    const pending: Promise<unknown>[] = [];
    const keys = Object.keys(entries);
    for (let i = 0; i < keys.length; i += KEYS_PER_CALL) {
      pending.push(this.storage.put(Object.fromEntries(keys.slice(i, i + KEYS_PER_CALL).map((k) => [k, entries[k]]))));
    }
    for (let i = 0; i < deletes.length; i += KEYS_PER_CALL) pending.push(this.storage.delete(deletes.slice(i, i + KEYS_PER_CALL)));
    await Promise.all(pending);
  }
}
