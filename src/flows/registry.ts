/** Every flow, in one list: routing is "which flows match this event". */
import type { InboundEvent } from "../ingest/event";
import { crmContactToEmail } from "./crm-contact-to-email";
import type { Flow, FlowAction } from "./types";

export const FLOWS: readonly Flow[] = [crmContactToEmail];

export interface RoutedAction {
  flow: string;
  action: FlowAction;
}

export function route(event: InboundEvent, flows: readonly Flow[] = FLOWS): RoutedAction[] {
  return flows.filter((f) => f.matches(event)).flatMap((f) => f.actions.map((action) => ({ flow: f.name, action })));
}

