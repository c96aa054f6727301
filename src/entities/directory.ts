/**
 * How the pipeline reaches contacts: the email index in D1 (which contact an address belongs
 * to), the conflicts table, and the contacts' Durable Objects.
 *
 * The index is read with the batch's claim (one more statement in the same D1 round trip) and
 * written with the settle of the group that learned an address, so it costs no round trip of
 * its own. An address missing from it is looked up in the CRM (flows/contact-sync), so an index
 * write that was lost only costs a read.
 */
import type { OpenConflict } from "./sync-state";
import type { EntityCoordinator, PlanRequest, PlanResponse, SettleRequest, SettleResponse } from "./entity-coordinator.do";

export const contactKey = (crmId: string): string => `contact:${crmId}`;
export const emailKey = (email: string): string => `email:${email}`;

/** What a group's plan taught us about its contact, written to D1 with the group's settle. */
export interface EntityRecord {
  contactKey: string;
  emails: string[];
  /** Of `emails`, those the index already maps to this contact (no write needed). */
  indexed?: string[];
  /** Index rows of this contact for addresses not in `emails` go (an address left the set). */
  prune?: boolean;
  /** Addresses that are not this contact's (any more): their rows for it go. */
  unindex?: string[];
  /** The CRM deleted the contact: its addresses are free for a new contact. */
  deleted: boolean;
  conflicts: OpenConflict[];
}

const SQL = {
  lookup: `SELECT email, contact_key FROM contact_emails
    WHERE email IN (SELECT value FROM json_each(?1)) OR contact_key IN (SELECT value FROM json_each(?2))`,
  index: `INSERT INTO contact_emails (email, contact_key, updated_at) VALUES (?, ?, ?)
    ON CONFLICT (email) DO UPDATE SET contact_key = excluded.contact_key, updated_at = excluded.updated_at
    WHERE contact_emails.contact_key <> excluded.contact_key`,
  unindexAll: `DELETE FROM contact_emails WHERE contact_key = ?`,
  unindex: `DELETE FROM contact_emails WHERE email = ? AND contact_key = ?`,
  prune: `DELETE FROM contact_emails WHERE contact_key = ?1 AND email NOT IN (SELECT value FROM json_each(?2))`,
  // A deleted contact's open conflicts have nothing left to decide.
  closeConflicts: `UPDATE conflicts SET status = 'resolved', resolved_by = 'syncwire: the CRM deleted the contact', resolved_at = ?2
    WHERE entity_key = ?1 AND status = 'open'`,
  // While open, a conflict keeps each side's newest value; a resolved one is never reopened.
  conflict: `INSERT INTO conflicts (id, entity_key, field, crm_value, crm_at, email_value, email_at, status, created_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, 'open', ?)
    ON CONFLICT (id) DO UPDATE SET crm_value = excluded.crm_value, crm_at = excluded.crm_at, email_value = excluded.email_value, email_at = excluded.email_at
    WHERE conflicts.status = 'open' AND (conflicts.crm_at IS NOT excluded.crm_at OR conflicts.email_at IS NOT excluded.email_at)`,
} as const;

/** One statement that reads the index for these addresses and contacts (run with the claim). */
export function lookupStatement(d1: D1Database, emails: string[], contacts: string[]): D1PreparedStatement {
  return d1.prepare(SQL.lookup).bind(JSON.stringify(emails), JSON.stringify(contacts));
}

export interface Directory {
  /** address -> contact key */
  byEmail: Map<string, string>;
  /** contact keys the index knows an address for */
  known: Set<string>;
}

export function readDirectory(result: D1Result | undefined): Directory {
  const byEmail = new Map<string, string>();
  const known = new Set<string>();
  for (const row of (result?.results ?? []) as { email: string; contact_key: string }[]) {
    byEmail.set(row.email, row.contact_key);
    known.add(row.contact_key);
  }
  return { byEmail, known };
}

export function recordStatements(d1: D1Database, record: EntityRecord, now: number): D1PreparedStatement[] {
  if (record.deleted) return [d1.prepare(SQL.unindexAll).bind(record.contactKey), d1.prepare(SQL.closeConflicts).bind(record.contactKey, now)];
  return [
    ...(record.unindex ?? []).map((email) => d1.prepare(SQL.unindex).bind(email, record.contactKey)),
    ...(record.prune ? [d1.prepare(SQL.prune).bind(record.contactKey, JSON.stringify(record.emails))] : []),
    ...record.emails.filter((email) => !record.indexed?.includes(email)).map((email) => d1.prepare(SQL.index).bind(email, record.contactKey, now)),
    ...record.conflicts.map((c) =>
      d1.prepare(SQL.conflict).bind(c.id, record.contactKey, c.field, c.crm?.value ?? null, c.crm?.at ?? null, c.email?.value ?? null, c.email?.at ?? null, c.openedAt),
    ),
  ];
}

/** The contacts' Durable Objects, behind the two calls a group makes. */
export interface Coordinators {
  plan(key: string, request: PlanRequest): Promise<PlanResponse>;
  settle(key: string, request: SettleRequest): Promise<SettleResponse>;
}

export function durableCoordinators(namespace: DurableObjectNamespace<EntityCoordinator>): Coordinators {
  return {
    plan: (key, request) => namespace.getByName(key).plan(request),
    settle: (key, request) => namespace.getByName(key).settle(request),
  };
}
