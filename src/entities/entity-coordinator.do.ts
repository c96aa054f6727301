/**
 * One Durable Object per contact (named by its CRM id). It decides and remembers; it never
 * calls a vendor (a Durable Object is billed for wall time while it waits on one).
 *
 * An entity group of a queue batch costs it two requests: `plan` takes the group's inputs under
 * a lease and answers the writes; `settle` reports what became of them and ends the lease. The
 * lease serializes the contact across concurrent consumer invocations: a second caller gets
 * `busy` and retries its messages shortly, so two batches never plan the same contact at once.
 * A caller that dies mid-group loses its lease after `leaseMs`; the writes it may have sent
 * were remembered as expected echoes, and the next plan offers them again (they are idempotent).
 *
 * Every method runs without an `await`, so each is atomic against the object's other requests.
 */
import { DurableObject } from "cloudflare:workers";
import { applyInputs, FRESH_READ, applyOutcomes, knownEmails, openConflicts, planWrites, type EntityInput, type Lifecycle, type Plan, type PlanOptions, type WriteReport } from "./plan";
import { emptyField, emptyState, FIELDS, type EntityState, type Expectation, type Field, type FieldState, type Verdict } from "./sync-state";

export interface PlanRequest {
  token: string;
  leaseMs: number;
  inputs: EntityInput[];
  options: PlanOptions;
}

export type PlanResponse = { kind: "busy"; retryInMs: number } | ({ kind: "planned" } & Plan);

export interface SettleRequest {
  token: string;
  now: number;
  results: WriteReport[];
  options: PlanOptions;
}

/** `more`: what the outcomes taught leaves writes to make (an answer revealed an unsubscribe): plan again soon. */
export interface SettleResponse {
  more: boolean;
}

/** The stored state, for tests and inspection. */
export interface EntitySnapshot {
  state: EntityState;
  life: Lifecycle;
  lease: { token: string; until: number } | null;
}

type Lease = { token: string; until: number };

/** How long an event's verdicts are remembered: past RETRY_MAX_AGE's default day, with a margin. */
const APPLIED_KEPT_MS = 3 * 24 * 60 * 60_000;

/** The object's state as stored, kept in memory between requests (storage stays the truth). */
interface Loaded {
  state: EntityState;
  life: Lifecycle;
  lease: Lease | null;
  /** Events already judged here, with their verdicts. */
  applied: Map<string, { verdicts: Verdict[]; at: number }>;
}

const NO_LIFE: Lifecycle = { deletedAt: null, archived: false };

export class EntityCoordinator extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  /**
   * A copy of what storage holds, loaded on the first request of this instance and written
   * through on every change: this object is its storage's only writer, so the copy stays
   * exact, and a request costs the writes it makes and no reads. Dropped on any error.
   */
  private loaded: Loaded | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    // A new object (most of them, the first time a contact is seen) has nothing to load: it
    // starts from the empty state without reading four empty tables.
    const fresh = this.sql.exec<{ n: number }>(`SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'fields'`).one().n === 0;
    // Per field: the winning value, the last synced one, and what each system holds (value and
    // source time), as columns so the object's state reads like the domain; `state` is the
    // whole field as JSON, which is what is loaded. One exec: it runs on every start.
    this.sql.exec(`CREATE TABLE IF NOT EXISTS fields (
        field TEXT PRIMARY KEY, state TEXT NOT NULL,
        desired_value TEXT, desired_at INTEGER, desired_system TEXT, synced_value TEXT, synced_at INTEGER,
        crm_value TEXT, crm_at INTEGER, email_value TEXT, email_at INTEGER);
      CREATE TABLE IF NOT EXISTS expectations (
        system TEXT NOT NULL, field TEXT NOT NULL, value TEXT NOT NULL, planned_at INTEGER NOT NULL,
        PRIMARY KEY (system, field, value));
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
      CREATE TABLE IF NOT EXISTS applied (event_id TEXT PRIMARY KEY, verdicts TEXT NOT NULL, at INTEGER NOT NULL);`);
    if (fresh) this.loaded = { state: emptyState(), life: { ...NO_LIFE }, lease: null, applied: new Map() };
  }

  plan(request: PlanRequest): PlanResponse {
    return this.guarded((current) => {
      const now = request.options.now;
      const lease = current.lease;
      if (lease && lease.token !== request.token && lease.until > now) return { kind: "busy", retryInMs: lease.until - now };
      this.setLease(current, { token: request.token, until: now + request.leaseMs });

      const before = snapshot(current);
      const known = knownEmails(current.state, current.life, now);
      // An event is judged once: its retry (after a failed write, or a redelivery) gets the
      // first verdicts again and changes nothing, since the state it was judged against has
      // moved on since (our own writes among the changes). Reads are always fresh input.
      const seen = this.appliedBefore(current, request.inputs.filter((i) => i.eventId !== FRESH_READ).map((i) => i.eventId));
      const fresh = request.inputs.filter((i) => i.eventId === FRESH_READ || !seen.has(i.eventId));
      const judged = applyInputs(current.state, current.life, fresh, request.options, () => `cf_${crypto.randomUUID()}`);
      // A `foreign` event was not judged here: it goes to whoever has its address.
      this.recordApplied(current, judged.filter((v) => v.eventId !== FRESH_READ && !v.verdicts.includes("foreign")), now);
      const verdicts = request.inputs.map((i) => judged.find((v) => v.eventId === i.eventId) ?? { eventId: i.eventId, verdicts: seen.get(i.eventId) ?? [] });
      const writes = planWrites(current.state, current.life, request.options);
      this.save(current, before);
      const { state, life } = current;
      const emails = knownEmails(state, life, now);
      const emailsDropped = known.some((address) => !emails.includes(address));
      return { kind: "planned", verdicts, writes, conflicts: openConflicts(state), emails, emailsDropped, deleted: life.deletedAt !== null };
    });
  }

  settle(request: SettleRequest): SettleResponse {
    return this.guarded((current) => {
      const before = snapshot(current);
      // Applied even from a caller that lost its lease: a write that landed is a fact about
      // what the system holds, and ignoring it would leave this object believing otherwise.
      applyOutcomes(current.state, current.life, request.results, request.now);
      this.save(current, before);
      // Only the holder ends the lease; a caller that lost it (it overran) leaves the new one be.
      if (current.lease?.token === request.token) this.setLease(current, null);
      return { more: planWrites(current.state, current.life, { ...request.options, reassert: false }, true).length > 0 };
    });
  }

  snapshot(): EntitySnapshot {
    return this.guarded(({ state, life, lease }) => structuredClone({ state, life, lease }));
  }

  /** One transaction: a request's writes land together or not at all. */
  private guarded<T>(body: (current: Loaded) => T): T {
    try {
      return this.ctx.storage.transactionSync(() => body((this.loaded ??= this.load())));
    } catch (error) {
      // Storage rolled back, and the copy may be ahead of it: the next request reads storage again.
      this.loaded = null;
      throw error;
    }
  }

  private appliedBefore(current: Loaded, eventIds: string[]): Map<string, Verdict[]> {
    return new Map(eventIds.flatMap((id) => (current.applied.has(id) ? [[id, current.applied.get(id)!.verdicts] as const] : [])));
  }

  /** Kept as long as an event may still be retried or redelivered (RETRY_MAX_AGE and a margin). */
  private recordApplied(current: Loaded, judged: { eventId: string; verdicts: Verdict[] }[], now: number): void {
    for (const j of judged) {
      if (current.applied.has(j.eventId)) continue;
      this.sql.exec(`INSERT INTO applied (event_id, verdicts, at) VALUES (?, ?, ?) ON CONFLICT (event_id) DO NOTHING`, j.eventId, JSON.stringify(j.verdicts), now);
      current.applied.set(j.eventId, { verdicts: j.verdicts, at: now });
    }
    // Forgotten in one statement, and only when there is something to forget.
    const cutoff = now - APPLIED_KEPT_MS;
    if ([...current.applied.values()].some((a) => a.at < cutoff)) {
      this.sql.exec(`DELETE FROM applied WHERE at < ?`, cutoff);
      for (const [id, a] of current.applied) if (a.at < cutoff) current.applied.delete(id);
    }
  }

  private setLease(current: Loaded, lease: Lease | null): void {
    if (lease) this.setMeta("lease", JSON.stringify(lease));
    else this.sql.exec(`DELETE FROM meta WHERE key = 'lease'`);
    current.lease = lease;
  }

  private setMeta(key: string, value: string): void {
    this.sql.exec(`INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value);
  }

  private load(): Loaded {
    const state = emptyState();
    for (const row of this.sql.exec<{ field: string; state: string }>(`SELECT field, state FROM fields`)) {
      if ((FIELDS as readonly string[]).includes(row.field)) state.fields[row.field as Field] = { ...emptyField(), ...(JSON.parse(row.state) as FieldState) };
    }
    state.expectations = this.sql
      .exec<{ system: string; field: string; value: string; planned_at: number }>(`SELECT system, field, value, planned_at FROM expectations ORDER BY planned_at`)
      .toArray()
      .map((r) => ({ system: r.system, field: r.field, value: r.value, plannedAt: r.planned_at }) as Expectation);
    const meta = new Map(this.sql.exec<{ key: string; value: string }>(`SELECT key, value FROM meta`).toArray().map((r) => [r.key, r.value]));
    const life = meta.has("life") ? (JSON.parse(meta.get("life")!) as Lifecycle) : { ...NO_LIFE };
    const lease = meta.has("lease") ? (JSON.parse(meta.get("lease")!) as Lease) : null;
    const applied = new Map(
      this.sql.exec<{ event_id: string; verdicts: string; at: number }>(`SELECT event_id, verdicts, at FROM applied`).toArray().map((r) => [r.event_id, { verdicts: JSON.parse(r.verdicts) as Verdict[], at: r.at }]),
    );
    return { state, life, lease, applied };
  }

  /** Writes back only what changed: rows written are what a Durable Object bills. */
  private save(current: Loaded, before: Snapshot): void {
    const { state, life } = current;
    for (const field of FIELDS) {
      const text = JSON.stringify(state.fields[field]);
      if (text === before.fields[field]) continue;
      const f = state.fields[field];
      this.sql.exec(
        `INSERT INTO fields (field, state, desired_value, desired_at, desired_system, synced_value, synced_at, crm_value, crm_at, email_value, email_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (field) DO UPDATE SET state = excluded.state, desired_value = excluded.desired_value, desired_at = excluded.desired_at,
           desired_system = excluded.desired_system, synced_value = excluded.synced_value, synced_at = excluded.synced_at,
           crm_value = excluded.crm_value, crm_at = excluded.crm_at, email_value = excluded.email_value, email_at = excluded.email_at`,
        field, text, f.desired?.value ?? null, f.desired?.at ?? null, f.desired?.system ?? null, f.synced?.value ?? null, f.synced?.at ?? null,
        f.crm?.value ?? null, f.crm?.at ?? null, f.email?.value ?? null, f.email?.at ?? null,
      );
    }
    const key = (e: Expectation) => `${e.system}\u0000${e.field}\u0000${e.value}\u0000${e.plannedAt}`;
    const now = new Set(state.expectations.map(key));
    for (const e of before.expectations) {
      if (!now.has(key(e))) this.sql.exec(`DELETE FROM expectations WHERE system = ? AND field = ? AND value = ?`, e.system, e.field, e.value);
    }
    const had = new Set(before.expectations.map(key));
    for (const e of state.expectations) {
      if (!had.has(key(e))) {
        this.sql.exec(`INSERT INTO expectations (system, field, value, planned_at) VALUES (?, ?, ?, ?)
          ON CONFLICT (system, field, value) DO UPDATE SET planned_at = excluded.planned_at`, e.system, e.field, e.value, e.plannedAt);
      }
    }
    if (JSON.stringify(life) !== before.life) this.setMeta("life", JSON.stringify(life));
  }
}

interface Snapshot {
  fields: Record<string, string>;
  expectations: Expectation[];
  life: string;
}

function snapshot({ state, life }: Loaded): Snapshot {
  const fields: Record<string, string> = {};
  for (const field of FIELDS) fields[field] = JSON.stringify(state.fields[field]);
  return { fields, expectations: [...state.expectations], life: JSON.stringify(life) };
}
