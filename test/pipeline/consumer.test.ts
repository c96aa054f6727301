/**
 * The events consumer, called directly with message batches so each decision (ack, retry
 * and its delay) can be read back. Outbound calls go to the built-in fakes.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { REQUEUE_AT_ATTEMPT } from "../../src/pipeline/consumer";
import { createCrmContact, LIST_ID, mailchimpMember, resetSandbox, setFaults, itemWrites, vendorRequests, waitFor } from "../support/sandbox";
import { actionRow, contactCreated, deadLettersOf, deliver, eventRow } from "../support/messages";

beforeEach(resetSandbox);

let n = 0;
async function newContact() {
  const email = `person${++n}.${crypto.randomUUID().slice(0, 8)}@example.com`;
  const id = await createCrmContact({ email, firstname: "Grace", lastname: "Hopper" });
  return { id, email };
}

/** Members written by 2xx calls (a batch subscribe counts once per member). */
const successfulPuts = async () => itemWrites(await vendorRequests("mailchimp")).filter((r) => r.status === 200).length;

describe("events consumer", () => {
  it("acks a message whose actions succeed and records the ledger row as done", async () => {
    const { id, email } = await newContact();
    const message = await contactCreated(id);
    const result = await deliver([message]);
    expect(result.explicitAcks).toEqual(result.ids);
    expect(result.retryMessages).toEqual([]);
    expect(await mailchimpMember(email)).toMatchObject({ status: "subscribed", merge_fields: { FNAME: "Grace", LNAME: "Hopper" } });
    expect(await actionRow(message.event.id)).toMatchObject({ state: "done", attempts: 1 });
    expect((await eventRow(message.event.id))?.status).toBe("done");
  });

  it("retries a transient failure with the scheduled delay, then succeeds", async () => {
    const { id, email } = await newContact();
    const message = await contactCreated(id);
    await setFaults("mailchimp", { failNext: { count: 2, status: 503 } });

    const first = await deliver([message]);
    // schedule 0,1,…: 1 s after attempt 1, plus up to 1 s of jitter (delays are whole seconds)
    expect(first.retryMessages).toEqual([{ msgId: first.ids[0], delaySeconds: expect.toSatisfy((d: number) => d === 1 || d === 2) }]);
    expect(await actionRow(message.event.id)).toMatchObject({ state: "failed", attempts: 1, last_status: 503 });

    // The queue delivers it again once the delay has passed.
    await env.DB.prepare("UPDATE actions SET next_attempt_at = 0 WHERE event_id = ?").bind(message.event.id).run();
    const second = await deliver([message], { attempts: 2 });
    const delay = second.retryMessages[0]?.delaySeconds ?? -1;
    expect(delay).toBeGreaterThanOrEqual(5); // 5 s after attempt 2, plus at most 20% jitter
    expect(delay).toBeLessThanOrEqual(6);

    // Delivered early (the action is not due yet): nothing is called, the message waits again.
    const early = await deliver([message], { attempts: 3 });
    expect(early.retryMessages).toHaveLength(1);
    expect(await actionRow(message.event.id)).toMatchObject({ state: "failed", attempts: 2 });

    await env.DB.prepare("UPDATE actions SET next_attempt_at = 0 WHERE event_id = ?").bind(message.event.id).run();
    const third = await deliver([message], { attempts: 4 });
    expect(third.explicitAcks).toEqual(third.ids);
    expect(await mailchimpMember(email)).toMatchObject({ status: "subscribed" });
    expect(await actionRow(message.event.id)).toMatchObject({ state: "done", attempts: 3 });
  });

  it("honours a Retry-After longer than the schedule", async () => {
    const { id } = await newContact();
    await setFaults("mailchimp", { failNext: { count: 1, status: 429, retryAfterSeconds: 120 } });
    const result = await deliver([await contactCreated(id)]);
    const delay = result.retryMessages[0]?.delaySeconds ?? -1;
    expect(delay).toBeGreaterThanOrEqual(120); // Retry-After, plus up to 20% jitter
    expect(delay).toBeLessThanOrEqual(144);
  });

  it("dead-letters a permanent 4xx at once, with the reason", async () => {
    const { id } = await newContact();
    const message = await contactCreated(id);
    await setFaults("mailchimp", { failNext: { count: 1, status: 400 } });
    const result = await deliver([message]);
    expect(result.explicitAcks).toEqual(result.ids);
    expect(result.retryMessages).toEqual([]);
    expect(await actionRow(message.event.id)).toMatchObject({ state: "dead", attempts: 1, last_status: 400 });
    expect((await eventRow(message.event.id))?.status).toBe("dead");
    const letters = await deadLettersOf(message.event.id);
    expect(letters).toHaveLength(1);
    expect(letters[0]!.action).toBe("contact-sync.apply");
    expect(letters[0]!.reason).toMatch(/permanent: mailchimp PUT answered 400/);
  });

  it("marks an event invalid when the CRM contact has no email, without retrying", async () => {
    const id = await createCrmContact({ firstname: "No", lastname: "Email" });
    const message = await contactCreated(id);
    const result = await deliver([message]);
    expect(result.explicitAcks).toEqual(result.ids);
    expect((await eventRow(message.event.id))?.status).toBe("invalid");
    expect((await deadLettersOf(message.event.id))[0]?.reason).toMatch(/invalid: HubSpot contact \d+ has no email/);
  });

  it("calls Mailchimp once when the same message is delivered twice", async () => {
    const { id } = await newContact();
    const message = await contactCreated(id);
    await deliver([message]);
    const again = await deliver([message], { attempts: 2 });
    expect(again.explicitAcks).toEqual(again.ids);
    expect(await successfulPuts()).toBe(1);
  });

  it("calls Mailchimp once when one batch holds the same delivery twice", async () => {
    const { id } = await newContact();
    const message = await contactCreated(id);
    const result = await deliver([message, message]);
    expect(result.explicitAcks.sort()).toEqual([...result.ids].sort());
    expect(await successfulPuts()).toBe(1);
    expect(await actionRow(message.event.id)).toMatchObject({ state: "done", attempts: 1 });
  });

  it("claims and settles a whole batch: 20 contacts in one batch all end subscribed", async () => {
    const contacts = await Promise.all(Array.from({ length: 20 }, () => newContact()));
    const messages = await Promise.all(contacts.map((c) => contactCreated(c.id)));
    const before = (await vendorRequests("hubspot")).length;
    const result = await deliver(messages);
    expect(result.explicitAcks).toHaveLength(20);
    expect(await successfulPuts()).toBe(20);
    // Decided per contact, sent in bulk: one CRM read and one member write for all 20.
    const calls = async (vendor: "hubspot" | "mailchimp", from = 0) => (await vendorRequests(vendor)).slice(from).map((r) => `${r.method} ${r.path.split("?")[0]}`);
    expect(await calls("hubspot", before)).toEqual(["POST /crm/v3/objects/contacts/batch/read"]);
    expect(await calls("mailchimp")).toEqual([`POST /3.0/lists/${LIST_ID}`]);
    for (const c of contacts) expect(await mailchimpMember(c.email)).toMatchObject({ status: "subscribed" });
  });

  it("treats the same event under another delivery id as a duplicate", async () => {
    const { id } = await newContact();
    const message = await contactCreated(id);
    await deliver([message]);
    await deliver([{ ...message, deliveryId: crypto.randomUUID() }]);
    expect(await successfulPuts()).toBe(1);
    expect((await eventRow(message.event.id))?.duplicates).toBe(1);
  });

  it("acks the other messages of a batch that holds a poison message, and keeps the poison", async () => {
    const a = await newContact();
    const b = await newContact();
    const poison = { not: "an event" };
    const result = await deliver([await contactCreated(a.id), poison, await contactCreated(b.id)]);
    expect(result.explicitAcks.sort()).toEqual([...result.ids].sort());
    expect(await mailchimpMember(a.email)).not.toBeNull();
    expect(await mailchimpMember(b.email)).not.toBeNull();
    const stored = await env.DB.prepare("SELECT reason, body FROM dead_letters WHERE event_id = ?").bind(`msg_${result.ids[1]}`).first<{ reason: string; body: string }>();
    expect(stored?.reason).toMatch(/unreadable queue message/);
    expect(JSON.parse(stored!.body)).toEqual(poison);
  });

  it("retries only the message whose processing throws; the others are acked", async () => {
    const a = await newContact();
    const b = await newContact();
    const bomb = await contactCreated((await newContact()).id);
    // A BigInt survives the queue's structured clone but not JSON: storing the event throws.
    (bomb.event.payload as Record<string, unknown>).huge = 10n;
    const messages = [await contactCreated(a.id), bomb, await contactCreated(b.id)];
    const result = await deliver(messages);
    expect(result.explicitAcks.sort()).toEqual([result.ids[0], result.ids[2]].sort());
    expect(result.retryMessages.map((r) => r.msgId)).toEqual([result.ids[1]]);
    expect(await mailchimpMember(a.email)).not.toBeNull();
    expect(await mailchimpMember(b.email)).not.toBeNull();
  });

  it("dead-letters a transient failure once the event is older than RETRY_MAX_AGE", async () => {
    const { id } = await newContact();
    const message = await contactCreated(id, { retryFrom: Date.now() - 86_401_000 });
    await setFaults("mailchimp", { outageSeconds: 60 });
    const result = await deliver([message]);
    expect(result.explicitAcks).toEqual(result.ids);
    expect((await deadLettersOf(message.event.id))[0]?.reason).toMatch(/gave up after RETRY_MAX_AGE \(86400 s\)/);
  });

  it("re-enqueues instead of retrying once the platform's retry limit is near, and the copy is delivered", async () => {
    const { id, email } = await newContact();
    const message = await contactCreated(id);
    await setFaults("mailchimp", { failNext: { count: 1, status: 503 } });
    const result = await deliver([message], { attempts: REQUEUE_AT_ATTEMPT });
    expect(result.explicitAcks).toEqual(result.ids);
    expect(result.retryMessages).toEqual([]);
    // The copy goes through the real queue to the worker's own consumer.
    await waitFor(() => mailchimpMember(email).then((m) => m ?? undefined), 15_000, "requeued delivery");
  });
});
