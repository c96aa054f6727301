/**
 * Settling (issue 5): outcomes are written as messages finish, a failed shared write falls back
 * to one write per message, and an outbound call that returned always ends with its audit row.
 * D1 failures are injected by a stand-in for the D1 binding (test/support/d1.ts).
 */
import { env } from "cloudflare:workers";
import pLimit from "p-limit";
import { beforeEach, describe, expect, it } from "vitest";
import { createConnectors } from "../../src/connectors";
import { HttpClient } from "../../src/connectors/http-client";
import { createTransport } from "../../src/connectors/transport";
import { getConfig } from "../../src/config";
import { consumeEvents, pipelineDeps } from "../../src/pipeline/consumer";
import { database } from "../../src/pipeline/ledger";
import { refusingBatches, settlesActions } from "../support/d1";
import { createCrmContact, itemWrites, resetSandbox, vendorRequests } from "../support/sandbox";
import { actionRow, consume, contactCreated, recordingBatch } from "../support/messages";

beforeEach(resetSandbox);

/** Members written (a batch subscribe counts once per member). */
const puts = async () => itemWrites(await vendorRequests("mailchimp")).length;
/** The audit rows of calls made for these events: a bulk call's row names every event it served. */
const auditRows = async (eventIds: string[]) =>
  (
    await env.DB.prepare(
      `SELECT id, event_id, connector, status, served FROM audit_log
       WHERE event_id IN (SELECT value FROM json_each(?1)) OR EXISTS (SELECT 1 FROM json_each(audit_log.served) s WHERE s.value IN (SELECT value FROM json_each(?1)))`,
    )
      .bind(JSON.stringify(eventIds))
      .all()
  ).results;
/** Per-message settles, one call per contact: what these tests are about. */
const oneCallEach = () => ({ ...pipelineDeps(env), config: { ...pipelineDeps(env).config, bulkCalls: false } });

async function messages(n: number) {
  return Promise.all(Array.from({ length: n }, async () => contactCreated(await createCrmContact({ email: `settle.${crypto.randomUUID().slice(0, 8)}@example.com` }))));
}

describe("a settle that fails once", () => {
  it("repeats no vendor call and loses no audit row", async () => {
    const batch = await messages(3);
    let failures = 1;
    const d1 = refusingBatches(env.DB, (statements) => settlesActions(statements) && failures-- > 0);
    const result = await consume(batch, { ...pipelineDeps(env), db: database(d1) });
    expect(d1.refused).toBe(1);
    expect(result.explicitAcks.sort()).toEqual([...result.ids].sort());
    expect(await puts()).toBe(3);
    for (const m of batch) expect(await actionRow(m.event.id)).toMatchObject({ state: "done", attempts: 1 });
    // One bulk read and one bulk member write for the three, each with its row naming all three.
    const rows = await auditRows(batch.map((m) => m.event.id));
    expect(rows).toHaveLength(2);
    for (const row of rows) expect(JSON.parse(String(row.served)).sort()).toEqual(batch.map((m) => m.event.id).sort());
    // The queue may still deliver a copy: nothing is called again.
    const again = await consume(batch, pipelineDeps(env), { attempts: 2 });
    expect(again.explicitAcks).toHaveLength(3);
    expect(await puts()).toBe(3);
  });
});

describe("a message whose settle keeps failing", () => {
  it("is retried on its own with a delay, with its audit rows kept; the others are acked", async () => {
    const batch = await messages(3);
    const bad = batch[1]!.event.id;
    const d1 = refusingBatches(env.DB, (statements) => statements.some((s) => s.sql.startsWith("UPDATE actions SET state = ?, last_error") && s.params.includes(bad)));
    const result = await consume(batch, { ...pipelineDeps(env), db: database(d1) });
    expect(result.explicitAcks.sort()).toEqual([result.ids[0], result.ids[2]].sort());
    expect(result.retryMessages).toEqual([{ msgId: result.ids[1], delaySeconds: expect.any(Number) }]);
    expect(result.retryMessages[0]!.delaySeconds).toBeGreaterThanOrEqual(1);
    // The bulk read and write served all three: their rows are kept, whichever settle carried them.
    expect(await auditRows([bad])).toHaveLength(2);
    expect(await auditRows(batch.map((m) => m.event.id))).toHaveLength(2);
  });
});

describe("a slow entity group", () => {
  it("does not hold the acks of the others", async () => {
    const [slow, fast] = await messages(2);
    const slowContact = String(slow!.event.payload.objectId);
    const config = getConfig(env);
    const sandbox = createTransport(env, config);
    let fastAckedBeforeSlowAnswered: boolean | null = null;
    const { batch, decisions } = recordingBatch("syncwire-events", [slow, fast], 1);
    const base = oneCallEach();
    // The network: the slow contact's CRM read takes 1.5 s.
    const transport = async (request: Request) => {
      if (request.url.includes(`/contacts/${slowContact}?`)) {
        await new Promise((r) => setTimeout(r, 1_500));
        fastAckedBeforeSlowAnswered = decisions.acks.includes(batch.messages[1]!.id);
      }
      return sandbox(request);
    };
    await consumeEvents(batch, env, {
      ...base,
      connectorsFor: (context, audit, deadline) => createConnectors(config, new HttpClient({ transport, audit, redactor: base.redactor, context, deadline })),
    });
    expect(fastAckedBeforeSlowAnswered).toBe(true);
    expect(decisions.acks).toHaveLength(2);
  });
});

describe("messages that finish together", () => {
  it("settle in one D1 round trip, written as soon as the last of them is in", async () => {
    const batch = await messages(20);
    let settles = 0;
    const d1 = refusingBatches(env.DB, (statements) => {
      if (settlesActions(statements)) settles++;
      return false;
    });
    // The network holds every Mailchimp call until all 20 are waiting, then answers them together.
    const config = getConfig(env);
    const sandbox = createTransport(env, config);
    const held: (() => void)[] = [];
    const transport = async (request: Request) => {
      if (request.method === "PUT") {
        await new Promise<void>((release) => {
          held.push(release);
          if (held.length === batch.length) for (const r of held) r();
        });
      }
      return sandbox(request);
    };
    const base = oneCallEach();
    const result = await consume(batch, {
      ...base,
      db: database(d1),
      // A window far longer than the test may run: only the last outcome arriving can end the wait.
      settleWindowMs: 60_000,
      // A slot each, so all 20 calls can be held at once.
      connectorsFor: (context, audit, deadline) => createConnectors(config, new HttpClient({ transport, audit, redactor: base.redactor, context, deadline, limit: pLimit(20) })),
    });
    expect(result.explicitAcks).toHaveLength(20);
    expect(settles).toBe(1);
  });
});
