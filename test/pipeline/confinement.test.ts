/**
 * Every failure is confined to its message and waits on the schedule (issue 5): an unknown
 * ledger row, flow code that throws, a payload past RETRY_MAX_AGE, a configuration that cannot
 * run, and a dead-letter store that is down.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import worker from "../../src/index";
import { app } from "../../src/http/app";
import { FLOWS } from "../../src/flows/registry";
import type { Flow } from "../../src/flows/types";
import { pipelineDeps, REQUEUE_AT_ATTEMPT } from "../../src/pipeline/consumer";
import { refusingBatches } from "../support/d1";
import { createCrmContact, mailchimpMember, resetSandbox, itemWrites, vendorRequests } from "../support/sandbox";
import { actionRow, capturingQueue, consume, contactCreated, deadLettersOf, deliver, eventRow, recordingBatch, seedLedger } from "../support/messages";
import { hubspotEvent, mailchimpRequest, signedHubSpot } from "../support/webhooks";

beforeEach(resetSandbox);

/** Members written (a batch subscribe counts once per member). */
const puts = async () => itemWrites(await vendorRequests("mailchimp")).length;
const newMessage = async (email = `conf.${crypto.randomUUID().slice(0, 8)}@example.com`) => ({ email, message: await contactCreated(await createCrmContact({ email })) });

describe("a ledger row whose action no flow routes any more", () => {
  it("is settled dead with the reason, and the normal message next to it is acked after one call", async () => {
    const a = await newMessage();
    const b = await newMessage();
    // What a deploy that renamed an action leaves behind: the event with a row for the old name.
    await seedLedger(a.message, [{ action: "old-flow.renamed", state: "failed" }], "retrying");
    const result = await deliver([a.message, b.message], { attempts: 2 });
    expect(result.explicitAcks.sort()).toEqual([...result.ids].sort());
    expect(await puts()).toBe(2);
    expect(await mailchimpMember(b.email)).not.toBeNull();
    const old = await env.DB.prepare("SELECT state, last_error FROM actions WHERE event_id = ? AND action = 'old-flow.renamed'").bind(a.message.event.id).first<{ state: string; last_error: string }>();
    expect(old).toMatchObject({ state: "dead", last_error: expect.stringMatching(/no flow routes action old-flow\.renamed/) });
    expect((await deadLettersOf(a.message.event.id)).map((l) => l.action)).toEqual(["old-flow.renamed"]);
  });
});

describe("flow code that throws outside an action", () => {
  const bomb = (eventId: string): Flow => ({
    name: "bomb",
    triggers: [
      {
        source: "hubspot",
        types: ["contact.creation"],
        when: (event) => {
          if (event.id === eventId) throw new Error("a bug in a flow's matcher");
          return false;
        },
      },
    ],
    actions: [],
  });

  it("retries that message alone, with a delay", async () => {
    const ok = await newMessage();
    const bad = await newMessage();
    const result = await consume([ok.message, bad.message], { ...pipelineDeps(env), flows: [...FLOWS, bomb(bad.message.event.id)] });
    expect(result.explicitAcks).toEqual([result.ids[0]]);
    expect(result.retryMessages).toEqual([{ msgId: result.ids[1], delaySeconds: expect.any(Number) }]);
    expect(result.retryMessages[0]!.delaySeconds).toBeGreaterThanOrEqual(1);
    expect(await mailchimpMember(ok.email)).not.toBeNull();
  });

  it("dead-letters the message, with the reason, once it is older than RETRY_MAX_AGE", async () => {
    const bad = await contactCreated(await createCrmContact({ email: "old.bomb@example.com" }), { retryFrom: Date.now() - 86_401_000 });
    const result = await consume([bad], { ...pipelineDeps(env), flows: [...FLOWS, bomb(bad.event.id)] }, { attempts: 40 });
    expect(result.explicitAcks).toEqual(result.ids);
    expect((await eventRow(bad.event.id))?.status).toBe("dead");
    expect((await deadLettersOf(bad.event.id))[0]?.reason).toMatch(/gave up after RETRY_MAX_AGE \(86400 s\): Error: a bug in a flow's matcher/);
  });
});

describe("a configuration that cannot run", () => {
  // Bindings as a deploy with a typo would have them; the worker parses them once per env object.
  const broken = () => ({ ...env, RETRY_SCHEDULE: "soon", MAILCHIMP_API_KEY: "no-data-center" }) as Env;

  it("/health answers 503 misconfigured naming the keys, never their values", async () => {
    const res = await app.fetch(new Request("https://syncwire.example.com/health"), broken());
    expect(res.status).toBe(503);
    const body = (await res.json()) as { status: string; issues: { key: string }[] };
    expect(body.status).toBe("misconfigured");
    expect(body.issues.map((i) => i.key).sort()).toEqual(["MAILCHIMP_API_KEY", "RETRY_SCHEDULE"]);
    expect(JSON.stringify(body)).not.toMatch(/soon|no-data-center/);
  });

  it("a source whose own keys are broken answers 503, so its provider retries; the others keep queueing", async () => {
    const env2 = broken();
    const mailchimp = await app.fetch(mailchimpRequest(new URLSearchParams({ type: "subscribe", fired_at: "2026-11-20 10:00:00", "data[email]": "a@example.com" }).toString()), env2);
    expect(mailchimp.status).toBe(503);
    expect(((await mailchimp.json()) as { error: { code: string } }).error.code).toBe("unavailable");
    // HubSpot's keys are fine: its events are queued, and wait in the consumer for the fix.
    const hubspot = await app.fetch(await signedHubSpot(JSON.stringify([hubspotEvent(1)])), env2);
    expect(hubspot.status).toBe(202);
  });

  it("queued events wait with a delay, none is dead-lettered, and near the retry limit a copy is sent", async () => {
    const waiting = await newMessage();
    const first = recordingBatch("syncwire-events", [waiting.message], 1);
    await worker.queue(first.batch, broken());
    expect(first.decisions.acks).toEqual([]);
    expect(first.decisions.retries).toEqual([{ msgId: first.batch.messages[0]!.id, delaySeconds: expect.any(Number) }]);
    expect(first.decisions.retries[0]!.delaySeconds).toBeGreaterThanOrEqual(1);
    expect(await deadLettersOf(waiting.message.event.id)).toEqual([]);
    expect(await eventRow(waiting.message.event.id)).toBeNull();

    // The platform gives up after 100 retries; the consumer hands the queue a fresh copy
    // (delayed on the schedule) before that.
    const events = capturingQueue();
    const late = recordingBatch("syncwire-events", [waiting.message], REQUEUE_AT_ATTEMPT);
    await worker.queue(late.batch, { ...broken(), EVENTS: events.queue });
    expect(late.decisions.acks).toEqual([late.batch.messages[0]!.id]);
    expect(events.sent).toEqual([{ body: waiting.message, delaySeconds: expect.any(Number) }]);
    expect(events.sent[0]!.delaySeconds).toBeGreaterThanOrEqual(300);
  });
});

describe("a store that is down", () => {
  const downDb = () => ({ ...env, DB: refusingBatches(env.DB, () => true) }) as Env;

  it("a poison message is retried with a delay, not at once", async () => {
    const { batch, decisions } = recordingBatch("syncwire-events", [{ not: "an event" }], 1);
    await worker.queue(batch, downDb());
    expect(decisions.acks).toEqual([]);
    expect(decisions.retries[0]?.delaySeconds).toBeGreaterThanOrEqual(1);
  });

  it("the dead-letter consumer retries with a delay, and near the limit sends itself a copy instead of letting the platform delete it", async () => {
    const { message } = await newMessage();
    const early = recordingBatch("syncwire-dead-letters", [message], 3);
    await worker.queue(early.batch, downDb());
    expect(early.decisions.acks).toEqual([]);
    expect(early.decisions.retries[0]?.delaySeconds).toBeGreaterThanOrEqual(5);

    const deadLetters = capturingQueue();
    const last = recordingBatch("syncwire-dead-letters", [message], REQUEUE_AT_ATTEMPT);
    await worker.queue(last.batch, { ...downDb(), DEAD_LETTERS: deadLetters.queue });
    expect(last.decisions.acks).toEqual([last.batch.messages[0]!.id]);
    expect(deadLetters.sent).toEqual([{ body: message, delaySeconds: expect.any(Number) }]);

    // Once the store is back, the copy is stored.
    const copy = recordingBatch("syncwire-dead-letters", [deadLetters.sent[0]!.body], 1);
    await worker.queue(copy.batch, env);
    expect(copy.decisions.acks).toHaveLength(1);
    expect((await deadLettersOf(message.event.id))[0]?.reason).toBe("the events queue ran out of delivery retries");
    expect((await eventRow(message.event.id))?.status).toBe("dead");
  });
});

describe("an event no flow routes any more", () => {
  it("has its unfinished rows settled dead with the reason instead of being acked as ignored", async () => {
    const { message } = await newMessage();
    await deliver([message]);
    // As if its action had failed, and a deploy had then removed the flow before the retry.
    await env.DB.prepare("UPDATE actions SET state = 'failed', next_attempt_at = 0 WHERE event_id = ?").bind(message.event.id).run();
    const result = await consume([message], { ...pipelineDeps(env), flows: [] }, { attempts: 2 });
    expect(result.explicitAcks).toEqual(result.ids);
    expect(await actionRow(message.event.id)).toMatchObject({ state: "dead", last_error: expect.stringMatching(/no flow routes action contact-sync\.apply/) });
    expect((await eventRow(message.event.id))?.status).toBe("dead");
    expect((await deadLettersOf(message.event.id)).map((l) => l.action)).toEqual(["contact-sync.apply"]);
  });
});
