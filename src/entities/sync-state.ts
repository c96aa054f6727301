/**
 * The two-way sync of one contact, as plain data and pure functions: what the entity's Durable
 * Object stores, how an observed change is judged (applied, stale, echo, unchanged, conflict)
 * and which writes bring both systems to the value that won.
 *
 * The sync is state-based, not a replay of operations: per field there is one winning value
 * (`desired`, with the source time of the change that won) and what each system is believed to
 * hold. A plan is the difference between the two, so a retried, reordered or repeated event
 * yields the same writes or none, and an outage simply leaves a difference to close later.
 *
 * Timestamps are the sources' own (HubSpot `occurredAt` in ms, Mailchimp `fired_at` in whole
 * seconds). Ties: between systems the CRM wins (it is the system of record, and Mailchimp's
 * seconds cannot order changes within one second); within one system the later arrival wins.
 */
export type System = "crm" | "email";
export const SYSTEMS: readonly System[] = ["crm", "email"];
export const other = (s: System): System => (s === "crm" ? "email" : "crm");

/** The synced fields. `subscription` is `subscribed` | `unsubscribed`; email addresses are lower-cased. */
export type Field = "email" | "firstname" | "lastname" | "subscription";
export const FIELDS: readonly Field[] = ["email", "firstname", "lastname", "subscription"];

export type ConflictPolicy = "latest-wins" | "escalate";

/** One system reported (or was read to hold) `value` for `field` at source time `at`. */
export interface Observation {
  system: System;
  field: Field;
  value: string;
  at: number;
}

export interface Versioned {
  value: string;
  at: number;
}

/** What a system holds; `writtenAt` (our clock) when it is a value we wrote and saw confirmed. */
export interface Held extends Versioned {
  writtenAt?: number;
}

export interface FieldState {
  /** The change that won, and the system it came from; what both systems should hold. */
  desired: (Versioned & { system: System }) | null;
  /** The last value both systems held at once. */
  synced: Versioned | null;
  /** What each system is believed to hold (observed, or written by us and confirmed). */
  crm: Held | null;
  email: Held | null;
  /** A value a system refused permanently: not written to it again until the desired value changes. */
  rejected: Partial<Record<System, string>>;
  /** An open conflict (escalate policy): the field is frozen until a person chooses. */
  conflict: OpenConflict | null;
}

export interface OpenConflict {
  id: string;
  field: Field;
  crm: Versioned | null;
  email: Versioned | null;
  openedAt: number;
}

/** A write Syncwire planned: remembered before it is sent, so the vendor's webhook reporting it back is an echo. */
export interface Expectation {
  system: System;
  field: Field;
  value: string;
  plannedAt: number;
}

export interface EntityState {
  fields: Record<Field, FieldState>;
  expectations: Expectation[];
}

/** `foreign`: the event came under an address that is not (or no longer) this contact's. */
export type Verdict = "applied" | "stale" | "echo" | "unchanged" | "conflict" | "superseded" | "foreign";

/**
 * A change reported for a time this close to (or before) our own confirmed write to that
 * system may have been overwritten by it: the system is then taken to hold our value, and if
 * the change wins it is written back (an idempotent write at worst).
 */
export const WRITE_SKEW_MS = 2_000;
/** How far a vendor's clock (and Mailchimp's whole seconds) may trail ours when matching an echo. */
export const ECHO_SKEW_MS = 5 * 60_000;
/** How long after we planned a write its echo's source time may be (the call ends within its lease, plus clock skew). */
export const ECHO_WINDOW_MS = 5 * 60_000;
/** An expected echo that never came is forgotten after this (covers a day of queue backlog). */
export const ECHO_TTL_MS = 24 * 60 * 60_000;

export function emptyField(): FieldState {
  return { desired: null, synced: null, crm: null, email: null, rejected: {}, conflict: null };
}

export function emptyState(): EntityState {
  return { fields: { email: emptyField(), firstname: emptyField(), lastname: emptyField(), subscription: emptyField() }, expectations: [] };
}

/**
 * Judges one observation and updates `state` in place. `openConflict` names a new conflict
 * (escalate policy) and is called only when one is opened.
 */
export function observe(state: EntityState, o: Observation, policy: ConflictPolicy, openConflict: () => string, now: number): Verdict {
  const f = state.fields[o.field];
  const seen = f[o.system];

  // Our own write reported back (a change the system made within moments of our write, to
  // the value we wrote): the system holds it for sure. Spent on its first match.
  const echo = state.expectations.findIndex(
    (e) => e.system === o.system && e.field === o.field && e.value === o.value && o.at >= e.plannedAt - ECHO_SKEW_MS && o.at <= e.plannedAt + ECHO_WINDOW_MS,
  );
  if (echo >= 0) {
    const [expected] = state.expectations.splice(echo, 1);
    // The echo of an earlier write of ours, after a later one was confirmed there (or an echo
    // older than what is known of the system) tells nothing new about what it holds.
    const replaced = seen?.writtenAt !== undefined && seen.value !== o.value && seen.writtenAt >= expected!.plannedAt;
    if (!replaced && (!seen || o.at >= seen.at)) f[o.system] = { value: o.value, at: o.at };
    settleSynced(f);
    return "echo";
  }
  if (seen && o.at < seen.at) return "stale";
  if (seen?.value === o.value) {
    seen.at = Math.max(seen.at, o.at);
    return "unchanged";
  }

  if (f.conflict) {
    // Frozen: keep the newest value of each side, for the person who resolves it.
    hold(f, o);
    if (o.at >= (f.conflict[o.system]?.at ?? -Infinity)) f.conflict[o.system] = { value: o.value, at: o.at };
    return "conflict";
  }

  const d = f.desired;
  // The system reports the value that already won: it agrees, whatever the times.
  if (d?.value === o.value) {
    hold(f, o);
    settleSynced(f);
    return "unchanged";
  }
  // Both systems changed the field since the last sync: the other one's change has not reached
  // this system yet, or it reached it by our write only after this change was made there
  // (the change's webhook arrives after our write overwrote it).
  const fromOther = d !== null && d.system === other(o.system);
  const overwritten = seen?.writtenAt !== undefined && seen.writtenAt >= o.at - WRITE_SKEW_MS;
  const concurrent = fromOther && ((d.value !== f.synced?.value && o.at > (f.synced?.at ?? -Infinity)) || overwritten);
  if (concurrent && policy === "escalate") {
    hold(f, o);
    const mine = { value: o.value, at: o.at };
    const theirs = f[other(o.system)];
    f.conflict = { id: openConflict(), field: o.field, crm: o.system === "crm" ? mine : theirs, email: o.system === "email" ? mine : theirs, openedAt: now };
    return "conflict";
  }
  // An unsubscribe wins over the CRM's "subscribed" whenever it comes: that value is mostly
  // implied (a contact that was never lost), and its time is only the contact's last change.
  const unsubscribe = o.field === "subscription" && o.value === "unsubscribed" && d?.value === "subscribed" && d.system === "crm";
  if (d && !unsubscribe && (o.at < d.at || (o.at === d.at && o.system === "email" && d.system === "crm"))) {
    // Older than what was applied (or a cross-system tie, which the CRM wins). The system's
    // value is still recorded: it will be overwritten with the winner.
    hold(f, o);
    return concurrent ? "superseded" : "stale";
  }
  hold(f, o);
  f.desired = { value: o.value, at: o.at, system: o.system };
  settleSynced(f);
  return "applied";
}

/**
 * A person chose a side of an open conflict: that side's newest value wins. It counts as
 * newer than both sides' changes (in their own clocks), so a later change in either system
 * still wins over it.
 */
export function resolve(state: EntityState, field: Field, conflictId: string, choose: System): boolean {
  const f = state.fields[field];
  const conflict = f.conflict;
  if (conflict?.id !== conflictId) return false;
  const chosen = conflict[choose];
  f.conflict = null;
  if (chosen) f.desired = { value: chosen.value, at: Math.max(conflict.crm?.at ?? 0, conflict.email?.at ?? 0) + 1, system: choose };
  settleSynced(f);
  return true;
}

/** Records what `o` says its system holds, unless our own later write replaced it there. */
function hold(f: FieldState, o: Observation): void {
  const seen = f[o.system];
  if (seen && o.at < seen.at) return;
  if (seen?.writtenAt !== undefined && seen.writtenAt >= o.at - WRITE_SKEW_MS && seen.value !== o.value) return;
  f[o.system] = { value: o.value, at: o.at };
}

/** When both systems hold the winning value, it is the synced value. */
function settleSynced(f: FieldState): void {
  const d = f.desired;
  if (d && f.crm?.value === d.value && f.email?.value === d.value) f.synced = { value: d.value, at: d.at };
}

/** The value `system` still has to be given for `field`, or null when it holds it (or must not get it). */
export function pendingValue(state: EntityState, field: Field, system: System): string | null {
  const f = state.fields[field];
  const d = f.desired;
  if (!d || f.conflict || f[system]?.value === d.value || f.rejected[system] === d.value) return null;
  // An unsubscribe in the email platform is never reversed by the sync (CONTRACT 6).
  if (field === "subscription" && system === "email" && d.value === "subscribed" && f.email?.value === "unsubscribed") return null;
  return d.value;
}

/** Records that `system` now holds `value` for `field` (our write succeeded). */
export function confirm(state: EntityState, system: System, field: Field, value: string, now: number): void {
  const f = state.fields[field];
  // `at` stays in the system's own clock (its last reported change): only its own later
  // reports are compared with it. When our write landed is `writtenAt`, in ours.
  f[system] = { value, at: f[system]?.at ?? 0, writtenAt: now };
  settleSynced(f);
}

/** Records that `system` refused `value` for good (a 4xx): the plan stops offering it. */
export function reject(state: EntityState, system: System, field: Field, value: string): void {
  state.fields[field].rejected[system] = value;
}

/** Remembers a write before it is sent; one expectation per system, field and value. */
export function expect(state: EntityState, e: Expectation): void {
  state.expectations = state.expectations.filter((x) => !(x.system === e.system && x.field === e.field && x.value === e.value));
  state.expectations.push(e);
}

export function dropExpired(state: EntityState, now: number): void {
  state.expectations = state.expectations.filter((e) => now - e.plannedAt < ECHO_TTL_MS);
}
