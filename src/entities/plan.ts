/**
 * What one entity group asks of its contact's Durable Object, and what it gets back: the
 * inputs (observed changes, a deletion, a person's choice on a conflict), the verdict on each,
 * and the writes that bring both systems to the winning values. Pure; the Durable Object
 * (entity-coordinator.do.ts) stores the state around these functions and serializes callers.
 */
import {
  confirm,
  dropExpired,
  expect,
  FIELDS,
  observe,
  pendingValue,
  reject,
  resolve,
  type ConflictPolicy,
  type EntityState,
  type Field,
  type Observation,
  type OpenConflict,
  type Verdict,
} from "./sync-state";

export type EntityInput =
  | { eventId: string; kind: "observe"; observations: Observation[] }
  /** The CRM contact was deleted at `at`. */
  | { eventId: string; kind: "delete"; at: number }
  | { eventId: string; kind: "resolve"; field: Field; conflictId: string; choose: "crm" | "email" };

export interface PlanOptions {
  policy: ConflictPolicy;
  /** Whether a CRM property receives the subscription (CRM_SUBSCRIPTION_PROPERTY is set). */
  crmTakesSubscription: boolean;
  now: number;
  /**
   * A person replayed an event: send every winning value to both systems again (idempotent
   * writes), and retry what a system refused before.
   */
  reassert?: boolean;
}

export type Values = Partial<Record<Field, string>>;

/** A write to the email platform: `patch` the member known at `address`, `upsert` it (PUT), or `archive` it. */
export interface EmailWrite {
  system: "email";
  op: "patch" | "upsert" | "archive";
  /** The member's address as the email platform holds it (for upsert: the address to create). */
  address: string;
  set: Values;
  /** Every known winning value, for an upsert that may create the member. */
  full: Values;
}

export interface CrmWrite {
  system: "crm";
  op: "patch";
  set: Values;
}

export type Write = EmailWrite | CrmWrite;

export interface Lifecycle {
  /** When the CRM contact was deleted; later inputs for this entity do nothing. */
  deletedAt: number | null;
  /** The email platform's member was archived after the deletion. */
  archived: boolean;
}

export interface Plan {
  verdicts: { eventId: string; verdicts: Verdict[] }[];
  writes: Write[];
  /** Every open conflict of the entity (recorded in D1 idempotently). */
  conflicts: OpenConflict[];
  /** Every address this contact is known by, for the email index. */
  emails: string[];
  deleted: boolean;
}

export function applyInputs(state: EntityState, life: Lifecycle, inputs: EntityInput[], options: PlanOptions, newId: () => string): Plan["verdicts"] {
  dropExpired(state, options.now);
  return inputs.map((input) => {
    switch (input.kind) {
      case "observe": {
        // Oldest first, so the same changes in any arrival order end in the same state.
        const sorted = [...input.observations].sort((a, b) => a.at - b.at);
        // After a deletion nothing is synced for this contact any more.
        const verdicts = sorted.map((o): Verdict => (life.deletedAt !== null ? "stale" : observe(state, o, options.policy, newId, options.now)));
        return { eventId: input.eventId, verdicts };
      }
      case "delete":
        life.deletedAt ??= input.at;
        return { eventId: input.eventId, verdicts: ["applied"] };
      case "resolve":
        return { eventId: input.eventId, verdicts: [resolve(state, input.field, input.conflictId, input.choose, options.now) ? "applied" : "stale"] };
    }
  });
}

/** The writes still needed, remembered as expected echoes before anyone sends them. */
export function planWrites(state: EntityState, life: Lifecycle, options: PlanOptions): Write[] {
  const memberAddress = state.fields.email.email?.value ?? null;
  if (life.deletedAt !== null) {
    return life.archived || memberAddress === null ? [] : [{ system: "email", op: "archive", address: memberAddress, set: {}, full: {} }];
  }
  if (options.reassert) for (const field of FIELDS) state.fields[field].rejected = {};
  const writes: Write[] = [];
  const crm = options.reassert ? desiredValues(state, options.crmTakesSubscription) : pendingValues(state, "crm", options.crmTakesSubscription);
  if (Object.keys(crm).length > 0) writes.push({ system: "crm", op: "patch", set: crm });

  const email = options.reassert ? desiredValues(state) : pendingValues(state, "email", true);
  if (Object.keys(email).length > 0) {
    const full = desiredValues(state);
    const address = memberAddress ?? full.email;
    // Without an address the member cannot be found or made; the CRM read that gives one comes first.
    // A PATCH never subscribes anyone (an unsubscribe we have not heard of would be reversed);
    // only a new member is made subscribed, by the upsert's `status_if_new`.
    if (memberAddress && email.subscription === "subscribed") delete email.subscription;
    // A reassert PUTs the member whole (it may be gone), unless its address is still to change.
    const op = memberAddress && !(options.reassert && memberAddress === full.email) ? "patch" : "upsert";
    if (address && Object.keys(email).length > 0) writes.push({ system: "email", op, address, set: email, full });
  }
  for (const w of writes) {
    for (const [field, value] of Object.entries(w.set) as [Field, string][]) expect(state, { system: w.system, field, value, plannedAt: options.now });
  }
  return writes;
}

function pendingValues(state: EntityState, system: "crm" | "email", withSubscription: boolean): Values {
  const out: Values = {};
  for (const field of FIELDS) {
    if (field === "subscription" && !withSubscription) continue;
    const value = pendingValue(state, field, system);
    if (value !== null) out[field] = value;
  }
  return out;
}

/** Every winning value (of fields not frozen by a conflict). */
function desiredValues(state: EntityState, withSubscription = true): Values {
  const out: Values = {};
  for (const field of FIELDS) {
    const f = state.fields[field];
    if (f.desired && !f.conflict && (field !== "subscription" || withSubscription)) out[field] = f.desired.value;
  }
  return out;
}

export type WriteOutcome = "ok" | "rejected" | "failed";

export interface WriteReport {
  write: Write;
  outcome: WriteOutcome;
  /** What the system answered it now holds, where that differs from what was sent. */
  holds?: Values;
}

/** What became of each planned write, reported when the entity group settles. */
export function applyOutcomes(state: EntityState, life: Lifecycle, results: WriteReport[], now: number): void {
  for (const { write, outcome, holds } of results) {
    if (write.system === "email" && write.op === "archive") {
      if (outcome === "ok") life.archived = true;
      continue;
    }
    if (outcome === "ok") {
      for (const [field, value] of Object.entries({ ...write.set, ...holds }) as [Field, string][]) confirm(state, write.system, field, value, now);
    } else if (outcome === "rejected") {
      for (const [field, value] of Object.entries(write.set) as [Field, string][]) reject(state, write.system, field, value);
    }
  }
}

export function openConflicts(state: EntityState): OpenConflict[] {
  return FIELDS.flatMap((f) => (state.fields[f].conflict ? [state.fields[f].conflict!] : []));
}

/** Every address the contact is known by: an email-platform event for any of them belongs to it. */
export function knownEmails(state: EntityState): string[] {
  const f = state.fields.email;
  return [...new Set([f.desired?.value, f.crm?.value, f.email?.value, f.synced?.value].filter((v): v is string => !!v))];
}
