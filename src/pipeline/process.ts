/**
 * One queue message, start to finish: dedupe, route, run the due actions through the ledger,
 * settle, decide. Free of the Queue API: it returns a decision the consumer applies, which is
 * what lets one message's fate never touch another's.
 */
import { AuditBuffer, type AuditSink } from "../audit/sink";
import type { Config } from "../config";
import type { Connectors } from "../connectors";
import { ActionFailure } from "../connectors/errors";
import type { CallContext } from "../connectors/http-client";
import { route } from "../flows/registry";
import type { Flow, FlowAction } from "../flows/types";
import { log } from "../observability/log";
import {
  claimEvent,
  countDuplicate,
  eventStatusOf,
  markRunning,
  settle,
  type ActionRow,
  type ActionUpdate,
  type Db,
  type DeadLetterRecord,
  type EventStatus,
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
  | { kind: "retry"; delaySeconds: number };

// A retry delivered a little early (queue delays are whole seconds) still counts as due.
const DUE_TOLERANCE_MS = 1_000;

interface AttemptResult {
  update: ActionUpdate;
  deadLetter: DeadLetterRecord | null;
  invalid: boolean;
}

export async function processMessage(deps: PipelineDeps, message: EventMessage): Promise<Decision> {
  const { db } = deps;
  const event = message.event;
  const now = deps.now();
  const routed = route(event, deps.flows);
  const claim = await claimEvent(db, message, routed.map((r) => ({ flow: r.flow, action: r.action.name })), now);

  if (claim.kind === "duplicate") {
    await countDuplicate(db, event.id, now);
    log("deduped", { eventId: event.id, source: event.source, entity: event.entityKey, outcome: "duplicate" });
    return { kind: "ack", status: "duplicate" };
  }
  if (routed.length === 0) {
    log("event_ignored", { eventId: event.id, source: event.source, entity: event.entityKey, type: event.type });
    return { kind: "ack", status: "ignored" };
  }

  const rows = new Map(claim.actions.map((row) => [row.action, row]));
  const due = routed.filter(({ action }) => isDue(rows.get(action.name), now));
  if (due.length === 0) {
    // Nothing to run (a redelivery, or a replay of finished actions): only the status may be stale.
    const status = eventStatusOf(claim.actions.map((r) => r.state), claim.event.status === "invalid");
    if (status !== claim.event.status) await settle(db, { eventId: event.id, status, lastError: claim.event.lastError, updates: [], audit: [], deadLetters: [] }, now);
    return decide(claim.actions, now);
  }

  await markRunning(db, event.id, due.map((r) => r.action.name), now);
  const audit = new AuditBuffer();
  const results = await Promise.all(
    due.map(({ action }) => attempt(deps, message, action, (rows.get(action.name)?.attempts ?? 0) + 1, audit)),
  );

  const final = claim.actions.map((row) => {
    const result = results.find((r) => r.update.action === row.action);
    return result ? { ...row, ...result.update } : row;
  });
  const invalid = results.some((r) => r.invalid);
  const status = eventStatusOf(final.map((r) => r.state), invalid);
  const lastError = results.map((r) => r.update.lastError).find((e) => e !== null) ?? null;
  await settle(
    db,
    {
      eventId: event.id,
      status,
      lastError,
      updates: results.map((r) => r.update),
      audit: audit.drain(),
      deadLetters: results.flatMap((r) => (r.deadLetter ? [r.deadLetter] : [])),
    },
    deps.now(),
  );
  for (const r of results) {
    if (r.deadLetter) log("dead_lettered", { eventId: event.id, source: event.source, entity: event.entityKey, action: r.update.action, reason: r.deadLetter.reason }, "warn");
  }
  const decision = decide(final, deps.now());
  if (decision.kind === "retry") {
    log("retry_scheduled", { eventId: event.id, source: event.source, entity: event.entityKey, delaySeconds: decision.delaySeconds });
  }
  return decision;
}

function isDue(row: ActionRow | undefined, now: number): boolean {
  if (!row) return false;
  if (row.state === "done" || row.state === "dead") return false;
  return (row.nextAttemptAt ?? 0) <= now + DUE_TOLERANCE_MS;
}

/** Retry when any action still has to run, at the earliest time one of them is due. */
function decide(rows: Pick<ActionRow, "state" | "nextAttemptAt">[], now: number): Decision {
  const waiting = rows.filter((r) => r.state === "failed" || r.state === "pending" || r.state === "running");
  if (waiting.length === 0) return { kind: "ack", status: eventStatusOf(rows.map((r) => r.state), false) };
  const next = Math.min(...waiting.map((r) => r.nextAttemptAt ?? now));
  return { kind: "retry", delaySeconds: Math.max(0, Math.ceil((next - now) / 1000)) };
}

async function attempt(
  deps: PipelineDeps,
  message: EventMessage,
  flowAction: FlowAction,
  attemptNumber: number,
  audit: AuditSink,
): Promise<AttemptResult> {
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
