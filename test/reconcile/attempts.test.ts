/**
 * How a nightly-check step counts its failures (src/reconcile/consumer.ts): waits for a vendor's
 * capacity are no failure, however many; the queue's own attempt count includes them, so the
 * step carries its failures in the message. A long HubSpot pause followed by one 503 must not
 * fail the run; six real failures must.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { durableBudgets } from "../../src/budgets/apis";
import { getConfig } from "../../src/config";
import { consumeSync, MAX_STEP_ATTEMPTS, reconcileDeps, REQUEUE_AT_ATTEMPT } from "../../src/reconcile/consumer";
import type { SyncMessage } from "../../src/reconcile/messages";
import { startSyncRun } from "../../src/reconcile/start";
import { recordingBatch } from "../support/messages";
import { synced } from "../support/reconcile";
import { resetBudgets, resetSandbox, setFaults } from "../support/sandbox";

beforeEach(async () => {
  await resetSandbox();
  await env.DB.prepare("DELETE FROM sync_runs").run();
});

/** A started run and its consumer's deps, with a queue that keeps what the consumer sends. */
async function started() {
  await synced(0);
  const sent: { body: SyncMessage; delaySeconds?: number }[] = [];
  const queue = {
    async send(body: SyncMessage, options?: QueueSendOptions) {
      sent.push({ body, ...(options?.delaySeconds === undefined ? {} : { delaySeconds: options.delaySeconds }) });
    },
    async sendBatch(messages: Iterable<MessageSendRequest<SyncMessage>>) {
      for (const m of messages) sent.push({ body: m.body });
    },
  } as unknown as Queue<SyncMessage>;
  const deps = { ...reconcileDeps(env), queue, events: { sendBatch: async () => undefined } as unknown as Queue, sizes: { crm: 2, email: 2, compare: 2 } };
  const run = await startSyncRun({ db: deps.db, config: deps.config, queue, now: deps.now }, { trigger: "manual", dryRun: true });
  if (!run.ok) throw new Error(`not started: ${run.reason}`);
  const scan = sent.find((s) => s.body.kind === "scan" && s.body.side === "crm")!.body as Extract<SyncMessage, { kind: "scan" }>;
  sent.length = 0;
  const deliver = async (body: SyncMessage, attempts: number) => {
    const { batch, decisions } = recordingBatch("syncwire-sync", [body], attempts);
    await consumeSync(batch, env, deps);
    return decisions;
  };
  const status = async () => (await env.DB.prepare("SELECT status FROM sync_runs WHERE id = ?").bind(run.run.id).first<{ status: string }>())?.status;
  return { runId: run.run.id, scan, sent, deliver, status };
}

/** HubSpot's shared budget paused, as after a 429 with Retry-After: every HubSpot call finds no capacity. */
async function pauseHubSpot(ms: number) {
  await durableBudgets(env.BUDGET, getConfig(env)).hubspot!.backOff(ms, Date.now());
}

describe("a nightly-check step's attempts", () => {
  it("waits for capacity without counting it, and past attempt 8 waits in a fresh copy", async () => {
    const { scan, sent, deliver, status } = await started();
    await pauseHubSpot(120_000);
    const early = await deliver(scan, REQUEUE_AT_ATTEMPT - 1);
    expect(early.acks).toEqual([]);
    expect(early.retries).toEqual([{ msgId: expect.any(String), delaySeconds: expect.toSatisfy((s: number) => s >= 100 && s <= 120) }]);
    const late = await deliver(scan, REQUEUE_AT_ATTEMPT);
    expect(late.acks).toHaveLength(1);
    // The copy is the same step with its failures unchanged (none), delayed by the pause.
    expect(sent).toEqual([{ body: scan, delaySeconds: expect.toSatisfy((s: number) => s >= 100 && s <= 120) }]);
    expect(await status()).toBe("running");
  });

  it("after many capacity waits, one 503 is one failure: retried in a copy, the run goes on", async () => {
    const { runId, scan, sent, deliver, status } = await started();
    await resetBudgets();
    await setFaults("hubspot", { failNext: { count: 1, status: 503 } });
    // The queue says attempt 9: eight capacity waits came before. Only the failure counts.
    const decided = await deliver(scan, REQUEUE_AT_ATTEMPT + 1);
    expect(decided.acks).toHaveLength(1);
    expect(sent).toEqual([{ body: { ...scan, failures: 1 }, delaySeconds: expect.any(Number) }]);
    expect(await status()).toBe("running");
    // The copy, delivered, does the page: acked, nothing more to retry.
    sent.length = 0;
    const next = await deliver({ ...scan, failures: 1 }, 1);
    expect(next).toEqual({ acks: [expect.any(String)], retries: [] });
    expect(sent.filter((s) => "failures" in s.body)).toEqual([]);
    expect(await env.DB.prepare("SELECT count(*) AS n FROM sync_records WHERE run_id = ?").bind(runId).first<{ n: number }>()).toEqual({ n: 1 });
  });

  it(`fails the run at the step's ${MAX_STEP_ATTEMPTS}th failure, whatever the queue's attempt count`, async () => {
    const { scan, sent, deliver, status } = await started();
    await setFaults("hubspot", { failNext: { count: 1, status: 503 } });
    await deliver({ ...scan, failures: MAX_STEP_ATTEMPTS - 1 }, 1);
    expect(await status()).toBe("failed");
    expect(sent.map((s) => s.body.kind)).toEqual(["cleanup"]);
  });
});
