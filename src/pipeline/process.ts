/**
 * One queue batch, start to finish: claim every event (dedupe, ledger rows, due actions) in one
 * D1 round trip, run the due actions (one entity's messages in order, different entities
 * concurrently), settle everything in a second round trip, and return one decision per message.
 * Free of the Queue API: the consumer applies the decisions, so one message's fate never
 * touches another's.
 */
import { AuditBuffer, type AuditSink } from "../audit/sink";
import type { Config } from "../config";
import type { Connectors } from "../connectors";
import { ActionFailure } from "../connectors/errors";
import type { CallContext } from "../connectors/http-client";
import { route, type RoutedAction } from "../flows/registry";
import type { Flow, FlowAction } from "../flows/types";
import { log } from "../observability/log";
import {
  claimEvents,
  eventStatusOf,
  runBatch,
  settleBatchStatements,
  type LedgerRow,
  type ActionUpdate,
  type Claim,
  type Db,
  type DeadLetterRecord,
  type EventStatus,
  type Settlement,
} from "./ledger";
import type { EventMessage } from "./message";
import { pastMaxAge, retryDelaySeconds } from "./retry";

export interface PipelineDeps {
  db: Db;
  config: Config;
  flows: readonly Flow[];
  /** Connectors for one action attempt, recording every call into `audit`. */
  connectorsFor(context: CallContext, audit: AuditSink): Connectors;
  now(): number;
  random(): number;
}

export type Decision =
  | { kind: "ack"; status: EventStatus | "duplicate" }
  | { kind: "retry"; delaySeconds: number }
  /** The pipeline itself failed (D1 unavailable, …): retry on the schedule, nothing was lost. */
  | { kind: "error"; error: unknown };

interface Outcome {
  decision: Decision;
  settlement: Settlement | null;
}

interface AttemptResult {
  update: ActionUpdate;
  deadLetter: DeadLetterRecord | null;
  invalid: boolean;
}

export async function processBatch(deps: PipelineDeps, batch: EventMessage[]): Promise<Decision[]> {
  // The same delivery twice in one batch would claim its actions twice: the first copy does
  // the work, the others are acknowledged with it.
  const keyOf = (m: EventMessage) => `${m.event.id}\u0000${m.deliveryId}`;
  const unique = [...new Map(batch.map((m) => [keyOf(m), m])).values()];
  const decisions = await processUnique(deps, unique);
  const decisionOf = new Map(unique.map((m, i) => [keyOf(m), decisions[i]!]));
  const seen = new Set<string>();
  return batch.map((m) => {
    const key = keyOf(m);
    if (seen.has(key)) return { kind: "ack", status: "duplicate" };
    seen.add(key);
    return decisionOf.get(key)!;
  });
}

async function processUnique(deps: PipelineDeps, messages: EventMessage[]): Promise<Decision[]> {
  if (messages.length === 0) return [];
  const now = deps.now();
  const routed = messages.map((m) => route(m.event, deps.flows));
  let claims: (Claim | Error)[];
  try {
    claims = await claimEvents(deps.db, messages.map((message, i) => ({ message, routed: toLedger(routed[i]!) })), now);
  } catch {
    // One message can fail the whole batch statement (D1 rejects it): claim one by one, so
    // only that message is retried.
    claims = await Promise.all(
      messages.map((message, i) =>
        claimEvents(deps.db, [{ message, routed: toLedger(routed[i]!) }], now).then(
          (c) => c[0]!,
          (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
        ),
      ),
    );
  }

  const outcomes: Outcome[] = new Array(messages.length);
  const byEntity = new Map<string, number[]>();
  messages.forEach((m, i) => {
    const key = m.event.entityKey ?? m.event.id;
    byEntity.set(key, [...(byEntity.get(key) ?? []), i]);
  });
  await Promise.all(
    [...byEntity.values()].map(async (indexes) => {
      for (const i of indexes) outcomes[i] = await runClaim(deps, messages[i]!, routed[i]!, claims[i]!);
    }),
  );

  const settlements = outcomes.flatMap((o) => (o.settlement ? [o.settlement] : []));
  try {
    await runBatch(deps.db, settleBatchStatements(deps.db, settlements, deps.now()));
  } catch (error) {
    // Nothing of this batch is recorded as settled: every settled message is retried, and the
    // ledger rows left 'running' are run again on redelivery.
    return outcomes.map((o) => (o.settlement ? { kind: "error", error } : o.decision));
  }
  return outcomes.map((o) => o.decision);
}

function toLedger(routed: RoutedAction[]) {
  return routed.map((r) => ({ flow: r.flow, action: r.action.name }));
}

async function runClaim(deps: PipelineDeps, message: EventMessage, routed: RoutedAction[], claim: Claim | Error): Promise<Outcome> {
  const event = message.event;
  const where = { eventId: event.id, source: event.source, entity: event.entityKey };
  if (claim instanceof Error) return { decision: { kind: "error", error: claim }, settlement: null };
  if (claim.kind === "duplicate") {
    log("deduped", { ...where, outcome: "duplicate" });
    return { decision: { kind: "ack", status: "duplicate" }, settlement: emptySettlement(event.id, { duplicate: true }) };
  }
  if (routed.length === 0) {
    log("event_ignored", { ...where, type: event.type });
    return { decision: { kind: "ack", status: "ignored" }, settlement: null };
  }
  const now = deps.now();
  if (claim.due.length === 0) {
    // Nothing to run (a redelivery, or a replay of finished actions): only the status may be stale.
    const status = eventStatusOf(claim.actions.map((r) => r.state), claim.event.status === "invalid");
    const settlement = status === claim.event.status ? null : emptySettlement(event.id, { status, lastError: claim.event.lastError });
    return { decision: decide(claim.actions, now), settlement };
  }

  const audit = new AuditBuffer();
  const actionsByName = new Map(routed.map((r) => [r.action.name, r.action]));
  const results = await Promise.all(
    claim.due.map((row) => attempt(deps, message, actionsByName.get(row.action)!, row.attempts, audit)),
  );
  const final = claim.actions.map((row) => {
    const result = results.find((r) => r.update.action === row.action);
    return result ? { ...row, ...result.update } : row;
  });
  const status = eventStatusOf(final.map((r) => r.state), results.some((r) => r.invalid));
  for (const r of results) {
    if (r.deadLetter) log("dead_lettered", { ...where, action: r.update.action, reason: r.deadLetter.reason }, "warn");
  }
  const decision = decide(final, deps.now());
  if (decision.kind === "retry") log("retry_scheduled", { ...where, delaySeconds: decision.delaySeconds });
  return {
    decision,
    settlement: {
      eventId: event.id,
      status,
      lastError: results.map((r) => r.update.lastError).find((e) => e !== null) ?? null,
      updates: results.map((r) => r.update),
      audit: audit.drain(),
      deadLetters: results.flatMap((r) => (r.deadLetter ? [r.deadLetter] : [])),
    },
  };
}

function emptySettlement(eventId: string, fields: Partial<Settlement>): Settlement {
  return { eventId, status: null, updates: [], audit: [], deadLetters: [], ...fields };
}

/** Retry when any action still has to run, at the earliest time one of them is due. */
function decide(rows: Pick<LedgerRow, "state" | "nextAttemptAt">[], now: number): Decision {
  const waiting = rows.filter((r) => r.state === "failed" || r.state === "pending" || r.state === "running");
  if (waiting.length === 0) return { kind: "ack", status: eventStatusOf(rows.map((r) => r.state), false) };
  const next = Math.min(...waiting.map((r) => r.nextAttemptAt ?? now));
  return { kind: "retry", delaySeconds: Math.max(0, Math.ceil((next - now) / 1000)) };
}

async function attempt(deps: PipelineDeps, message: EventMessage, flowAction: FlowAction, attemptNumber: number, audit: AuditSink): Promise<AttemptResult> {
  const event = message.event;
  const action = flowAction.name;
  const started = deps.now();
  const context: CallContext = { eventId: event.id, entityKey: event.entityKey, action, attempt: attemptNumber };
  const base = { eventId: event.id, source: event.source, entity: event.entityKey, action, attempt: attemptNumber };
  try {
    await flowAction.run({ event, attempt: attemptNumber, config: deps.config, connectors: deps.connectorsFor(context, audit) });
    log("action_attempt", { ...base, outcome: "done", durationMs: deps.now() - started });
    return { update: { action, state: "done", lastError: null, lastStatus: null, nextAttemptAt: null }, deadLetter: null, invalid: false };
  } catch (error) {
    // Only ActionFailures know their kind. Anything else thrown by flow code is a bug or a
    // payload it cannot handle: retrying cannot help, so it is dead-lettered (replayable).
    const failure = error instanceof ActionFailure ? error : new ActionFailure("permanent", `unexpected error: ${String(error)}`);
    const now = deps.now();
    const status = failure.details.status ?? null;
    const durationMs = now - started;
    if (failure.kind === "transient" && !pastMaxAge(deps.config.retry, message.retryFrom, now)) {
      const delay = retryDelaySeconds(deps.config.retry, attemptNumber, failure.details.retryAfterMs ?? null, deps.random());
      log("action_attempt", { ...base, outcome: "failed", status, error: failure.message, durationMs, retryInSeconds: delay }, "warn");
      return {
        update: { action, state: "failed", lastError: failure.message, lastStatus: status, nextAttemptAt: now + delay * 1000 },
        deadLetter: null,
        invalid: false,
      };
    }
    const reason =
      failure.kind === "transient"
        ? `gave up after RETRY_MAX_AGE (${deps.config.retry.maxAgeSeconds} s): ${failure.message}`
        : `${failure.kind}: ${failure.message}`;
    log("action_attempt", { ...base, outcome: "dead", status, error: reason, durationMs }, "warn");
    return {
      update: { action, state: "dead", lastError: reason, lastStatus: status, nextAttemptAt: null },
      deadLetter: { eventId: event.id, action, source: event.source, reason },
      invalid: failure.kind === "invalid",
    };
  }
}
