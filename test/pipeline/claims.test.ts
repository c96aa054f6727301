/**
 * Owned claims (issue 5): a running ledger row belongs to the claim that marked it, for the
 * length of its lease. Concurrent consumer invocations are called directly and at once
 * (Miniflare runs one queue batch at a time; production does not).
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { database, LEASE_MS, settleBatchStatements, runBatch } from "../../src/pipeline/ledger";
import { replayEvents } from "../../src/pipeline/dead-letters";
import { EventMessage } from "../../src/pipeline/message";
import { r2PayloadStore } from "../../src/pipeline/payloads";
import { createCrmContact, mailchimpMember, resetSandbox, setFaults, vendorRequests, waitFor } from "../support/sandbox";
import { actionRow, capturingQueue, contactCreated, deliver, eventRow, seedLedger } from "../support/messages";

beforeEach(resetSandbox);

const ACTION = "contact-sync.apply";
const puts = async () => (await vendorRequests("mailchimp")).filter((r) => r.method === "PUT").length;

async function newMessage() {
  const email = `claim.${crypto.randomUUID().slice(0, 8)}@example.com`;
  return { email, message: await contactCreated(await createCrmContact({ email, firstname: "Ada" })) };
}

describe("two processings of the same delivery at once, against a slow vendor", () => {
  it("make one vendor call; the second waits for the lease instead of running", async () => {
    const { email, message } = await newMessage();
    await setFaults("mailchimp", { latencyMs: 400 });
    const [a, b] = await Promise.all([deliver([message]), deliver([message], { attempts: 2 })]);
    expect(await puts()).toBe(1);
    expect(await mailchimpMember(email)).toMatchObject({ status: "subscribed" });
    expect(await actionRow(message.event.id)).toMatchObject({ state: "done", attempts: 1 });
    // One copy did the work and was acked; the other found the row leased and retries later.
    const retried = [...a.retryMessages, ...b.retryMessages];
    expect([...a.explicitAcks, ...b.explicitAcks]).toHaveLength(1);
    expect(retried).toHaveLength(1);
    expect(retried[0]!.delaySeconds).toBeGreaterThan(0);
    expect(retried[0]!.delaySeconds).toBeLessThanOrEqual(LEASE_MS / 1000 + 1);
  });

  it("the copy that arrives after the work is done is acked without a call", async () => {
    const { message } = await newMessage();
    await deliver([message]);
    const again = await deliver([message], { attempts: 2 });
    expect(again.explicitAcks).toEqual(again.ids);
    expect(await puts()).toBe(1);
  });
});

describe("a replay during an attempt", () => {
  it("does not run the action a second time", async () => {
    const { email, message } = await newMessage();
    await setFaults("mailchimp", { latencyMs: 1_000 });
    const { queue, sent } = capturingQueue();
    const first = deliver([message]);
    // While the attempt runs (it waits a second on Mailchimp): replay the event and deliver the replay.
    await waitFor(async () => (await actionRow(message.event.id))?.state === "running", 5_000, "the attempt to start");
    await replayEvents(database(env.DB), queue, r2PayloadStore(env.PAYLOADS), [message.event.id], Date.now());
    expect(sent).toHaveLength(1);
    const replay = EventMessage.parse(sent[0]!.body);
    const during = await deliver([replay]);
    await first;
    expect(await puts()).toBe(1);
    // The replay took the event over and waited for the running attempt's lease; delivered
    // again once that attempt is done, it finds nothing to do.
    expect(during.retryMessages).toHaveLength(1);
    const later = await deliver([replay], { attempts: 2 });
    expect(later.explicitAcks).toEqual(later.ids);
    expect(await puts()).toBe(1);
    expect(await actionRow(message.event.id)).toMatchObject({ state: "done", attempts: 1 });
    expect(await mailchimpMember(email)).not.toBeNull();
  });
});

describe("leases", () => {
  /** What a consumer that died mid-attempt leaves behind: the event, and the row running under its claim. */
  const leftRunning = (message: EventMessage, leaseEnds: number, token = "claim-of-a-dead-consumer") =>
    seedLedger(message, [{ action: ACTION, state: "running", claimToken: token, nextAttemptAt: leaseEnds }]);

  it("a row running under a live lease is not run again; the message waits until the lease ends", async () => {
    const { message } = await newMessage();
    await leftRunning(message, Date.now() + 60_000);
    const result = await deliver([message], { attempts: 2 });
    expect(await puts()).toBe(0);
    expect(result.retryMessages).toHaveLength(1);
    expect(result.retryMessages[0]!.delaySeconds).toBeGreaterThanOrEqual(59);
    expect(result.retryMessages[0]!.delaySeconds).toBeLessThanOrEqual(61);
    expect(await actionRow(message.event.id)).toMatchObject({ state: "running", attempts: 1 });
  });

  it("a row whose lease ended (its consumer died) is claimed again and finished", async () => {
    const { email, message } = await newMessage();
    await leftRunning(message, Date.now() - 1);
    const result = await deliver([message], { attempts: 2 });
    expect(result.explicitAcks).toEqual(result.ids);
    expect(await actionRow(message.event.id)).toMatchObject({ state: "done", attempts: 2 });
    expect(await mailchimpMember(email)).not.toBeNull();
  });

  it("a stale attempt's settle cannot overwrite the outcome of the claim that took over", async () => {
    const { message } = await newMessage();
    await leftRunning(message, Date.now() - 1, "stale-claim");
    await deliver([message], { attempts: 2 });
    expect(await actionRow(message.event.id)).toMatchObject({ state: "done" });
    // The stale attempt comes back late with a failure and a dead letter.
    const db = database(env.DB);
    await runBatch(
      db,
      settleBatchStatements(
        db,
        [
          {
            eventId: message.event.id,
            token: "stale-claim",
            status: { invalid: true, lastError: "mailchimp PUT answered 500" },
            updates: [{ action: ACTION, state: "dead", lastError: "permanent: late", lastStatus: 400, nextAttemptAt: null }],
            audit: [],
            deadLetters: [{ id: "dl_stale", eventId: message.event.id, action: ACTION, source: "hubspot", reason: "permanent: late" }],
          },
        ],
        Date.now(),
      ),
    );
    expect(await actionRow(message.event.id)).toMatchObject({ state: "done", last_error: null });
    expect(await eventRow(message.event.id)).toMatchObject({ status: "done", last_error: null });
    const letters = await env.DB.prepare("SELECT count(*) AS n FROM dead_letters WHERE event_id = ?").bind(message.event.id).first<{ n: number }>();
    expect(letters?.n).toBe(0);
  });
});

describe("a status repair by a claim that found nothing due", () => {
  it("keeps the invalid status and the error text that the attempt's settle wrote meanwhile", async () => {
    const { message } = await newMessage();
    // The attempt settled the event invalid while another copy, which had found the row
    // running, was on its way to write the status it had computed then.
    await seedLedger(message, [{ action: ACTION, state: "dead", claimToken: "the-attempt" }], "invalid");
    await env.DB.prepare("UPDATE events SET last_error = 'invalid: HubSpot contact has no email' WHERE id = ?").bind(message.event.id).run();
    const db = database(env.DB);
    await runBatch(db, settleBatchStatements(db, [{ eventId: message.event.id, token: null, status: { invalid: false, lastError: null }, updates: [], audit: [], deadLetters: [] }], Date.now()));
    expect(await eventRow(message.event.id)).toMatchObject({ status: "invalid", last_error: "invalid: HubSpot contact has no email" });
  });
});
