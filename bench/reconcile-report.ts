/** The nightly check's lines of the bench table and its goals (issue 9's bar). */
import type { Goal } from "./report";
import type { ReconcileResult } from "./reconcile";

/** Issue 9's bar: records compared per second, both sides' records, locally. */
export const RECONCILE_GOAL = 2_000;

const fixed = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : "n/a");

export function reconcileGoals(r: ReconcileResult | null): Goal[] {
  if (r === null) return [{ name: "nightly check finds and repairs exactly the seeded drift", target: "run", value: "not run", pass: false }];
  return [
    {
      name: `nightly check, ${r.settings.contacts} sandbox contacts, records compared/s`,
      target: `>= ${RECONCILE_GOAL} records/s (both sides' records over the run's duration)`,
      value: `${fixed(r.first.recordsPerSecond)} (${r.first.recordsCompared.crm} + ${r.first.recordsCompared.email} in ${fixed(r.first.durationMs / 1000, 2)} s)`,
      pass: r.first.status === "succeeded" && r.first.recordsPerSecond >= RECONCILE_GOAL,
    },
    {
      name: "nightly check finds and repairs exactly the seeded drift",
      target: `${r.seeded.mismatches} mismatches (${fixed(r.settings.driftShare * 100, 1)}%), all repaired, the next run finds 0`,
      value: `found ${r.first.mismatches.total}, ${r.first.repairsQueued} repairs queued, ${r.repairs.done}/${r.repairs.events} done; next run ${r.second ? `${r.second.mismatches.total} mismatches` : "not run"}`,
      pass: r.foundExactly,
    },
  ];
}

export function renderReconcile(r: ReconcileResult): string {
  const p = r.perThousand;
  const kinds = Object.entries(r.first.mismatches.byKind).map(([k, n]) => `${k} ${n}`).join(", ");
  return [
    `NIGHTLY CHECK  ${r.settings.contacts} sandbox contacts seeded with ${fixed(r.settings.driftShare * 100, 1)}% drift (a fifth of each kind) in ${fixed(r.seeded.seedMs)} ms; one run over the API,`,
    `  HubSpot and Mailchimp are the worker's own fakes (the fake HubSpot at 100 calls per 10 s, the budget at its default); timed by the run (started -> finished)`,
    `  first run: ${r.first.status}, ${fixed(r.first.durationMs)} ms, ${r.first.recordsCompared.crm} CRM + ${r.first.recordsCompared.email} list records, ${fixed(r.first.recordsPerSecond)} records/s; found ${kinds}`,
    `  repairs: ${r.first.repairsQueued} change events, ${r.repairs.done} done ${fixed(r.repairs.settleMs / 1000, 1)} s after the run (HubSpot's window: the run's pages used it)`,
    `  next run: ${r.second ? `${r.second.status}, ${r.second.mismatches.total} mismatches, ${fixed(r.second.durationMs)} ms (waiting for HubSpot's window after the repairs)` : "not run"}`,
    `  per 1,000 records compared: ${p.syncMessages} sync queue messages, ${p.d1RoundTrips} D1 round trips (repairs running meanwhile included), ${p.vendorCalls} vendor calls (HubSpot ${p.hubspotCalls}, Mailchimp ${p.mailchimpCalls})`,
    `  workerd ${r.cpu.workerd ?? "n/a"} cores, bench node ${r.cpu.benchNode ?? "n/a"}, other processes ${r.cpu.otherProcesses ?? "n/a"}`,
  ].join("\n");
}
