/** Every flow, in one list: routing is "which flows match this event". */
import type { Config } from "../config";
import type { InboundEvent } from "../ingest/event";
import { contactSync } from "./contact-sync";
import { orderFanout } from "./order-fanout";
import type { Flow, FlowAction } from "./types";

export const FLOWS: readonly Flow[] = [contactSync, orderFanout];

export interface RoutedAction {
  flow: string;
  action: FlowAction;
}

/** Whether one of the flow's triggers takes the event. */
export function triggers(flow: Flow, event: InboundEvent, config: Config): boolean {
  return flow.triggers.some((t) => t.source === event.source && t.types.includes(event.type) && (t.when?.(event, config) ?? true));
}

export function route(event: InboundEvent, config: Config, flows: readonly Flow[] = FLOWS): RoutedAction[] {
  return flows.filter((f) => triggers(f, event, config)).flatMap((f) => f.actions.map((action) => ({ flow: f.name, action })));
}
