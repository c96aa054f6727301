/** Dead letters: the dead-letter queue's consumer, and replay through the real queue. */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { database } from "../../src/pipeline/ledger";
import { replayDeadLetters, replayEvents } from "../../src/pipeline/dead-letters";
import { r2PayloadStore } from "../../src/pipeline/payloads";
import { createCrmContact, mailchimpMember, resetSandbox, setFaults, vendorRequests, waitFor } from "../support/sandbox";
import { actionRow, capturingQueue, contactCreated, deadLettersOf, deliver, eventRow } from "../support/messages";

beforeEach(resetSandbox);

const db = () => database(env.DB);
const store = () => r2PayloadStore(env.PAYLOADS);
const successfulPuts = async () => (await vendorRequests("mailchimp")).filter((r) => r.method === "PUT" && r.status === 200).length;

describe("dead-letter queue consumer", () => {
  it("stores what the events queue gave up on, with the reason, and marks the event dead", async () => {
    const message = await contactCreated(await createCrmContact({ email: "dlq@example.com" }));
    const result = await deliver([message], { queue: "syncwire-dead-letters" });
    expect(result.explicitAcks).toEqual(result.ids);
    expect((await eventRow(message.event.id))?.status).toBe("dead");
    const letters = await deadLettersOf(message.event.id);
    expect(letters).toHaveLength(1);
    expect(letters[0]!.reason).toBe("the events queue ran out of delivery retries");
  });
});

it("keeps an unreadable message the events queue gave up on, with its raw body", async () => {
  const result = await deliver([{ garbage: true }], { queue: "syncwire-dead-letters" });
  expect(result.explicitAcks).toEqual(result.ids);
  const row = await env.DB.prepare("SELECT source, reason, body FROM dead_letters WHERE event_id = ?").bind(`msg_${result.ids[0]}`).first<{ source: string; reason: string; body: string }>();
  expect(row).toEqual({ source: "unknown", reason: "the events queue ran out of delivery retries", body: '{"garbage":true}' });
});

describe("replay", () => {
  it("re-runs a dead-lettered action through the queue once the cause is fixed, and closes the dead letter", async () => {
    const email = "replay.me@example.com";
    const message = await contactCreated(await createCrmContact({ email }));
    await setFaults("mailchimp", { failNext: { count: 1, status: 400 } });
    await deliver([message]);
    const [letter] = await deadLettersOf(message.event.id);
    expect(letter).toBeDefined();

    const result = await replayDeadLetters(db(), env.EVENTS, store(), { ids: [letter!.id, "dl_missing"] }, Date.now());
    expect(result).toMatchObject({ eventIds: [message.event.id], skipped: ["dl_missing"], queued: 1 });
    await waitFor(() => mailchimpMember(email).then((m) => m ?? undefined), 10_000, "replayed delivery");
    await waitFor(async () => (await eventRow(message.event.id))?.status === "done", 10_000, "event done");
    expect(await actionRow(message.event.id)).toMatchObject({ state: "done", attempts: 2 });
    expect((await deadLettersOf(message.event.id))[0]!.replayed_at).not.toBeNull();
    expect(await successfulPuts()).toBe(1);
  });

  it("replays every open dead letter with { all: true }", async () => {
    const a = await contactCreated(await createCrmContact({ email: "all.a@example.com" }));
    const b = await contactCreated(await createCrmContact({ email: "all.b@example.com" }));
    await setFaults("mailchimp", { failNext: { count: 2, status: 400 } });
    await deliver([a, b]);
    const result = await replayDeadLetters(db(), env.EVENTS, store(), { all: true }, Date.now());
    expect(result.eventIds).toEqual(expect.arrayContaining([a.event.id, b.event.id]));
    await waitFor(async () => (await mailchimpMember("all.a@example.com")) !== null && (await mailchimpMember("all.b@example.com")) !== null, 10_000, "both");
  });

  it("replays more dead letters than D1 binds parameters for in one statement", async () => {
    const messages = await Promise.all(Array.from({ length: 120 }, (_, i) => contactCreated(`99${i}`)));
    await deliver(messages, { queue: "syncwire-dead-letters" });
    const eventIds = JSON.stringify(messages.map((m) => m.event.id));
    const ids = (await env.DB.prepare("SELECT id FROM dead_letters WHERE replayed_at IS NULL AND event_id IN (SELECT value FROM json_each(?))").bind(eventIds).all<{ id: string }>()).results.map((r) => r.id);
    expect(ids.length).toBeGreaterThanOrEqual(120);
    const result = await replayDeadLetters(db(), env.EVENTS, store(), { ids }, Date.now());
    expect(result.eventIds).toEqual(expect.arrayContaining(messages.map((m) => m.event.id)));
    const open = await env.DB.prepare("SELECT count(*) AS n FROM dead_letters WHERE replayed_at IS NULL AND id IN (SELECT value FROM json_each(?))").bind(JSON.stringify(ids)).first<{ n: number }>();
    expect(open?.n).toBe(0);
  });

  it("does not repeat a done action when its event is replayed", async () => {
    const message = await contactCreated(await createCrmContact({ email: "done.once@example.com" }));
    await deliver([message]);
    expect(await successfulPuts()).toBe(1);
    await replayEvents(db(), env.EVENTS, store(), [message.event.id], Date.now());
    await waitFor(async () => (await eventRow(message.event.id))?.status === "done", 10_000, "replayed event settled");
    await new Promise((r) => setTimeout(r, 1500)); // the replayed delivery has been consumed by now
    expect(await successfulPuts()).toBe(1);
    expect(await actionRow(message.event.id)).toMatchObject({ state: "done", attempts: 1 });
  });

  it("re-runs done actions too with { all: true }", async () => {
    const message = await contactCreated(await createCrmContact({ email: "again@example.com" }));
    await deliver([message]);
    await replayEvents(db(), env.EVENTS, store(), [message.event.id], Date.now(), { all: true });
    await waitFor(async () => {
      const row = await actionRow(message.event.id);
      return row?.attempts === 2 && row.state === "done";
    }, 10_000, "second run");
    expect(await successfulPuts()).toBe(2);
  });
});

describe("replay that the queue refuses", () => {
  it("changes nothing, so a second replay delivers the event", async () => {
    const email = "refused.replay@example.com";
    const message = await contactCreated(await createCrmContact({ email }));
    await setFaults("mailchimp", { failNext: { count: 1, status: 400 } });
    await deliver([message]);
    const [letter] = await deadLettersOf(message.event.id);

    const refusing = { sendBatch: async () => Promise.reject(new Error("Queue send failed: 503")) } as unknown as Queue;
    await expect(replayDeadLetters(db(), refusing, store(), { ids: [letter!.id] }, Date.now())).rejects.toThrow(/Queue send failed/);
    expect((await deadLettersOf(message.event.id))[0]!.replayed_at).toBeNull();
    expect(await actionRow(message.event.id)).toMatchObject({ state: "dead" });
    expect((await replayDeadLetters(db(), refusing, store(), { all: true }, Date.now()).catch(() => null))).toBeNull();

    const result = await replayDeadLetters(db(), env.EVENTS, store(), { ids: [letter!.id] }, Date.now());
    expect(result.queued).toBe(1);
    await waitFor(() => mailchimpMember(email).then((m) => m ?? undefined), 10_000, "replayed delivery");
    await waitFor(async () => (await eventRow(message.event.id))?.status === "done", 10_000, "event done");
  });
});

describe("replay of every open dead letter", () => {
  it("works in bounded pages and says when more remain", async () => {
    const messages = await Promise.all(Array.from({ length: 12 }, (_, i) => contactCreated(`77${i}`)));
    await deliver(messages, { queue: "syncwire-dead-letters" });
    const { queue, sent } = capturingQueue();
    const first = await replayDeadLetters(db(), queue, store(), { all: true }, Date.now(), 5);
    expect(first).toMatchObject({ queued: 5, more: true });
    expect(sent).toHaveLength(5);
    let total = first.queued;
    for (let round = 0; round < 50; round++) {
      const next = await replayDeadLetters(db(), queue, store(), { all: true }, Date.now(), 5);
      total += next.queued;
      if (!next.more) break;
    }
    // Every one of this test's events, each queued once (other tests' open letters may be replayed too).
    const ours = sent.map((s) => (s.body as { event: { id: string } }).event.id).filter((id) => messages.some((m) => m.event.id === id));
    expect(new Set(ours).size).toBe(12);
    expect(ours).toHaveLength(12);
    expect(total).toBe(sent.length);
  });
});

describe("a replay delivery that the queue delivers again later", () => {
  it("does not re-run what it already re-ran", async () => {
    const message = await contactCreated(await createCrmContact({ email: "replay.twice@example.com" }));
    await deliver([message]);
    const { queue, sent } = capturingQueue();
    await replayEvents(db(), queue, store(), [message.event.id], Date.now(), { all: true });
    const replay = sent[0]!.body;
    await deliver([replay]);
    expect(await successfulPuts()).toBe(2);
    // The queue's own redelivery of the same replay, after it finished: nothing runs.
    const again = await deliver([replay], { attempts: 2 });
    expect(again.explicitAcks).toEqual(again.ids);
    expect(await successfulPuts()).toBe(2);
    expect(await actionRow(message.event.id)).toMatchObject({ state: "done", attempts: 2 });
  });
});

describe("dead letters that appear while a replay of every open one runs", () => {
  it("wait for the next call: the event's new letter stays open, another event's new letter is not replayed", async () => {
    const message = await contactCreated("7799");
    const other = await contactCreated(await createCrmContact({ email: "meanwhile@example.com" }));
    await deliver([message], { queue: "syncwire-dead-letters" });
    await deliver([other]); // the other event exists, done, with no letter yet
    expect(await deadLettersOf(other.event.id)).toEqual([]);
    const started = Date.now();
    const sentIds: string[] = [];
    // The queue hands the replay to a consumer at once: its attempt fails again, and meanwhile
    // another event dies for the first time.
    const queue = {
      async sendBatch(batch: MessageSendRequest<{ event: { id: string } }>[]) {
        sentIds.push(...batch.map((m) => m.body.event.id));
        if (!batch.some((m) => m.body.event.id === message.event.id)) return;
        await env.DB.batch([
          env.DB.prepare("INSERT INTO dead_letters (id, event_id, action, source, reason, created_at) VALUES (?, ?, NULL, 'hubspot', 'failed again', ?)").bind(
            `dl_again_${crypto.randomUUID()}`,
            message.event.id,
            started + 1,
          ),
          env.DB.prepare("INSERT INTO dead_letters (id, event_id, action, source, reason, created_at) VALUES (?, ?, NULL, 'hubspot', 'failed meanwhile', ?)").bind(
            `dl_meanwhile_${crypto.randomUUID()}`,
            other.event.id,
            started + 1,
          ),
        ]);
      },
    } as unknown as Queue;
    await replayDeadLetters(db(), queue, store(), { all: true }, started);
    expect(sentIds.filter((id) => id === message.event.id)).toHaveLength(1);
    expect(sentIds).not.toContain(other.event.id);
    const letters = await deadLettersOf(message.event.id);
    expect(letters.find((l) => l.reason === "failed again")?.replayed_at).toBeNull();
    expect(letters.find((l) => l.reason !== "failed again")?.replayed_at).toBe(started);
    expect((await deadLettersOf(other.event.id))[0]?.replayed_at).toBeNull();
  });
});

describe("a late copy of a finished event that meets a pruned payload", () => {
  it("keeps the event finished, and the dead letter says why", async () => {
    const message = await contactCreated(await createCrmContact({ email: "late.copy@example.com" }));
    await deliver([message]);
    expect((await eventRow(message.event.id))?.status).toBe("done");
    const late = { ...message, deliveryId: crypto.randomUUID(), event: { ...message.event, payload: {}, payloadRef: `payloads/${message.event.id}.json` } };
    const result = await deliver([late]);
    expect(result.explicitAcks).toEqual(result.ids);
    expect((await eventRow(message.event.id))?.status).toBe("done");
    expect((await deadLettersOf(message.event.id))[0]?.reason).toMatch(/^permanent: .*does not exist/);
  });
});
