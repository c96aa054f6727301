/**
 * Payloads too large for a queue message, unit by unit, in workerd with the real R2 binding:
 * UTF-8 sizing, the sendBatch split, the offload in `enqueue`, reading a payload back, pruning
 * finished events with their payloads, and the consumer's answer to a payload that is gone.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { parseHubSpotBatch } from "../../src/ingest/hubspot";
import { database } from "../../src/pipeline/ledger";
import { enqueue, MAX_MESSAGE_BYTES, newDelivery, toSendBatches, utf8Bytes, type EventMessage } from "../../src/pipeline/message";
import { MissingPayloadError, payloadKey, r2PayloadStore, resolvePayload } from "../../src/pipeline/payloads";
import { pruneExpired, pruneFinishedEvents } from "../../src/pipeline/retention";
import { multiByteText, threeByteText, utf8Size } from "../support/large";
import { deadLettersOf, deliver, eventRow } from "../support/messages";
import { hubspotEvent } from "../support/webhooks";

// Queues limits (https://developers.cloudflare.com/queues/platform/limits/), 1 KB = 1,000 bytes.
const MESSAGE_LIMIT = 128_000;
const BATCH_LIMIT = 256_000;
const BATCH_MESSAGES = 100;
/** What a message costs in a batch besides its body, per the Queues docs (~100 bytes of metadata). */
const METADATA = 100;

const store = () => r2PayloadStore(env.PAYLOADS);

/** A queue message for a HubSpot property change whose value is `value`, built the way ingest builds it. */
async function messageWith(value: string, objectId = 4_200_000): Promise<EventMessage> {
  const parsed = await parseHubSpotBatch(
    JSON.stringify([hubspotEvent(objectId, { subscriptionType: "contact.propertyChange", propertyName: "notes", propertyValue: value })]),
    Date.now(),
  );
  if (!parsed.ok) throw new Error(parsed.message);
  return newDelivery(parsed.events[0]!, Date.now());
}

/** A Queue that accepts everything and records each sendBatch call, standing in for the binding. */
function recordingQueue() {
  const batches: MessageSendRequest<EventMessage>[][] = [];
  const queue = {
    async sendBatch(batch: Iterable<MessageSendRequest<EventMessage>>) {
      batches.push([...batch]);
    },
    async send() {
      throw new Error("enqueue must use sendBatch");
    },
  } as unknown as Queue;
  return { queue, batches };
}

/** What a sendBatch call weighs on the platform: each body's JSON in UTF-8 plus its metadata. */
const batchBytes = (batch: MessageSendRequest<EventMessage>[]) => batch.reduce((n, m) => n + utf8Size(JSON.stringify(m.body)) + METADATA, 0);

function expectWithinLimits(batches: MessageSendRequest<EventMessage>[][]) {
  for (const batch of batches) {
    expect(batch.length).toBeGreaterThan(0);
    expect(batch.length).toBeLessThanOrEqual(BATCH_MESSAGES);
    expect(batchBytes(batch)).toBeLessThanOrEqual(BATCH_LIMIT);
    for (const m of batch) expect(utf8Size(JSON.stringify(m.body)) + METADATA).toBeLessThanOrEqual(MESSAGE_LIMIT);
  }
}

describe("utf8Bytes", () => {
  // What it returns is what toSendBatches adds up per sendBatch, so it must be the exact size
  // for every text, not only a "fits under 128 KB" answer. (At 3260556 it returned `.length`
  // whenever `length * 3` fitted under the limit: 1,000 for 1,000 "€", which are 3,000 bytes.)
  it.each([
    ["ASCII", "a".repeat(1_000)],
    ["a few 3-byte characters", threeByteText(1_000)],
    ["mixed 2/3/4-byte text under 128 KB", multiByteText(1_200)],
    ["3-byte text over 128 KB", threeByteText(50_000)],
    ["mixed 2/3/4-byte text over 128 KB", multiByteText(60_000)],
    ["ASCII, then surrogate pairs, then 2-byte characters", `${"a".repeat(30_000)}${"😀".repeat(10_000)}${"é".repeat(10_000)}`],
    ["every UTF-8 length boundary", "\u007f\u0080\u07ff\u0800\uffff\u{10000}\u{10ffff}"],
    ["lone surrogates (encoded as U+FFFD)", "a\ud83d b\ude00 \ud83d"],
  ])("is exact for %s", (_, text) => {
    expect(utf8Bytes(text)).toBe(utf8Size(text));
  });

  it("is exact for a JSON-encoded message, which is what enqueue measures", async () => {
    const json = JSON.stringify(await messageWith(multiByteText(5_000)));
    expect(utf8Bytes(json)).toBe(utf8Size(json));
    expect(utf8Bytes(json)).toBeGreaterThan(2 * json.length);
  });
});

describe("toSendBatches", () => {
  const sized = async (count: number, value: (i: number) => string) =>
    Promise.all(
      Array.from({ length: count }, async (_, i) => {
        const body = await messageWith(value(i), 4_300_000 + i);
        return { body, bytes: utf8Size(JSON.stringify(body)) };
      }),
    );

  it("never puts more than 100 messages in one batch, and keeps every message in order", async () => {
    const messages = await sized(250, () => "x");
    const batches = toSendBatches(messages);
    expect(batches.map((b) => b.length)).toEqual([100, 100, 50]);
    expect(batches.flat().map((m) => m.body)).toEqual(messages.map((m) => m.body));
    for (const batch of batches) for (const m of batch) expect(m.contentType).toBe("json");
  });

  it("never puts more than 256,000 UTF-8 bytes in one batch, metadata included", async () => {
    // Sizes from tiny to ~115 KB, multi-byte, in an order that makes the packing work.
    const messages = await sized(60, (i) => multiByteText([10, 40_000, 3_000, 45_000, 500, 20_000][i % 6]!));
    const batches = toSendBatches(messages);
    expect(batches.length).toBeGreaterThan(1);
    expectWithinLimits(batches);
    expect(batches.flat().map((m) => m.body)).toEqual(messages.map((m) => m.body));
  });

  it("counts the ~100 bytes of metadata: 50 messages of 5,000 bytes do not fit one batch", async () => {
    const body = await messageWith("x");
    const messages = Array.from({ length: 51 }, () => ({ body, bytes: 5_000 }));
    // 51 * 5,000 = 255,000 fits by body size alone; with metadata it is 260,100.
    const batches = toSendBatches(messages);
    expect(batches.length).toBeGreaterThan(1);
    for (const batch of batches) expect(batch.length * (5_000 + METADATA)).toBeLessThanOrEqual(BATCH_LIMIT);
  });
});

describe("enqueue", () => {
  it("moves the payload of a message over 128,000 bytes to R2 and sends the message under 128,000 bytes", async () => {
    const text = multiByteText(200_000); // ~500 KB
    const message = await messageWith(text);
    expect(utf8Size(JSON.stringify(message))).toBeGreaterThan(MESSAGE_LIMIT);
    const { queue, batches } = recordingQueue();

    await enqueue(queue, store(), [message]);

    expect(batches).toHaveLength(1);
    const sent = batches[0]![0]!.body;
    expect(utf8Size(JSON.stringify(sent)) + METADATA).toBeLessThan(MESSAGE_LIMIT);
    expect(sent.event.payload).toEqual({});
    expect(sent.event.payloadRef).toBe(payloadKey(message.event.id));
    expect(sent.event.payloadRef).toBe(`payloads/${message.event.id}.json`);
    expect({ ...sent.event, payload: message.event.payload, payloadRef: undefined }).toEqual({ ...message.event, payloadRef: undefined });
    expect(sent.deliveryId).toBe(message.deliveryId);

    const object = await env.PAYLOADS.get(sent.event.payloadRef!);
    expect(object).not.toBeNull();
    const stored = JSON.parse(await object!.text()) as { propertyValue: string };
    expect(stored).toEqual(message.event.payload);
    expect(stored.propertyValue).toBe(text);
    expect(await resolvePayload(store(), sent.event)).toEqual({ ...message.event, payloadRef: sent.event.payloadRef });
  });

  it("offloads by UTF-8 bytes: a message of 50,000 UTF-16 units but 150,000 bytes goes to R2", async () => {
    const message = await messageWith(threeByteText(50_000));
    expect(JSON.stringify(message).length).toBeLessThan(MESSAGE_LIMIT / 2);
    const { queue, batches } = recordingQueue();
    await enqueue(queue, store(), [message]);
    expect(batches.flat()[0]!.body.event.payloadRef).toBe(payloadKey(message.event.id));
    expectWithinLimits(batches);
  });

  it("leaves a message that fits where it is (no R2 object)", async () => {
    const message = await messageWith("a".repeat(100_000));
    const { queue, batches } = recordingQueue();
    await enqueue(queue, store(), [message]);
    expect(batches.flat()[0]!.body).toEqual(message);
    expect(await env.PAYLOADS.head(payloadKey(message.event.id))).toBeNull();
  });

  it("splits 100 small multi-byte messages (~430 KB in UTF-8, ~190,000 UTF-16 units) into batches within 256,000 bytes", async () => {
    const messages = await Promise.all(Array.from({ length: 100 }, (_, i) => messageWith(multiByteText(1_500), 4_400_000 + i)));
    const total = messages.reduce((n, m) => n + utf8Size(JSON.stringify(m)), 0);
    expect(total).toBeGreaterThan(1.5 * BATCH_LIMIT);
    const { queue, batches } = recordingQueue();

    await enqueue(queue, store(), messages);

    expect(batches.flat().map((m) => m.body)).toEqual(messages); // none offloaded, none lost, in order
    expectWithinLimits(batches);
  });

  it("mixes offloaded and inline messages in one call, each batch within the limits", async () => {
    const messages = await Promise.all([
      messageWith(multiByteText(300_000), 4_500_001),
      ...Array.from({ length: 30 }, (_, i) => messageWith(multiByteText(4_000), 4_500_100 + i)),
      messageWith(threeByteText(45_000), 4_500_002),
    ]);
    const { queue, batches } = recordingQueue();
    await enqueue(queue, store(), messages);
    const sent = batches.flat();
    expect(sent).toHaveLength(32);
    expect(sent.filter((m) => m.body.event.payloadRef).map((m) => m.body.event.id)).toEqual([messages[0]!.event.id, messages[31]!.event.id]);
    expectWithinLimits(batches);
  });
});

describe("enqueue against the real queue binding, at the edge of a message's size", () => {
  /** A message whose JSON is exactly `bytes` UTF-8 bytes, padded with a 3-byte character and ASCII. */
  async function messageOfExactly(bytes: number, objectId: number): Promise<EventMessage> {
    const base = await messageWith("", objectId);
    const room = bytes - utf8Size(JSON.stringify(base));
    const message = await messageWith(`${"€".repeat(Math.floor(room / 3))}${"a".repeat(room % 3)}`, objectId);
    // The event id and delivery differ from `base` only in digits of equal length.
    expect(utf8Size(JSON.stringify(message))).toBe(bytes);
    return message;
  }

  // If MAX_MESSAGE_BYTES were raised past what the platform takes with its metadata, the real
  // queue would refuse this message and the test would fail.
  it("sends the largest message it keeps whole, and the queue takes it with its metadata", async () => {
    const message = await messageOfExactly(MAX_MESSAGE_BYTES, 4_300_001);
    await enqueue(env.EVENTS, store(), [message]);
    expect(await env.PAYLOADS.head(payloadKey(message.event.id))).toBeNull();
  });

  it("moves one byte more to R2, and the queue takes the rest", async () => {
    const message = await messageOfExactly(MAX_MESSAGE_BYTES + 1, 4_300_002);
    await enqueue(env.EVENTS, store(), [message]);
    expect(await env.PAYLOADS.head(payloadKey(message.event.id))).not.toBeNull();
  });
});

describe("resolvePayload", () => {
  it("returns an event without payloadRef as it is", async () => {
    const { event } = await messageWith("inline");
    expect(await resolvePayload(store(), event)).toBe(event);
  });

  it("throws MissingPayloadError when the object does not exist", async () => {
    const { event } = await messageWith("gone");
    const ref = `payloads/does-not-exist-${crypto.randomUUID()}.json`;
    const error = await resolvePayload(store(), { ...event, payload: {}, payloadRef: ref }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(MissingPayloadError);
    expect((error as MissingPayloadError).code).toBe("missing_payload");
    expect((error as Error).message).toContain(ref);
  });
});

describe("pruneFinishedEvents", () => {
  async function insertEvent(id: string, status: string, receivedAt: number, withPayload: boolean, actionState: string | null) {
    const ref = withPayload ? payloadKey(id) : null;
    if (ref) await env.PAYLOADS.put(ref, JSON.stringify({ big: "x".repeat(10) }));
    await env.DB.prepare(
      `INSERT INTO events (id, source, type, dedupe_key, entity_key, delivery_id, payload, payload_ref, status, received_at, occurred_at, updated_at)
       VALUES (?, 'hubspot', 'contact.creation', ?, 'contact:1', 'd', '{}', ?, ?, ?, NULL, ?)`,
    )
      .bind(id, id, ref, status, receivedAt, receivedAt)
      .run();
    if (actionState) {
      await env.DB.prepare(
        `INSERT INTO actions (event_id, action, flow, entity_key, state, attempts, created_at, updated_at) VALUES (?, 'contact-sync.apply', 'contact-sync', 'contact:1', ?, 1, ?, ?)`,
      )
        .bind(id, actionState, receivedAt, receivedAt)
        .run();
    }
    return ref;
  }

  const exists = async (id: string) => (await env.DB.prepare("SELECT 1 AS x FROM events WHERE id = ?").bind(id).first()) !== null;
  const actionsOf = async (id: string) => (await env.DB.prepare("SELECT count(*) AS n FROM actions WHERE event_id = ?").bind(id).first<{ n: number }>())!.n;
  const objectExists = async (key: string) => (await env.PAYLOADS.head(key)) !== null;

  it("deletes a finished event with its action rows and R2 payload, keeps dead, retrying and recent ones, and reports counts", async () => {
    const tag = crypto.randomUUID().slice(0, 8);
    const old = 1_000; // long before the cutoff
    const done = `evt_prune_done_${tag}`;
    const ignored = `evt_prune_ignored_${tag}`;
    const dead = `evt_prune_dead_${tag}`;
    const retrying = `evt_prune_retrying_${tag}`;
    const recent = `evt_prune_recent_${tag}`;
    const doneRef = (await insertEvent(done, "done", old, true, "done"))!;
    await insertEvent(ignored, "ignored", old, false, null);
    const deadRef = (await insertEvent(dead, "dead", old, true, "dead"))!;
    const retryingRef = (await insertEvent(retrying, "retrying", old, true, "failed"))!;
    const recentRef = (await insertEvent(recent, "done", Date.now(), true, "done"))!;

    const result = await pruneFinishedEvents(database(env.DB), store(), 2_000, Date.now() + 60_000);

    expect(result).toEqual({ events: 2, payloads: 1, more: false });
    expect(await exists(done)).toBe(false);
    expect(await actionsOf(done)).toBe(0);
    expect(await objectExists(doneRef)).toBe(false);
    expect(await exists(ignored)).toBe(false);

    for (const [id, ref] of [[dead, deadRef], [retrying, retryingRef], [recent, recentRef]] as const) {
      expect(await exists(id)).toBe(true);
      expect(await actionsOf(id)).toBe(1);
      expect(await objectExists(ref)).toBe(true);
    }
  });

  it("works in pages until its time budget is spent, and says when more remain", async () => {
    const tag = crypto.randomUUID().slice(0, 8);
    const ids = Array.from({ length: 230 }, (_, i) => `evt_page_${tag}_${i}`);
    for (const [i, id] of ids.entries()) await insertEvent(id, i % 2 ? "done" : "ignored", 3_000, i % 10 === 0, i % 2 ? "done" : null);

    // A clock that has spent the budget after one page.
    let tick = 0;
    const first = await pruneFinishedEvents(database(env.DB), store(), 4_000, 1, () => tick++);
    expect(first).toMatchObject({ events: 200, more: true });
    const second = await pruneFinishedEvents(database(env.DB), store(), 4_000, Date.now() + 60_000);
    expect(second).toMatchObject({ events: 30, more: false });
    expect(first.payloads + second.payloads).toBe(23);
    for (const id of ids) expect(await exists(id)).toBe(false);
    for (const id of ids.filter((_, i) => i % 10 === 0)) expect(await objectExists(payloadKey(id))).toBe(false);
  });
});

describe("pruneExpired", () => {
  it("leaves the audit rows half of its budget, however large the backlog of events", async () => {
    const tag = crypto.randomUUID().slice(0, 8);
    const ids = Array.from({ length: 1_500 }, (_, i) => `evt_backlog_${tag}_${i}`);
    await env.DB.prepare(
      `INSERT INTO events (id, source, type, dedupe_key, entity_key, delivery_id, payload, status, received_at, updated_at)
       SELECT value, 'hubspot', 'contact.propertyChange', value, 'contact:1', 'd', '{}', 'ignored', 1000, 1000 FROM json_each(?)`,
    )
      .bind(JSON.stringify(ids))
      .run();
    await env.DB.prepare("INSERT INTO audit_log (event_id, connector, method, url, duration_ms, attempt, outcome, created_at) VALUES (?, 'mailchimp', 'PUT', 'https://x', 1, 1, 'success', 1000)")
      .bind(`audit_${tag}`)
      .run();
    // Every look at the clock costs 10 s of the 60 s budget: events get pages until 30 s.
    let clock = Date.now();
    const result = await pruneExpired(database(env.DB), store(), 1, () => (clock += 10_000));
    expect(result.more).toBe(true);
    expect(result.events).toBeLessThan(1_500);
    expect(result.auditRows).toBeGreaterThanOrEqual(1);
    expect(await env.DB.prepare("SELECT 1 FROM audit_log WHERE event_id = ?").bind(`audit_${tag}`).first()).toBeNull();
  });

  it("deletes audit rows older than the retention, keeps newer ones", async () => {
    const now = Date.now();
    const day = 86_400_000;
    const insert = (eventId: string, createdAt: number) =>
      env.DB.prepare(
        "INSERT INTO audit_log (event_id, connector, method, url, duration_ms, attempt, outcome, created_at) VALUES (?, 'mailchimp', 'PUT', 'https://x', 1, 1, 'success', ?)",
      )
        .bind(eventId, createdAt)
        .run();
    const tag = crypto.randomUUID().slice(0, 8);
    await insert(`old_${tag}`, now - 91 * day);
    await insert(`new_${tag}`, now - 89 * day);
    const result = await pruneExpired(database(env.DB), store(), 90, () => now);
    expect(result.auditRows).toBeGreaterThanOrEqual(1);
    expect(result.more).toBe(false);
    const left = await env.DB.prepare("SELECT event_id FROM audit_log WHERE event_id IN (?, ?)").bind(`old_${tag}`, `new_${tag}`).all<{ event_id: string }>();
    expect(left.results.map((r) => r.event_id)).toEqual([`new_${tag}`]);
  });
});

describe("the consumer and a missing payload", () => {
  it("dead-letters a message whose payloadRef object is missing at once, with the reason (R2 reads its own writes: it will not appear)", async () => {
    const message = await messageWith("whatever was stored is gone", 4_600_001);
    const body: EventMessage = {
      ...message,
      event: { ...message.event, payload: {}, payloadRef: `payloads/nowhere-${crypto.randomUUID()}.json` },
    };

    const result = await deliver([body]);

    expect(result.explicitAcks).toEqual(result.ids);
    expect(result.retryMessages).toEqual([]);
    expect((await deadLettersOf(body.event.id))[0]?.reason).toMatch(/^permanent: .*the stored payload payloads\/nowhere-.* does not exist/);
    expect((await eventRow(body.event.id))?.status).toBe("dead");
  });
});
