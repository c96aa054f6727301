/** Every flow, in one list: routing is "which flows match this event". */
import type { Config } from "../config";
import type { InboundEvent } from "../ingest/event";
import { contactSync } from "./contact-sync";
import type { Flow, FlowAction } from "./types";

export const FLOWS: readonly Flow[] = [contactSync];

export interface RoutedAction {
  flow: string;
  action: FlowAction;
}

export function route(event: InboundEvent, config: Config, flows: readonly Flow[] = FLOWS): RoutedAction[] {
  return flows.filter((f) => f.matches(event, config)).flatMap((f) => f.actions.map((action) => ({ flow: f.name, action })));
}
