/**
 * Driving a nightly check run step by step (issue 9): its messages are caught and delivered to
 * the SYNC consumer by the test, so a crash, a duplicate or a failing alert endpoint can be put
 * between any two steps; and the two systems' records written through the fakes' APIs.
 */
import { env } from "cloudflare:workers";
import { subscriberHash } from "../../src/connectors/mailchimp";
import { database } from "../../src/pipeline/ledger";
import type { EventMessage } from "../../src/pipeline/message";
import { consumeSync, reconcileDeps } from "../../src/reconcile/consumer";
import type { SyncMessage } from "../../src/reconcile/messages";
import { getRun, toSyncRun } from "../../src/reconcile/runs";
import { startSyncRun } from "../../src/reconcile/start";
import { deliver, recordingBatch } from "./messages";
import { createCrmContact, LIST_ID, MAILCHIMP_KEY, sandboxFetch } from "./sandbox";

export async function member(email: string, fields: { FNAME?: string; LNAME?: string }, status = "subscribed") {
  const res = await sandboxFetch(`/mailchimp/3.0/lists/${LIST_ID}/members/${subscriberHash(email)}`, {
    method: "PUT",
    headers: { authorization: `Basic ${btoa(`test:${MAILCHIMP_KEY}`)}`, "content-type": "application/json" },
    body: JSON.stringify({ email_address: email, status_if_new: status, status, merge_fields: fields }),
  });
  if (!res.ok) throw new Error(`member: ${res.status} ${await res.text()}`);
}

/** A contact on both sides, the same everywhere. */
export async function synced(n: number) {
  const email = `recon.${n}.${crypto.randomUUID().slice(0, 6)}@example.com`;
  const id = await createCrmContact({ email, firstname: `Ada${n}`, lastname: "Lovelace" });
  await member(email, { FNAME: `Ada${n}`, LNAME: "Lovelace" });
  return { id, email };
}

export interface RunOptions {
  dryRun?: boolean;
  /** Makes a step's queue send throw: a crash after the step's D1 write, before its successor was sent. */
  failSends?: (message: SyncMessage) => boolean;
  /** Delivers these messages twice, at the same moment. */
  duplicate?: (message: SyncMessage) => boolean;
  /** Replaces parts of the consumer's deps: its clock, ALERT_WEBHOOK_URL, the alert endpoint. */
  deps?: Partial<ReturnType<typeof reconcileDeps>>;
}

/** Starts a run and delivers its messages (alerts included) until none is left. */
export async function runToEnd(options: RunOptions = {}) {
  const pending: SyncMessage[] = [];
  const sent: SyncMessage[] = [];
  const attempts = new Map<SyncMessage, number>();
  // Once a send "dies", the isolate is gone: nothing else of that delivery reaches the queue
  // (not the consumer's copy of a failed step either), so the message itself comes back.
  let dead = false;
  const queue = {
    async send(body: SyncMessage) {
      if (dead || options.failSends?.(body)) {
        dead = true;
        throw new Error("the isolate died before this send");
      }
      sent.push(body);
      pending.push(body);
      // The queue delivers at least once: this one twice.
      if (options.duplicate?.(body)) pending.push(body);
    },
    async sendBatch(messages: Iterable<MessageSendRequest<SyncMessage>>) {
      for (const m of messages) pending.push(m.body);
    },
  } as unknown as Queue<SyncMessage>;
  // Repairs are kept, for the test to deliver (or not).
  const repairs: EventMessage[] = [];
  const events = { sendBatch: async (messages: Iterable<MessageSendRequest<EventMessage>>) => void repairs.push(...[...messages].map((m) => m.body)) } as unknown as Queue;
  // Pages of 2 contacts and compare steps of 2 records: a few contacts make a run of many steps.
  const deps = { ...reconcileDeps(env), queue, events, sizes: { crm: 2, email: 2, compare: 2 }, ...options.deps };
  const started = await startSyncRun({ db: deps.db, config: deps.config, queue, now: deps.now }, { trigger: "manual", dryRun: options.dryRun ?? false });
  if (!started.ok) throw new Error(`not started: ${started.reason}`);
  let deliveries = 0;
  const redelivered: SyncMessage[] = [];
  while (pending.length > 0 && deliveries < 500) {
    const body = pending.shift()!;
    // Two copies of a message in a row are delivered at the same moment, to two invocations.
    const copies = pending[0] === body ? [body, pending.shift()!] : [body];
    deliveries += copies.length;
    dead = false;
    const attempt = (attempts.get(body) ?? 0) + 1;
    attempts.set(body, attempt);
    const decided = await Promise.all(
      copies.map(async (copy) => {
        const { batch, decisions } = recordingBatch("syncwire-sync", [copy], attempt);
        await consumeSync(batch, env, deps);
        return decisions;
      }),
    );
    // A message that was not acked comes back, as the queue would deliver it again.
    if (decided.some((d) => d.acks.length === 0)) {
      redelivered.push(body);
      pending.unshift(body);
    }
  }
  const run = await getRun(database(env.DB), started.run.id);
  return { run: toSyncRun(run!), deliveries, redelivered, sent, repairs };
}

/** Delivers events to the worker's consumer, and again those it asked to retry (as the queue would), until all are acked. */
export async function deliverUntilDone(messages: EventMessage[], rounds = 5): Promise<boolean> {
  let pending = messages;
  for (let attempt = 1; attempt <= rounds && pending.length > 0; attempt++) {
    const decided = await deliver(pending, { attempts: attempt });
    const retried = new Set(decided.retryMessages.map((r) => r.msgId));
    pending = pending.filter((_, i) => retried.has(decided.ids[i]!));
    if (pending.length > 0) await new Promise((r) => setTimeout(r, 1_100));
  }
  return pending.length === 0;
}
