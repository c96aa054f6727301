/**
 * The steps of a nightly check run, one queue message each (messages.ts):
 * 1. scan: each side pages through its system (HubSpot `after`, Mailchimp `offset`), the two
 *    sides at once, and stages what it read in `sync_records`; a CRM contact is matched by the
 *    address it was last synced with (the live sync's email index), else by its own;
 * 2. compare: CRM records in key order against the member at their address, then the members
 *    no CRM record matched; each mismatch is recorded (`sync_mismatches`);
 * 3. finish: the counts and the status; then cleanup deletes the staged records.
 *
 * Each step writes its work, its counts and its marker (`sync_run_pages`) in one D1 batch; the
 * counts only where the marker was not there yet, so a step delivered twice, or retried after a
 * crash, never counts twice. The marker keeps the next step's cursor, and is flagged once that
 * step is on the queue: a redelivery before then sends it (without reading the page again), one
 * after does nothing.
 */
import { and, eq } from "drizzle-orm";
import { AuditBuffer, auditInserts } from "../audit/sink";
import type { Config } from "../config";
import type { Connectors } from "../connectors";
import type { CallContext } from "../connectors/http-client";
import { HUBSPOT_LIST_MAX } from "../connectors/hubspot";
import { MAILCHIMP_LIST_MAX } from "../connectors/mailchimp";
import { syncRunPages, syncRuns } from "../db/schema";
import { contactKey } from "../entities/directory";
import { crmProperties } from "../flows/contact-sync/observe";
import { runBatch, type Db } from "../pipeline/ledger";
import type { PayloadStore } from "../pipeline/payloads";
import { compare, finish, cleanup } from "./compare";
import { crmRecord, emailRecord } from "./records";
import type { SyncMessage } from "./messages";
import type { SyncRunRow } from "./runs";

export interface StepDeps {
  db: Db;
  config: Config;
  /** The SYNC queue. */
  queue: Queue<SyncMessage>;
  /** The events queue, and the store for an event too large for it: repairs go through the pipeline. */
  events: Queue;
  store: PayloadStore;
  connectorsFor(context: CallContext, audit: AuditBuffer, deadline: number): Connectors;
  now(): number;
  /** Records per page and per compare step: the vendors' maximums and COMPARE_CHUNK, smaller in tests. */
  sizes?: { crm: number; email: number; compare: number };
  /** How an alert reaches ALERT_WEBHOOK_URL (the platform's fetch unless given). */
  post?: (url: string, init: RequestInit) => Promise<Response>;
}

/** How long a step's vendor call may take (no ledger lease here: the step is redone if it dies). */
const STEP_DEADLINE_MS = 60_000;

export type Side = "crm" | "email";
/** What a step did: its staging or mismatch statements, how many records it read, and the next step's cursor (null: the last). */
export interface StepWork {
  statements: D1PreparedStatement[];
  records: number;
  next: string | null;
}

export async function runStep(deps: StepDeps, message: SyncMessage): Promise<void> {
  if (message.kind === "alert") throw new Error("an alert is delivered by the consumer, not as a step");
  // Whatever became of the run, its staged records go; its end is written only while it runs.
  if (message.kind === "cleanup") return cleanup(deps, message.runId);
  if (message.kind === "finish") return finish(deps, message.runId);
  const at = message.kind === "scan" ? { side: message.side, page: message.page } : { side: `compare-${message.side}`, page: message.after };
  const { run, marker } = await runAndMarker(deps.db, message.runId, at.side, at.page);
  // A message of a run that ended (failed, or finished by an earlier delivery) has nothing to do.
  if (!run || run.status !== "running") return;
  switch (message.kind) {
    case "scan":
      return step(deps, message.runId, at, marker, () => (message.side === "crm" ? scanCrm(deps, message.runId, message.page) : scanEmail(deps, message.runId, message.page)), {
        count: message.side,
        send: (next) => (next !== null ? send(deps, { kind: "scan", runId: message.runId, side: message.side, page: next }) : startCompare(deps, message.runId)),
      });
    case "compare":
      return step(deps, message.runId, at, marker, () => compare(deps, run, message.side, message.after), {
        send: (next) =>
          next !== null
            ? send(deps, { kind: "compare", runId: message.runId, side: message.side, after: next })
            : send(deps, message.side === "crm" ? { kind: "compare", runId: message.runId, side: "email", after: "" } : { kind: "finish", runId: message.runId }),
      });
  }
}

type Marker = { next: string | null; successorSent: boolean } | undefined;

/** The run and the step's marker, in one D1 round trip: every scan and compare step reads both. */
async function runAndMarker(db: Db, runId: string, side: string, page: string): Promise<{ run: SyncRunRow | undefined; marker: Marker }> {
  const [runs, markers] = await db.batch([
    db.select().from(syncRuns).where(eq(syncRuns.id, runId)),
    db
      .select({ next: syncRunPages.next, successorSent: syncRunPages.successorSent })
      .from(syncRunPages)
      .where(and(eq(syncRunPages.runId, runId), eq(syncRunPages.side, side), eq(syncRunPages.page, page))),
  ]);
  return { run: runs[0], marker: markers[0] };
}

/** Runs one step once: its work and marker in one batch (counted only the first time), then its successor, then the flag. */
async function step(deps: StepDeps, runId: string, { side, page }: { side: string; page: string }, marker: Marker, work: () => Promise<StepWork>, then: { count?: Side; send(next: string | null): Promise<void> }) {
  const d1 = deps.db.$client;
  if (marker?.successorSent) return;
  let next = marker ? marker.next : null;
  if (!marker) {
    const done = await work();
    next = done.next;
    const now = deps.now();
    const counted = then.count
      ? [
          d1
            .prepare(
              `UPDATE sync_runs SET ${then.count}_records = ${then.count}_records + ?1, ${then.count}_scanned = CASE WHEN ?2 = 1 THEN 1 ELSE ${then.count}_scanned END, updated_at = ?3
               WHERE id = ?4 AND status = 'running' AND NOT EXISTS (SELECT 1 FROM sync_run_pages WHERE run_id = ?4 AND side = ?5 AND page = ?6)`,
            )
            .bind(done.records, next === null ? 1 : 0, now, runId, side, page),
        ]
      : [d1.prepare(`UPDATE sync_runs SET updated_at = ? WHERE id = ?`).bind(now, runId)];
    const results = await runBatch(deps.db, [
      ...counted,
      // The marker kept answers its `next`: a delivery done twice at once (Mailchimp's offsets moving
      // between the two reads) follows the page the first one kept, never a chain of its own.
      d1
        .prepare(`INSERT INTO sync_run_pages (run_id, side, page, records, next, created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, side, page) DO UPDATE SET next = sync_run_pages.next RETURNING next`)
        .bind(runId, side, page, done.records, next, now),
      ...done.statements,
    ]);
    next = (results[counted.length]?.results[0] as { next: string | null } | undefined)?.next ?? next;
  }
  await then.send(next);
  await d1.prepare(`UPDATE sync_run_pages SET successor_sent = 1 WHERE run_id = ? AND side = ? AND page = ?`).bind(runId, side, page).run();
}

async function send(deps: StepDeps, message: SyncMessage): Promise<void> {
  await deps.queue.send(message, { contentType: "json" });
}

/**
 * A side's last page: once both sides are scanned, the comparison starts. Whichever side ends
 * last starts it; a redelivered last page starts it again (its first send may have been lost
 * with the isolate), and both last pages may, when they end at the same moment: a compare step
 * sent twice does its work once (its marker), so a second start costs a message, never a count.
 */
async function startCompare(deps: StepDeps, runId: string): Promise<void> {
  const ready = await deps.db.$client
    .prepare(`UPDATE sync_runs SET phase = 'compare', updated_at = ? WHERE id = ? AND status = 'running' AND phase <> 'done' AND crm_scanned = 1 AND email_scanned = 1 RETURNING id`)
    .bind(deps.now(), runId)
    .first();
  if (ready) await send(deps, { kind: "compare", runId, side: "crm", after: "" });
}

/** The vendor calls of one step, audited with its work. */
function vendorsFor(deps: StepDeps, action: string) {
  const audit = new AuditBuffer();
  const connectors = deps.connectorsFor({ eventId: null, entityKey: null, action, attempt: 1 }, audit, deps.now() + STEP_DEADLINE_MS);
  return { connectors, audit };
}

/** A page of CRM contacts, staged under the address each was last synced with. */
async function scanCrm(deps: StepDeps, runId: string, after: string): Promise<StepWork> {
  const { connectors, audit } = vendorsFor(deps, "reconcile.scan-crm");
  const crm = deps.config.crm;
  const page = await connectors.hubspot().listContacts({ limit: deps.sizes?.crm ?? HUBSPOT_LIST_MAX, after: after || null, properties: crmProperties(crm) });
  const now = deps.now();
  const read = page.results.flatMap((contact) => {
    const record = crmRecord(contact, crm, now);
    return record ? [{ key: contact.id, record }] : [];
  });
  const indexed = await indexedAddresses(deps.db, read.map((r) => contactKey(r.key)));
  const rows = read.map(({ key, record }) => ({ key, email: matchAddress(record.email, indexed.get(contactKey(key)) ?? []), data: JSON.stringify(record) }));
  return { statements: [...stage(deps.db, runId, "crm", rows), ...auditInserts(deps.db.$client, audit.drain())], records: read.length, next: page.after };
}

/**
 * A page of list members, staged under their address. Mailchimp pages by offset: a member
 * added or removed during the run shifts the later pages, so one may be read twice (staged once,
 * under its address) or missed, found by the next night's run; the CRM's cursor does not shift.
 */
async function scanEmail(deps: StepDeps, runId: string, page: string): Promise<StepWork> {
  const { connectors, audit } = vendorsFor(deps, "reconcile.scan-email");
  const offset = Number(page || "0");
  const { members, totalItems } = await connectors.mailchimp().listMembers({ count: deps.sizes?.email ?? MAILCHIMP_LIST_MAX, offset });
  const rows = members.map((member) => {
    const record = emailRecord(member);
    return { key: record.email, email: record.email, data: JSON.stringify(record) };
  });
  const next = members.length > 0 && offset + members.length < totalItems ? String(offset + members.length) : null;
  return { statements: [...stage(deps.db, runId, "email", rows), ...auditInserts(deps.db.$client, audit.drain())], records: rows.length, next };
}

/**
 * The run's rows of one side, in one statement (a JSON parameter, not 100 bound ones); only while
 * the run runs: a page read while the run failed and its cleanup ran would be left behind.
 */
function stage(db: Db, runId: string, side: Side, rows: { key: string; email: string; data: string }[]): D1PreparedStatement[] {
  if (rows.length === 0) return [];
  return [
    db.$client
      .prepare(
        `INSERT OR REPLACE INTO sync_records (run_id, side, key, email, data)
         SELECT ?1, ?2, json_extract(value, '$.key'), json_extract(value, '$.email'), json_extract(value, '$.data') FROM json_each(?3)
         WHERE EXISTS (SELECT 1 FROM sync_runs WHERE id = ?1 AND status = 'running')`,
      )
      .bind(runId, side, JSON.stringify(rows)),
  ];
}

/** The addresses the email index holds for each contact, newest first. */
async function indexedAddresses(db: Db, keys: string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  if (keys.length === 0) return out;
  const { results } = await db.$client
    .prepare(`SELECT email, contact_key FROM contact_emails WHERE contact_key IN (SELECT value FROM json_each(?)) ORDER BY updated_at DESC`)
    .bind(JSON.stringify(keys))
    .all<{ email: string; contact_key: string }>();
  for (const row of results) out.set(row.contact_key, [...(out.get(row.contact_key) ?? []), row.email]);
  return out;
}

/**
 * The address a CRM contact is matched by in the list: the one the live sync last synced it
 * with (the index), unless the index knows its current address too or nothing at all; so a
 * contact whose address changed in the CRM since is found under its old one, as `email_differs`.
 */
export function matchAddress(own: string, indexed: readonly string[]): string {
  return indexed.length === 0 || indexed.includes(own) ? own : indexed[0]!;
}
