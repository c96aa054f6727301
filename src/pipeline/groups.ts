/**
 * Per-entity actions: the due attempts of one action for every message of an entity group run
 * together, once (flows/types.ts `runGroup`), and the outcome is handed back to each message as
 * its own ledger update. The group's audit rows and what it learned about its entity are
 * written with the settle of its first message.
 */
import { AuditBuffer } from "../audit/sink";
import { ActionFailure } from "../connectors/errors";
import type { Directory } from "../entities/directory";
import { isEntityAction, type EntityAction, type GroupOutcome } from "../flows/types";
import type { RoutedAction } from "../flows/registry";
import type { BulkScope } from "./bulk";
import { isCapacityFailure } from "../budgets/gate";
import { capacityWait, done, failed, givenBack, type AttemptResult } from "./attempts";
import { LEASE_MARGIN_MS, LEASE_MS, type Claim } from "./ledger";
import type { EventMessage } from "./message";
import type { PipelineDeps } from "./process";

/** A busy entity's messages come back after this long at least (and at most BUSY_MAX_MS). */
const BUSY_MIN_MS = 1_000;
const BUSY_MAX_MS = 5_000;
/** An item its group wants planned once more (an answer revealed more to write, an address moved) comes back after this. */
const AGAIN_MS = 1_000;

export interface GroupMember {
  index: number;
  message: EventMessage;
  routed: RoutedAction[];
  claim: Claim;
}

/** Runs every per-entity action due in the group; the results by member index, then action name. */
export async function runEntityActions(deps: PipelineDeps, groupKey: string, directory: Directory, members: GroupMember[], scope: BulkScope): Promise<Map<number, Map<string, AttemptResult>>> {
  const results = new Map<number, Map<string, AttemptResult>>();
  const actions = new Map<string, EntityAction>();
  for (const m of members) for (const r of m.routed) if (isEntityAction(r.action)) actions.set(r.action.name, r.action);

  for (const action of actions.values()) {
    const due = members
      .filter((m) => m.claim.kind === "owned" && m.claim.due.some((row) => row.action === action.name))
      .sort((a, b) => sourceTime(a.message) - sourceTime(b.message));
    if (due.length === 0) continue;
    const attemptOf = (m: GroupMember) => m.claim.due.find((row) => row.action === action.name)!.attempts;
    const first = due[0]!;
    const started = deps.now();
    const audit = new AuditBuffer();
    const deadline = Math.min(...due.map((m) => m.claim.leaseUntil)) - LEASE_MARGIN_MS;
    const context = { eventId: first.message.event.id, entityKey: groupKey, action: action.name, attempt: attemptOf(first) };
    const eventIds = due.map((m) => m.message.event.id);
    let outcome: GroupOutcome;
    try {
      outcome = await action.runGroup({
        entityKey: groupKey,
        known: directory.known.has(groupKey),
        items: due.map((m) => ({ event: m.message.event, attempt: attemptOf(m), replay: m.message.replay !== undefined })),
        config: deps.config,
        connectors: deps.connectorsFor(context, audit, deadline),
        bulk: scope.join({ ...context, eventIds, audit, deadline }),
        coordinators: deps.coordinators,
        conflictResolution: (id) => conflictResolution(deps, id),
        token: crypto.randomUUID(),
        leaseMs: LEASE_MS,
        now: deps.now,
      });
    } catch (error) {
      // The coordinator unreachable, or a bug before any write: nothing was decided, retry.
      const failure = error instanceof ActionFailure ? error : new ActionFailure("transient", `entity coordinator: ${String(error)}`);
      outcome = { kind: "failed", failure, record: null };
    }
    due.forEach((m, i) => {
      const event = m.message.event;
      let result: AttemptResult;
      switch (outcome.kind) {
        case "done":
          // Counted: a group that keeps asking for another plan must still meet RETRY_MAX_AGE.
          result = outcome.again?.includes(event.id)
            ? givenBack(deps, event, action.name, attemptOf(m), AGAIN_MS, `planned again: ${outcome.notes.get(event.id) ?? ""}`, true)
            : done(deps, event, action.name, attemptOf(m), started, outcome.notes.get(event.id) ?? null);
          break;
        case "busy": {
          const delay = Math.min(BUSY_MAX_MS, Math.max(BUSY_MIN_MS, outcome.retryInMs));
          result = givenBack(deps, event, action.name, attemptOf(m), delay, "waiting: another consumer holds this entity");
          break;
        }
        case "failed":
          // No capacity in a vendor's shared budget: a wait, not an attempt (CONTRACT 4.11).
          result = isCapacityFailure(outcome.failure)
            ? givenBack(deps, event, action.name, attemptOf(m), capacityWait(outcome.failure), outcome.failure.message)
            : failed(deps, m.message, action.name, attemptOf(m), outcome.failure, started);
          break;
      }
      if (i === 0) {
        result.audit = audit.drain();
        const record = outcome.kind === "busy" ? null : outcome.record;
        // Addresses the index already maps to this contact need no write.
        result.entity = record && { ...record, indexed: record.emails.filter((e) => directory.byEmail.get(e) === record.contactKey) };
      }
      if (!results.has(m.index)) results.set(m.index, new Map());
      results.get(m.index)!.set(action.name, result);
    });
  }
  return results;
}

const sourceTime = (m: EventMessage) => m.event.occurredAt ?? m.event.receivedAt;

async function conflictResolution(deps: PipelineDeps, id: string): Promise<"crm" | "email" | "open" | null> {
  const row = await deps.db.$client.prepare(`SELECT status, resolution FROM conflicts WHERE id = ?`).bind(id).first<{ status: string; resolution: string | null }>();
  if (!row) return null;
  if (row.status === "open") return "open";
  return row.resolution === "crm" || row.resolution === "email" ? row.resolution : null;
}
