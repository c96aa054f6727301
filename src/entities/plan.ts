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
  /** `address`: the email-platform address the event came under (it must be one of this contact's). */
  | { eventId: string; kind: "observe"; observations: Observation[]; address?: string }
  /** The CRM contact was deleted at `at`. */
  | { eventId: string; kind: "delete"; at: number }
  | { eventId: string; kind: "resolve"; field: Field; conflictId: string; choose: "crm" | "email" };

/** The input id of a CRM read made for this plan: fresh every time, never remembered as judged. */
export const FRESH_READ = "crm-read";

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

/** The contact's life beyond its fields: its deletion, and the addresses it has had. */
export interface Lifecycle {
  /** When the CRM contact was deleted; later inputs for this entity do nothing. */
  deletedAt: number | null;
  /** The email platform's member was archived after the deletion. */
  archived: boolean;
  /** Every address the contact had, with when it last had it (our clock). */
  addresses?: Record<string, number>;
}

/**
 * An address the contact left still belongs to it this long: events the email platform fired
 * under it before the change keep arriving (their echo of the change itself among them).
 * After that the address is free, and an event under it is looked up again.
 */
export const FORMER_ADDRESS_MS = 24 * 60 * 60_000;

export interface Plan {
  verdicts: { eventId: string; verdicts: Verdict[] }[];
  writes: Write[];
  /** Every open conflict of the entity (recorded in D1 idempotently). */
  conflicts: OpenConflict[];
  /** Every address this contact is known by (current and recent former ones), for the email index. */
  emails: string[];
  /** An address left the set (a day after the contact moved on): its index rows can go. */
  emailsDropped: boolean;
  deleted: boolean;
}

export function applyInputs(state: EntityState, life: Lifecycle, inputs: EntityInput[], options: PlanOptions, newId: () => string): Plan["verdicts"] {
  dropExpired(state, options.now);
  // Oldest first (a person's choice last), so the same changes in any arrival order end in the same state.
  const ordered = [...inputs].sort((a, b) => inputTime(a) - inputTime(b));
  const verdicts = new Map<EntityInput, Verdict[]>();
  for (const input of ordered) {
    switch (input.kind) {
      case "observe": {
        // An address the contact never had (or left long ago) now belongs to someone else.
        if (input.address !== undefined && !ownsAddress(state, life, input.address, options.now)) {
          verdicts.set(input, ["foreign"]);
          break;
        }
        const sorted = [...input.observations].sort((a, b) => a.at - b.at);
        // After a deletion nothing is synced for this contact any more.
        verdicts.set(input, sorted.map((o): Verdict => (life.deletedAt !== null ? "stale" : observe(state, o, options.policy, newId, options.now))));
        rememberAddresses(state, life, options.now);
        break;
      }
      case "delete":
        if (life.deletedAt !== null) {
          verdicts.set(input, ["stale"]);
          break;
        }
        life.deletedAt = input.at;
        // Nothing will be written for it any more: its conflicts have nothing left to decide.
        for (const field of FIELDS) state.fields[field].conflict = null;
        verdicts.set(input, ["applied"]);
        break;
      case "resolve":
        verdicts.set(input, [resolve(state, input.field, input.conflictId, input.choose) ? "applied" : "stale"]);
        break;
    }
  }
  return inputs.map((input) => ({ eventId: input.eventId, verdicts: verdicts.get(input) ?? [] }));
}

function inputTime(input: EntityInput): number {
  if (input.kind === "delete") return input.at;
  if (input.kind === "resolve") return Infinity;
  return Math.min(...input.observations.map((o) => o.at));
}

/** The contact's current addresses, as its fields say. */
function currentAddresses(state: EntityState): string[] {
  const f = state.fields.email;
  return [...new Set([f.desired?.value, f.crm?.value, f.email?.value].filter((v): v is string => !!v))];
}

function rememberAddresses(state: EntityState, life: Lifecycle, now: number): void {
  life.addresses ??= {};
  for (const address of currentAddresses(state)) life.addresses[address] = now;
}

function ownsAddress(state: EntityState, life: Lifecycle, address: string, now: number): boolean {
  const current = currentAddresses(state);
  // A contact that has no address yet cannot tell: the event that gives it one is welcome.
  if (current.length === 0 || current.includes(address)) return true;
  const last = life.addresses?.[address];
  return last !== undefined && now - last < FORMER_ADDRESS_MS;
}

/** Every address the contact is known by now: current ones and those left within FORMER_ADDRESS_MS. */
export function knownEmails(state: EntityState, life: Lifecycle, now: number): string[] {
  const former = Object.entries(life.addresses ?? {}).filter(([, last]) => now - last < FORMER_ADDRESS_MS).map(([address]) => address);
  return [...new Set([...currentAddresses(state), ...former])].sort();
}

/**
 * The writes still needed, remembered as expected echoes before anyone sends them (`dryRun`:
 * only whether any are needed, nothing remembered).
 */
export function planWrites(state: EntityState, life: Lifecycle, options: PlanOptions, dryRun = false): Write[] {
  const memberAddress = state.fields.email.email?.value ?? null;
  if (life.deletedAt !== null) {
    return life.archived || memberAddress === null ? [] : [{ system: "email", op: "archive", address: memberAddress, set: {}, full: {} }];
  }
  if (options.reassert && !dryRun) for (const field of FIELDS) state.fields[field].rejected = {};
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
  if (dryRun) return writes;
  for (const w of writes) {
    for (const [field, value] of Object.entries(w.set) as [Field, string][]) {
      // A value the system already holds (a reassert) changes nothing there, and no webhook
      // will report it: expecting one would swallow a person's later change to that value.
      if (state.fields[field][w.system]?.value !== value) expect(state, { system: w.system, field, value, plannedAt: options.now });
    }
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
      for (const [field, value] of Object.entries(write.set) as [Field, string][]) confirm(state, write.system, field, value, now);
      // Only the status is taken from the answer (other values a vendor may normalize, and
      // taking those would make a write that never settles): an upsert of a member who had
      // unsubscribed finds them so, and that unsubscribe wins like any other.
      if (write.system === "email" && holds?.subscription === "unsubscribed") {
        const f = state.fields.subscription;
        f.email = { value: "unsubscribed", at: Math.max(f.email?.at ?? 0, now) };
        if (f.desired?.value !== "unsubscribed") f.desired = { value: "unsubscribed", at: now, system: "email" };
      }
    } else if (outcome === "rejected") {
      for (const [field, value] of Object.entries(write.set) as [Field, string][]) reject(state, write.system, field, value);
    }
  }
}

export function openConflicts(state: EntityState): OpenConflict[] {
  return FIELDS.flatMap((f) => (state.fields[f].conflict ? [state.fields[f].conflict!] : []));
}

