/**
 * A flow turns one kind of inbound event into independent actions. Each action is recorded
 * in the ledger on its own and retried on its own (CONTRACT 4.4), so an action must be safe to
 * run again after a crash: read current state, then write it idempotently.
 *
 * An action is either per event (`run`), or per entity (`runGroup`): the due attempts of every
 * message of one entity group in a queue batch run together, so an entity's changes are decided
 * in one place, in order, and written once (the contact sync through its Durable Object).
 */
import type { Config } from "../config";
import type { Connectors } from "../connectors";
import type { ActionFailure } from "../connectors/errors";
import type { Coordinators, EntityRecord } from "../entities/directory";
import type { EventSource, InboundEvent } from "../ingest/event";
import type { BulkCalls } from "../pipeline/bulk";
import type { Links } from "../pipeline/effects";

export interface ActionContext {
  event: InboundEvent;
  attempt: number;
  config: Config;
  connectors: Connectors;
  /** Ids made in one system for an entity of another, kept for good (pipeline/effects.ts). */
  links: Links;
}

/**
 * How often an action's effect may happen:
 * - `event`: once per event (the ledger's own guarantee: a done action never runs again);
 * - `entity-ever`: once per entity, ever (a welcome email): the first event of the entity to run
 *   it owns it, and every later event's action is done at once, without a call;
 * - `entity`: per entity group of a queue batch, through its Durable Object (runGroup).
 */
export type ActionScope = "event" | "entity-ever" | "entity";

export interface EventAction {
  /** Unique across flows, stable forever: it is the ledger key. */
  name: string;
  scope: "event" | "entity-ever";
  /** What the action returns is its ledger note (what it did), or nothing. */
  run(ctx: ActionContext): Promise<string | void>;
}

export interface GroupContext {
  /** The group's entity: `contact:<crm id>`, or `email:<address>` when no contact is known for it yet. */
  entityKey: string;
  /** The email index knows an address for this contact. */
  known: boolean;
  /** The group's messages due for this action, oldest source time first. */
  items: { event: InboundEvent; attempt: number; replay: boolean }[];
  config: Config;
  /** Single calls, audited as this group's. */
  connectors: Connectors;
  /** The batch's bulk lanes (pipeline/bulk.ts): calls shared with the batch's other groups. */
  bulk: BulkCalls;
  coordinators: Coordinators;
  /** A conflict's state in D1: the side chosen, `open`, or null when there is no such conflict. */
  conflictResolution(id: string): Promise<"crm" | "email" | "open" | null>;
  /** Owns the entity's lease for this group. */
  token: string;
  leaseMs: number;
  now(): number;
}

export type GroupOutcome =
  /**
   * Every item is done (`notes` says what each one did: `applied`, `stale`, `echo`, …), but
   * those in `again`, which come back shortly to be planned once more.
   */
  | { kind: "done"; notes: Map<string, string>; record: EntityRecord | null; again?: string[] }
  /** Another consumer invocation holds the entity: every item waits and comes back shortly. */
  | { kind: "busy"; retryInMs: number }
  /** A write failed: every item shares the failure (its retry plans the entity again). */
  | { kind: "failed"; failure: ActionFailure; record: EntityRecord | null };

export interface EntityAction {
  name: string;
  scope: "entity";
  runGroup(ctx: GroupContext): Promise<GroupOutcome>;
}

export type FlowAction = EventAction | EntityAction;

export const isEntityAction = (action: FlowAction): action is EntityAction => action.scope === "entity";

/** What starts a flow: events of one source and of these types, when `when` agrees. */
export interface Trigger {
  source: EventSource;
  types: readonly string[];
  when?(event: InboundEvent, config: Config): boolean;
}

/**
 * A flow as data: its triggers, and its actions, each recorded and retried on its own. The
 * event's entity key (`customer:<id>`, `contact:<id>`) is set at ingest by its source's parser.
 * Adding a flow is one module exporting a Flow, plus its line in registry.ts.
 */
export interface Flow {
  name: string;
  triggers: readonly Trigger[];
  actions: readonly FlowAction[];
}
