/**
 * The nightly check (issue 9): 10,000 sandbox contacts seeded with 1% drift (a fifth of it each
 * kind), one run started over the API and timed by the run itself (started -> finished), its
 * repairs left to the events queue, then a second run that must find nothing. The worker runs in
 * sandbox mode, so HubSpot and Mailchimp are its own fakes (answered inside workerd, the fake
 * HubSpot at its documented 100 calls per 10 s), and the budget is the real default.
 * Reported: the run's duration, records compared per second (both sides' records), and per
 * 1,000 records the queue messages, D1 round trips and vendor calls the run made (its own audit
 * rows: every vendor call is audited).
 */
import { performance } from "node:perf_hooks";
import { startLocalWorker, type LocalWorker } from "../test/support/local-worker";
import { startCpuWindow, type CpuShare } from "./cpu";
import { track, waitFor } from "./harness";
import { meterDelta, readMeter } from "./worker-readings";

export interface ReconcileSettings {
  contacts: number;
  /** Share of the contacts that drift, split evenly over the five kinds. */
  driftShare: number;
  timeoutMs: number;
}

export interface ReconcileResult {
  settings: ReconcileSettings;
  seeded: { mismatches: number; byKind: Record<string, number>; seedMs: number };
  first: RunFigures;
  /** The next run, once the first one's repairs were done: what the repairs left. */
  second: RunFigures | null;
  repairs: { events: number; done: number; settleMs: number };
  /** Per 1,000 records compared in the first run. */
  perThousand: { syncMessages: number; d1RoundTrips: number; vendorCalls: number; hubspotCalls: number; mailchimpCalls: number };
  foundExactly: boolean;
  cpu: CpuShare;
}

interface RunFigures {
  id: string;
  status: string;
  durationMs: number;
  recordsCompared: { crm: number; email: number };
  recordsPerSecond: number;
  mismatches: { total: number; byKind: Record<string, number> };
  repairsQueued: number;
}

const ADMIN = "bench-admin-token";
const KINDS = ["missingInEmail", "missingInCrm", "emailDiffers", "namesDiffer", "subscriptionDiffers"] as const;
const KIND_OF: Record<(typeof KINDS)[number], string> = {
  missingInEmail: "missing_in_email",
  missingInCrm: "missing_in_crm",
  emailDiffers: "email_differs",
  namesDiffer: "names_differ",
  subscriptionDiffers: "subscription_differs",
};

async function api<T>(worker: LocalWorker, path: string, init: RequestInit = {}): Promise<{ status: number; body: T }> {
  const response = await fetch(`${worker.url}${path}`, { ...init, headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json", "accept-encoding": "identity", ...init.headers } });
  return { status: response.status, body: (await response.json()) as T };
}

async function runOnce(worker: LocalWorker, deadline: number): Promise<RunFigures> {
  const started = await api<{ id: string }>(worker, "/api/sync-runs", { method: "POST", body: "{}" });
  if (started.status !== 202) throw new Error(`POST /api/sync-runs answered ${started.status}: ${JSON.stringify(started.body)}`);
  let run: Omit<RunFigures, "recordsPerSecond"> | undefined;
  await waitFor(
    async () => {
      const page = await api<{ items: (Omit<RunFigures, "recordsPerSecond"> & { durationMs: number | null })[] }>(worker, "/api/sync-runs?limit=5");
      const found = page.body.items.find((r) => r.id === started.body.id);
      if (found && found.status !== "running") run = { ...found, durationMs: found.durationMs ?? 0 };
      return run !== undefined;
    },
    deadline,
    50,
  );
  if (!run) throw new Error(`run ${started.body.id} did not end in time`);
  const records = run.recordsCompared.crm + run.recordsCompared.email;
  return { ...run, recordsPerSecond: run.durationMs > 0 ? records / (run.durationMs / 1000) : 0 };
}

export async function runReconcile(meteredScriptPath: string, settings: ReconcileSettings): Promise<ReconcileResult> {
  const worker = await startLocalWorker({ vars: { SANDBOX: "true", ADMIN_TOKEN: ADMIN }, scriptPath: meteredScriptPath, assets: false });
  const close = track(() => worker.close());
  try {
    const deadline = performance.now() + settings.timeoutMs;
    const each = Math.round((settings.contacts * settings.driftShare) / KINDS.length);
    const seedStarted = performance.now();
    const seed = await fetch(`${worker.url}/sandbox/_sandbox/seed`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ contacts: settings.contacts, drift: Object.fromEntries(KINDS.map((k) => [k, each])), seed: 9 }),
    });
    const seeded = (await seed.json()) as { mismatches: { total: number; byKind: Record<string, number> } };
    if (seed.status !== 200) throw new Error(`seed answered ${seed.status}: ${JSON.stringify(seeded).slice(0, 300)}`);
    const seedMs = performance.now() - seedStarted;

    const before = await readMeter(worker);
    const endCpu = startCpuWindow();
    const first = await runOnce(worker, deadline);
    const cpu = endCpu();
    const meter = meterDelta(await readMeter(worker), before);
    const [calls] = await worker.query<{ hubspot: number; mailchimp: number }>(
      "SELECT sum(connector = 'hubspot') AS hubspot, sum(connector = 'mailchimp') AS mailchimp FROM audit_log WHERE action LIKE 'reconcile.%'",
    );

    // The repairs: change events on the events queue, done like any other.
    const settleStarted = performance.now();
    const repairCount = async () =>
      (await worker.query<{ n: number; done: number | null }>("SELECT count(*) AS n, sum(status = 'done') AS done FROM events WHERE type = 'reconcile.repair' AND dedupe_key LIKE ? || ':%'", first.id))[0]!;
    let repairs = await repairCount();
    await waitFor(async () => (repairs = await repairCount()).done === first.repairsQueued, deadline, 200);
    const settleMs = performance.now() - settleStarted;
    const second = repairs.done === first.repairsQueued ? await runOnce(worker, deadline) : null;

    const records = first.recordsCompared.crm + first.recordsCompared.email;
    const per = (n: number) => Math.round((n / Math.max(1, records)) * 1000 * 100) / 100;
    const syncMessages = meter.queueWrites["syncwire-sync"] ?? 0;
    const expectedByKind = Object.fromEntries(KINDS.map((k) => [KIND_OF[k], each]));
    return {
      settings,
      seeded: { mismatches: seeded.mismatches.total, byKind: seeded.mismatches.byKind, seedMs },
      first,
      second,
      repairs: { events: repairs.n, done: repairs.done ?? 0, settleMs },
      perThousand: {
        syncMessages: per(syncMessages),
        d1RoundTrips: per(meter.d1RoundTrips),
        vendorCalls: per((calls?.hubspot ?? 0) + (calls?.mailchimp ?? 0)),
        hubspotCalls: per(calls?.hubspot ?? 0),
        mailchimpCalls: per(calls?.mailchimp ?? 0),
      },
      foundExactly:
        first.status === "succeeded" &&
        JSON.stringify(Object.entries(first.mismatches.byKind).sort()) === JSON.stringify(Object.entries(expectedByKind).sort()) &&
        first.repairsQueued === first.mismatches.total &&
        second?.mismatches.total === 0,
      cpu,
    };
  } finally {
    await close();
  }
}
