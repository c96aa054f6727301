/**
 * The nightly check over seeded contacts (issue 9's tests): 250 contacts, several pages on each
 * side; with no drift, and with two of each kind, found exactly, repaired through the pipeline,
 * and gone on the next run; and the same through the cron and the real queues.
 */
import { createScheduledController } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import worker from "../../src/index";
import { deliverUntilDone, runToEnd } from "../support/reconcile";
import { HUBSPOT_TOKEN, resetSandbox, sandboxFetch, waitFor } from "../support/sandbox";

beforeEach(async () => {
  await resetSandbox();
  await env.DB.batch([env.DB.prepare("DELETE FROM sync_runs"), env.DB.prepare("DELETE FROM alerts")]);
});

interface Seeded {
  drift: {
    missingInEmail: { crmId: string }[];
    missingInCrm: { email: string }[];
    emailDiffers: { crmId: string }[];
    namesDiffer: { crmId: string; field: string; values: { crm: string; email: string }; winner: "crm" | "email" }[];
    subscriptionDiffers: { crmId: string; values: { crm: string; email: string }; winner: "crm" | "email" }[];
  };
}

async function seed(contacts: number, each: number): Promise<Seeded> {
  const drift = { missingInEmail: each, missingInCrm: each, emailDiffers: each, namesDiffer: each, subscriptionDiffers: each };
  const res = await exports.default.fetch(
    new Request("https://syncwire.test/sandbox/_sandbox/seed", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ contacts, drift, seed: 7 }) }),
  );
  if (res.status !== 200) throw new Error(`seed: ${res.status} ${await res.text()}`);
  return (await res.json()) as Seeded;
}

/** What a run must find, as entity keys and kinds. */
function expected(seeded: Seeded): string[] {
  const d = seeded.drift;
  return [
    ...d.missingInEmail.map((x) => `contact:${x.crmId} missing_in_email`),
    ...d.missingInCrm.map((x) => `email:${x.email} missing_in_crm`),
    ...d.emailDiffers.map((x) => `contact:${x.crmId} email_differs`),
    ...d.namesDiffer.map((x) => `contact:${x.crmId} names_differ`),
    ...d.subscriptionDiffers.map((x) => `contact:${x.crmId} subscription_differs`),
  ].sort();
}
const found = async (runId: string) =>
  (await env.DB.prepare("SELECT entity_key || ' ' || kind AS k FROM sync_mismatches WHERE run_id = ? ORDER BY k").bind(runId).all<{ k: string }>()).results.map((r) => r.k);

async function crmContact(id: string): Promise<Record<string, string | null>> {
  const res = await sandboxFetch(`/hubspot/crm/v3/objects/contacts/${id}?properties=firstname,lastname,syncwire_subscription`, { headers: { authorization: `Bearer ${HUBSPOT_TOKEN}` } });
  return ((await res.json()) as { properties: Record<string, string | null> }).properties;
}

// Pages of 100 on both sides (HubSpot's maximum; Mailchimp's is 1000): three pages each for 250.
const SIZES = { sizes: { crm: 100, email: 100, compare: 100 } };

describe("a run over 250 seeded contacts", () => {
  it("with no drift compares all of them and finds nothing, and alerts nothing", async () => {
    await seed(250, 0);
    const { run } = await runToEnd({ deps: SIZES });
    expect(run).toMatchObject({ status: "succeeded", recordsCompared: { crm: 250, email: 250 }, mismatches: { total: 0 }, repairsQueued: 0 });
    expect((await env.DB.prepare("SELECT count(*) AS n FROM alerts").first<{ n: number }>())!.n).toBe(0);
  });

  it("with two of each kind of drift finds exactly them, repairs them to the side that changed last, and the next run finds nothing", { timeout: 60_000 }, async () => {
    const seeded = await seed(250, 2);
    const first = await runToEnd({ deps: SIZES });
    expect(first.run).toMatchObject({ status: "succeeded", recordsCompared: { crm: 248, email: 248 }, mismatches: { total: 10 }, repairsQueued: 10 });
    expect(first.run.mismatches.byKind).toEqual({ missing_in_email: 2, missing_in_crm: 2, email_differs: 2, names_differ: 2, subscription_differs: 2 });
    expect(await found(first.run.id)).toEqual(expected(seeded));

    expect(await deliverUntilDone(first.repairs)).toBe(true);
    // Each differing field now holds, in the CRM, the value of the side that changed it last.
    for (const d of seeded.drift.namesDiffer) expect((await crmContact(d.crmId))[d.field]).toBe(d.values[d.winner]);
    for (const d of seeded.drift.subscriptionDiffers) expect((await crmContact(d.crmId)).syncwire_subscription).toBe(d.values[d.winner]);
    const second = await runToEnd({ deps: SIZES });
    expect(second.run).toMatchObject({ status: "succeeded", recordsCompared: { crm: 250, email: 250 }, mismatches: { total: 0 } });
  });
});

describe("a crash in the middle of a run over 250 seeded contacts", () => {
  it("after a page's records are written and before its next page is sent: the run resumes and the totals are exact", async () => {
    await seed(250, 2);
    let crashes = 0;
    // The second CRM page's send dies once (the isolate gone after the first page's D1 write), and so does the email side's.
    const { run, redelivered } = await runToEnd({ deps: SIZES, failSends: (m) => m.kind === "scan" && m.page !== "" && crashes++ < 2 });
    expect(redelivered.filter((m) => m.kind === "scan")).toHaveLength(2);
    expect(run).toMatchObject({ status: "succeeded", recordsCompared: { crm: 248, email: 248 }, mismatches: { total: 10 } });
  });
});

describe("the cron over seeded drift, through the real queues", () => {
  it("finds, repairs, and the next night finds nothing", { timeout: 90_000 }, async () => {
    await seed(250, 2);
    const ended = async (trigger: string, not?: string) =>
      waitFor(
        async () => {
          const row = await env.DB.prepare("SELECT id, status, mismatches, repairs_queued FROM sync_runs WHERE trigger = ? AND id <> ? ORDER BY started_at DESC LIMIT 1")
            .bind(trigger, not ?? "")
            .first<{ id: string; status: string; mismatches: number; repairs_queued: number }>();
          return row && row.status !== "running" ? row : undefined;
        },
        40_000,
        "the cron's run to end",
      );
    await worker.scheduled(createScheduledController({ scheduledTime: Date.now(), cron: "0 2 * * *" }), env);
    const first = await ended("cron");
    expect(first).toMatchObject({ status: "succeeded", mismatches: 10, repairs_queued: 10 });
    // The repairs go through the events queue like any change.
    await waitFor(
      async () => {
        // This run's repairs: their dedupe key is the run and the entity.
        const row = await env.DB.prepare("SELECT count(*) AS n, sum(status = 'done') AS done FROM events WHERE type = 'reconcile.repair' AND dedupe_key LIKE ? || ':%'")
          .bind(first.id)
          .first<{ n: number; done: number | null }>();
        return row!.n === 10 && row!.done === 10 ? true : undefined;
      },
      40_000,
      "the repairs to be done",
    );
    await worker.scheduled(createScheduledController({ scheduledTime: Date.now(), cron: "0 2 * * *" }), env);
    const second = await ended("cron", first.id);
    expect(second).toMatchObject({ status: "succeeded", mismatches: 0 });
  });
});
