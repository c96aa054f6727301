/**
 * One attempt of an action, as the ledger update it ends in: done, failed (retried on the
 * schedule), dead (with its dead letter), or given back (its entity was busy elsewhere).
 * Shared by per-event actions (here) and per-entity ones (groups.ts).
 */
import type { AuditRecord, AuditSink } from "../audit/sink";
import { isCapacityFailure } from "../budgets/gate";
import { ActionFailure } from "../connectors/errors";
import type { CallContext } from "../connectors/http-client";
import type { EntityRecord } from "../entities/directory";
import type { EventAction } from "../flows/types";
import type { InboundEvent } from "../ingest/event";
import { log } from "../observability/log";
import type { D1Effects } from "./effects";
import type { ActionUpdate, DeadLetterRecord, LedgerRow } from "./ledger";
import type { EventMessage } from "./message";
import type { PipelineDeps } from "./process";
import { pastMaxAge, retryDelaySeconds } from "./retry";

export interface AttemptResult {
  update: ActionUpdate;
  deadLetter: DeadLetterRecord | null;
  invalid: boolean;
  /** Written with this message's settle: what its entity group learned, and the group's audit rows. */
  entity?: EntityRecord | null;
  audit?: AuditRecord[];
}

const where = (event: InboundEvent, action: string, attempt: number) => ({ eventId: event.id, source: event.source, entity: event.entityKey, action, attempt });

/** A ledger row whose action no flow routes any more (renamed or removed by a deploy): dead, with the reason. */
export function unrouted(message: EventMessage, row: LedgerRow): AttemptResult {
  const event = message.event;
  const reason = `permanent: no flow routes action ${row.action} any more (renamed or removed by a deploy); restore it, then replay the event`;
  log("action_attempt", { ...where(event, row.action, row.attempts), outcome: "dead", error: reason }, "warn");
  return {
    update: { action: row.action, state: "dead", lastError: reason, lastStatus: null, nextAttemptAt: null },
    deadLetter: { id: `dl_${crypto.randomUUID()}`, eventId: event.id, action: row.action, source: event.source, reason },
    invalid: false,
  };
}

/** `effects`: the invocation's once-ever claims and links (shared, so its orders share their round trips). */
export async function attempt(deps: PipelineDeps, message: EventMessage, flowAction: EventAction, attemptNumber: number, audit: AuditSink, deadline: number, effects: D1Effects): Promise<AttemptResult> {
  const event = message.event;
  const action = flowAction.name;
  const started = deps.now();
  const context: CallContext = { eventId: event.id, entityKey: event.entityKey, action, attempt: attemptNumber };
  try {
    const onceKey = flowAction.scope === "entity-ever" && event.entityKey ? `${action}\u0000${event.entityKey}` : null;
    if (onceKey) {
      const { owner, done: made } = await effects.claimOnce(onceKey, event.id, started);
      if (made || owner !== event.id) return done(deps, event, action, attemptNumber, started, `already done for ${event.entityKey} (by event ${owner})`);
    }
    const note = await flowAction.run({
      event,
      attempt: attemptNumber,
      config: deps.config,
      connectors: deps.connectorsFor(context, audit, deadline),
      links: effects,
    });
    const result = done(deps, event, action, attemptNumber, started, note ?? null);
    if (onceKey) result.update.onceDone = onceKey;
    return result;
  } catch (error) {
    // No capacity in a vendor's shared budget: a wait, not an attempt (CONTRACT 4.11).
    if (isCapacityFailure(error)) return givenBack(deps, event, action, attemptNumber, capacityWait(error), error.message);
    return failed(deps, message, action, attemptNumber, error, started);
  }
}

/** How long work that found no capacity waits: until the budget expects some, at least a second. */
export function capacityWait(failure: ActionFailure): number {
  return Math.max(1_000, failure.details.retryAfterMs ?? 1_000);
}

export function done(deps: PipelineDeps, event: InboundEvent, action: string, attemptNumber: number, started: number, note: string | null): AttemptResult {
  log("action_attempt", { ...where(event, action, attemptNumber), outcome: "done", ...(note ? { note } : {}), durationMs: deps.now() - started });
  return { update: { action, state: "done", lastError: null, lastStatus: null, nextAttemptAt: null, note }, deadLetter: null, invalid: false };
}

/**
 * Back to pending, due after `delayMs`: an attempt that could not start gives its count back;
 * one that did its part and asks for another (`counted`) keeps it, so it still ends.
 */
export function givenBack(deps: PipelineDeps, event: InboundEvent, action: string, attemptNumber: number, delayMs: number, note: string, counted = false): AttemptResult {
  log("action_attempt", { ...where(event, action, attemptNumber), outcome: "waiting", note, retryInMs: delayMs });
  return { update: { action, state: "pending", lastError: null, lastStatus: null, nextAttemptAt: deps.now() + delayMs, note, uncount: !counted }, deadLetter: null, invalid: false };
}

export function failed(deps: PipelineDeps, message: EventMessage, action: string, attemptNumber: number, error: unknown, started: number): AttemptResult {
  const event = message.event;
  const base = where(event, action, attemptNumber);
  // Only ActionFailures know their kind. Anything else thrown by flow code is a bug or a
  // payload it cannot handle: retrying cannot help, so it is dead-lettered (replayable).
  const failure = error instanceof ActionFailure ? error : new ActionFailure("permanent", `unexpected error: ${String(error)}`);
  // Every failure text passes the redactor before it is stored or logged.
  const text = deps.redactor.redact(failure.message);
  const now = deps.now();
  const status = failure.details.status ?? null;
  // The vendor that failed, as its own field: `wrangler tail | jq` can pick one connector's failures.
  const connector = failure.details.connector ?? undefined;
  const durationMs = now - started;
  if (failure.kind === "transient" && !pastMaxAge(deps.config.retry, message.retryFrom, now)) {
    const delay = retryDelaySeconds(deps.config.retry, attemptNumber, failure.details.retryAfterMs ?? null, deps.random());
    log("action_attempt", { ...base, outcome: "failed", connector, status, error: text, durationMs, retryInSeconds: delay }, "warn");
    return {
      update: { action, state: "failed", lastError: text, lastStatus: status, nextAttemptAt: now + delay * 1000 },
      deadLetter: null,
      invalid: false,
    };
  }
  const reason = failure.kind === "transient" ? `gave up after RETRY_MAX_AGE (${deps.config.retry.maxAgeSeconds} s): ${text}` : `${failure.kind}: ${text}`;
  log("action_attempt", { ...base, outcome: "dead", connector, status, error: reason, durationMs }, "warn");
  return {
    update: { action, state: "dead", lastError: reason, lastStatus: status, nextAttemptAt: null },
    deadLetter: { id: `dl_${crypto.randomUUID()}`, eventId: event.id, action, source: event.source, reason },
    invalid: failure.kind === "invalid",
  };
}
