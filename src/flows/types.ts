/**
 * A flow turns one kind of inbound event into independent actions. Each action is recorded
 * in the ledger on its own and retried on its own (CONTRACT 4.4), so an action must be safe to
 * run again after a crash: read current state, then write it idempotently.
 */
import type { Config } from "../config";
import type { Connectors } from "../connectors";
import type { InboundEvent } from "../ingest/event";

export interface ActionContext {
  event: InboundEvent;
  attempt: number;
  config: Config;
  connectors: Connectors;
}

export interface FlowAction {
  /** Unique across flows, stable forever: it is the ledger key. */
  name: string;
  run(ctx: ActionContext): Promise<void>;
}

export interface Flow {
  name: string;
  matches(event: InboundEvent): boolean;
  actions: FlowAction[];
}
