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
import { applyInputs, applyOutcomes, knownEmails, openConflicts, planWrites, type EntityInput, type Lifecycle, type Plan, type PlanOptions, type WriteReport } from "./plan";
import { emptyField, emptyState, FIELDS, type EntityState, type Expectation, type Field, type FieldState } from "./sync-state";

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
}

/** The stored state, for tests and the operations API. */
export interface EntitySnapshot {
  state: EntityState;
  life: Lifecycle;
  lease: { token: string; until: number } | null;
}

export class EntityCoordinator extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    // Per field: the winning value, the last synced one, and what each system holds (value and
    // source time), stored as columns so the object's state reads like the domain.
    this.sql.exec(`CREATE TABLE IF NOT EXISTS fields (
      field TEXT PRIMARY KEY, state TEXT NOT NULL,
      desired_value TEXT, desired_at INTEGER, desired_system TEXT, synced_value TEXT, synced_at INTEGER,
      crm_value TEXT, crm_at INTEGER, email_value TEXT, email_at INTEGER)`);
    this.sql.exec(`CREATE TABLE IF NOT EXISTS expectations (
      system TEXT NOT NULL, field TEXT NOT NULL, value TEXT NOT NULL, planned_at INTEGER NOT NULL,
      PRIMARY KEY (system, field, value))`);
    this.sql.exec(`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)`);
  }

  plan(request: PlanRequest): PlanResponse {
    const now = request.options.now;
    const lease = this.lease();
    if (lease && lease.token !== request.token && lease.until > now) return { kind: "busy", retryInMs: lease.until - now };
    this.setMeta("lease", JSON.stringify({ token: request.token, until: now + request.leaseMs }));

    const { state, life } = this.load();
    const before = serialize(state);
    const verdicts = applyInputs(state, life, request.inputs, request.options, () => `cf_${crypto.randomUUID()}`);
    const writes = planWrites(state, life, request.options);
    this.save(state, life, before);
    return { kind: "planned", verdicts, writes, conflicts: openConflicts(state), emails: knownEmails(state), deleted: life.deletedAt !== null };
  }

  settle(request: SettleRequest): void {
    const { state, life } = this.load();
    const before = serialize(state);
    applyOutcomes(state, life, request.results, request.now);
    this.save(state, life, before);
    // Only the holder ends the lease; a caller that lost it (it overran) leaves the new one be.
    if (this.lease()?.token === request.token) this.sql.exec(`DELETE FROM meta WHERE key = 'lease'`);
  }

  snapshot(): EntitySnapshot {
    return { ...this.load(), lease: this.lease() };
  }

  private lease(): { token: string; until: number } | null {
    const raw = this.meta("lease");
    return raw ? (JSON.parse(raw) as { token: string; until: number }) : null;
  }

  private meta(key: string): string | null {
    const row = this.sql.exec<{ value: string | null }>(`SELECT value FROM meta WHERE key = ?`, key).toArray()[0];
    return row?.value ?? null;
  }

  private setMeta(key: string, value: string | null): void {
    this.sql.exec(`INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value);
  }

  private load(): { state: EntityState; life: Lifecycle } {
    const state = emptyState();
    for (const row of this.sql.exec<{ field: string; state: string }>(`SELECT field, state FROM fields`)) {
      if ((FIELDS as readonly string[]).includes(row.field)) state.fields[row.field as Field] = { ...emptyField(), ...(JSON.parse(row.state) as FieldState) };
    }
    state.expectations = this.sql
      .exec<{ system: string; field: string; value: string; planned_at: number }>(`SELECT system, field, value, planned_at FROM expectations ORDER BY planned_at`)
      .toArray()
      .map((r) => ({ system: r.system, field: r.field, value: r.value, plannedAt: r.planned_at }) as Expectation);
    const life = JSON.parse(this.meta("life") ?? "null") as Lifecycle | null;
    return { state, life: life ?? { deletedAt: null, archived: false } };
  }

  /** Writes back only the fields that changed: rows written are what a Durable Object bills. */
  private save(state: EntityState, life: Lifecycle, before: Record<string, string>): void {
    const after = serialize(state);
    for (const field of FIELDS) {
      if (after[field] === before[field]) continue;
      const f = state.fields[field];
      this.sql.exec(
        `INSERT INTO fields (field, state, desired_value, desired_at, desired_system, synced_value, synced_at, crm_value, crm_at, email_value, email_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (field) DO UPDATE SET state = excluded.state, desired_value = excluded.desired_value, desired_at = excluded.desired_at,
           desired_system = excluded.desired_system, synced_value = excluded.synced_value, synced_at = excluded.synced_at,
           crm_value = excluded.crm_value, crm_at = excluded.crm_at, email_value = excluded.email_value, email_at = excluded.email_at`,
        field, after[field]!, f.desired?.value ?? null, f.desired?.at ?? null, f.desired?.system ?? null, f.synced?.value ?? null, f.synced?.at ?? null,
        f.crm?.value ?? null, f.crm?.at ?? null, f.email?.value ?? null, f.email?.at ?? null,
      );
    }
    if (after.expectations !== before.expectations) {
      this.sql.exec(`DELETE FROM expectations`);
      for (const e of state.expectations) this.sql.exec(`INSERT INTO expectations (system, field, value, planned_at) VALUES (?, ?, ?, ?)`, e.system, e.field, e.value, e.plannedAt);
    }
    const lifeText = JSON.stringify(life);
    if (lifeText !== (this.meta("life") ?? JSON.stringify({ deletedAt: null, archived: false }))) this.setMeta("life", lifeText);
  }
}

function serialize(state: EntityState): Record<string, string> {
  const out: Record<string, string> = { expectations: JSON.stringify(state.expectations) };
  for (const field of FIELDS) out[field] = JSON.stringify(state.fields[field]);
  return out;
}
